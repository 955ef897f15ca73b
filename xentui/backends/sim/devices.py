"""Disks and NICs on a running simulated guest, and starting guests from the host's configs: xl's semantics
(block-attach, block-detach, network-attach, network-detach, create), refusing what xl refuses, and the guest
sees what changed (its kernel says it; ``/proc/partitions`` and ``/proc/net/dev`` on its console follow)."""

from __future__ import annotations

import dataclasses
import weakref
from typing import TYPE_CHECKING

from xentui.backends.base import BackendError, InvalidArgument
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
    snapshot_name,
    while_paused,
)
from xentui.backends.sim.domain import GIB, MIB, SimDomain, SimVbd, SimVif
from xentui.backends.sim.physics import LoadProfile
from xentui.backends.xen_vdev import vdev_number
from xentui.model import DomainType, VbdBackend
from xentui.validate import check_bridge_name, check_host_path, check_mac, format_kib, quoted

if TYPE_CHECKING:
    from xentui.backends.sim.cluster import SimCluster, SimHost
    from xentui.clock import Clock

BRIDGES = ("xenbr0", "xenbr1")

SPARE_DISKS = (
    "/var/lib/xen/images/scratch.img",
    "/var/lib/xen/images/debian-12-netinst.iso",
    "/dev/vg0/spare-1",
    "/dev/vg0/spare-2",
    "/srv/shared/images/data-1.img",
)
"""Images on a simulated host that no guest holds: what an operator can attach in the demo."""


@dataclasses.dataclass(frozen=True)
class _Config:
    """A guest config file on a simulated host; `problem`: xl's parse error, for a broken one."""

    path: str
    name: str
    type: DomainType = DomainType.PVH
    memory_mib: int = 1024
    maxmem_mib: int = 2048
    vcpus: int = 1
    maxvcpus: int = 2
    disks: tuple[str, ...] = ()
    bridges: tuple[str, ...] = ("xenbr0",)
    problem: str | None = None


_SPARE_CONFIGS = (
    _Config("/etc/xen/web-standby.cfg", "web-standby", DomainType.PVH, 1024, 2048, 1, 2,
            ("/srv/shared/images/web-standby-xvda.img",)),
    _Config("/etc/xen/build-runner.cfg", "build-runner", DomainType.HVM, 2048, 2048, 2, 4,
            ("/dev/vg0/build-runner-xvda",)),
    _Config("/etc/xen/auto/monitor.cfg", "monitor", DomainType.PV, 512, 512, 1, 1,
            ("/dev/vg0/monitor-xvda",)),
    _Config("/etc/xen/broken.cfg", "broken", problem='/etc/xen/broken.cfg:6: config parsing error near `"512"\': '
            "syntax error, unexpected STRING, expecting $end or ';' or NEWLINE"),
)

DISK_BYTES = 8 << 30  # every simulated disk (its /proc/partitions says so too)
VG_FREE_BYTES = 24 << 30  # vg0's free space on a simulated host before any snapshot
LVCREATE_S = 0.15  # simulated seconds an lvcreate -s takes (while the guest is paused)
SLOW_COPY_BYTES_S = 400 << 20  # a copy where the filesystem cannot share blocks

# a host's snapshots: (domain, snapshot), oldest first
_SNAPSHOTS: weakref.WeakKeyDictionary[SimCluster, dict[str, list[tuple[str, Snapshot]]]] = weakref.WeakKeyDictionary()

# a host's configs: one per domain it has had (shut down, its config stays), and the spare ones
_CONFIGS: weakref.WeakKeyDictionary[SimCluster, dict[str, dict[str, _Config]]] = weakref.WeakKeyDictionary()


def _config_of(dom: SimDomain) -> _Config:
    mem = int(dom.target_kib // MIB)
    return _Config(f"/etc/xen/{dom.name}.cfg", dom.name, dom.type, mem, int((dom.maxmem_kib or dom.target_kib) // MIB),
                   dom.vcpus_online, dom.vcpus_max, tuple(v.path for v in dom.vbds), tuple(v.bridge for v in dom.vifs))


class SimDevices:
    """`SimBackend`'s disks, NICs and create (a mixin: it works on the backend's host and cluster)."""

    cluster: SimCluster
    host: SimHost

    if TYPE_CHECKING:  # SimBackend's

        @property
        def clock(self) -> Clock: ...

        def _domain(
            self, name: str, *, action: str, allow_dom0: bool = True, need_active: bool = True
        ) -> SimDomain: ...

        def _kernel(self, dom: SimDomain, now: float, text: str) -> None: ...

    def _changed(self, dom: SimDomain) -> None:
        """A device came or went: the host's flattened devices are made again, the counters start a new layout."""
        self.host.devices = None
        dom.layout = object()

    # disks ------------------------------------------------------------------------------------

    def _disks(self, dom: SimDomain) -> list[AttachedDisk]:
        return [AttachedDisk(v.device, v.path, "qdisk" if v.backend is VbdBackend.QDISK else "phy", v.readonly,
                             v.format, v.devid, v.path.endswith(".iso")) for v in dom.vbds]

    def _files(self) -> set[str]:
        """What exists on this simulated host: every guest's disk, its configs' disks, and the spare images."""
        files = {v.path for d in self.host.domains.values() for v in d.vbds} | set(SPARE_DISKS)
        files |= {path for config in self._configs().values() for path in config.disks}
        return files

    async def disks(self, domain: str) -> list[AttachedDisk]:
        return self._disks(self._domain(domain, action="block-list", need_active=False))

    async def disk_attach(self, domain: str, spec: DiskSpec) -> None:
        dom = self._domain(domain, action="block-attach")
        path = check_host_path(spec.path)
        if path not in self._files():
            raise InvalidArgument(f"block-attach: {path} does not exist on {self.host.hostname}")
        others = {d.name: self._disks(d) for d in self.host.domains.values() if d is not dom and d.active}
        spec = check_disk_attach(dom.name, dataclasses.replace(spec, path=path), self._disks(dom), others)
        devid = vdev_number(spec.vdev) or 0
        backend = VbdBackend.QDISK if spec.format != "raw" else VbdBackend.BLKBACK
        dom.vbds = [*dom.vbds, SimVbd(devid, spec.vdev, backend, path, rd_rate=8.0, wr_rate=0.0 if spec.readonly
                                      else 4.0, sectors_per_req=16, readonly=spec.readonly, format=spec.format)]
        dom.vbd_ring_full = (*dom.vbd_ring_full, 0)
        self._changed(dom)
        if dom.pv_drivers:
            self._kernel(dom, self.clock.monotonic(),
                         f"blkfront: {spec.vdev}: flush diskcache: enabled; persistent grants: enabled; "
                         "indirect descriptors: enabled;" + (" (read-only)" if spec.readonly else ""))

    async def disk_detach(self, domain: str, vdev: str) -> None:
        dom = self._domain(domain, action="block-detach")
        disk = find_disk(dom.name, vdev.strip(), self._disks(dom))
        index = next(i for i, v in enumerate(dom.vbds) if v.device == disk.vdev)
        dom.vbds = dom.vbds[:index] + dom.vbds[index + 1:]
        dom.vbd_ring_full = dom.vbd_ring_full[:index] + dom.vbd_ring_full[index + 1:]
        self._changed(dom)

    # NICs -------------------------------------------------------------------------------------

    async def nics(self, domain: str) -> list[AttachedNic]:
        dom = self._domain(domain, action="network-list", need_active=False)
        return [AttachedNic(v.devid, v.mac, v.bridge, "0", f"vif{dom.domid}.{v.devid}") for v in dom.vifs]

    async def bridges(self) -> list[str]:
        return list(BRIDGES)

    async def nic_attach(self, domain: str, bridge: str, mac: str | None = None) -> None:
        dom = self._domain(domain, action="network-attach")
        bridge = check_bridge_name(bridge)
        mac = check_mac(mac or "")
        in_use = {v.mac.lower(): d.name for d in self.host.domains.values() for v in d.vifs}
        check_nic_attach(dom.name, bridge, mac, BRIDGES, in_use)
        if mac is None:
            mac = self.cluster._mac()
            while mac in in_use:
                mac = self.cluster._mac()
        devid = max((v.devid for v in dom.vifs), default=-1) + 1
        dom.vifs = [*dom.vifs, SimVif(devid, mac, bridge, rx_rate=20_000.0, tx_rate=10_000.0)]
        dom.vif_drops = (*dom.vif_drops, 0)
        self._changed(dom)
        if dom.pv_drivers:
            self._kernel(dom, self.clock.monotonic(), f"xen_netfront: Initialising Xen virtual ethernet driver "
                                                      f"(eth{len(dom.vifs) - 1}, {mac})")

    async def nic_detach(self, domain: str, nic: str) -> None:
        dom = self._domain(domain, action="network-detach")
        found = find_nic(dom.name, nic.strip(), await self.nics(dom.name))
        index = next(i for i, v in enumerate(dom.vifs) if v.devid == found.devid)
        dom.vifs = dom.vifs[:index] + dom.vifs[index + 1:]
        dom.vif_drops = dom.vif_drops[:index] + dom.vif_drops[index + 1:]
        self._changed(dom)

    # guest configs, create --------------------------------------------------------------------

    def _configs(self) -> dict[str, _Config]:
        hosts = _CONFIGS.setdefault(self.cluster, {})
        configs = hosts.setdefault(self.host.hostname, {c.path: c for c in _SPARE_CONFIGS})
        for dom in self.host.domains.values():
            if not dom.is_dom0:
                configs.setdefault(f"/etc/xen/{dom.name}.cfg", _config_of(dom))
        return configs

    async def guest_configs(self) -> list[GuestConfig]:
        self.cluster.advance()
        running = set(self.host.domains)
        return [
            GuestConfig(c.path, None, problem=c.problem) if c.problem else
            GuestConfig(c.path, c.name, c.type.value.lower(), c.memory_mib * 1024, c.maxmem_mib * 1024, c.vcpus,
                        c.disks, tuple(f"bridge={b}" for b in c.bridges), running=c.name in running)
            for c in sorted(self._configs().values(), key=lambda c: c.path)
        ]

    async def create(self, ref: str, *, paused: bool = False) -> str:
        path = check_host_path(ref, what="a guest config")
        self.cluster.advance()
        config = self._configs().get(path)
        if config is None:
            raise InvalidArgument(f"create: {path} does not exist on {self.host.hostname}")
        if config.problem:
            raise InvalidArgument(f"create: xl cannot read {path}: {config.problem}")
        if config.name in self.host.domains:
            raise InvalidArgument(f'create: a domain named {quoted(config.name)} already exists here (xl: '
                                  f'Domain with name "{config.name}" already exists)')
        memory_kib = config.memory_mib * 1024
        if memory_kib > self.host.free_kib:
            raise BackendError(f"create: {config.name} needs {format_kib(memory_kib)} but {self.host.hostname} has "
                               f"only {format_kib(self.host.free_kib)} free (xl: failed to free memory for the domain)")
        missing = [disk for disk in config.disks if disk not in self._files()]
        if missing:
            raise InvalidArgument(f"create: {config.name}'s disk {missing[0]} does not exist on {self.host.hostname}")
        now = self.clock.monotonic()
        dom = self.cluster._new_domain(self.host, config.name, config.type, (config.vcpus, config.maxvcpus),
                                       (config.memory_mib * MIB / GIB, config.maxmem_mib * MIB / GIB),
                                       LoadProfile(0.05, 0.05, 60), "local", True, now)
        dom.vbds = [SimVbd(51712 + 16 * i, f"xvd{'abcdefgh'[i]}", VbdBackend.BLKBACK, disk, 20.0, 10.0, 16)
                    for i, disk in enumerate(config.disks)]
        dom.vifs = [SimVif(devid, self.cluster._mac(), bridge, 20_000.0, 10_000.0)
                    for devid, bridge in enumerate(config.bridges)]
        dom.started_at = now
        dom.start_vcpus([0.0] * dom.vcpus_max)
        dom.start_devices()
        dom.kernel_log = []
        dom.log(now, f"Linux version 6.1.0-27-amd64 ({dom.name}) #1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1")
        dom.paused = paused
        self.host.domains[dom.name] = dom
        return dom.name

    # snapshots while paused ------------------------------------------------------------------

    def _snapshots(self) -> list[tuple[str, Snapshot]]:
        return _SNAPSHOTS.setdefault(self.cluster, {}).setdefault(self.host.hostname, [])

    def _vg_free(self) -> int:
        return VG_FREE_BYTES - sum(s.size_bytes or 0 for _, s in self._snapshots() if s.path.startswith("/dev/vg0/"))

    async def snapshot_sources(self, domain: str) -> list[SnapshotSource]:
        dom = self._domain(domain, action="snapshot", allow_dom0=False, need_active=False)
        sources = []
        for vbd in dom.vbds:
            if vbd.path.startswith("/dev/vg0/"):
                sources.append(SnapshotSource(vbd.device, vbd.path, "lv", DISK_BYTES, "vg0", self._vg_free()))
            elif vbd.path.endswith(".iso") or vbd.readonly:
                sources.append(SnapshotSource(vbd.device, vbd.path, "none", DISK_BYTES,
                                              reason="read-only: it cannot change, nothing to keep"))
            else:  # shared storage here is XFS with reflink: a copy shares the blocks
                sources.append(SnapshotSource(vbd.device, vbd.path, "file", DISK_BYTES,
                                              reflink=vbd.path.startswith("/srv/shared/")))
        return sources

    async def snapshots(self, domain: str) -> list[Snapshot]:
        self._domain(domain, action="snapshot", allow_dom0=False, need_active=False)
        return [snapshot for owner, snapshot in self._snapshots() if owner == domain]

    async def snapshot_create(self, domain: str, tag: str, *, cow_bytes: int = 1 << 30) -> SnapshotResult:
        dom = self._domain(domain, action="snapshot", allow_dom0=False)
        taking = check_snapshot_plan(await self.snapshot_sources(domain), cow_bytes, tag)
        existing = {s.name for _, s in self._snapshots()} | self._files()
        planned = []
        for source in taking:
            if source.kind == "lv":
                name = snapshot_name(source.path, tag)
                planned.append((source, name, f"/dev/vg0/{name}", cow_bytes))
            else:
                path = f"{source.path}.{tag.strip()}"
                planned.append((source, path, path, source.size_bytes or DISK_BYTES))
        for _, name, path, _ in planned:
            if name in existing or path in existing:
                raise InvalidArgument(f"snapshot: {path} exists already: choose another tag")

        async def take() -> tuple[Snapshot, ...]:
            taken = []
            for source, name, path, size in planned:
                if source.kind == "lv":
                    await self.clock.sleep(LVCREATE_S)
                elif not source.reflink:
                    await self.clock.sleep(size / SLOW_COPY_BYTES_S)
                snapshot = Snapshot(name, source.vdev, path, size, self.clock.wall())
                self._snapshots().append((dom.name, snapshot))
                taken.append(snapshot)
            return tuple(taken)

        async def pause() -> None:
            dom.paused = True

        async def unpause() -> None:
            dom.paused = False

        taken, paused_s = await while_paused(pause, unpause, take, already_paused=dom.paused,
                                             clock=self.clock.monotonic)
        self._kernel(dom, self.clock.monotonic(), f"xen: paused {paused_s:.2f} s for a snapshot")
        return SnapshotResult(taken, paused_s)

    async def snapshot_delete(self, domain: str, name: str) -> None:
        self._domain(domain, action="snapshot", allow_dom0=False, need_active=False)
        snapshots = self._snapshots()
        for index, (owner, snapshot) in enumerate(snapshots):
            if owner == domain and name in (snapshot.name, snapshot.path):
                del snapshots[index]
                return
        raise InvalidArgument(f"{domain} has no snapshot {quoted(name)}")
