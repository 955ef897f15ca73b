"""A running guest's disks and NICs (list, hot-plug, unplug), the host's bridges, and starting a defined
domain: the libvirt side of ``xl block-attach``/``network-attach``/``create``.

Every call runs in a worker thread on the connection (`ConnectionMixin._run`). The checks every backend makes
(`xentui.backends.devices`, `xentui.validate`) run first, in the same thread, on what libvirt says now; nothing
is changed until they pass.

Persistence, as ``virsh attach-disk --persistent`` does it: a hot-plug goes to the running guest
(VIR_DOMAIN_AFFECT_LIVE) and, when the domain is persistent (defined, not transient), to its definition too
(VIR_DOMAIN_AFFECT_CONFIG), so the disk or NIC is still there after the guest is shut down and started again.
A detach removes the device from wherever it is: the running guest, and the definition when it has it.
A transient domain has no definition: its hot-plugs last until it stops.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path
from typing import Any

from xentui.backends.base import Action, BackendError, InvalidArgument
from xentui.backends.devices import (
    AttachedDisk,
    AttachedNic,
    DiskSpec,
    GuestConfig,
    Snapshot,
    SnapshotResult,
    SnapshotSource,
    check_disk_attach,
    check_nic_attach,
    check_snapshot_plan,
    find_disk,
    find_nic,
    free_vdevs,
)
from xentui.backends.libvirt.connection import ConnectionMixin, _code, _Connection, _message, libvirt
from xentui.backends.libvirt_xml import (
    DiskConfig,
    DomainConfig,
    device_xml,
    disk_bus,
    disk_xml,
    interface_type,
    interface_xml,
    parse_domain_xml,
)
from xentui.validate import check_bridge_name, check_host_path, check_mac, quoted

_SYS_NET = Path("/sys/class/net")
_FORMATS_BACK = {"vpc": "vhd"}  # libvirt's format names as xl's (the names `DiskSpec.format` takes)
_QEMU_NO_HOTPLUG = {
    "ide": "QEMU cannot hot-plug an IDE disk (hd*) into a running guest",
    "xen": "xvd* is a Xen PV disk, and this is a QEMU host",
}
_DETACH_WAIT_S = 10.0  # how long the guest has to let go of an unplugged device before we say it has not
_DETACH_POLL_S = 0.2


def _attached_disks(config: DomainConfig) -> list[AttachedDisk]:
    return [
        AttachedDisk(
            vdev=disk.target,
            path=disk.path,
            backend=disk.driver or "default",
            readonly=disk.readonly,
            format=_FORMATS_BACK.get(disk.format, disk.format or "raw"),
            devid=disk.devid,
            cdrom=disk.device == "cdrom",
        )
        for disk in config.disks
    ]


def _attached_nics(config: DomainConfig) -> list[AttachedNic]:
    return [
        AttachedNic(devid=nic.devid, mac=nic.mac, bridge=nic.bridge, backend=nic.kind, ifname=nic.target,
                    model=nic.model)
        for nic in config.interfaces
    ]


def _local_bridges() -> list[str]:
    """The Linux bridges of this machine: the interfaces with a ``bridge`` directory in sysfs."""
    try:
        return sorted(entry.name for entry in _SYS_NET.iterdir() if (entry / "bridge").is_dir())
    except OSError:
        return []


def _volume(current: _Connection, path: str) -> Any:
    try:
        return current.conn.storageVolLookupByPath(path)
    except libvirt.libvirtError as error:
        if _code(error) == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        if _code(error) in (libvirt.VIR_ERR_NO_SUPPORT, getattr(libvirt, "VIR_ERR_OPERATION_UNSUPPORTED", 84)):
            return None  # no storage driver on that host
        raise


def _pools_holding(current: _Connection, path: str) -> list[Any]:
    """The active storage pools whose directory is ``path``'s directory."""
    import xml.etree.ElementTree as ET

    directory = os.path.normpath(os.path.dirname(path))
    try:
        pools = current.conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
    except libvirt.libvirtError:
        return []
    holding = []
    for pool in pools:
        try:
            target = ET.fromstring(pool.XMLDesc(0)).findtext("target/path") or ""
        except (libvirt.libvirtError, ET.ParseError):
            continue
        if target and os.path.normpath(target) == directory:
            holding.append(pool)
    return holding


def _is_block(path: str) -> bool | None:
    """Whether ``path`` is a block device on this machine; None when it is missing. Raises InvalidArgument for
    what is neither a file nor a block device."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except PermissionError:  # we cannot look; libvirtd (root) may: let it say
        return path.startswith("/dev/")
    if stat.S_ISBLK(mode):
        return True
    if stat.S_ISREG(mode):
        return False
    raise InvalidArgument(f"{path} is neither a file nor a block device: a disk is one or the other")


class DevicesMixin(ConnectionMixin):
    """disks, disk_attach, disk_detach, nics, bridges, nic_attach, nic_detach, guest_configs, create, and the
    driver's own snapshots (snapshots, snapshot_create, snapshot_delete)."""

    # --- reading ----------------------------------------------------------------------------------

    @staticmethod
    def _live_config(dom: Any) -> DomainConfig:
        return parse_domain_xml(dom.XMLDesc(0))

    async def disks(self, domain: str) -> list[AttachedDisk]:
        def run(current: _Connection) -> list[AttachedDisk]:
            return _attached_disks(self._live_config(self._lookup(current, domain)))

        return await self._run(f"disks of {domain}", run)

    async def nics(self, domain: str) -> list[AttachedNic]:
        def run(current: _Connection) -> list[AttachedNic]:
            return _attached_nics(self._live_config(self._lookup(current, domain)))

        return await self._run(f"NICs of {domain}", run)

    async def bridges(self) -> list[str]:
        """The host's Linux bridges (a local URI: /sys/class/net/*/bridge; a remote one: libvirt's bridge
        interfaces), then the names of libvirt's active networks that are not bridge names themselves (a NIC on
        one is ``<interface type='network'>``: ``default`` is libvirt's NAT network)."""
        return await self._run("the host's bridges", self._bridges_now)

    def _bridges_now(self, current: _Connection) -> list[str]:
        bridges = self._host_bridges(current)
        return [*bridges, *(name for name in self._networks(current) if name not in bridges)]

    @staticmethod
    def _host_bridges(current: _Connection) -> list[str]:
        if current.local and current.driver != "TEST":  # the test driver's host is not this machine
            return _local_bridges()
        names: list[str] = []
        with contextlib.suppress(libvirt.libvirtError):  # no interface driver on that host: none known
            for iface in current.conn.listAllInterfaces(libvirt.VIR_CONNECT_LIST_INTERFACES_ACTIVE):
                if interface_type(iface.XMLDesc(0)) == "bridge":
                    names.append(iface.name())
        with contextlib.suppress(libvirt.libvirtError):  # the bridges of libvirt's own networks exist too
            for network in current.conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE):
                with contextlib.suppress(libvirt.libvirtError):
                    if (bridge := network.bridgeName()) and bridge not in names:
                        names.append(bridge)
        return sorted(names)

    @staticmethod
    def _networks(current: _Connection) -> list[str]:
        try:
            networks = current.conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE)
        except libvirt.libvirtError:  # no network driver
            return []
        return sorted(network.name() for network in networks)

    # --- disks ------------------------------------------------------------------------------------

    async def disk_attach(self, domain: str, spec: DiskSpec) -> None:
        """Hot-plug ``spec`` into the running guest, and into its definition when the domain is persistent (it
        survives the guest's restart, as ``virsh attach-disk --persistent``). The bus follows the vdev (vd:
        virtio, sd: scsi, hd: ide, xvd: xen). Refused before anything changes: a path missing on the host (a
        local URI: looked up here; a remote one: libvirtd's storage pools are asked, a path in a pool's directory
        that the pool does not have is refused, and a path in no pool's directory is left to libvirtd, whose
        refusal comes back), a vdev the guest (or its definition) has, a path another running guest has
        read-write."""
        what = f"attach {spec.vdev or 'a disk'} to {domain}"
        self._writable(what, Action.DISK_ATTACH)
        path = check_host_path(spec.path)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            if not dom.isActive():
                raise InvalidArgument(f"{what}: {domain} is not running; a disk is hot-plugged into a running guest")
            own = _attached_disks(self._live_config(dom))
            uuid = dom.UUIDString()
            others = {
                other.name(): _attached_disks(self._live_config(other))
                for other in current.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                if other.UUIDString() != uuid
            }
            checked = check_disk_attach(domain, DiskSpec(path, spec.vdev, spec.readonly, spec.format), own, others)
            if current.driver == "QEMU":  # what QEMU would refuse late, with "device_add: ... hotplugging"
                bus = disk_bus(checked.vdev)
                if bus in _QEMU_NO_HOTPLUG:
                    raise InvalidArgument(f"{checked.vdev}: {_QEMU_NO_HOTPLUG[bus]}; name it vd* (virtio, e.g. "
                                          f"{free_vdevs((d.vdev for d in own), 'vd', 1)[0]}) or sd* (SCSI)")
            block = self._disk_kind(current, checked.path)
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
            if dom.isPersistent():
                defined = parse_domain_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
                for disk in defined.disks:
                    if disk.target == checked.vdev:
                        raise InvalidArgument(
                            f"{checked.vdev} is free in the running {domain} but its definition has one "
                            f"({disk.path or 'empty'}): it would come back at the next start; choose another vdev"
                        )
                flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
            driver = "qemu" if current.driver == "QEMU" else None
            dom.attachDeviceFlags(
                disk_xml(checked.path, checked.vdev, block=block, readonly=checked.readonly, fmt=checked.format,
                         driver=driver),
                flags,
            )
            self._forget(uuid)

        await self._run(what, run, Action.DISK_ATTACH)

    @staticmethod
    def _disk_kind(current: _Connection, path: str) -> bool:
        """Whether ``path`` is a block device (else a file); InvalidArgument when it does not exist."""
        if current.local:
            block = _is_block(path)
            if block is None:
                raise InvalidArgument(f"{path} does not exist on this host: create the image first "
                                      "(qemu-img create, truncate -s) or check the path")
            return block
        volume = _volume(current, path)
        if volume is None:
            for pool in _pools_holding(current, path):  # a pool of that directory: it knows whether the file is there
                with contextlib.suppress(libvirt.libvirtError):
                    pool.refresh(0)
                volume = _volume(current, path)
                if volume is None:
                    raise InvalidArgument(f"{path} does not exist on {current.hostname}: libvirt's storage pool "
                                          f"{quoted(pool.name())} of {os.path.dirname(path)} has no such volume")
        if volume is None:  # in no pool: libvirtd opens it, and says so if it cannot
            return path.startswith("/dev/")
        return volume.info()[0] == libvirt.VIR_STORAGE_VOL_BLOCK

    async def disk_detach(self, domain: str, vdev: str) -> None:
        """Unplug the disk ``vdev`` (or its devid) from the running guest, and from the definition when it has
        it. The guest must let go (virtio and SCSI: an ACPI hot-unplug the guest kernel acknowledges); this waits
        up to 10 s for that and says so when the guest still holds it."""
        what = f"detach {vdev} from {domain}"
        self._writable(what, Action.DISK_DETACH)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            disk = find_disk(domain, vdev.strip(), _attached_disks(self._live_config(dom)))
            self._detach(dom, "disk", disk.vdev, what)

        await self._run(what, run, Action.DISK_DETACH)

    def _detach(self, dom: Any, kind: str, key: str, what: str) -> None:
        live = device_xml(dom.XMLDesc(0), kind, key)
        if live is None:  # it went between the listing and now
            raise InvalidArgument(f"{what}: {dom.name()} no longer has it")
        flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
        if dom.isPersistent() and device_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), kind, key) is not None:
            flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
        dom.detachDeviceFlags(live, flags)
        self._forget(dom.UUIDString())
        deadline = time.monotonic() + _DETACH_WAIT_S
        while device_xml(dom.XMLDesc(0), kind, key) is not None:
            if time.monotonic() > deadline:
                raise BackendError(
                    f"{what}: the guest was asked to release it and still has it after {_DETACH_WAIT_S:.0f}s "
                    "(it must acknowledge the unplug: a guest kernel with ACPI hot-plug, not busy with the device); "
                    "libvirt removes it when the guest does"
                )
            time.sleep(_DETACH_POLL_S)

    # --- NICs -------------------------------------------------------------------------------------

    async def nic_attach(self, domain: str, bridge: str, mac: str | None = None) -> None:
        """Hot-plug a NIC on ``bridge``: a Linux bridge of the host (``<interface type='bridge'>``) or, when no
        bridge has that name, an active libvirt network (``type='network'``). ``mac`` None or empty: libvirt makes
        one (52:54:00:... on QEMU). The model is virtio on QEMU/KVM, the driver's default elsewhere. Also written to
        the definition of a persistent domain (see the module's docstring). Refused before anything changes: a
        bridge the host does not have, a malformed MAC, a MAC another NIC of any guest on this host has."""
        name = bridge.strip()
        wanted = check_mac(mac) if mac is not None else None
        what = f"attach a NIC on {name} to {domain}"
        self._writable(what, Action.NIC_ATTACH)

        def run(current: _Connection) -> None:
            networks = self._networks(current)
            if name not in networks:  # a libvirt network's name may be longer than an interface's (15)
                check_bridge_name(name)
            dom = self._lookup(current, domain)
            if not dom.isActive():
                raise InvalidArgument(f"{what}: {domain} is not running; a NIC is hot-plugged into a running guest")
            host_bridges = self._host_bridges(current)
            macs: dict[str, str] = {}
            for other in current.conn.listAllDomains(0):
                for nic in parse_domain_xml(other.XMLDesc(0)).interfaces:
                    if nic.mac:
                        macs.setdefault(nic.mac.lower(), other.name())
            offered = [*host_bridges, *(network for network in networks if network not in host_bridges)]
            check_nic_attach(domain, name, wanted, offered, macs)
            kind = "bridge" if name in host_bridges else "network"
            model = "virtio" if current.driver == "QEMU" else None
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
            if dom.isPersistent():
                flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
            dom.attachDeviceFlags(interface_xml(kind, name, mac=wanted, model=model), flags)
            self._forget(dom.UUIDString())

        await self._run(what, run, Action.NIC_ATTACH)

    async def nic_detach(self, domain: str, nic: str) -> None:
        """Unplug a NIC, named by its devid (its position among the guest's NICs) or its MAC; from the running
        guest, and from the definition when it has it. Waits for the guest to let go, as `disk_detach`."""
        what = f"detach NIC {nic.strip()} from {domain}"
        self._writable(what, Action.NIC_DETACH)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            found = find_nic(domain, nic.strip(), _attached_nics(self._live_config(dom)))
            if not found.mac:
                raise InvalidArgument(f"{what}: libvirt names it by its MAC and it has none")
            self._detach(dom, "interface", found.mac, what)

        await self._run(what, run, Action.NIC_DETACH)

    # --- starting a defined domain ------------------------------------------------------------------

    async def guest_configs(self) -> list[GuestConfig]:
        """The domains defined on the host and not running (``virsh list --inactive``), with what their
        definition says. ``ref`` is the domain's name (what `create` takes)."""

        def run(current: _Connection) -> list[GuestConfig]:
            configs = []
            for dom in current.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_INACTIVE):
                name = dom.name()
                try:
                    configs.append(self._guest_config(dom, name))
                except libvirt.libvirtError as error:
                    if self._lost(current, error):
                        raise
                    configs.append(GuestConfig(ref=name, name=name, problem=_message(error)))
            return sorted(configs, key=lambda config: config.label)

        return await self._run("the host's defined domains", run)

    @staticmethod
    def _guest_config(dom: Any, name: str) -> GuestConfig:
        config = parse_domain_xml(dom.XMLDesc(0))
        extra = {"uuid": config.uuid}
        with contextlib.suppress(libvirt.libvirtError):
            extra["autostart"] = "yes" if dom.autostart() else "no"
        with contextlib.suppress(libvirt.libvirtError):
            if dom.hasManagedSaveImage(0):
                extra["managed save"] = "yes: starting it resumes the saved guest"
        if config.vcpus_max is not None:
            extra["max vcpus"] = str(config.vcpus_max)
        disks = tuple(_describe_disk(disk) for disk in config.disks)
        nics = tuple(
            " ".join(filter(None, [nic.mac, f"{nic.kind} {nic.bridge}" if nic.bridge else nic.kind, nic.model or ""]))
            for nic in config.interfaces
        )
        kind = config.type.value if config.type.value != "unknown" else "?"
        return GuestConfig(
            ref=name,
            name=name,
            type=f"{kind} ({config.hypervisor})" if config.hypervisor else kind,
            memory_kib=config.current_memory_kib,
            maxmem_kib=config.max_memory_kib,
            vcpus=config.vcpus_current,
            disks=disks,
            nics=nics,
            running=False,
            extra=extra,
        )

    async def create(self, ref: str, *, paused: bool = False) -> str:
        """Start the defined domain ``ref`` (``virsh start``; ``paused``: ``--paused``). One with a managed-save
        image resumes from it, as virsh does. libvirt's refusal (a missing kernel or disk image, not enough
        memory) comes back with libvirt's own message."""
        ref = ref.strip()
        what = f"start {ref}"
        self._writable(what, Action.CREATE)

        def run(current: _Connection) -> str:
            dom = self._lookup(current, ref)
            if dom.isActive():
                raise InvalidArgument(f"{what}: {ref} is already running")
            dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
            self._forget(dom.UUIDString())
            return str(dom.name())

        return await self._run(what, run, Action.CREATE)

    # --- the driver's own snapshots (no interface in `Backend` yet) -----------------------------------

    async def snapshot_sources(self, domain: str) -> list[SnapshotSource]:
        """Each disk as libvirt's own (internal) snapshot takes it: a qcow2 image is taken; a raw one cannot
        be (libvirt refuses the whole snapshot: 'internal snapshot ... unsupported for storage type raw'); a
        CD-ROM or read-only disk has nothing to keep."""

        def run(current: _Connection) -> list[SnapshotSource]:
            config = parse_domain_xml(self._lookup(current, domain).XMLDesc(0))
            qemu = current.conn.getType() == "QEMU"  # its internal snapshots live in the qcow2 images
            sources = []
            for disk in config.disks:
                if disk.device == "cdrom" or disk.readonly or not disk.path:
                    sources.append(SnapshotSource(disk.target, disk.path, "none", reason="read-only: nothing to "
                                                  "keep"))
                elif disk.format == "qcow2" or not qemu:
                    sources.append(SnapshotSource(disk.target, disk.path, "libvirt"))
                else:
                    sources.append(SnapshotSource(
                        disk.target, disk.path, "none",
                        reason=f"a {disk.format or 'raw'} image: libvirt's internal snapshots need qcow2"))
            return sources

        return await self._run(f"the disks of {domain}", run)

    async def snapshots(self, domain: str) -> list[Snapshot]:
        """The domain's libvirt snapshots, oldest first (by creation time, then parent first)."""

        def run(current: _Connection) -> list[Snapshot]:
            dom = self._lookup(current, domain)
            try:  # parents before children: the order within one second of creation time
                found = dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL)
            except libvirt.libvirtError:
                found = dom.listAllSnapshots(0)
            return [Snapshot(str(snap.getName()), "", created=float(_snapshot_time(snap)) or None)
                    for snap in sorted(found, key=_snapshot_time)]

        return await self._run(f"snapshots of {domain}", run)

    async def snapshot_create(self, domain: str, tag: str, *, cow_bytes: int = 1 << 30) -> SnapshotResult:
        """Take a libvirt snapshot named ``tag`` of the domain (the driver's default kind: on QEMU with qcow2
        disks, internal, with the memory of a running guest). QEMU stops the guest while it writes the
        snapshot: the time of the call is the time it was paused. ``cow_bytes`` is LVM's, not used here."""
        name = tag.strip()
        if not name or any(ord(c) < 32 for c in name) or "/" in name:
            raise InvalidArgument(f"{quoted(name)} is not a snapshot name: no '/', no control characters")
        what = f"snapshot {domain} as {name}"
        self._writable(what, Action.SNAPSHOT)
        # refused before QEMU stops the guest: a raw disk (libvirt would refuse the whole snapshot), a bad tag
        check_snapshot_plan(await self.snapshot_sources(domain), cow_bytes, name)

        def run(current: _Connection) -> SnapshotResult:
            import xml.etree.ElementTree as ET

            dom = self._lookup(current, domain)
            root = ET.Element("domainsnapshot")
            ET.SubElement(root, "name").text = name
            started = time.monotonic()
            snap = dom.snapshotCreateXML(ET.tostring(root, encoding="unicode"), 0)
            paused = time.monotonic() - started
            return SnapshotResult((Snapshot(str(snap.getName()), "", created=time.time()),), paused)

        return await self._run(what, run, Action.SNAPSHOT)

    async def snapshot_delete(self, domain: str, name: str) -> None:
        what = f"delete snapshot {name} of {domain}"
        self._writable(what, Action.SNAPSHOT)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            try:
                snap = dom.snapshotLookupByName(name, 0)
            except libvirt.libvirtError as error:
                if _code(error) == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
                    raise InvalidArgument(f"{domain} has no snapshot {quoted(name)}") from error
                raise
            snap.delete(0)

        await self._run(what, run, Action.SNAPSHOT)


def _describe_disk(disk: DiskConfig) -> str:
    """``vda: /var/lib/libvirt/images/web.qcow2 (qcow2, rw)``, ``hdc: (empty) (cdrom, ro)``."""
    how = [disk.device if disk.device != "disk" else "", _FORMATS_BACK.get(disk.format, disk.format),
           "ro" if disk.readonly else "rw"]
    return f"{disk.target}: {disk.path or '(empty)'} ({', '.join(part for part in how if part)})"


def _snapshot_time(snap: Any) -> int:
    import xml.etree.ElementTree as ET

    try:
        return int(ET.fromstring(snap.getXMLDesc(0)).findtext("creationTime") or 0)
    except (libvirt.libvirtError, ValueError, ET.ParseError):
        return 0
