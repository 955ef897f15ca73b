"""The xl backend's snapshots while paused (LVM, file copies) and its refusal on a xapi-managed host, through a
recorded host seam. The survey outputs are what the Xen lab's dom0 printed (tests/fixtures/xenlab-snapshot-survey-*:
`SURVEY` run there over ssh, lvm2 2.03.16; see their first line); the calls checked are the argument lists dom0
gets, and the refusals that come before any of them (before the guest is paused)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from xentui.backends.base import Action
from xentui.backends.devices import AttachedDisk, DiskSpec
from xentui.backends.host import HostAccess
from xentui.backends.xl import XAPI_REASON, XlBackend
from xentui.backends.xl.snapshots import SURVEY, TAKE, parse_survey, sources_from
from xentui.backends.xl_tool import ToolResult
from xentui.errors import BackendError, InvalidArgument, Unsupported
from xentui.model import DomainFlag

FIXTURES = Path(__file__).parent / "fixtures"
XL = "/nowhere/xl"
LV = "/dev/xenlab/guestlv-disk"
FILE = "/var/lib/xentui-lab/guest1-disk.img"


def survey_text(name: str) -> str:
    raw = (FIXTURES / f"xenlab-snapshot-survey-{name}.txt").read_bytes().decode()
    return raw.split("\n", 1)[1]  # the first line says where it was captured


class Recorded(HostAccess):
    """Answers each command from ``answers`` (by the first word that is not ``sh -c``'s script), records it."""

    name = "dom0"
    local = False

    def __init__(self, answers: dict[str, list[ToolResult]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []
        self.removed: list[str] = []

    def has(self, program: str) -> bool:
        return True

    def key(self, argv: list[str]) -> str:
        if argv[:2] == ["sh", "-c"]:
            return {SURVEY: "survey", TAKE: "take"}.get(argv[2], "sh")
        if argv[0] == XL:
            return f"xl {argv[1]}"
        return argv[0]

    async def run(self, argv, *, what=None, limit=60.0, check=True, on_timeout=None):
        self.calls.append(list(argv))
        queue = self.answers.get(self.key(argv), [])
        result = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else ToolResult(0, "", ""))
        if check and result.returncode != 0:
            raise BackendError(f"{what}: {result.stderr.strip()}")
        return result

    async def start(self, argv, *, merge_stderr=False, hang_up=False):
        raise AssertionError("nothing long-running here")

    async def read_head(self, path, size):
        raise OSError("no")

    async def read_links(self, paths):
        return {}

    async def net_counters(self):
        return {}

    async def open_console(self, argv):
        raise AssertionError("no console here")

    async def remove(self, path: str) -> None:
        self.removed.append(path)

    def keys(self) -> list[str]:
        return [self.key(argv) for argv in self.calls]


def backend(host: Recorded, disks: list[AttachedDisk], *, paused: bool = False, managed: str | None = None):
    xl = XlBackend(xl=XL, host=host, stats="xentop")
    xl._managed = managed
    flags = DomainFlag.PAUSED if paused else DomainFlag.BLOCKED
    known = SimpleNamespace(domain=SimpleNamespace(name="guestlv", id=3, flags=flags, is_dom0=False))

    async def _known(name, **_):
        return known

    async def _disks(name):
        return disks

    xl._known = _known
    xl.disks = _disks
    return xl


LV_DISK = [AttachedDisk("xvda", LV, "phy", False, devid=51712)]
FILE_DISK = [AttachedDisk("xvda", FILE, "phy", False, devid=51712)]


def ok(text: str = "") -> ToolResult:
    return ToolResult(0, text, "")


# --- the survey -------------------------------------------------------------------------------------

def test_survey_from_the_lab_lv_by_both_names():
    survey = parse_survey(survey_text("lv"))
    assert [(lv.name, lv.origin, lv.size, lv.device) for lv in survey.lvs] == [
        ("guestlv-disk", "", 33554432, "fe:0"), ("guestlv-disk-t1", "guestlv-disk", 16777216, "fe:3")]
    assert survey.free == {"xenlab": 482344960}
    mapper = "/dev/mapper/xenlab-guestlv--disk"
    sources = sources_from([*LV_DISK, AttachedDisk("xvdb", mapper, "phy", False)], survey)
    assert [(s.vdev, s.kind, s.size_bytes, s.group, s.group_free_bytes) for s in sources] == [
        ("xvda", "lv", 33554432, "xenlab", 482344960), ("xvdb", "lv", 33554432, "xenlab", 482344960)]


def test_survey_from_the_lab_file_missing_and_read_only():
    survey = parse_survey(survey_text("file"))
    disks = [*FILE_DISK, AttachedDisk("xvdb", "/var/lib/xentui-lab/missing.img", "phy", False),
             AttachedDisk("xvdc", "/srv/x.iso", "phy", True, cdrom=True)]
    sources = sources_from(disks, survey)
    assert [(s.kind, s.size_bytes, s.reflink) for s in sources[:1]] == [("file", 67108864, False)]  # tmpfs
    assert sources[1].kind == "none" and sources[1].reason == "not found on the host"
    assert sources[2].kind == "none" and "read-only" in (sources[2].reason or "")
    assert survey.copies == {FILE + ".old": (2, 1796441425.0)}


def test_a_snapshot_lv_is_not_snapshotted_again_and_xfs_reflinks():
    survey = parse_survey(survey_text("lv"))
    snap = sources_from([AttachedDisk("xvda", "/dev/xenlab/guestlv-disk-t1", "phy", False)], survey)[0]
    assert snap.kind == "none" and "itself a snapshot" in (snap.reason or "")
    survey.paths["/srv/a.img"] = ("regular file", 10, "0:0", "xfs")
    assert sources_from([AttachedDisk("xvda", "/srv/a.img", "phy", False)], survey)[0].reflink is True


def test_listing_the_guests_snapshots():
    host = Recorded({"survey": [ok(survey_text("lv"))]})
    [snap] = asyncio.run(backend(host, LV_DISK).snapshots("guestlv"))
    assert (snap.name, snap.origin, snap.path, snap.size_bytes) == (
        "guestlv-disk-t1", "xvda", "/dev/xenlab/guestlv-disk-t1", 16777216)
    host = Recorded({"survey": [ok(survey_text("file"))]})
    [copy] = asyncio.run(backend(host, FILE_DISK).snapshots("guest1"))
    assert (copy.name, copy.origin, copy.size_bytes) == (FILE + ".old", "xvda", 2)


# --- taking one ---------------------------------------------------------------------------------------

def test_snapshot_pauses_takes_each_disk_in_one_call_and_unpauses():
    host = Recorded({"survey": [ok(survey_text("lv"))], "take": [ok("taken\txenlab/guestlv-disk-t2\n")]})
    result = asyncio.run(backend(host, LV_DISK).snapshot_create("guestlv", "t2", cow_bytes=16 << 20))
    assert host.keys() == ["survey", "xl pause", "take", "xl unpause"]
    assert host.calls[1] == [XL, "pause", "3"] and host.calls[3] == [XL, "unpause", "3"]
    assert host.calls[2][3:] == ["sh", str(16 << 20), "lv", "xenlab/guestlv-disk", "xenlab/guestlv-disk-t2"]
    assert [(s.name, s.path, s.size_bytes) for s in result.taken] == [
        ("guestlv-disk-t2", "/dev/xenlab/guestlv-disk-t2", 16 << 20)]
    assert 0 <= result.paused_s < 5


def test_a_file_disk_is_copied_next_to_itself():
    host = Recorded({"survey": [ok(survey_text("file"))], "take": [ok(f"taken\t{FILE}.t1\n")]})
    result = asyncio.run(backend(host, FILE_DISK).snapshot_create("guest1", "t1"))
    assert host.calls[2][5:] == ["file", FILE, FILE + ".t1"]
    assert [(s.name, s.size_bytes) for s in result.taken] == [(FILE + ".t1", 67108864)]


def test_a_guest_paused_before_stays_paused():
    host = Recorded({"survey": [ok(survey_text("lv"))], "take": [ok("taken\txenlab/guestlv-disk-t2\n")]})
    asyncio.run(backend(host, LV_DISK, paused=True).snapshot_create("guestlv", "t2", cow_bytes=1 << 20))
    assert host.keys() == ["survey", "take"]


@pytest.mark.parametrize(("tag", "cow", "disks", "match"), [
    ("a;reboot", 1 << 20, LV_DISK, "not a volume name"),
    ("$(id)", 1 << 20, FILE_DISK, "not a volume name"),
    ("", 1 << 20, LV_DISK, "not a snapshot tag"),
    ("t1", 1 << 20, LV_DISK, "exists already"),  # guestlv-disk-t1 is there
    ("big", 1 << 30, LV_DISK, "free"),  # 1 GiB of copy-on-write, 460 MiB free
    ("t9", 1 << 20, [AttachedDisk("xvda", "/var/lib/xentui-lab/missing.img", "phy", False)], "nothing to snapshot"),
])
def test_refusals_come_before_the_pause(tag, cow, disks, match):
    host = Recorded({"survey": [ok(survey_text("file" if disks is FILE_DISK else "lv"))]})
    with pytest.raises(InvalidArgument, match=match):
        asyncio.run(backend(host, disks).snapshot_create("guestlv", tag, cow_bytes=cow))
    assert host.keys() == ["survey"]


def test_a_copy_that_exists_is_refused():
    host = Recorded({"survey": [ok(survey_text("file"))]})
    with pytest.raises(InvalidArgument, match="exists already"):
        asyncio.run(backend(host, FILE_DISK).snapshot_create("guest1", "old"))
    assert host.keys() == ["survey"]


def test_a_failing_lvcreate_still_unpauses_and_says_what_was_not_taken():
    said = "failed\txenlab/guestlv-disk-t2\t  Logical Volume \"guestlv-disk-t2\" already exists in volume group\n"
    host = Recorded({"survey": [ok(survey_text("lv"))], "take": [ok(said)]})
    with pytest.raises(BackendError) as error:
        asyncio.run(backend(host, LV_DISK).snapshot_create("guestlv", "t2", cow_bytes=1 << 20))
    assert host.keys() == ["survey", "xl pause", "take", "xl unpause"]
    message = str(error.value)
    assert "nothing taken; not taken: xenlab/guestlv-disk-t2" in message
    assert "already exists" in message and "runs again" in message and "paused" in message


def test_a_dead_connection_while_paused_still_unpauses():
    host = Recorded({"survey": [ok(survey_text("lv"))], "take": [ToolResult(255, "", "Connection reset")]})
    with pytest.raises(BackendError):
        asyncio.run(backend(host, LV_DISK).snapshot_create("guestlv", "t2", cow_bytes=1 << 20))
    assert host.keys()[-1] == "xl unpause"


# --- removing one -------------------------------------------------------------------------------------

def test_delete_removes_only_a_snapshot_of_this_guest():
    host = Recorded({"survey": [ok(survey_text("lv"))]})
    xl = backend(host, LV_DISK)
    asyncio.run(xl.snapshot_delete("guestlv", "guestlv-disk-t1"))
    assert host.calls[-1] == ["lvremove", "-f", "xenlab/guestlv-disk-t1"]
    for name in ("guestlv-disk", "xenlab/guestlv-disk", "other-lv", "/etc/passwd"):
        host.calls.clear()
        with pytest.raises(InvalidArgument, match="has no snapshot"):
            asyncio.run(xl.snapshot_delete("guestlv", name))
        assert host.keys() == ["survey"]


def test_delete_a_copy_removes_the_file():
    host = Recorded({"survey": [ok(survey_text("file"))]})
    asyncio.run(backend(host, FILE_DISK).snapshot_delete("guest1", FILE + ".old"))
    assert host.removed == [FILE + ".old"]
    with pytest.raises(InvalidArgument):
        asyncio.run(backend(host, FILE_DISK).snapshot_delete("guest1", FILE))
    assert host.removed == [FILE + ".old"]


# --- a xapi-managed host ------------------------------------------------------------------------------

@pytest.mark.parametrize(("said", "managed"), [
    ("xentui-xapi-inventory\n", "xapi"), ("xentui-xapi-process\n", "xapi"),
    ("xentui-xapi-inventory\nxentui-xapi-process\n", "xapi"), ("", None), ("something else\n", None)])
def test_xapi_is_looked_for_once(said, managed):
    host = Recorded({"sh": [ok(said)]})
    xl = XlBackend(xl=XL, host=host, stats="xentop")
    assert asyncio.run(xl.managed_by()) == managed
    assert asyncio.run(xl.managed_by()) == managed
    assert host.keys() == ["sh"] and "/etc/xensource-inventory" in host.calls[0][2]
    unsupported = xl.capabilities.unsupported
    if managed:
        assert set(unsupported) == set(Action) - {Action.CONSOLE, Action.CONSOLE_WRITE}
        assert set(unsupported.values()) == {XAPI_REASON}
    else:
        assert unsupported == {}


def test_a_failed_look_is_not_xapi():
    host = Recorded({"sh": [ToolResult(127, "", "sh: not found")]})
    assert asyncio.run(XlBackend(xl=XL, host=host, stats="xentop").managed_by()) is None


@pytest.mark.parametrize(("call", "action"), [
    (lambda b: b.mem_set("guestlv", 1024), "mem-set"),
    (lambda b: b.pause("guestlv"), "pause"),
    (lambda b: b.destroy("guestlv"), "destroy"),
    (lambda b: b.restore(Path("/x.save")), "restore"),
    (lambda b: b.disk_attach("guestlv", DiskSpec("/x.img", "xvdb")), "attaching a disk"),
    (lambda b: b.nic_detach("guestlv", "0"), "detaching a NIC"),
    (lambda b: b.create("/etc/xen/x.cfg"), "create"),
    (lambda b: b.snapshot_create("guestlv", "t1"), "snapshot"),
    (lambda b: b.snapshot_delete("guestlv", "t1"), "snapshot"),
    (lambda b: b.set_sched("guestlv", weight=256), "scheduler change"),
])
def test_every_action_is_refused_on_a_xapi_host_before_anything_runs(call, action):
    host = Recorded({})
    xl = backend(host, LV_DISK, managed="xapi")
    with pytest.raises(Unsupported) as error:
        asyncio.run(call(xl))
    assert str(error.value) == f"{action}: {XAPI_REASON}"
    assert host.calls == []


def test_migrate_is_refused_on_a_xapi_host():
    host = Recorded({})
    xl = backend(host, LV_DISK, managed="xapi")

    async def main():
        async for _ in xl.migrate("guestlv", "other"):
            pass

    with pytest.raises(Unsupported, match="managed by xapi"):
        asyncio.run(main())
    assert host.calls == []


def test_the_header_says_who_manages_the_host():
    from xentui.model import Host, Sample
    from xentui.ui.header import HostHeader

    for managed, shown in (("xapi", True), (None, False)):
        host = Host("xcp-1", "Xen", "4.17.7", 4, 2600, 8 << 20, 4 << 20, managed_by=managed)
        header = HostHeader()
        header.show(Sample(monotonic=0.0, wall=0.0, host=host, domains=[]), {}, backend="xl", delay=3.0, view="")
        assert ("managed by xapi: read-only" in str(header.render())) is shown
