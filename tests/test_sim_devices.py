"""Disks, NICs and create on the simulator: xl's semantics and refusals, and the guest sees what changed."""

from __future__ import annotations

import pytest

from xentui.backends.base import DiskSpec, InvalidArgument, ReadOnlyError
from xentui.backends.readonly import ReadOnlyBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.backends.sim.devices import SPARE_DISKS
from xentui.backends.sim_shell import SimShell
from xentui.clock import ManualClock

pytestmark = pytest.mark.asyncio


@pytest.fixture
def sim() -> SimBackend:
    return SimBackend(SimCluster(seed=7, domains=12, clock=ManualClock()))


def partitions(sim: SimBackend, name: str) -> list[str]:
    shell = SimShell(sim.host.domains[name], sim.clock)
    return [line.split()[-1] for line in shell.run("cat /proc/partitions").decode().splitlines()[2:]]


async def domain_of(sim: SimBackend, name: str):
    return next(d for d in (await sim.sample()).domains if d.name == name)


async def test_a_disk_attached_is_listed_sampled_and_seen_in_the_guest_then_detached(sim):
    assert [d.vdev for d in await sim.disks("mail-relay")] == ["xvda"]
    await sim.disk_attach("mail-relay", DiskSpec(SPARE_DISKS[0], "xvdb", readonly=True))
    disks = await sim.disks("mail-relay")
    assert [(d.vdev, d.path, d.mode) for d in disks] == [
        ("xvda", "/srv/shared/images/mail-relay-xvda.img", "rw"), ("xvdb", SPARE_DISKS[0], "ro")]
    assert [v.device for v in (await domain_of(sim, "mail-relay")).vbds] == ["xvda", "xvdb"]
    assert partitions(sim, "mail-relay") == ["xvda", "xvdb"]
    assert any("blkfront: xvdb" in line for line in sim.host.domains["mail-relay"].kernel_log)
    await sim.disk_detach("mail-relay", "xvdb")
    assert [d.vdev for d in await sim.disks("mail-relay")] == ["xvda"]
    assert [v.device for v in (await domain_of(sim, "mail-relay")).vbds] == ["xvda"]
    assert partitions(sim, "mail-relay") == ["xvda"]


@pytest.mark.parametrize(("spec", "message"), [
    (DiskSpec("/var/lib/xen/images/nope.img", "xvdb"), "does not exist on"),
    (DiskSpec(SPARE_DISKS[0], "xvda"), "xvda is taken on mail-relay"),
    (DiskSpec("/srv/shared/images/db-primary-xvda.img", "xvdb"), r"attached read-write to db-primary \(xvda\)"),
    (DiskSpec("/srv/shared/images/db-primary-xvda.img", "xvdb", readonly=True),
     "attached read-write to db-primary"),
    (DiskSpec(SPARE_DISKS[0], "xvdb1"), "is not a disk name"),
    (DiskSpec(SPARE_DISKS[0], "xvdb", format="vmdk"), "is not a disk format"),
    (DiskSpec("relative.img", "xvdb"), "not an absolute path"),
    (DiskSpec("/var/lib/x\nen.img", "xvdb"), "control characters"),
])
async def test_a_disk_the_guest_cannot_take_is_refused_and_nothing_changes(sim, spec, message):
    before = await sim.disks("mail-relay")
    with pytest.raises(InvalidArgument, match=message):
        await sim.disk_attach("mail-relay", spec)
    assert await sim.disks("mail-relay") == before
    assert partitions(sim, "mail-relay") == ["xvda"]


async def test_a_disk_read_only_on_one_guest_may_be_read_only_on_another_but_not_written(sim):
    await sim.disk_attach("mail-relay", DiskSpec(SPARE_DISKS[1], "xvdb", readonly=True))
    with pytest.raises(InvalidArgument, match="attach it read-only here too"):
        await sim.disk_attach("web-frontend-01", DiskSpec(SPARE_DISKS[1], "xvdb"))
    await sim.disk_attach("web-frontend-01", DiskSpec(SPARE_DISKS[1], "xvdb", readonly=True))
    assert [d.vdev for d in await sim.disks("web-frontend-01")] == ["xvda", "xvdb"]


async def test_detaching_a_disk_the_guest_does_not_have_says_which_it_has(sim):
    with pytest.raises(InvalidArgument, match=r"mail-relay has no disk 'xvdq' \(its disks: xvda\)"):
        await sim.disk_detach("mail-relay", "xvdq")


async def test_a_nic_attached_to_a_bridge_is_sampled_and_seen_in_the_guest_then_detached(sim):
    assert await sim.bridges() == ["xenbr0", "xenbr1"]
    await sim.nic_attach("mail-relay", "xenbr1", "00:16:3e:00:00:42")
    nics = await sim.nics("mail-relay")
    assert [(n.devid, n.mac, n.bridge) for n in nics][1] == (1, "00:16:3e:00:00:42", "xenbr1")
    dom = await domain_of(sim, "mail-relay")
    assert [v.mac for v in dom.vifs][1] == "00:16:3e:00:00:42"
    shell = SimShell(sim.host.domains["mail-relay"], sim.clock)
    assert "eth1:" in shell.run("cat /proc/net/dev").decode()
    await sim.nic_attach("mail-relay", "xenbr0")  # a MAC is made, Xen's prefix
    made = (await sim.nics("mail-relay"))[2]
    assert made.mac.startswith("00:16:3e:") and made.devid == 2
    await sim.nic_detach("mail-relay", "00:16:3E:00:00:42")  # by MAC, any case, as xl takes it
    await sim.nic_detach("mail-relay", "2")  # by devid
    assert [n.devid for n in await sim.nics("mail-relay")] == [0]


@pytest.mark.parametrize(("bridge", "mac", "message"), [
    ("xenbr9", None, r"no bridge 'xenbr9' on this host \(its bridges: xenbr0, xenbr1\)"),
    ("br0; rm -rf /", None, "is not a bridge name"),
    ("xenbr0", "00:16:3e:12:34", "is not a MAC address"),
    ("xenbr0", "01:16:3e:12:34:56", "multicast"),
    ("xenbr0", "00:00:00:00:00:00", "not a usable MAC"),
    ("xenbr0", "00:16:3e:46:dc:8e", "already the MAC of a NIC of mail-relay"),
])
async def test_a_nic_that_cannot_be_is_refused_and_nothing_changes(sim, bridge, mac, message):
    before = await sim.nics("web-frontend-01")
    with pytest.raises(InvalidArgument, match=message):
        await sim.nic_attach("web-frontend-01", bridge, mac)
    assert await sim.nics("web-frontend-01") == before


async def test_configs_say_what_each_would_start_and_create_starts_one(sim):
    configs = {c.ref: c for c in await sim.guest_configs()}
    standby = configs["/etc/xen/web-standby.cfg"]
    assert (standby.name, standby.type, standby.memory_kib, standby.running) == ("web-standby", "pvh", 1048576, False)
    assert configs["/etc/xen/mail-relay.cfg"].running
    assert configs["/etc/xen/broken.cfg"].problem and configs["/etc/xen/broken.cfg"].name is None
    assert await sim.create("/etc/xen/web-standby.cfg", paused=True) == "web-standby"
    dom = await domain_of(sim, "web-standby")
    assert dom.state.value == "paused" and [v.path for v in dom.vbds] == ["/srv/shared/images/web-standby-xvda.img"]
    assert {c.ref: c for c in await sim.guest_configs()}["/etc/xen/web-standby.cfg"].running


@pytest.mark.parametrize(("ref", "message"), [
    ("/etc/xen/broken.cfg", "syntax error"),
    ("/etc/xen/mail-relay.cfg", "already exists"),
    ("/etc/xen/nope.cfg", "does not exist"),
    ("etc/xen/web-standby.cfg", "not an absolute path"),
])
async def test_a_config_xl_would_refuse_starts_nothing(sim, ref, message):
    before = set(sim.host.domains)
    with pytest.raises(InvalidArgument, match=message):
        await sim.create(ref)
    assert set(sim.host.domains) == before


async def test_read_only_lists_devices_and_configs_and_refuses_every_change(sim):
    gate = ReadOnlyBackend(sim)
    assert [d.vdev for d in await gate.disks("mail-relay")] == ["xvda"]
    assert len(await gate.nics("mail-relay")) == 1 and await gate.guest_configs()
    for call in (gate.disk_attach("mail-relay", DiskSpec(SPARE_DISKS[0], "xvdb")),
                 gate.disk_detach("mail-relay", "xvda"), gate.nic_attach("mail-relay", "xenbr0"),
                 gate.nic_detach("mail-relay", "0"), gate.create("/etc/xen/web-standby.cfg")):
        with pytest.raises(ReadOnlyError, match="--read-only"):
            await call
    assert [d.vdev for d in await sim.disks("mail-relay")] == ["xvda"] and "web-standby" not in sim.host.domains


async def test_a_snapshot_pauses_the_guest_takes_each_disk_and_unpauses_it(sim):
    sources = await sim.snapshot_sources("db-primary")
    assert [(s.vdev, s.kind, s.reflink) for s in sources] == [("xvda", "file", True), ("xvdb", "file", True)]
    result = await sim.snapshot_create("web-frontend-01", "pre-upgrade", cow_bytes=2 << 30)
    assert [(s.name, s.origin, s.path) for s in result.taken] == [
        ("web-frontend-01-xvda-pre-upgrade", "xvda", "/dev/vg0/web-frontend-01-xvda-pre-upgrade")]
    assert 0 < result.paused_s < 1 and not sim.host.domains["web-frontend-01"].paused
    assert [s.name for s in await sim.snapshots("web-frontend-01")] == ["web-frontend-01-xvda-pre-upgrade"]
    free = (await sim.snapshot_sources("web-frontend-01"))[0].group_free_bytes
    assert free == (24 << 30) - (2 << 30)  # the copy-on-write space is vg0's
    await sim.snapshot_delete("web-frontend-01", "web-frontend-01-xvda-pre-upgrade")
    assert await sim.snapshots("web-frontend-01") == []


async def test_a_guest_paused_before_its_snapshot_stays_paused(sim):
    sim.host.domains["backup-old"].paused = True
    result = await sim.snapshot_create("backup-old", "nightly")
    assert result.taken and sim.host.domains["backup-old"].paused


@pytest.mark.parametrize(("tag", "cow", "message"), [
    ("pre; reboot", 1 << 30, "not a volume name"), ("a/b", 1 << 30, "not a snapshot tag"),
    ("snap", 30 << 30, r"need 30G of copy-on-write space in vg0, which has 24G free"),
    ("snap", 0, "more than zero"),
    ("", 1 << 30, "not a snapshot tag"),
])
async def test_a_snapshot_that_cannot_be_taken_is_refused_before_the_guest_pauses(sim, tag, cow, message):
    dom = sim.host.domains["web-frontend-01"]
    paused = []
    dom_class_setattr = type(dom).__setattr__

    def watch(self, name, value):
        if self is dom and name == "paused" and value:
            paused.append(True)
        dom_class_setattr(self, name, value)

    type(dom).__setattr__ = watch
    try:
        with pytest.raises(InvalidArgument, match=message):
            await sim.snapshot_create("web-frontend-01", tag, cow_bytes=cow)
    finally:
        type(dom).__setattr__ = dom_class_setattr
    assert paused == [] and await sim.snapshots("web-frontend-01") == []


async def test_a_snapshot_that_fails_half_way_still_unpauses_the_guest(sim, monkeypatch):
    from xentui.backends.base import BackendError

    async def broken(seconds):
        raise BackendError("lvcreate: Insufficient free space")

    monkeypatch.setattr(sim.clock, "sleep", broken)
    with pytest.raises(BackendError, match=r"Insufficient free space \(the guest was paused .* and runs again\)"):
        await sim.snapshot_create("web-frontend-01", "snap")
    assert not sim.host.domains["web-frontend-01"].paused


async def test_a_snapshot_tag_used_already_is_refused(sim):
    await sim.snapshot_create("web-frontend-01", "a")
    with pytest.raises(InvalidArgument, match="exists already"):
        await sim.snapshot_create("web-frontend-01", "a")
