"""Save and restore where the image is: the save-path checks and the listing of saved images through a `HostAccess`,
with the same words on this machine and on a dom0 over ssh; and the xl backend saving and restoring over ssh.

``ssh`` is the stand-in of tests/test_ssh_host.py (it runs the remote command line with ``sh -c`` here), ``xl`` and
``xentop`` the stand-ins of tests/fake_xen_tools.py; the real ssh into the Xen lab's dom0 is
tests/xenlab/test_ssh_lab.py::test_save_and_restore_over_ssh.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.fake_xen_tools import install
from tests.test_ssh_host import FAKE_SSH, calls_made
from xentui.backends.base import Action, BackendError, InvalidArgument
from xentui.backends.host import LocalHost
from xentui.backends.savefile import check_save_path, save_target, saved_images
from xentui.backends.ssh import SshHost
from xentui.backends.xl import XlBackend

pytestmark = pytest.mark.asyncio

# a directory a remote shell would take apart if a word were not quoted
HOSTILE_DIR = "saves; touch owned $(touch owned2) `id` 'q' \"d\" * -x"


# the remote command runs in the stand-in's place (as sshd's child would end with the session): the xentop stream
# it starts ends when the backend stops it, instead of living on under a shell
EXEC_SSH = FAKE_SSH.replace('exec sh -c "$1"', 'exec sh -c "exec $1"')
assert EXEC_SSH != FAKE_SSH


def ssh_host(tmp_path: Path, cls: type[SshHost] = SshHost) -> SshHost:
    ssh = tmp_path / "ssh"
    ssh.write_text(EXEC_SSH)
    ssh.chmod(ssh.stat().st_mode | stat.S_IEXEC)
    return cls("root@dom0a", ssh=str(ssh), control_dir=tmp_path / "control")


@pytest.fixture(params=["local", "ssh"])
def host(request, tmp_path):
    return LocalHost() if request.param == "local" else ssh_host(tmp_path)


def no_injection(tmp_path: Path) -> None:
    for where in (Path.cwd(), tmp_path, tmp_path / HOSTILE_DIR):
        assert not (where / "owned").exists() and not (where / "owned2").exists()


async def test_the_save_checks_say_what_check_save_path_says_on_either_host(host, tmp_path):
    saves = tmp_path / HOSTILE_DIR
    saves.mkdir()
    os.mkfifo(saves / "a-fifo")
    (saves / "a-directory").mkdir()
    (saves / "victim").write_text("keep me")
    (saves / "link.save").symlink_to(saves / "victim")
    os.mknod(saves / "null-device", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    (saves / "old.save").write_bytes(b"x" * 2000)
    (tmp_path / "linked-dir").symlink_to(saves)
    for path, overwrite in ((saves / "a-fifo", True), (saves / "a-directory", True), (saves / "link.save", True),
                            (saves / "null-device", True), (saves / "old.save", False),
                            (saves / "nowhere" / "x.save", True), (saves / "victim" / "x.save", True),
                            (Path("-c"), True), (saves / ("y" * 300), True), (saves / "a\0b", True)):
        with pytest.raises(InvalidArgument) as local:
            check_save_path(path, overwrite=overwrite)
        with pytest.raises(InvalidArgument) as there:
            await save_target(host, path, overwrite=overwrite)
        assert str(there.value) == str(local.value), path
    assert await save_target(host, saves / "new.save", overwrite=False) == (saves / "new.save", None)
    assert await save_target(host, saves / "old.save", overwrite=True) == (saves / "old.save", 2000)
    # a link to the directory is a directory: as Path.is_dir() says
    assert await save_target(host, tmp_path / "linked-dir" / "n.save", overwrite=False) == (
        tmp_path / "linked-dir" / "n.save", None)
    assert (saves / "victim").read_text() == "keep me"
    no_injection(tmp_path)


async def test_saved_images_are_the_regular_files_newest_first_on_either_host(host, tmp_path):
    saves = tmp_path / HOSTILE_DIR
    saves.mkdir()
    names = ["new\nline.save", "-rf.save", "$(touch owned).save", "\x1b]0;TITLE\x07.save", "plain.save"]
    for age, name in enumerate(names):
        (saves / name).write_bytes(b"x" * (100 * age))
        os.utime(saves / name, (1_790_000_000 - age * 60, 1_790_000_000 - age * 60))
    (saves / ".plain.save.xentui-partial-0a1b2c3d").write_bytes(b"being written")
    (saves / "a-directory").mkdir()
    (saves / "link.save").symlink_to(saves / "plain.save")
    (saves / "dangling.save").symlink_to(tmp_path / "gone")
    images = await saved_images(host, saves)
    assert [image.name for image in images] == [*names[:-1], "link.save", "plain.save"]  # a tie: by name
    first = images[0]
    assert (first.path, first.size, first.mtime) == (saves / names[0], 0, 1_790_000_000)
    assert await saved_images(host, tmp_path / "missing") == []
    no_injection(tmp_path)


@pytest.fixture
def xl_over_ssh(tmp_path):
    """The xl backend on a dom0 reached with (stand-in) ssh, whose xl and xentop are stand-ins."""
    bin_dir = tmp_path / "bin"
    calls = install(bin_dir, {})
    host = ssh_host(tmp_path)
    backend = XlBackend(xl=str(bin_dir / "xl"), xentop=str(bin_dir / "xentop"), delay=0.2, host=host)
    return backend, calls


def xl_calls(calls: Path, verb: str) -> list[list[str]]:
    return [args for args in map(json.loads, calls.read_text().splitlines()) if args[0] == verb]


async def test_xl_over_ssh_saves_beside_and_renames_over_there(xl_over_ssh, tmp_path):
    backend, calls = xl_over_ssh
    saves = tmp_path / HOSTILE_DIR
    try:
        assert backend.capabilities.supports(Action.SAVE) and backend.capabilities.supports(Action.RESTORE)
        await backend.make_save_dir(saves)
        assert saves.is_dir()
        await backend.sample()
        image = saves / "guest1 $(id).save"
        assert await backend.check_save_target(image, overwrite=False) == (image, None)
        await backend.save("guest1", image, keep_running=True)
        assert image.read_bytes().startswith(b"Xen saved domain")
        assert sorted(p.name for p in saves.iterdir()) == [image.name]  # the partial file took the name
        (save,) = xl_calls(calls, "save")
        assert save[:3] == ["save", "-c", "1"] and save[3].startswith(str(saves / ".guest1 $(id).save"))
        with pytest.raises(InvalidArgument, match="already exists; confirm to overwrite it"):
            await backend.save("guest1", image, keep_running=True)
        with pytest.raises(InvalidArgument, match="is a FIFO"):
            os.mkfifo(saves / "fifo")
            await backend.save("guest1", saves / "fifo", keep_running=True, overwrite=True)
        assert len(xl_calls(calls, "save")) == 1  # refused before xl ran
        assert [i.name for i in await backend.saved_images(saves)] == [image.name]  # not the FIFO
    finally:
        await backend.close()
    no_injection(tmp_path)


async def test_xl_over_ssh_restore_checks_the_image_there(xl_over_ssh, tmp_path):
    backend, calls = xl_over_ssh
    saves = tmp_path / HOSTILE_DIR
    saves.mkdir()
    (saves / "not-an-image.save").write_bytes(b"ELF")
    (saves / "a-directory.save").mkdir()
    (saves / "guest1.save").write_bytes(b'Xen saved domain, xl format\n \0\r{"c_info": {"type": "pv", '
                                        b'"name": "guest1"}}')
    (saves / "guest9 'x'.save").write_bytes(b'Xen saved domain, xl format\n \0\r{"c_info": {"name": "guest9"}}')
    try:
        with pytest.raises(InvalidArgument, match="is not a domain saved by xl"):
            await backend.restore(saves / "not-an-image.save")
        with pytest.raises(InvalidArgument, match="is not a file"):
            await backend.restore(saves / "a-directory.save")
        with pytest.raises(InvalidArgument, match="is not a file"):
            await backend.restore(saves / "missing.save")
        with pytest.raises(InvalidArgument, match="not an absolute path"):
            await backend.restore(Path("guest1.save"))
        with pytest.raises(InvalidArgument, match="guest1 is already running here"):
            await backend.restore(saves / "guest1.save")
        assert xl_calls(calls, "restore") == []  # all refused before xl ran
        with pytest.raises(BackendError):  # the stand-in xl does not restore; it is asked with the path whole
            await backend.restore(saves / "guest9 'x'.save", paused=True)
        assert xl_calls(calls, "restore") == [["restore", "-p", str(saves / "guest9 'x'.save")]]
    finally:
        await backend.close()
    no_injection(tmp_path)


async def test_a_listing_costs_one_round_trip_whatever_its_size(tmp_path):
    host = ssh_host(tmp_path)
    saves = tmp_path / "saves"
    saves.mkdir()
    for index in range(200):
        (saves / f"guest{index}.save").write_bytes(b"x")
    before = calls_made(tmp_path)
    assert len(await saved_images(host, saves)) == 200
    assert calls_made(tmp_path) == before + 1


class RenameFails(SshHost):
    async def rename(self, source: str, target: str) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))


async def test_an_image_that_cannot_take_its_name_is_kept_and_said_where(tmp_path):
    """The guest stopped and its memory is in the partial file: it must not be removed like a failed save's."""
    bin_dir = tmp_path / "bin"
    install(bin_dir, {})
    backend = XlBackend(xl=str(bin_dir / "xl"), xentop=str(bin_dir / "xentop"), delay=0.2,
                        host=ssh_host(tmp_path, RenameFails))
    (tmp_path / "saves").mkdir()
    try:
        await backend.sample()
        with pytest.raises(BackendError, match=r"could not be renamed to .*guest1\.save: Input/output error; "
                                               r"it is kept there"):
            await backend.save("guest1", tmp_path / "saves" / "guest1.save")
    finally:
        await backend.close()
    (kept,) = (tmp_path / "saves").iterdir()
    assert kept.name.startswith(".guest1.save.xentui-partial-") and kept.read_bytes().startswith(b"Xen saved")


async def test_a_restored_guest_shows_with_its_new_domid_when_xentop_gives_the_figures():
    """xentop names domains and never numbers them: after a restore the same name is another domid (the Xen lab
    showed the old one over ssh, and an action would have gone to a domid that was gone)."""
    from tests.test_xl_host_seam import XENTOP, XL, LabHost, capture
    from xentui.backends.host import FileInfo
    from xentui.backends.xl_tool import ToolResult

    guest2_row = "guest2" + " " * 39 + "2"  # the name, then the domid

    class RestoringHost(LabHost):
        restored = False

        async def run(self, argv, *, what=None, limit=60.0, check=True, on_timeout=None) -> ToolResult:
            if argv[1:2] == ["restore"]:
                self.restored = True
            if self.restored and argv[1:] == ["list"]:  # guest2 came back as domid 7
                self.calls.append(("run", tuple(argv)))
                return ToolResult(0, capture("xenlab-xl-list.txt").replace(guest2_row, guest2_row[:-1] + "7"), "")
            return await super().run(argv, what=what, limit=limit, check=check, on_timeout=on_timeout)

        async def stat(self, paths, *, follow_links=False):
            return {path: FileInfo(stat.S_IFREG | 0o600, 1 << 20, 0.0) for path in paths}

        async def start(self, argv, *, merge_stderr=False, hang_up=False) -> asyncio.subprocess.Process:
            self.calls.append(("start", tuple(argv)))
            code = (f"import sys, time\ntext = {capture('xenlab-xentop-batch.txt')!r}\nwhile True:\n"
                    "    sys.stdout.write(text); sys.stdout.flush(); time.sleep(0.2)")
            return await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)

    host = RestoringHost()
    assert guest2_row in capture("xenlab-xl-list.txt")
    backend = XlBackend(xl=XL, xentop=XENTOP, stats="xentop", delay=0.2, host=host)
    try:
        assert {d.name: d.id for d in (await backend.sample()).domains}["guest2"] == 2
        assert await backend.restore(Path("/var/lib/xen/save/guest2.save")) == "guest2"
        assert {d.name: d.id for d in (await backend.sample()).domains}["guest2"] == 7
    finally:
        await backend.close()
