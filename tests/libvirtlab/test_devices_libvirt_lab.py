"""A running guest's disks and NICs, and starting a defined domain, on a real libvirtd with a real QEMU guest (TCG),
through `LibvirtBackend` only; each change is checked from inside the guest, on its serial console.

- a raw file with a marker in its first bytes is hot-plugged as vdb: the guest lists vdb in /proc/partitions and
  reads the marker from /dev/vdb; detached, vdb is gone from /proc/partitions;
- a NIC with a chosen MAC is hot-plugged on a bridge made for the test (xtbrN): a new interface in the guest's
  /sys/class/net has that MAC, and the host's bridge has the guest's tap; detached, both are gone;
- a domain is defined (not started), listed by `guest_configs`, started paused and then running through `create`,
  and boots; a hot-plug into it (persistent) is written to its definition too, and a detach removes it there;
- refusals made before anything changes: a missing path, a vdev taken, a path another running guest writes, a
  bridge the host does not have, a malformed MAC, a MAC in use, a defined domain libvirt cannot start.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import pytest_asyncio

from xentui.backends.devices import DiskSpec
from xentui.backends.libvirt_xml import device_xml
from xentui.errors import BackendError, InvalidArgument

from .conftest import GUEST_DIR, LAB_URI, READY, SERIAL_LOGS, Lab, LabGuest, guest_xml
from .test_libvirt_lab import eventually, run

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh)")

from xentui.backends.libvirt import LibvirtBackend  # noqa: E402

pytestmark = [pytest.mark.libvirtlab, pytest.mark.asyncio]

MARKER = b"XENTUI-DISK-4242"


@pytest_asyncio.fixture
async def backend():
    backend = LibvirtBackend(LAB_URI, backoff=(0.2, 1.0))
    yield backend
    await backend.close()


@pytest.fixture(scope="module")
def guest(lab: Lab) -> LabGuest:
    """A guest of this module's own: the shared one keeps the two NICs and one disk other tests count."""
    return lab.start()


@pytest.fixture(scope="module")
def bridge() -> Iterator[str]:
    """A Linux bridge made for the test (root), removed at the end."""
    name = f"xtbr{secrets.token_hex(2)}"
    made = subprocess.run(["ip", "link", "add", "name", name, "type", "bridge"], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a bridge (ip link add ... type bridge): {made.stderr.strip()}")
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def image(lab: Lab, name: str, *, marker: bytes = b"") -> str:
    path = lab.session / name
    with path.open("wb") as file:
        file.write(marker)
        file.truncate(16 * 1024 * 1024)
    return str(path)


async def partitions(console) -> str:
    match = await run(console, "echo P=$(awk 'NR>2 {print $4}' /proc/partitions | tr '\\n' ,)=P",
                      rb"P=([a-z0-9,]*)=P")
    return match.group(1).decode()


async def nets(console) -> str:
    match = await run(console, "echo N=$(ls /sys/class/net | tr '\\n' ,)=N", rb"N=([a-z0-9,]*)=N")
    return match.group(1).decode()


def bridge_ports(name: str) -> list[str]:
    from pathlib import Path

    return sorted(path.name for path in Path(f"/sys/class/net/{name}/brif").iterdir())


# --- disks --------------------------------------------------------------------------------------


async def test_a_file_disk_attached_is_read_in_the_guest_then_detached(backend, guest, lab):
    path = image(lab, f"{guest.name} it's a \"disk\" & <x>.img", marker=MARKER)  # escaped in the XML sent
    before = await backend.disks(guest.name)
    assert [(d.vdev, d.format, d.readonly) for d in before] == [("vda", "raw", False)]
    console = await backend.open_console(guest.name)
    try:
        first = set((await partitions(console)).split(","))
        await backend.disk_attach(guest.name, DiskSpec(path, "vdb"))
        disks = {d.vdev: d for d in await backend.disks(guest.name)}
        assert disks["vdb"].path == path and disks["vdb"].mode == "rw" and disks["vdb"].backend == "qemu"

        async def appeared():
            new = set((await partitions(console)).split(",")) - first
            return new.pop() if new else None

        name = await eventually(appeared, within=30)  # the guest's name for it (vdb here; see the next test)
        match = await run(console, f"head -c 16 /dev/{name}; echo", rb"XENTUI-DISK-\d{4}")
        assert match.group(0) == MARKER
        # taken now: the same vdev, the same path
        with pytest.raises(InvalidArgument, match="vdb is taken"):
            await backend.disk_attach(guest.name, DiskSpec(image(lab, "other.img"), "vdb"))
        with pytest.raises(InvalidArgument, match=r"already .*'s vdb"):
            await backend.disk_attach(guest.name, DiskSpec(path, "vdc"))

        await backend.disk_detach(guest.name, "vdb")
        assert [d.vdev for d in await backend.disks(guest.name)] == ["vda"]

        async def gone():
            return set((await partitions(console)).split(",")) == first

        await eventually(gone, within=30)
    finally:
        await console.close()


async def test_a_read_only_disk_is_read_only_in_the_guest(backend, guest, lab):
    """libvirt's vdc is a hint to a Linux guest, which names virtio disks in the order it finds them (here,
    with vdb free again, it calls this one vdb): the new disk is found as the one that was not there before."""
    path = image(lab, f"{guest.name}-ro.img", marker=MARKER)
    console = await backend.open_console(guest.name)
    try:
        first = set((await partitions(console)).split(","))
        await backend.disk_attach(guest.name, DiskSpec(path, "vdc", readonly=True))
        assert {d.vdev: d.mode for d in await backend.disks(guest.name)}["vdc"] == "ro"

        async def appeared():
            new = set((await partitions(console)).split(",")) - first
            return new.pop() if new else None

        name = await eventually(appeared, within=30)
        match = await run(console, f"echo RO=$(cat /sys/block/{name}/ro)=RO", rb"RO=(\d+)=RO")
        assert match.group(1) == b"1"
        match = await run(console, f"head -c 16 /dev/{name}; echo", rb"XENTUI-DISK-\d{4}")
        assert match.group(0) == MARKER
    finally:
        await console.close()
        await backend.disk_detach(guest.name, "vdc")
    assert [d.vdev for d in await backend.disks(guest.name)] == ["vda"]


async def test_disk_refusals_change_nothing(backend, guest, lab):
    with pytest.raises(InvalidArgument, match="does not exist on this host"):
        await backend.disk_attach(guest.name, DiskSpec(str(lab.session / "missing.img"), "vdb"))
    with pytest.raises(InvalidArgument, match="vda is taken"):
        await backend.disk_attach(guest.name, DiskSpec(image(lab, "x.img"), "vda"))
    with pytest.raises(InvalidArgument, match="not a disk name"):
        await backend.disk_attach(guest.name, DiskSpec(image(lab, "x.img"), "vdb1"))
    with pytest.raises(InvalidArgument, match="not an absolute path"):
        await backend.disk_attach(guest.name, DiskSpec("x.img", "vdb"))
    with pytest.raises(InvalidArgument, match="QEMU cannot hot-plug an IDE disk"):
        await backend.disk_attach(guest.name, DiskSpec(image(lab, "x.img"), "hdb"))
    with pytest.raises(InvalidArgument, match="Xen PV disk"):
        await backend.disk_attach(guest.name, DiskSpec(image(lab, "x.img"), "xvdb"))
    with pytest.raises(InvalidArgument, match="has no disk 'vdq'"):
        await backend.disk_detach(guest.name, "vdq")
    assert [d.vdev for d in await backend.disks(guest.name)] == ["vda"]


# --- NICs ---------------------------------------------------------------------------------------


async def test_a_nic_on_a_bridge_appears_in_the_guest_then_detached(backend, guest, bridge):
    assert bridge in await backend.bridges()
    mac = "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
    before = await backend.nics(guest.name)
    assert len(before) == 2
    console = await backend.open_console(guest.name)
    try:
        first = set((await nets(console)).split(","))
        await backend.nic_attach(guest.name, bridge, mac.upper())  # any case; stored as libvirt writes it
        nics = await backend.nics(guest.name)
        added = nics[-1]
        assert (added.mac, added.bridge, added.backend, added.model) == (mac, bridge, "bridge", "virtio")
        assert added.ifname.startswith("vnet") and bridge_ports(bridge) == [added.ifname]

        async def appeared():
            new = set((await nets(console)).split(",")) - first
            return new.pop() if new else None

        ifname = await eventually(appeared, within=30)
        match = await run(console, f"echo A=$(cat /sys/class/net/{ifname}/address)=A", rb"A=([0-9a-f:]+)=A")
        assert match.group(1).decode() == mac

        with pytest.raises(InvalidArgument, match="already the MAC"):
            await backend.nic_attach(guest.name, bridge, mac)
        await backend.nic_detach(guest.name, mac)
        assert [n.mac for n in await backend.nics(guest.name)] == [n.mac for n in before]
        assert bridge_ports(bridge) == []

        async def went():
            return set((await nets(console)).split(",")) == first

        await eventually(went, within=30)
    finally:
        await console.close()


async def test_nic_refusals_change_nothing(backend, guest):
    with pytest.raises(InvalidArgument, match="no bridge 'xtbr-none'"):
        await backend.nic_attach(guest.name, "xtbr-none")
    with pytest.raises(InvalidArgument, match="not a MAC address"):
        await backend.nic_attach(guest.name, "xtbr-none", "52:54:00:zz:00:01")
    with pytest.raises(InvalidArgument, match="multicast"):
        await backend.nic_attach(guest.name, "xtbr-none", "01:00:5e:00:00:01")
    with pytest.raises(InvalidArgument, match="not a bridge name"):
        await backend.nic_attach(guest.name, "br0'/><x y='")
    with pytest.raises(InvalidArgument, match="has no NIC"):
        await backend.nic_detach(guest.name, "7")
    assert len(await backend.nics(guest.name)) == 2


# --- a defined domain, started through create ------------------------------------------------------


@contextlib.contextmanager
def defined(lab: Lab, *, kernel: bool = True, qcow2: bool = False) -> Iterator[LabGuest]:
    """A persistent domain defined (not started) on the lab's libvirtd; destroyed and undefined at the end.
    ``qcow2``: its disk a qcow2 image (qemu-img), which libvirt's internal snapshots need."""
    name = f"xentui-def-{secrets.token_hex(4)}"
    for image_name in ("vmlinuz", "initrd.gz"):
        if kernel or image_name != "vmlinuz":
            shutil.copy(GUEST_DIR / image_name, lab.session / f"{name}-{image_name}")
    if qcow2:
        disk_path = lab.session / f"{name}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk_path), "16M"], check=True)
        xml = guest_xml(name, lab.session, disk=False).replace(
            "<devices>",
            f"<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{disk_path}'/><target dev='vda' bus='virtio'/></disk>", 1)
    else:
        with (lab.session / f"{name}.img").open("wb") as disk:
            disk.truncate(8 * 1024 * 1024)
        xml = guest_xml(name, lab.session)
    log = SERIAL_LOGS / f"{name}-serial.log"
    log.unlink(missing_ok=True)
    conn = libvirt.open(LAB_URI)
    dom = conn.defineXML(xml)
    try:
        yield LabGuest(name, dom.UUIDString(), log)
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            dom.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                              | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        conn.close()
        log.unlink(missing_ok=True)


async def test_create_starts_a_defined_domain_paused_then_running(backend, lab, guest):
    with defined(lab) as new:
        configs = {config.ref: config for config in await backend.guest_configs()}
        config = configs[new.name]
        assert (config.name, config.type, config.running) == (new.name, "hvm (qemu)", False)
        assert (config.memory_kib, config.maxmem_kib, config.vcpus) == (256 * 1024, 256 * 1024, 1)
        assert config.disks == (f"vda: {lab.session}/{new.name}.img (raw, rw)",)
        assert len(config.nics) == 2 and config.extra["max vcpus"] == "2"
        assert guest.name not in configs  # running: not a config to start

        assert await backend.create(new.name, paused=True) == new.name
        conn = libvirt.open(LAB_URI)
        try:
            dom = conn.lookupByName(new.name)
            assert dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED
            assert new.name not in {config.ref for config in await backend.guest_configs()}
            with pytest.raises(InvalidArgument, match="already running"):
                await backend.create(new.name)
            await backend.destroy(new.name)
            assert not dom.isActive()

            assert await backend.create(new.name) == new.name
            assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
            new.wait_log(READY, timeout=120)
            new.wait_log("# ", after=new.log_text().index(READY), timeout=30)
            console = await backend.open_console(new.name)
            try:
                await run(console, "echo created-$((20+22))", rb"created-42")
            finally:
                await console.close()

            # another running guest's disk, read-write: refused
            with pytest.raises(InvalidArgument, match=f"attached read-write to {new.name} \\(vda\\)"):
                await backend.disk_attach(guest.name, DiskSpec(f"{lab.session}/{new.name}.img", "vdb"))

            # a persistent domain: the hot-plug goes to its definition too, and the detach takes it out of both
            path = image(lab, f"{new.name}-extra.img")
            await backend.disk_attach(new.name, DiskSpec(path, "vdb"))
            inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            assert path in inactive and path in dom.XMLDesc(0)
            await backend.disk_detach(new.name, "vdb")
            assert path not in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) and path not in dom.XMLDesc(0)

            # vdb left in the definition only (another client detached it from the running guest alone): a new
            # vdb is refused, since the definition's would come back at the next start
            await backend.disk_attach(new.name, DiskSpec(path, "vdb"))
            dom.detachDeviceFlags(device_xml(dom.XMLDesc(0), "disk", "vdb"), libvirt.VIR_DOMAIN_AFFECT_LIVE)

            async def live_gone():
                return path not in dom.XMLDesc(0)

            await eventually(live_gone, within=30)
            with pytest.raises(InvalidArgument, match="its definition has one"):
                await backend.disk_attach(new.name, DiskSpec(image(lab, f"{new.name}-other.img"), "vdb"))
            assert [d.vdev for d in await backend.disks(new.name)] == ["vda"]
        finally:
            conn.close()


async def test_a_domain_libvirt_cannot_start_says_libvirts_reason(backend, lab):
    with defined(lab, kernel=False) as broken:
        with pytest.raises(BackendError, match=r"start .*: .*vmlinuz") as caught:
            await backend.create(broken.name)
        print(f"\nlibvirt's refusal, as the operator reads it: {caught.value}")
        assert broken.name in {config.ref for config in await backend.guest_configs()}



# --- the driver's own snapshots --------------------------------------------------------------------------


async def test_a_libvirt_snapshot_of_a_running_guest_with_a_qcow2_disk(backend, lab, guest):
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img (qemu-utils) is not installed: it makes the qcow2 disk internal snapshots need")
    with defined(lab, qcow2=True) as new:
        await backend.create(new.name)
        new.wait_log(READY, timeout=120)
        assert await backend.snapshots(new.name) == []
        assert [s.kind for s in await backend.snapshot_sources(new.name)] == ["libvirt"]
        taken = await backend.snapshot_create(new.name, "before-upgrade")
        assert [s.name for s in taken.taken] == ["before-upgrade"] and taken.paused_s > 0
        print(f"\nthe guest was paused {taken.paused_s:.2f} s for its snapshot")
        assert [s.name for s in (await backend.snapshot_create(new.name, "after")).taken] == ["after"]
        assert [s.name for s in await backend.snapshots(new.name)] == ["before-upgrade", "after"]
        listed = (await asyncio.to_thread(
            subprocess.run, ["qemu-img", "snapshot", "-U", "-l", str(lab.session / f"{new.name}.qcow2")],
            capture_output=True, text=True, check=True)).stdout
        print(f"\nqemu-img snapshot -l of the guest's disk:\n{listed}")
        assert "before-upgrade" in listed and "after" in listed
        conn = libvirt.open(LAB_URI)
        try:
            assert conn.lookupByName(new.name).state()[0] == libvirt.VIR_DOMAIN_RUNNING  # running again
        finally:
            conn.close()
        with pytest.raises(InvalidArgument, match="has no snapshot 'nope'"):
            await backend.snapshot_delete(new.name, "nope")
        with pytest.raises(InvalidArgument, match="not a snapshot name"):
            await backend.snapshot_create(new.name, "a/b")
        await backend.snapshot_delete(new.name, "before-upgrade")
        assert [s.name for s in await backend.snapshots(new.name)] == ["after"]
        await backend.snapshot_delete(new.name, "after")
        assert await backend.snapshots(new.name) == []
    # a raw disk cannot hold an internal snapshot: refused before QEMU stops the guest, saying why
    with pytest.raises(BackendError, match="vda: a raw image: libvirt's internal snapshots need qcow2") as caught:
        await backend.snapshot_create(guest.name, "raw")
    print(f"the refusal for a raw disk: {caught.value}")
