"""The ssh host seam: destinations checked, every word reaching the remote program whole, one round trip for the
links, dom0's interface counters. ``ssh`` itself is a stand-in here that runs the command line with ``sh -c`` as
sshd would (its options are checked, not obeyed); tests/xenlab/test_ssh_lab.py drives the xl backend through the
real ssh into the Xen lab's dom0."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest

from xentui.backends.ssh import SshHost, check_destination, parse_net_dev
from xentui.errors import BackendUnavailable, InvalidArgument

HOSTILE = ["guest; rm -rf /", "$(touch /tmp/owned)", "a'b\"c", "two  spaces", "new\nline", "`id`", "-x", "*", "\\"]

FAKE_SSH = r"""#!/bin/sh
# a stand-in for ssh: checks that xentui's options are there, then runs the command line as sshd would
log="$(dirname "$0")/calls"
echo "$*" >> "$log"
case " $* " in *" BatchMode=yes "*) ;; *) echo "no BatchMode" >&2; exit 255 ;; esac
case " $* " in *" ControlMaster=auto "*) ;; *) echo "no ControlMaster" >&2; exit 255 ;; esac
while [ "$1" != "--" ]; do shift; done
shift
[ "$1" = "unreachable" ] && { echo "ssh: connect to host unreachable port 22: Connection refused" >&2; exit 255; }
shift
exec sh -c "$1"
"""


@pytest.fixture
def host(tmp_path: Path) -> SshHost:
    ssh = tmp_path / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(ssh.stat().st_mode | stat.S_IEXEC)
    return SshHost("root@dom0a", ssh=str(ssh), control_dir=tmp_path / "control")


@pytest.mark.parametrize("destination", ["root@dom0a", "dom0a", "admin@10.0.0.2", "dom0-b.example.org", "h%eth0"])
def test_an_operators_destinations_are_taken(destination):
    assert check_destination(destination) == destination


@pytest.mark.parametrize("destination", ["", "-oProxyCommand=sh", "a;b", "a b", "$(x)", "root@a@b", "a\x1b]0;x\x07",
                                         "host\n", "a|b", "~user"])
def test_a_destination_with_shell_or_option_characters_is_refused(destination):
    with pytest.raises(InvalidArgument, match="not an ssh destination"):
        SshHost(destination)


@pytest.mark.asyncio
async def test_every_word_reaches_the_remote_program_whole(host):
    result = await host.run(["printf", "%s\\0", *HOSTILE])
    assert result.stdout.split("\0")[:-1] == HOSTILE


@pytest.mark.asyncio
async def test_the_command_line_carries_batch_mode_and_a_control_socket(host, tmp_path):
    await host.run(["true"])
    (call,) = (tmp_path / "calls").read_text().splitlines()
    assert "BatchMode=yes" in call and f"ControlPath={tmp_path / 'control'}/%C" in call and " -T -- root@dom0a " in call
    assert stat.S_IMODE(os.stat(tmp_path / "control").st_mode) == 0o700


@pytest.mark.asyncio
async def test_links_are_read_in_one_round_trip_and_a_missing_one_is_none(host, tmp_path):
    for name in HOSTILE[:4]:
        (tmp_path / name.replace("/", "_")).symlink_to(f"/sys/devices/virtual/net/{name.replace('/', '_')}")
    paths = [str(tmp_path / name.replace("/", "_")) for name in HOSTILE[:4]] + [str(tmp_path / "absent")]
    before = len((tmp_path / "calls").read_text().splitlines()) if (tmp_path / "calls").exists() else 0
    links = await host.read_links(paths)
    assert len((tmp_path / "calls").read_text().splitlines()) == before + 1
    assert links[paths[-1]] is None
    assert [links[p].rsplit("/", 1)[-1] for p in paths[:4]] == [n.replace("/", "_") for n in HOSTILE[:4]]


@pytest.mark.asyncio
async def test_net_counters_are_dom0s_proc_net_dev(host):
    counters = await host.net_counters()
    mine = psutil.net_io_counters(pernic=True)
    assert counters.keys() == mine.keys()
    for name, each in counters.items():  # read a moment apart: the same or a little more
        assert 0 <= mine[name].bytes_recv - each.bytes_recv < 1 << 20, name
        assert 0 <= mine[name].packets_sent - each.packets_sent < 1 << 12, name


def test_proc_net_dev_lines_that_are_not_counters_are_skipped():
    text = ("Inter-|   Receive |  Transmit\n face |bytes packets\n"
            "  eth0: 10 2 0 0 0 0 0 0 30 4 0 1 0 0 0 0\n garbage line\n vif3.0: 1 2 3\n")
    assert parse_net_dev(text) == {"eth0": parse_net_dev(text)["eth0"]}
    assert (parse_net_dev(text)["eth0"].bytes_recv, parse_net_dev(text)["eth0"].dropout) == (10, 1)


@pytest.mark.asyncio
async def test_an_unreachable_host_says_so_with_ssh_words(tmp_path):
    ssh = tmp_path / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(ssh.stat().st_mode | stat.S_IEXEC)
    unreachable = SshHost("unreachable", ssh=str(ssh), control_dir=tmp_path / "c")
    with pytest.raises(BackendUnavailable, match=r"cannot reach unreachable with ssh: .*Connection refused"):
        await unreachable.run(["xl", "list"])
    with pytest.raises(BackendUnavailable, match=r"cannot reach unreachable with ssh: .*Connection refused"):
        unreachable.has("xl")  # before the screen: said as ssh says it, not as "xl is not installed"


# --- the file calls of save and restore: one round trip each, every name whole, errors as the local call's ---

FILE_NAMES = [name.replace("/", "_") for name in HOSTILE if name != "-x"] + [
    "-x.save", "$(touch owned)", "..?x", ".[!.]y", "é ü.save", "a\tb"]


def calls_made(tmp_path: Path) -> int:
    """ssh commands run so far (a name with a newline spreads one over two lines of the log)."""
    calls = tmp_path / "calls"
    return calls.read_text().count("BatchMode=yes") if calls.exists() else 0


@pytest.mark.asyncio
async def test_a_directory_is_listed_in_one_round_trip_as_this_machine_lists_it(host, tmp_path):
    from xentui.backends.host import LocalHost

    saves = tmp_path / "saves; $(touch owned) 'q' \"d\""
    saves.mkdir()
    for index, name in enumerate(FILE_NAMES):
        (saves / name).write_bytes(b"x" * index)
    (saves / ".hidden-partial").write_bytes(b"half")
    (saves / "a-directory").mkdir()
    (saves / "link.save").symlink_to(saves / "-x.save")
    (saves / "dangling").symlink_to(tmp_path / "nowhere")
    os.utime(saves / "-x.save", (1_700_000_000, 1_700_000_000))
    before = calls_made(tmp_path)
    remote = await host.list_dir(str(saves))
    assert calls_made(tmp_path) == before + 1  # one ssh command, whatever the number of entries
    local = await LocalHost().list_dir(str(saves))
    assert remote.keys() == local.keys() == {*FILE_NAMES, ".hidden-partial", "a-directory", "link.save"}
    for name, info in remote.items():  # the dangling link is left out by both
        assert (info.mode, info.size, info.mtime) == (local[name].mode, local[name].size, int(local[name].mtime))
    assert stat.S_ISDIR(remote["a-directory"].mode) and stat.S_ISREG(remote["link.save"].mode)  # through links
    assert remote["-x.save"].mtime == 1_700_000_000 and remote["-x.save"].size == FILE_NAMES.index("-x.save")
    assert not (Path.cwd() / "owned").exists() and not (saves / "owned").exists()


@pytest.mark.asyncio
async def test_an_empty_or_missing_directory_lists_as_this_machine_says(host, tmp_path):
    (tmp_path / "empty").mkdir()
    assert await host.list_dir(str(tmp_path / "empty")) == {}
    with pytest.raises(FileNotFoundError):
        await host.list_dir(str(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        await host.list_dir(str(tmp_path / "file"))


@pytest.mark.asyncio
async def test_paths_are_looked_at_in_one_round_trip_each_answer_as_os_stat_gives_it(host, tmp_path):
    from xentui.backends.host import LocalHost

    paths = []
    for name in FILE_NAMES:
        (tmp_path / name).write_text(name)
        paths.append(str(tmp_path / name))
    (tmp_path / "link").symlink_to(tmp_path / FILE_NAMES[0])
    os.mkfifo(tmp_path / "fifo")
    paths += [str(tmp_path / "link"), str(tmp_path / "fifo"), str(tmp_path / "missing"),
              str(tmp_path / FILE_NAMES[0] / "under-a-file"), "/dev/null", str(tmp_path)]
    for follow in (False, True):
        before = calls_made(tmp_path)
        remote = await host.stat(paths, follow_links=follow)
        assert calls_made(tmp_path) == before + 1
        local = await LocalHost().stat(paths, follow_links=follow)
        assert remote.keys() == set(paths)
        for path in paths:
            if isinstance(local[path], OSError):
                assert type(remote[path]) is type(local[path]) and remote[path].errno == local[path].errno, path
            else:
                assert remote[path][:2] == local[path][:2], path
    assert isinstance((await host.stat([str(tmp_path / "missing")]))[str(tmp_path / "missing")], FileNotFoundError)
    assert stat.S_ISLNK((await host.stat([str(tmp_path / "link")]))[str(tmp_path / "link")].mode)
    assert await host.stat([]) == {}


@pytest.mark.asyncio
async def test_directories_are_made_files_renamed_and_removed_with_every_name_whole(host, tmp_path):
    for name in FILE_NAMES:
        made = tmp_path / "made" / name / "saves"
        await host.make_dirs(str(made))
        await host.make_dirs(str(made))  # there already: nothing
        assert made.is_dir()
        (made / "partial").write_text(name)
        (made / name).write_text("the old image")
        await host.rename(str(made / "partial"), str(made / name))  # over the old one, in one step
        assert (made / name).read_text() == name and not (made / "partial").exists()
        await host.remove(str(made / name))
        await host.remove(str(made / name))  # gone already: nothing
        assert not (made / name).exists()
    assert sorted(p.name for p in (tmp_path / "made").iterdir()) == sorted(FILE_NAMES)
    assert not (Path.cwd() / "owned").exists()


@pytest.mark.asyncio
async def test_what_the_file_tools_refuse_comes_back_as_the_local_oserror(host, tmp_path):
    (tmp_path / "a-file").write_text("in the way")
    with pytest.raises(FileExistsError, match="File exists"):
        await host.make_dirs(str(tmp_path / "a-file"))
    with pytest.raises(NotADirectoryError):
        await host.make_dirs(str(tmp_path / "a-file" / "below"))
    with pytest.raises(FileNotFoundError):
        await host.rename(str(tmp_path / "missing"), str(tmp_path / "target"))
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-directory" / "inside").write_text("x")
    with pytest.raises(OSError):  # rm -f refuses a directory, as os.unlink does
        await host.remove(str(tmp_path / "a-directory"))
    assert (tmp_path / "a-directory" / "inside").exists()


@pytest.mark.asyncio
async def test_the_file_calls_of_an_unreachable_host_say_so_with_ssh_words(tmp_path):
    ssh = tmp_path / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(ssh.stat().st_mode | stat.S_IEXEC)
    unreachable = SshHost("unreachable", ssh=str(ssh), control_dir=tmp_path / "c")
    for call in (unreachable.list_dir("/tmp"), unreachable.stat(["/tmp"]), unreachable.make_dirs("/tmp/x"),
                 unreachable.rename("/tmp/a", "/tmp/b"), unreachable.remove("/tmp/a")):
        with pytest.raises(BackendUnavailable, match=r"cannot reach unreachable with ssh: .*Connection refused"):
            await call
