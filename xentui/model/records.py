"""The records a backend fills: one `Domain` per domain (its vCPUs, vifs and vbds), the `Host`, the state flags.

Counters are cumulative, exactly as the hypervisor reports them; `xentui.model.rates` derives rates from two of them.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

KIB = 1024
SECTOR_BYTES = 512


class DomainType(enum.StrEnum):
    PV = "pv"
    HVM = "hvm"
    PVH = "pvh"
    UNKNOWN = "unknown"


class DomainFlag(enum.Flag):
    """The six state bits libxenstat reports; more than one may be set (a crashed domain is also shut down)."""

    NONE = 0
    DYING = enum.auto()
    SHUTDOWN = enum.auto()
    BLOCKED = enum.auto()
    CRASHED = enum.auto()
    PAUSED = enum.auto()
    RUNNING = enum.auto()


# xentop prints the flags in this order, one letter each or '-'.
FLAG_LETTERS: tuple[tuple[DomainFlag, str], ...] = (
    (DomainFlag.DYING, "d"),
    (DomainFlag.SHUTDOWN, "s"),
    (DomainFlag.BLOCKED, "b"),
    (DomainFlag.CRASHED, "c"),
    (DomainFlag.PAUSED, "p"),
    (DomainFlag.RUNNING, "r"),
)


class DomainState(enum.StrEnum):
    RUNNING = "running"
    BLOCKED = "blocked"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"
    CRASHED = "crashed"
    DYING = "dying"


@functools.cache
def flags_string(flags: DomainFlag) -> str:
    """xentop's six-letter STATE column, e.g. ``--b---``."""
    return "".join(letter if flag in flags else "-" for flag, letter in FLAG_LETTERS)


def parse_flags(text: str) -> DomainFlag:
    """Inverse of `flags_string`; unknown letters are ignored."""
    result = DomainFlag.NONE
    for (flag, letter), char in zip(FLAG_LETTERS, text, strict=False):
        if char == letter:
            result |= flag
    return result


@functools.cache
def state_of(flags: DomainFlag) -> DomainState:
    """One word for the operator; the most serious condition wins.

    A domain with no bit set has runnable vCPUs waiting for a physical CPU, which an
    operator calls running.
    """
    for flag, state in (
        (DomainFlag.DYING, DomainState.DYING),
        (DomainFlag.CRASHED, DomainState.CRASHED),
        (DomainFlag.SHUTDOWN, DomainState.SHUTDOWN),
        (DomainFlag.PAUSED, DomainState.PAUSED),
        (DomainFlag.RUNNING, DomainState.RUNNING),
        (DomainFlag.BLOCKED, DomainState.BLOCKED),
    ):
        if flag in flags:
            return state
    return DomainState.RUNNING


# Names for `Domain.unknown`: a driver that returns no such figure (libvirt omits what it lacks).
UNKNOWN_CPU = "cpu_ns"
UNKNOWN_MEM = "mem_kib"
UNKNOWN_MAXMEM = "maxmem_kib"
UNKNOWN_VCPUS = "vcpus"
UNKNOWN_NET = "net"  # at least one vif's counters
UNKNOWN_VBD = "vbd"  # at least one vbd's counters (also marked per vbd with `Vbd.error`)
UNKNOWN_VBD_SECTORS = "vbd_sectors"  # the vbds' sector counters (an old xentop log has no such columns)
UNKNOWN_VCPU_TIMES = "vcpu_times"  # each vCPU's time (the online ones are known): no per-vCPU rates


@dataclass(slots=True)
class Vcpu:
    index: int
    online: bool
    cpu_ns: int


@dataclass(slots=True)
class Vif:
    """One guest NIC, counted from the guest's side (RX = received by the guest), as libvirt counts. xentop (and
    libxenstat, /proc/net/dev) count at dom0's end of the vif, the other way round: its NETTX is what the guest
    received. The xentop formats swap them back."""

    devid: int
    ifname: str  # dom0's side, vifD.N
    mac: str = ""
    bridge: str | None = None
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_drops: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_drops: int = 0
    error: bool = False  # the counters could not be read this time (zeros here, not figures; marked UNKNOWN_NET)


class VbdBackend(enum.StrEnum):
    BLKBACK = "blkback"
    BLKTAP = "blktap"
    TAPDISK3 = "tapdisk3"
    QDISK = "qdisk"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class Vbd:
    devid: int  # the vdev number xentop prints (51712 = xvda)
    device: str  # guest-side name, e.g. xvda
    backend: VbdBackend = VbdBackend.BLKBACK
    path: str = ""  # what backs it in dom0: a file, an LV, a device
    oo_reqs: int = 0
    rd_reqs: int = 0
    wr_reqs: int = 0
    rd_sectors: int = 0
    wr_sectors: int = 0
    error: bool = False  # the statistics could not be read (xentop prints '-')


@dataclass(slots=True, frozen=True)
class DeviceModel:
    """An HVM guest's device model, the process in dom0 that emulates its hardware (QEMU; ``qemu-dm`` of old):
    what the guest costs dom0, beside what Xen counts for it. Cumulative, like every counter here."""

    pid: int
    program: str  # its argv[0], e.g. /usr/libexec/xen-qemu-system-i386
    cpu_ns: int  # user + system time so far
    rss_kib: int  # resident memory now

    def cpu_pct(self, before: DeviceModel | None, seconds: float) -> float | None:
        """% of one CPU since BEFORE (the same process SECONDS earlier); None when not comparable."""
        if before is None or before.pid != self.pid or seconds <= 0 or self.cpu_ns < before.cpu_ns:
            return None
        return (self.cpu_ns - before.cpu_ns) / (seconds * 1e9) * 100


LIBXL_MAXMEM_CONSTANT_KIB = 1024
"""What libxl adds to a memory target (or to maxmem, at mem-max) when it sets Xen's limit of a domain."""


@dataclass(slots=True)
class Domain:
    id: int
    name: str
    uuid: str
    type: DomainType
    flags: DomainFlag
    cpu_ns: int
    mem_kib: int
    maxmem_kib: int | None  # Xen's current limit, what xentop prints as MAXMEM(k); None: no limit
    vcpus: Sequence[Vcpu] = field(default_factory=list)  # a backend may make the records when first read
    vcpus_max: int = 0
    vifs: list[Vif] = field(default_factory=list)
    vbds: list[Vbd] = field(default_factory=list)
    sched_weight: int | None = None
    sched_cap: int | None = None
    ssid: int = 0
    target_kib: int | None = None  # the balloon target, when the backend knows it
    # The configured static maximum (libxl's memory/static-max): the ceiling mem-set may reach. libxl lowers
    # Xen's limit (maxmem_kib) to the target + 1 MiB at each mem-set and raises it again up to this one.
    # None where the backend knows no other ceiling than maxmem_kib.
    static_maxmem_kib: int | None = None
    # Fields the backend could not read this time (UNKNOWN_* names): shown as unknown, never as 0.
    unknown: frozenset[str] = frozenset()
    host: str = ""  # the pool host it is on (its name in the pool); "" when xentui watches one host
    device_model: DeviceModel | None = None  # an HVM guest's, where the backend finds it (xl: in dom0)
    pv_drivers: bool | None = None  # an HVM guest's PV drivers are up; None: not known (or not HVM)
    # When its counters were read (time.monotonic()), by a backend that reads domain after domain (calls of its
    # own, over a refresh that lasts milliseconds): its rates are then over its own interval. None: when the
    # sample was taken, as for every domain read at once. A backend gives it to every domain of a sample or none.
    read_at: float | None = None

    @property
    def mem_ceiling_kib(self) -> int | None:
        """What mem-set may reach (None: no limit): the static maximum where known, else Xen's limit."""
        return self.maxmem_kib if self.static_maxmem_kib is None else self.static_maxmem_kib

    @property
    def key(self) -> str:
        """Stable identity across refreshes; survives domid changes (restore, reboot). In a pool it starts
        with the host: every Domain-0 has the same uuid, and a migrating guest is on two hosts at once."""
        own = self.uuid or f"{self.id}:{self.name}"
        return f"{self.host}/{own}" if self.host else own

    @property
    def state(self) -> DomainState:
        return state_of(self.flags)

    @property
    def flags_text(self) -> str:
        return flags_string(self.flags)

    @property
    def vcpus_online(self) -> int:
        return sum(1 for vcpu in self.vcpus if vcpu.online)

    @property
    def vcpus_total(self) -> int:
        """Every vCPU, online or not: what xentop's VCPUS counts (libxenstat uses max_vcpu_id + 1),
        so a guest started with vcpus=4 and maxvcpus=8 counts 8."""
        return max(self.vcpus_max, len(self.vcpus))

    @property
    def is_dom0(self) -> bool:
        return self.id == 0

    def vbd_totals(self) -> VbdTotals | None:
        """Sums over readable vbds; None when every vbd errored (xentop prints '-')."""
        readable = [vbd for vbd in self.vbds if not vbd.error]
        if self.vbds and not readable:
            return None
        return VbdTotals(
            oo_reqs=sum(v.oo_reqs for v in readable),
            rd_reqs=sum(v.rd_reqs for v in readable),
            wr_reqs=sum(v.wr_reqs for v in readable),
            rd_sectors=sum(v.rd_sectors for v in readable),
            wr_sectors=sum(v.wr_sectors for v in readable),
        )

    @property
    def net_tx_bytes(self) -> int:
        return sum(vif.tx_bytes for vif in self.vifs)

    @property
    def net_rx_bytes(self) -> int:
        return sum(vif.rx_bytes for vif in self.vifs)


@dataclass(slots=True, frozen=True)
class VbdTotals:
    oo_reqs: int
    rd_reqs: int
    wr_reqs: int
    rd_sectors: int
    wr_sectors: int


@dataclass(slots=True)
class Host:
    hostname: str
    hypervisor: str  # "Xen", "QEMU", ...
    version: str  # e.g. "4.17.3"
    nr_cpus: int
    cpu_mhz: int
    total_kib: int
    free_kib: int
    scheduler: str = "credit"
    cpu_vendor: str = ""
    cpu_features: frozenset[str] = frozenset()
    managed_by: str | None = None  # another toolstack owns the domains ("xapi"): xentui only watches

    @property
    def used_kib(self) -> int:
        return self.total_kib - self.free_kib
