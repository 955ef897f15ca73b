"""The model's records of a simulated host's domains (`Sample.domains`, `Sample.columns`), and the lazy tricks
that keep a sample of a thousand domains cheap: columns copied in C-level passes, records made when first read."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import attrgetter, ge, itemgetter, mul, not_, or_, sub
from typing import TYPE_CHECKING, TypeVar, overload

from xentui.backends.sim.domain import _STATIC_AT, SimDomain, SimVbd, SimVif, Status, VcpuSplit
from xentui.model import Domain, DomainColumns, DomainFlag, DomainType, LazyDomains, Vbd, Vcpu, Vif
from xentui.model.records import DeviceModel

if TYPE_CHECKING:
    from xentui.backends.sim.cluster import SimHost

R = TypeVar("R")


class _Records(Sequence[R]):
    """A sampled domain's records of one kind, made when first read (details, sub-rows, batch output):
    a refresh of a thousand domains reads only `Sample.columns`."""

    # None until first read; each subclass's __init__ sets it, and its __len__ (no super() call, for speed)
    __slots__ = ("_records",)
    _records: list[R] | None

    def _make(self) -> list[R]:
        raise NotImplementedError

    def _made(self) -> list[R]:
        if self._records is None:
            self._records = self._make()
        return self._records

    @overload
    def __getitem__(self, index: int) -> R: ...
    @overload
    def __getitem__(self, index: slice) -> list[R]: ...
    def __getitem__(self, index: int | slice) -> R | list[R]:
        return self._made()[index]

    def __iter__(self) -> Iterator[R]:
        return iter(self._made())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, _Records)) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(self._made())


class VcpuTimes(_Records[Vcpu]):
    __slots__ = ("_cpu", "_split", "_uneven")

    def __init__(self, split: VcpuSplit, cpu: float, uneven: float) -> None:
        self._split, self._cpu, self._uneven, self._records = split, cpu, uneven, None

    def _make(self) -> list[Vcpu]:
        online = self._split.online
        return [Vcpu(index, index < online, int(ns))
                for index, ns in enumerate(self._split.times(self._cpu, self._uneven))]

    def __len__(self) -> int:
        return len(self._split.bases)


def _net_counters(vif: SimVif, net: float) -> tuple[int, int, int, int]:
    """rx bytes, rx packets, tx bytes, tx packets after ``net`` seconds of full activity."""
    rx, tx = vif.rx_rate * net, vif.tx_rate * net
    return int(rx), int(rx / 900), int(tx), int(tx / 700)


def _disk_counters(vbd: SimVbd, disk: float) -> tuple[int, int, int, int]:
    """read and write requests, read and write sectors after ``disk`` seconds of full activity."""
    rd, wr = vbd.rd_rate * disk, vbd.wr_rate * disk
    return int(rd), int(wr), int(rd * vbd.sectors_per_req), int(wr * vbd.sectors_per_req)


class VifRecords(_Records[Vif]):
    __slots__ = ("_domid", "_drops", "_net", "_vifs")

    def __init__(self, vifs: list[SimVif], domid: int, net: float, drops: tuple[int, ...]) -> None:
        self._vifs, self._domid, self._net, self._drops, self._records = vifs, domid, net, drops, None

    def _make(self) -> list[Vif]:
        records = []
        for vif, drops in zip(self._vifs, self._drops, strict=True):
            rx, rx_packets, tx, tx_packets = _net_counters(vif, self._net)
            records.append(Vif(vif.devid, f"vif{self._domid}.{vif.devid}", vif.mac, vif.bridge, rx, rx_packets, 0,
                               drops, tx, tx_packets, 0, 0))
        return records

    def __len__(self) -> int:  # NETS, without making the records
        return len(self._vifs)


class VbdRecords(_Records[Vbd]):
    __slots__ = ("_disk", "_full", "_vbds")

    def __init__(self, vbds: list[SimVbd], disk: float, ring_full: tuple[int, ...]) -> None:
        self._vbds, self._disk, self._full, self._records = vbds, disk, ring_full, None

    def _make(self) -> list[Vbd]:
        return [Vbd(vbd.devid, vbd.device, vbd.backend, vbd.path, full, *_disk_counters(vbd, self._disk))
                for vbd, full in zip(self._vbds, self._full, strict=True)]

    def __len__(self) -> int:  # VBDS, without making the records
        return len(self._vbds)


def sample_host(host: SimHost) -> tuple[LazyDomains, DomainColumns]:
    """Every domain of the host as columns, copied in C-level passes (no Python call per domain), and
    its records, each made from those columns when first read."""
    doms = list(host.domains.values())
    devices = host.devices_of(doms)
    ids = list(map(attrgetter("domid"), doms))
    statics = [dom.static or dom.static_fields() for dom in doms]
    demands = map(attrgetter("last_demand"), doms)
    # dom0 runs xentui itself; a guest is on a CPU when it wants at least half of its vCPUs
    halves = map(mul, repeat(0.5), map(max, repeat(1), map(attrgetter("vcpus_online"), doms)))
    on_cpu = map(or_, map(not_, ids), map(ge, demands, halves))
    flags = list(map(_FLAGS.__getitem__, zip(map(attrgetter("status"), doms), map(attrgetter("paused"), doms),
                                              on_cpu, strict=True)))
    cpus = list(map(attrgetter("cpu"), doms))
    cpu = list(map(itemgetter(0), cpus))
    cpu_ns = list(map(int, cpu))
    ios = list(map(attrgetter("io"), doms))
    net, disk = list(map(itemgetter(0), ios)), list(map(itemgetter(1), ios))
    ring_full = list(map(attrgetter("vbd_ring_full"), doms))
    # The totals of what VifRecords and VbdRecords give (_net_counters, _disk_counters): device by
    # device, then summed per domain.
    vif_net = list(map(net.__getitem__, devices.vif_owner))
    vbd_disk = list(map(disk.__getitem__, devices.vbd_owner))
    reads = list(map(mul, devices.rd_rate, vbd_disk))
    writes = list(map(mul, devices.wr_rate, vbd_disk))
    mem_kib = list(map(int, map(attrgetter("mem_kib"), doms)))
    columns = DomainColumns(
        keys=list(map(itemgetter(_STATIC_AT["uuid"]), statics)),  # a simulated domain always has a uuid
        names=list(map(itemgetter(_STATIC_AT["name"]), statics)), ids=ids, flags=flags,
        cpu_ns=cpu_ns,
        net_rx_bytes=devices.vif_sums(map(int, map(mul, devices.rx_rate, vif_net))),
        net_tx_bytes=devices.vif_sums(map(int, map(mul, devices.tx_rate, vif_net))),
        vbd_rd_reqs=devices.vbd_sums(map(int, reads)),
        vbd_wr_reqs=devices.vbd_sums(map(int, writes)),
        vbd_oo_reqs=list(map(sum, ring_full)),
        vbd_rd_sectors=devices.vbd_sums(map(int, map(mul, reads, devices.sectors_per_req))),
        vbd_wr_sectors=devices.vbd_sums(map(int, map(mul, writes, devices.sectors_per_req))),
        layouts=list(map(itemgetter(_STATIC_AT["layout"]), statics)), mem_kib=mem_kib,
    )
    state = _SampledState(statics, ids, flags, cpu_ns, mem_kib, cpu,
                          list(map(itemgetter(1), cpus)), net, list(map(attrgetter("vif_drops"), doms)), disk,
                          ring_full, doms)
    return SampledDomains(state), columns


@dataclass(slots=True, frozen=True)
class _SampledState:
    """A host's domains as one sample saw them, column by column (each in the host's domain order)."""

    statics: list[tuple]  # SimDomain.static_fields()
    ids: list[int]
    flags: list[DomainFlag]
    cpu_ns: list[int]
    mem_kib: list[int]
    cpu: list[float]
    uneven: list[float]
    net: list[float]
    drops: list[tuple[int, ...]]
    disk: list[float]
    ring_full: list[tuple[int, ...]]
    domains: list[SimDomain]  # for an HVM guest's device model and PV drivers, read when its record is made

    def record(self, i: int, host: str = "") -> Domain:
        (name, uuid, dtype, xen_maxmem_kib, maxmem_kib, vcpus_max, vifs, vbds, weight, cap, ssid, target_kib, split,
         _) = self.statics[i]
        domid = self.ids[i]
        return Domain(domid, name, uuid, dtype, self.flags[i], self.cpu_ns[i], self.mem_kib[i], xen_maxmem_kib,
                      VcpuTimes(split, self.cpu[i], self.uneven[i]), vcpus_max,
                      VifRecords(vifs, domid, self.net[i], self.drops[i]),
                      VbdRecords(vbds, self.disk[i], self.ring_full[i]), weight, cap, ssid, target_kib, maxmem_kib,
                      host=host, **(self._hvm(i) if dtype is DomainType.HVM else {}))

    def _hvm(self, i: int) -> dict[str, object]:
        """A simulated HVM guest's device model (as the xl backend finds one in dom0: a QEMU process whose CPU
        grows with the guest's CPU and I/O, about 40 MiB resident) and whether its PV drivers are up."""
        dom = self.domains[i]
        cpu_ns = int(self.cpu_ns[i] * 0.03 + (self.net[i] + self.disk[i]) * 2e7)
        model = DeviceModel(pid=1000 + dom.salt % 60_000, program="/usr/libexec/xen-qemu-system-i386",
                            cpu_ns=cpu_ns, rss_kib=36_864 + (dom.salt >> 8) % 16_384)
        return {"device_model": model, "pv_drivers": dom.pv_drivers}


@dataclass(slots=True)
class _Devices:
    """Every vif and vbd of a host's domains, flattened in domain order, with the rates that do not change:
    a sample works out every domain's device totals in C-level passes over these."""

    domains: list[SimDomain]  # the domains, in the order these were made for
    vif_owner: list[int]  # each vif's domain, as a position in ``domains``
    rx_rate: list[float]
    tx_rate: list[float]
    vif_bounds: tuple[list[int], list[int]]  # each domain's first vif and one past its last
    vbd_owner: list[int]
    rd_rate: list[float]
    wr_rate: list[float]
    sectors_per_req: list[int]
    vbd_bounds: tuple[list[int], list[int]]

    @classmethod
    def of(cls, domains: list[SimDomain]) -> _Devices:
        vifs = [(position, vif) for position, dom in enumerate(domains) for vif in dom.vifs]
        vbds = [(position, vbd) for position, dom in enumerate(domains) for vbd in dom.vbds]
        return cls(
            domains, [position for position, _ in vifs], [vif.rx_rate for _, vif in vifs],
            [vif.tx_rate for _, vif in vifs], _bounds([len(dom.vifs) for dom in domains]),
            [position for position, _ in vbds], [vbd.rd_rate for _, vbd in vbds], [vbd.wr_rate for _, vbd in vbds],
            [vbd.sectors_per_req for _, vbd in vbds], _bounds([len(dom.vbds) for dom in domains]),
        )

    def vif_sums(self, values: Iterable[int]) -> list[int]:
        return _sums(values, self.vif_bounds)

    def vbd_sums(self, values: Iterable[int]) -> list[int]:
        return _sums(values, self.vbd_bounds)


def _bounds(counts: list[int]) -> tuple[list[int], list[int]]:
    ends = list(accumulate(counts))
    return [end - count for end, count in zip(ends, counts, strict=True)], ends


def _sums(values: Iterable[int], bounds: tuple[list[int], list[int]]) -> list[int]:
    """Per-domain sums of per-device values, by differences of running totals (all C-level)."""
    running = list(accumulate(values, initial=0))
    starts, ends = bounds
    return list(map(sub, map(running.__getitem__, ends), map(running.__getitem__, starts)))


class _SampledDomains(LazyDomains):
    """A sampled host's domains, each record made from the state's columns when first read."""

    __slots__ = ("_state",)

    def __init__(self, state: _SampledState) -> None:
        super().__init__(len(state.ids), state.record)
        self._state = state

    def with_host(self, host: str) -> LazyDomains:
        """The same records with `Domain.host` set (a pool's), each made directly when first read: not a
        record and then its copy under the host."""
        record = self._state.record
        return LazyDomains(len(self), lambda i: record(i, host))


def SampledDomains(state: _SampledState) -> LazyDomains:  # noqa: N802 - the name it had as a class
    """A sampled host's domains, each record made from the state's columns when first read."""
    return _SampledDomains(state)


def _flag_table() -> dict[tuple[str, bool, bool], DomainFlag]:
    life = {
        Status.ACTIVE: DomainFlag.NONE,
        Status.SHUTDOWN: DomainFlag.SHUTDOWN,
        Status.CRASHED: DomainFlag.SHUTDOWN | DomainFlag.CRASHED,
        Status.DYING: DomainFlag.DYING,
    }
    table = {}
    for status, base in life.items():
        for paused in (False, True):
            for on_cpu in (False, True):
                flags = base
                if paused:
                    flags |= DomainFlag.PAUSED
                elif status == Status.ACTIVE:
                    flags |= DomainFlag.RUNNING if on_cpu else DomainFlag.BLOCKED
                table[(status, paused, on_cpu)] = flags
    return table


_FLAGS = _flag_table()  # (status, paused, on a CPU) -> xentop's flags
