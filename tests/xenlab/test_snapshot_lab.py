"""Snapshots while paused with the xl backend on the real Xen lab: guestlv's disk is an LV (volume group xenlab on
a loop device in dom0, see dom0/init), guest1's a file. xentui runs on this machine and reaches dom0 over ssh, as
the other lab tests do; what it did is checked with ``lvs``, ``stat`` and ``xl list`` in dom0.

Each test removes the snapshots it made (tags ``lab*``). The paused times are printed (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from xentui.backends.xl import XlBackend
from xentui.backends.xl.snapshots import TAKE
from xentui.errors import BackendError, InvalidArgument
from xentui.model import DomainFlag

from .dom0_calls import xl_list
from .test_devices_lab import _until, lab_host, run

pytestmark = pytest.mark.xenlab

FILE = "/var/lib/xentui-lab/guest1-disk.img"


def lvs(xenlab) -> dict[str, dict]:
    out = xenlab.ssh(["lvs", "--reportformat", "json", "-o", "lv_name,origin,lv_size", "--units", "b",
                      "--nosuffix", "xenlab"]).stdout
    return {row["lv_name"]: row for row in json.loads(out)["report"][0]["lv"]}


def running(xenlab, name: str) -> bool:
    flags = xl_list(xenlab)[name].flags
    return DomainFlag.PAUSED not in flags and bool(flags & (DomainFlag.RUNNING | DomainFlag.BLOCKED))


@pytest.fixture(scope="module")
def guestlv(xenlab):
    xenlab.lab.create_guests(["guestlv"])
    xenlab.ssh("for lv in $(lvs --noheadings -o lv_name xenlab | grep -- '-lab'); do lvremove -f xenlab/$lv; done; "
               f"rm -f {FILE}.lab*")
    yield "guestlv"
    xenlab.ssh("for lv in $(lvs --noheadings -o lv_name xenlab | grep -- '-lab'); do lvremove -f xenlab/$lv; done; "
               f"rm -f {FILE}.lab*")
    # a fourth guest slows the lab's emulation (xentop's first iteration over ssh, in the other tests): gone after
    xenlab.ssh(["xl", "destroy", "guestlv"], check=False, timeout=120)


def test_an_lv_snapshot_while_paused_seen_with_lvs_then_removed(xenlab, guestlv):
    async def call(backend: XlBackend):
        [source] = await backend.snapshot_sources("guestlv")
        result = await backend.snapshot_create("guestlv", "lab1", cow_bytes=8 << 20)
        listed = await backend.snapshots("guestlv")
        return source, result, listed

    source, result, listed = run(xenlab, call)
    print(f"\nguestlv's source: {source}\nsnapshot: {result.taken}\npaused {result.paused_s:.2f} s")
    assert (source.kind, source.path, source.size_bytes, source.group) == (
        "lv", "/dev/xenlab/guestlv-disk", 32 << 20, "xenlab")
    assert source.group_free_bytes and source.group_free_bytes > 8 << 20
    assert [(s.name, s.path, s.origin) for s in result.taken] == [
        ("guestlv-disk-lab1", "/dev/xenlab/guestlv-disk-lab1", "xvda")]
    assert 0 < result.paused_s < 30  # lvcreate under emulation: seconds, not minutes
    seen = lvs(xenlab)
    assert seen["guestlv-disk-lab1"]["origin"] == "guestlv-disk"
    assert int(seen["guestlv-disk-lab1"]["lv_size"]) == 8 << 20
    assert running(xenlab, "guestlv")
    assert [s.name for s in listed] == ["guestlv-disk-lab1"]

    async def delete(backend: XlBackend):
        await backend.snapshot_delete("guestlv", "guestlv-disk-lab1")
        return await backend.snapshots("guestlv")

    assert run(xenlab, delete) == []
    assert "guestlv-disk-lab1" not in lvs(xenlab) and "guestlv-disk" in lvs(xenlab)


def test_refusals_change_nothing(xenlab, guestlv):
    before = lvs(xenlab)

    async def call(backend: XlBackend):
        [source] = await backend.snapshot_sources("guestlv")
        errors = []
        for tag, cow in (("lab2", (source.group_free_bytes or 0) + (4 << 20)), ("lab;reboot", 4 << 20),
                         ("$(touch /tmp/owned)", 4 << 20)):
            with pytest.raises(InvalidArgument) as error:
                await backend.snapshot_create("guestlv", tag, cow_bytes=cow)
            errors.append(str(error.value))
        with pytest.raises(InvalidArgument) as error:  # the origin itself, another guest's disk: never removed
            await backend.snapshot_delete("guestlv", "guestlv-disk")
        errors.append(str(error.value))
        return errors

    errors = run(xenlab, call)
    print("\n" + "\n".join(errors))
    assert "free" in errors[0] and "not a volume name" in errors[1] and "is not a snapshot tag" in errors[2]
    assert "has no snapshot" in errors[3]
    assert lvs(xenlab) == before
    assert xenlab.ssh("test -e /tmp/owned", check=False).returncode == 1
    assert running(xenlab, "guestlv")


class _Race:
    """The lab's host, but the snapshot's name is taken in dom0 just before the snapshot runs (someone else's
    lvcreate between xentui's check and its own): a real lvcreate failure while the guest is paused."""

    def __init__(self, inner, xenlab) -> None:
        self._inner, self._xenlab = inner, xenlab

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def run(self, argv, **kw):
        if argv[:3] == ["sh", "-c", TAKE]:
            self._xenlab.ssh(["lvcreate", "-q", "-L", "4m", "-n", "guestlv-disk-lab3", "xenlab"])
        return await self._inner.run(argv, **kw)


def test_a_failing_lvcreate_still_leaves_the_guest_running(xenlab, guestlv):
    async def main():
        backend = XlBackend(host=_Race(lab_host(xenlab), xenlab), delay=1.0)
        try:
            for attempt in range(3):
                try:
                    await backend.sample()
                    break
                except BackendError:
                    if attempt == 2:
                        raise
            with pytest.raises(BackendError) as error:
                await backend.snapshot_create("guestlv", "lab3", cow_bytes=4 << 20)
            return str(error.value)
        finally:
            await backend.close()

    message = asyncio.run(main())
    print("\n" + message)
    assert "nothing taken; not taken: xenlab/guestlv-disk-lab3" in message
    assert "already exists" in message and "runs again" in message
    assert running(xenlab, "guestlv")
    assert lvs(xenlab)["guestlv-disk-lab3"]["origin"] == ""  # the other one's LV, not a snapshot: left alone


def test_a_file_disk_copied_while_paused(xenlab, guestlv):
    async def call(backend: XlBackend):
        [source] = await backend.snapshot_sources("guest1")
        result = await backend.snapshot_create("guest1", "lab4")
        listed = await backend.snapshots("guest1")
        return source, result, listed

    source, result, listed = run(xenlab, call)
    print(f"\nguest1's source: {source}\ncopy: {result.taken}\npaused {result.paused_s:.2f} s")
    assert (source.kind, source.size_bytes, source.reflink) == ("file", 64 << 20, False)  # tmpfs: no reflink
    assert [s.path for s in result.taken] == [FILE + ".lab4"]
    assert xenlab.ssh(["stat", "-c", "%s", FILE + ".lab4"]).stdout.strip() == str(64 << 20)
    assert running(xenlab, "guest1")
    assert [s.name for s in listed] == [FILE + ".lab4"]

    async def delete(backend: XlBackend):
        await backend.snapshot_delete("guest1", FILE + ".lab4")

    run(xenlab, delete)
    assert xenlab.ssh(["test", "-e", FILE + ".lab4"], check=False).returncode == 1
    assert xenlab.ssh(["test", "-e", FILE], check=False).returncode == 0


@pytest.mark.asyncio
async def test_the_screen_takes_a_snapshot_of_guestlv(xenlab, guestlv):
    """The app on this machine (the xl backend over ssh): guestlv's row, `P`, the dialog says its disk is an LV
    and the VG's free space; tag and size typed, Take, yes; the action log says how long the guest was paused,
    lvs shows the snapshot, the guest runs."""
    from xentui.ui.app import StartOptions, XentuiApp

    backend = XlBackend(host=lab_host(xenlab), delay=2.0)
    app = XentuiApp(backend, StartOptions(delay=2.0, theme="xentui-dark"))
    async with app.run_test(size=(160, 50)) as pilot:
        await _until(pilot, "guestlv in the table", lambda: app.sample is not None and any(
            d.name == "guestlv" for d in app.sample.domains), 180)
        app.table.select(next(d for d in app.sample.domains if d.name == "guestlv").key)
        await pilot.press("P")
        screen = app.screen
        assert type(screen).__name__ == "SnapshotScreen"
        await _until(pilot, "the disks read", lambda: screen.sources is not None, 60)
        sources = str(screen.query_one("#sources").render())
        print(f"\nthe dialog's disks: {sources}")
        assert "LV," in sources and "free in xenlab" in sources and "guestlv-disk" in sources
        screen.query_one("#tag").value = "labui"
        screen.query_one("#cow").value = "8M"
        await pilot.click("#ok")
        await _until(pilot, "the question", lambda: type(app.screen).__name__ == "ConfirmScreen", 10)
        await pilot.press("y")
        await _until(pilot, "the snapshot", lambda: any(entry[2] == "snapshot" for entry in app.runner.log), 120)
        entry = next(entry for entry in app.runner.log if entry[2] == "snapshot")
        print(f"the action log: {entry}")
        assert entry[3] == "ok" and "guestlv-disk-labui" in entry[4] and "the guest was paused" in entry[4]
    await backend.close()
    assert lvs(xenlab)["guestlv-disk-labui"]["origin"] == "guestlv-disk"
    assert running(xenlab, "guestlv")
