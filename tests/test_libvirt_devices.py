"""A guest's disks and NICs, the host's bridges, and starting defined domains, on libvirt's test driver (in
process, no daemon): listing, every refusal made before anything changes, the device XML sent to libvirt
(escaped, the bus from the vdev, LIVE and CONFIG for a persistent domain), and starting a defined domain.

The test driver has no attachDeviceFlags/detachDeviceFlags: where a test needs to see what would be sent, it
records the call in place of libvirt's (the real hot-plug is proven in tests/libvirtlab/test_devices_libvirt_lab.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
import pytest_asyncio

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh)")

from xentui.backends.base import Action  # noqa: E402
from xentui.backends.devices import DiskSpec  # noqa: E402
from xentui.backends.libvirt import LibvirtBackend  # noqa: E402
from xentui.backends.libvirt import devices as libvirt_devices  # noqa: E402
from xentui.backends.libvirt_xml import (  # noqa: E402
    device_xml,
    disk_bus,
    disk_xml,
    interface_type,
    interface_xml,
    parse_domain_xml,
)
from xentui.errors import BackendError, DomainNotFound, InvalidArgument, ReadOnlyError, Unsupported  # noqa: E402

HOSTILE = "it's \"<b>\" & x"  # a domain name libvirt accepts (no '/'), every XML metacharacter in it
NS = "http://libvirt.org/schemas/domain/test/1.0"


def domain(name: str, *, state: int, disks: list[tuple[str, str, bool]] = (), nics: list[tuple[str, str]] = (),
           os_type: str = "hvm", memory_kib: int = 1048576, vcpus: tuple[int, int] = (1, 2)) -> str:
    disk_xml_ = "".join(
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file={quoteattr(path)}/>"
        f"<target dev='{vdev}' bus='virtio'/>{'<readonly/>' if ro else ''}</disk>"
        for vdev, path, ro in disks
    )
    nic_xml = "".join(
        f"<interface type='bridge'><mac address='{mac}'/><source bridge='{bridge}'/><model type='virtio'/>"
        f"</interface>"
        for mac, bridge in nics
    )
    return (f"<domain type='test' xmlns:test='{NS}'><name>{escape(name)}</name>"
            f"<memory unit='KiB'>{memory_kib}</memory><currentMemory unit='KiB'>{memory_kib // 2}</currentMemory>"
            f"<vcpu current='{vcpus[0]}'>{vcpus[1]}</vcpu><os><type>{os_type}</type></os>"
            f"<devices>{disk_xml_}{nic_xml}</devices><test:runstate>{state}</test:runstate></domain>")


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for name in ("web.img", "db.img", "shared.iso", "spare.img", "free.img", "free2.img"):
        (tmp_path / name).write_bytes(b"\0" * 512)
    return tmp_path


@pytest.fixture
def uri(images: Path) -> str:
    """A host of its own: web and db running, spare and a hostile name defined and shut off; a bridge br0 (and
    an ethernet eth9), a libvirt network lan on virbr9."""
    node = "".join([
        "<node>",
        domain("web", state=1, disks=[("vda", f"{images}/web.img", False)],
               nics=[("52:54:00:00:00:01", "br0")]),
        domain("db", state=1, disks=[("vda", f"{images}/db.img", False), ("vdb", f"{images}/shared.iso", True)],
               nics=[("52:54:00:00:00:02", "br0")]),
        domain("spare", state=5, disks=[("vda", f"{images}/spare.img", False)],
               nics=[("52:54:00:00:00:03", "br0")], os_type="xen", memory_kib=524288, vcpus=(2, 4)),
        domain(HOSTILE, state=5),
        "<network><name>lan</name><bridge name='virbr9'/></network>",
        "<network><name>production-network-a</name><bridge name='virbr8'/></network>",
        "<network><name>br0</name><bridge name='virbr7'/></network>",  # a network named as a bridge: the bridge wins
        "<interface type='bridge' name='br0'><start mode='onboot'/><bridge stp='off'>"
        "<interface type='ethernet' name='eth0'><mac address='00:11:22:33:44:55'/></interface></bridge></interface>",
        "<pool type='dir'><name>images</name><target><path>/srv/xentui-pool</path></target>"
        "<volume type='file'><name>data.img</name><key>/srv/xentui-pool/data.img</key>"
        "<capacity unit='MiB'>16</capacity><target><path>/srv/xentui-pool/data.img</path></target></volume></pool>",
        "<interface type='ethernet' name='eth9'><start mode='onboot'/><mac address='00:11:22:33:44:56'/></interface>",
        "</node>",
    ])
    path = images / "node.xml"
    path.write_text(node)
    return f"test://{path}"


@pytest_asyncio.fixture
async def backend(uri: str):
    backend = LibvirtBackend(uri)
    yield backend
    await backend.close()


class Recorded:
    """Stands in for virDomain.attachDeviceFlags / detachDeviceFlags, which the test driver lacks."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, int]] = []

    def attach(self):
        def call(dom, xml: str, flags: int = 0) -> int:
            self.calls.append(("attach", dom.name(), xml, flags))
            return 0

        return call

    def detach(self):
        def call(dom, xml: str, flags: int = 0) -> int:
            self.calls.append(("detach", dom.name(), xml, flags))
            return 0

        return call


@pytest.fixture
def recorded(monkeypatch) -> Recorded:
    record = Recorded()
    monkeypatch.setattr(libvirt.virDomain, "attachDeviceFlags", record.attach())
    monkeypatch.setattr(libvirt.virDomain, "detachDeviceFlags", record.detach())
    return record


LIVE_AND_CONFIG = 1 | 2  # VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG


# --- the device XML, pure -----------------------------------------------------------------------


def test_the_bus_follows_the_vdev():
    assert [disk_bus(v) for v in ("vdb", "sdc", "hdd", "xvdb")] == ["virtio", "scsi", "ide", "xen"]


def test_disk_xml_escapes_a_hostile_path_and_says_what_it_is():
    path = "/srv/it's \"<b>\" & x.img"
    xml = disk_xml(path, "vdb", block=False, readonly=True, fmt="vhd")
    node = ET.fromstring(xml)
    assert node.get("type") == "file" and node.find("source").get("file") == path
    assert node.find("target").attrib == {"dev": "vdb", "bus": "virtio"}
    assert node.find("driver").attrib == {"name": "qemu", "type": "vpc"}  # libvirt's name for vhd
    assert node.find("readonly") is not None
    block = ET.fromstring(disk_xml("/dev/vg0/data", "xvdb", block=True, driver=None))
    assert block.get("type") == "block" and block.find("source").attrib == {"dev": "/dev/vg0/data"}
    assert block.find("driver").attrib == {"type": "raw"} and block.find("target").get("bus") == "xen"
    assert block.find("readonly") is None
    parsed = parse_domain_xml(f"<domain><devices>{xml}</devices></domain>").disks[0]
    assert (parsed.path, parsed.readonly, parsed.format, parsed.driver) == (path, True, "vpc", "qemu")


def test_interface_xml_and_finding_a_device_to_detach():
    xml = interface_xml("bridge", "br0'/><evil a='", mac="52:54:00:aa:bb:cc", model="virtio")
    node = ET.fromstring(xml)
    assert node.find("source").attrib == {"bridge": "br0'/><evil a='"} and node.find("evil") is None
    assert ET.fromstring(interface_xml("network", "lan")).find("source").attrib == {"network": "lan"}
    with pytest.raises(ValueError):
        interface_xml("direct", "eth0")
    domain_xml = f"<domain><devices>{disk_xml('/a.img', 'vdb', block=False)}{xml}</devices></domain>"
    assert ET.fromstring(device_xml(domain_xml, "interface", "52:54:00:AA:BB:CC")).find("mac") is not None
    assert ET.fromstring(device_xml(domain_xml, "disk", "vdb")).find("source").get("file") == "/a.img"
    assert device_xml(domain_xml, "disk", "vdc") is None
    assert interface_type("<interface type='bridge' name='br0'/>") == "bridge" and interface_type("<x") == ""
    parsed = parse_domain_xml(domain_xml).interfaces[0]
    assert (parsed.kind, parsed.model, parsed.mac) == ("bridge", "virtio", "52:54:00:aa:bb:cc")


# --- listing ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_disks_nics_and_bridges(backend, images):
    disks = await backend.disks("db")
    assert [(d.vdev, d.path, d.mode, d.format, d.backend, d.cdrom) for d in disks] == [
        ("vda", f"{images}/db.img", "rw", "raw", "qemu", False),
        ("vdb", f"{images}/shared.iso", "ro", "raw", "qemu", False),
    ]
    nics = await backend.nics("web")
    assert [(n.devid, n.mac, n.bridge, n.backend, n.model) for n in nics] == [
        (0, "52:54:00:00:00:01", "br0", "bridge", "virtio")
    ]
    # the host's bridges (not its ethernet eth9), a network's bridge, then the libvirt networks by name
    assert await backend.bridges() == ["br0", "virbr7", "virbr8", "virbr9", "lan", "production-network-a"]
    with pytest.raises(DomainNotFound):
        await backend.disks("nobody")


@pytest.mark.asyncio
async def test_guest_configs_are_the_defined_domains_not_running(backend, images):
    configs = await backend.guest_configs()
    assert [c.ref for c in configs] == [HOSTILE, "spare"]  # web and db run: not listed
    spare = configs[1]
    assert (spare.name, spare.type, spare.memory_kib, spare.maxmem_kib, spare.vcpus, spare.running) == (
        "spare", "pv (test)", 262144, 524288, 2, False)
    assert spare.disks == (f"vda: {images}/spare.img (raw, rw)",)
    assert spare.nics == ("52:54:00:00:00:03 bridge br0 virtio",)
    assert spare.extra["max vcpus"] == "4" and spare.extra["autostart"] == "no"
    assert configs[0].label == HOSTILE and configs[0].disks == () and configs[0].problem is None


@pytest.mark.asyncio
async def test_create_starts_a_defined_domain(backend):
    # the test driver cannot start a domain paused: libvirt's own refusal, with its words, nothing started
    with pytest.raises(InvalidArgument, match="start spare refused: unsupported flags"):
        await backend.create("spare", paused=True)
    assert "spare" in [c.ref for c in await backend.guest_configs()]
    assert await backend.create(" spare ") == "spare"
    found = {d.name: d for d in (await backend.sample()).domains}
    assert found["spare"].state.value == "running"
    with pytest.raises(InvalidArgument, match="spare is already running"):
        await backend.create("spare")
    assert await backend.create(HOSTILE) == HOSTILE  # a name full of XML's characters: never put in XML
    assert [c.ref for c in await backend.guest_configs()] == []
    with pytest.raises(DomainNotFound):
        await backend.create("nobody")


# --- refusals before anything changes ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_disk_refusals(backend, images, recorded):
    refusals = [
        (DiskSpec(f"{images}/missing.img", "vdb"), "does not exist on this host"),
        (DiskSpec(f"{images}/free.img", "vda"), r"vda is taken on web \(it holds .*web.img\): choose a free one "
                                                r"\(vdb, vdc, vdd\)"),
        (DiskSpec(f"{images}/web.img", "vdb"), "is already web's vda"),
        (DiskSpec(f"{images}/db.img", "vdb"), "attached read-write to db \\(vda\\)"),
        (DiskSpec(f"{images}/shared.iso", "vdb"), "attached to db \\(vdb\\), read-only: attach it read-only here"),
        (DiskSpec(f"{images}/free.img", "vdb1"), "not a disk name"),
        (DiskSpec(f"{images}/free.img", "vdb", format="vmdk"), "not a disk format"),
        (DiskSpec("free.img", "vdb"), "not an absolute path"),
        (DiskSpec(f"{images}/free\n.img", "vdb"), "control characters"),
        (DiskSpec(str(images), "vdb"), "neither a file nor a block device"),
    ]
    for spec, message in refusals:
        with pytest.raises(InvalidArgument, match=message):
            await backend.disk_attach("web", spec)
    with pytest.raises(InvalidArgument, match="spare is not running"):
        await backend.disk_attach("spare", DiskSpec(f"{images}/free.img", "vdb"))
    with pytest.raises(InvalidArgument, match="web has no disk 'vdq' \\(its disks: vda\\)"):
        await backend.disk_detach("web", "vdq")
    assert recorded.calls == []  # nothing reached libvirt
    # read-only shared with another guest read-only: allowed
    await backend.disk_attach("web", DiskSpec(f"{images}/shared.iso", "vdc", readonly=True))
    assert len(recorded.calls) == 1


@pytest.mark.asyncio
async def test_nic_refusals(backend, recorded):
    refusals = [
        ("br9", None, r"there is no bridge 'br9' on this host "
                      r"\(its bridges: br0, virbr7, virbr8, virbr9, lan, production-network-a\)"),
        ("eth9", None, "there is no bridge 'eth9'"),  # an interface, not a bridge
        ("br0", "52:54:00:00:00:0g", "not a MAC address"),
        ("br0", "52-54-00-00-00-09", "not a MAC address"),
        ("br0", "03:00:00:00:00:01", "multicast"),
        ("br0", "00:00:00:00:00:00", "not a usable MAC"),
        ("br0", "52:54:00:00:00:02", "already the MAC of a NIC of db"),
        ("br0", "52:54:00:00:00:03", "already the MAC of a NIC of spare"),  # a stopped guest's counts too
        ("br0'/><x a='", None, "not a bridge name"),
        ("production-network-b", None, "not a bridge name"),  # too long for an interface, and no such network
    ]
    for bridge, mac, message in refusals:
        with pytest.raises(InvalidArgument, match=message):
            await backend.nic_attach("web", bridge, mac)
    with pytest.raises(InvalidArgument, match="spare is not running"):
        await backend.nic_attach("spare", "br0")
    with pytest.raises(InvalidArgument, match="web has no NIC '1'"):
        await backend.nic_detach("web", "1")
    assert recorded.calls == []


# --- what reaches libvirt -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_disk_attach_sends_escaped_xml_live_and_config(backend, images, recorded):
    path = images / "it's \"<b>\" & x.img"
    path.write_bytes(b"\0" * 512)
    await backend.disk_attach("web", DiskSpec(f"  {path}  ", " vdb ", readonly=False, format="qcow2"))
    (kind, name, xml, flags), = recorded.calls
    node = ET.fromstring(xml)
    assert (kind, name, flags) == ("attach", "web", LIVE_AND_CONFIG)  # persistent: it survives a restart
    assert node.find("source").get("file") == str(path) and node.find("target").attrib == {
        "dev": "vdb", "bus": "virtio"}
    assert node.find("driver").attrib == {"type": "qcow2"}  # no driver name: the test driver is not QEMU


@pytest.mark.asyncio
async def test_nic_attach_on_a_bridge_or_a_network(backend, recorded):
    await backend.nic_attach("web", "br0", "52:54:00:AB:CD:EF")
    await backend.nic_attach("web", "lan")
    await backend.nic_attach("web", "virbr9", "")
    await backend.nic_attach("web", "production-network-a")  # a network's name may be longer than 15
    (_, _, bridge_xml, flags), (_, _, network_xml, _), (_, _, virbr_xml, _), (_, _, long_xml, _) = recorded.calls
    assert flags == LIVE_AND_CONFIG
    bridge = ET.fromstring(bridge_xml)
    assert bridge.get("type") == "bridge" and bridge.find("source").attrib == {"bridge": "br0"}
    assert bridge.find("mac").get("address") == "52:54:00:ab:cd:ef"
    network = ET.fromstring(network_xml)
    assert network.get("type") == "network" and network.find("source").attrib == {"network": "lan"}
    assert network.find("mac") is None  # libvirt makes one
    assert ET.fromstring(virbr_xml).find("source").attrib == {"bridge": "virbr9"}
    assert ET.fromstring(long_xml).find("source").attrib == {"network": "production-network-a"}


@pytest.mark.asyncio
async def test_a_detach_the_guest_does_not_acknowledge_is_said(backend, recorded, monkeypatch):
    """The recorded detach changes nothing, as a guest that ignores the unplug: after the wait, the operator
    is told the guest still holds it."""
    monkeypatch.setattr(libvirt_devices, "_DETACH_WAIT_S", 0.3)
    with pytest.raises(BackendError, match="still has it after 0s"):
        await backend.disk_detach("db", "vdb")
    (kind, name, xml, flags), = recorded.calls
    assert (kind, name, flags) == ("detach", "db", LIVE_AND_CONFIG)
    assert ET.fromstring(xml).find("target").get("dev") == "vdb"  # the element as the domain has it
    recorded.calls.clear()
    with pytest.raises(BackendError, match="still has it"):
        await backend.nic_detach("web", "52:54:00:00:00:01")
    assert ET.fromstring(recorded.calls[0][2]).find("mac").get("address") == "52:54:00:00:00:01"
    with pytest.raises(BackendError, match="still has it"):
        await backend.nic_detach("web", "0")  # by devid


@pytest.mark.asyncio
async def test_the_test_driver_cannot_hot_plug_and_that_is_learnt(backend, images):
    assert backend.capabilities.supports(Action.DISK_ATTACH)
    with pytest.raises(Unsupported, match="virDomainAttachDeviceFlags"):
        await backend.disk_attach("web", DiskSpec(f"{images}/free.img", "vdb"))
    assert "virDomainAttachDeviceFlags" in backend.capabilities.why_not(Action.DISK_ATTACH)
    with pytest.raises(Unsupported, match="virDomainAttachDeviceFlags"):  # refused at once now
        await backend.disk_attach("web", DiskSpec(f"{images}/free2.img", "vdc"))


@pytest.mark.asyncio
async def test_a_remote_hosts_paths_are_asked_of_its_storage_pools(backend, recorded):
    """A remote URI: this machine's files say nothing about that host's. A path in a pool's directory is what the
    pool has (refreshed first); a path in no pool's directory is left to libvirtd."""
    await backend.disks("web")  # connected
    backend._current.local = False  # the test driver's host, as a remote one
    with pytest.raises(InvalidArgument, match=r"/srv/xentui-pool/none.img does not exist on .*: libvirt's storage "
                                              r"pool 'images' of /srv/xentui-pool has no such volume"):
        await backend.disk_attach("web", DiskSpec("/srv/xentui-pool/none.img", "vdb"))
    assert recorded.calls == []
    await backend.disk_attach("web", DiskSpec("/srv/xentui-pool/data.img", "vdb"))
    await backend.disk_attach("web", DiskSpec("/elsewhere/x.img", "vdc"))
    await backend.disk_attach("web", DiskSpec("/dev/vg0/data", "vdd"))
    kinds = [(ET.fromstring(xml).get("type"), ET.fromstring(xml).find("source").attrib) for _, _, xml, _ in
             recorded.calls]
    assert kinds == [("file", {"file": "/srv/xentui-pool/data.img"}), ("file", {"file": "/elsewhere/x.img"}),
                     ("block", {"dev": "/dev/vg0/data"})]


@pytest.mark.asyncio
async def test_on_qemu_the_driver_is_named_and_buses_it_cannot_hot_plug_are_refused(backend, images, recorded):
    await backend.disks("web")  # connected
    backend._current.driver = "QEMU"  # the test driver's host, as a remote QEMU one (its bridges from libvirt)
    backend._current.local = False
    with pytest.raises(InvalidArgument, match=r"hdb: QEMU cannot hot-plug an IDE disk .*name it vd\* \(virtio, "
                                              r"e.g. vdb\) or sd\* \(SCSI\)"):
        await backend.disk_attach("web", DiskSpec(f"{images}/free.img", "hdb"))
    with pytest.raises(InvalidArgument, match=r"xvdb: xvd\* is a Xen PV disk, and this is a QEMU host"):
        await backend.disk_attach("web", DiskSpec(f"{images}/free.img", "xvdb"))
    assert recorded.calls == []
    await backend.disk_attach("web", DiskSpec(f"{images}/free.img", "sdb"))
    await backend.nic_attach("web", "br0")
    disk, nic = (ET.fromstring(xml) for _, _, xml, _ in recorded.calls)
    assert disk.find("driver").attrib == {"name": "qemu", "type": "raw"} and disk.find("target").get("bus") == "scsi"
    assert nic.find("model").get("type") == "virtio"


# --- the driver's own snapshots ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_snapshots_made_listed_and_deleted(backend):
    assert await backend.snapshots("web") == []
    first = await backend.snapshot_create("web", " first ")
    assert [s.name for s in first.taken] == ["first"] and first.paused_s >= 0
    assert [s.name for s in (await backend.snapshot_create("web", HOSTILE)).taken] == [HOSTILE]  # escaped in XML
    assert sorted(s.name for s in await backend.snapshots("web")) == sorted(["first", HOSTILE])
    for bad in ("", "a/b", "a\nb"):
        with pytest.raises(InvalidArgument, match="not a snapshot name"):
            await backend.snapshot_create("web", bad)
    with pytest.raises(InvalidArgument, match="web has no snapshot 'nope'"):
        await backend.snapshot_delete("web", "nope")
    await backend.snapshot_delete("web", HOSTILE)
    assert [s.name for s in await backend.snapshots("web")] == ["first"]


# --- capabilities and read-only -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_new_actions_are_offered_and_a_read_only_connection_refuses_them(uri, images):
    new = (Action.CREATE, Action.DISK_ATTACH, Action.DISK_DETACH, Action.NIC_ATTACH, Action.NIC_DETACH)
    writable = LibvirtBackend(uri)
    try:
        assert all(writable.capabilities.supports(action) for action in new)
    finally:
        await writable.close()
    backend = LibvirtBackend(uri, read_only=True)
    try:
        assert all("read-only" in backend.capabilities.why_not(action) for action in new)
        assert [d.vdev for d in await backend.disks("web")] == ["vda"]  # listing still works
        assert len(await backend.nics("web")) == 1 and len(await backend.guest_configs()) == 2
        for call in (backend.create("spare"), backend.disk_attach("web", DiskSpec(f"{images}/free.img", "vdb")),
                     backend.disk_detach("web", "vda"), backend.nic_attach("web", "br0"),
                     backend.nic_detach("web", "0"), backend.snapshot_create("web", "s"),
                     backend.snapshot_delete("web", "s")):
            with pytest.raises(ReadOnlyError, match="read-only"):
                await call
    finally:
        await backend.close()
