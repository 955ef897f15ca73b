"""Where a save may write: checked before the guest stops; written beside and renamed over only after success.

Against the simulated host and libvirt's own test driver (the real libvirt library writing the image); the xl
backend's half is proven in the Xen lab (tests/xenlab/test_xl_backend_lab.py::test_save_keep_running).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from xentui.backends.savefile import check_save_path, is_partial, partial_path
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.errors import BackendError, InvalidArgument


@pytest.fixture
def sim():
    return SimBackend(SimCluster(seed=7, domains=12, clock=ManualClock()))


def hostile_targets(tmp_path: Path) -> list[tuple[Path, str]]:
    """Paths that are there but are no image: each with the words the refusal must use."""
    device = tmp_path / "null-device"
    os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    fifo = tmp_path / "a-fifo"
    os.mkfifo(fifo)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link.save"
    link.symlink_to(victim)
    directory = tmp_path / "a-directory"
    directory.mkdir()
    return [(device, "character device"), (fifo, "FIFO"), (link, "symbolic link"), (directory, "directory")]


def test_the_checks_name_what_is_wrong(tmp_path):
    with pytest.raises(InvalidArgument, match="not an absolute path"):
        check_save_path(Path("-rf.save"), overwrite=True)
    with pytest.raises(InvalidArgument, match="NUL"):  # was a ValueError out of os.lstat, ending the app
        check_save_path(tmp_path / "a\0b.save", overwrite=True)
    with pytest.raises(InvalidArgument, match="longer than 255 bytes"):
        check_save_path(tmp_path / ("x" * 300 + ".save"), overwrite=False)
    with pytest.raises(InvalidArgument, match="does not exist"):
        check_save_path(tmp_path / "nowhere" / "x.save", overwrite=False)
    assert check_save_path(tmp_path / "new.save", overwrite=False) == tmp_path / "new.save"
    long = tmp_path / ("y" * 250)
    assert len(partial_path(long).name.encode()) <= 255 and is_partial(partial_path(long))


@pytest.mark.asyncio
async def test_sim_refuses_what_is_not_a_regular_file_even_when_told_to_overwrite(sim, tmp_path):
    for path, reason in hostile_targets(tmp_path):
        with pytest.raises(InvalidArgument, match=reason):
            await sim.save("mail-relay", path, overwrite=True)
    assert (tmp_path / "victim.txt").read_text() == "keep me"
    assert stat.S_ISCHR(os.lstat(tmp_path / "null-device").st_mode)
    assert "mail-relay" in {d.name for d in (await sim.sample()).domains}  # never stopped


@pytest.mark.asyncio
async def test_sim_overwrite_replaces_the_old_image_only_after_success(sim, tmp_path, monkeypatch):
    image = tmp_path / "mail.save"
    await sim.save("mail-relay", image, keep_running=True)
    old = image.read_bytes()

    def full_disk(self, data):  # the filesystem fills up halfway through the write
        Path.write_text(self, "half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(BackendError, match=r"No space left on device.*untouched"):
        await sim.save("mail-relay", image, keep_running=True, overwrite=True)
    assert image.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mail.save"]  # no half-written file left


NODE = Path(__file__).parent / "fixtures" / "libvirt-testnode.xml"


@pytest.fixture
def lv():
    pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh)")
    from xentui.backends.libvirt import LibvirtBackend

    return LibvirtBackend(f"test://{NODE.resolve()}")


@pytest.mark.asyncio
async def test_libvirt_never_unlinks_a_device_or_follows_a_link(lv, tmp_path):
    for path, reason in hostile_targets(tmp_path):
        with pytest.raises(InvalidArgument, match=reason):
            await lv.save("app-0005", path, overwrite=True)
    assert stat.S_ISCHR(os.lstat(tmp_path / "null-device").st_mode)  # the node is still a device
    assert (tmp_path / "victim.txt").read_text() == "keep me"
    with pytest.raises(InvalidArgument, match="not an absolute path"):
        await lv.save("app-0005", Path("-c"), overwrite=True)


@pytest.mark.asyncio
async def test_libvirt_a_failed_overwrite_keeps_the_old_image(lv, tmp_path):
    image = tmp_path / "app.save"
    await lv.save("app-0005", image, keep_running=True)
    old = image.read_bytes()
    await lv.destroy("app-0005")
    with pytest.raises(BackendError):  # libvirt refuses to save a domain that is not running
        await lv.save("app-0005", image, overwrite=True)
    assert image.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.save"]
    await lv.restore(image)
    await lv.save("app-0005", image, overwrite=True)  # and a good overwrite replaces it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.save"]


@pytest.mark.asyncio
async def test_xl_a_save_that_dies_halfway_keeps_the_old_image(tmp_path):
    """`xl save` writes beside the image and dies with ENOSPC after 1 MiB: the old image is whole, nothing is left.
    (The stand-in xl replays the lab's captures; the real one, killed by a file-size limit, is in the lab tests.)"""
    from tests.fake_xen_tools import install
    from xentui.backends.xl import XlBackend

    bin_dir = tmp_path / "bin"
    calls = install(bin_dir, {}, save_dies_after_bytes=1 << 20)
    backend = XlBackend(xl=str(bin_dir / "xl"), xentop=str(bin_dir / "xentop"), stats="xentop", delay=0.2)
    image = tmp_path / "guest1.save"
    image.write_bytes(b"Xen saved domain, xl format\n the old one")
    try:
        await backend.sample()
        with pytest.raises(BackendError, match="No space left on device"):
            await backend.save("guest1", image, keep_running=True, overwrite=True)
    finally:
        await backend.close()
    assert image.read_bytes() == b"Xen saved domain, xl format\n the old one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "guest1.save"]
    save = [line for line in calls.read_text().splitlines() if '"save"' in line]
    assert len(save) == 1 and str(tmp_path / ".guest1") in save[0]  # xl wrote beside it, never over it
