"""Plain data shared by every layer: what a backend sampled, and rates derived from two samples.

Backends fill `Sample`s with cumulative counters exactly as the hypervisor reports them.
Rates are computed here and only here (`compute_rates`), so the TUI, the batch formats and
the tests all agree on what "CPU %" or "bytes/s" means.
"""

from __future__ import annotations

import enum
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


@dataclass(slots=True)
class Vcpu:
    index: int
    online: bool
    cpu_ns: int


@dataclass(slots=True)
class Vif:
    """One guest NIC, counted from the guest's side as xentop does (RX = received by the guest)."""

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


@dataclass(slots=True)
class Domain:
    id: int
    name: str
    uuid: str
    type: DomainType
    flags: DomainFlag
    cpu_ns: int
    mem_kib: int
    maxmem_kib: int | None  # None: no limit
    vcpus: list[Vcpu] = field(default_factory=list)
    vcpus_max: int = 0
    vifs: list[Vif] = field(default_factory=list)
    vbds: list[Vbd] = field(default_factory=list)
    sched_weight: int | None = None
    sched_cap: int | None = None
    ssid: int = 0
    target_kib: int | None = None  # the balloon target, when the backend knows it

    @property
    def key(self) -> str:
        """Stable identity across refreshes; survives domid changes (restore, reboot)."""
        return self.uuid or f"{self.id}:{self.name}"

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

    @property
    def used_kib(self) -> int:
        return self.total_kib - self.free_kib


@dataclass(slots=True)
class Sample:
    """One poll: host plus every domain, with cumulative counters.

    ``monotonic`` is for rates (seconds, never goes back); ``wall`` is for display (epoch seconds).
    """

    monotonic: float
    wall: float
    host: Host
    domains: list[Domain]

    def by_key(self) -> dict[str, Domain]:
        return {domain.key: domain for domain in self.domains}

    def state_counts(self) -> dict[DomainState, int]:
        counts = dict.fromkeys(DomainState, 0)
        for domain in self.domains:
            counts[domain.state] += 1
        return counts


# --- rates -------------------------------------------------------------------------------

_WRAP_WIDTHS = (32, 64)


def counter_delta(previous: int, current: int) -> int:
    """How much a cumulative counter grew, robust to wraps and resets.

    A counter that went backwards either wrapped at 32 or 64 bits (the wrapped distance is
    then small against the counter's range) or was reset (a restored or rebooted domain, a
    re-plugged vif): then the new value is all that is known to have happened since.
    """
    if current >= previous:
        return current - previous
    for bits in _WRAP_WIDTHS:
        modulus = 1 << bits
        if previous < modulus:
            wrapped = modulus - previous + current
            if wrapped < modulus >> 2:
                return wrapped
    return current


@dataclass(slots=True, frozen=True)
class VifRates:
    rx_bytes_s: float
    tx_bytes_s: float
    rx_packets_s: float
    tx_packets_s: float


@dataclass(slots=True, frozen=True)
class VbdRates:
    rd_reqs_s: float
    wr_reqs_s: float
    oo_reqs_s: float
    rd_bytes_s: float
    wr_bytes_s: float


@dataclass(slots=True, frozen=True)
class DomainRates:
    """Per-second rates over one interval. CPU % is of one physical CPU, as xentop (can exceed 100)."""

    interval_s: float
    cpu_pct: float
    vcpu_pct: dict[int, float]
    net_rx_bytes_s: float
    net_tx_bytes_s: float
    vifs: dict[int, VifRates]
    vbd_rd_reqs_s: float
    vbd_wr_reqs_s: float
    vbd_oo_reqs_s: float
    vbd_rd_bytes_s: float
    vbd_wr_bytes_s: float
    vbds: dict[int, VbdRates]


def _domain_rates(old: Domain, new: Domain, seconds: float) -> DomainRates:
    # Same domain under a new domid (restored, rebooted, migrated back): every counter
    # restarted from zero, whatever the old values were.
    restarted = old.id != new.id

    def per_s(a: int, b: int) -> float:
        return counter_delta(0 if restarted else a, b) / seconds

    old_vcpus = {vcpu.index: vcpu for vcpu in old.vcpus}
    vcpu_pct = {
        vcpu.index: per_s(old_vcpus[vcpu.index].cpu_ns, vcpu.cpu_ns) / 1e7
        for vcpu in new.vcpus
        if vcpu.index in old_vcpus
    }
    old_vifs = {vif.devid: vif for vif in old.vifs}
    vifs = {}
    for vif in new.vifs:
        before = old_vifs.get(vif.devid)
        if before is None:
            continue
        vifs[vif.devid] = VifRates(
            rx_bytes_s=per_s(before.rx_bytes, vif.rx_bytes),
            tx_bytes_s=per_s(before.tx_bytes, vif.tx_bytes),
            rx_packets_s=per_s(before.rx_packets, vif.rx_packets),
            tx_packets_s=per_s(before.tx_packets, vif.tx_packets),
        )
    old_vbds = {vbd.devid: vbd for vbd in old.vbds}
    vbds = {}
    for vbd in new.vbds:
        before = old_vbds.get(vbd.devid)
        if before is None or before.error or vbd.error:
            continue
        vbds[vbd.devid] = VbdRates(
            rd_reqs_s=per_s(before.rd_reqs, vbd.rd_reqs),
            wr_reqs_s=per_s(before.wr_reqs, vbd.wr_reqs),
            oo_reqs_s=per_s(before.oo_reqs, vbd.oo_reqs),
            rd_bytes_s=per_s(before.rd_sectors, vbd.rd_sectors) * SECTOR_BYTES,
            wr_bytes_s=per_s(before.wr_sectors, vbd.wr_sectors) * SECTOR_BYTES,
        )
    return DomainRates(
        interval_s=seconds,
        cpu_pct=per_s(old.cpu_ns, new.cpu_ns) / 1e7,
        vcpu_pct=vcpu_pct,
        net_rx_bytes_s=sum(r.rx_bytes_s for r in vifs.values()),
        net_tx_bytes_s=sum(r.tx_bytes_s for r in vifs.values()),
        vifs=vifs,
        vbd_rd_reqs_s=sum(r.rd_reqs_s for r in vbds.values()),
        vbd_wr_reqs_s=sum(r.wr_reqs_s for r in vbds.values()),
        vbd_oo_reqs_s=sum(r.oo_reqs_s for r in vbds.values()),
        vbd_rd_bytes_s=sum(r.rd_bytes_s for r in vbds.values()),
        vbd_wr_bytes_s=sum(r.wr_bytes_s for r in vbds.values()),
        vbds=vbds,
    )


def compute_rates(previous: Sample | None, current: Sample) -> dict[str, DomainRates]:
    """Rates for every domain present in both samples, keyed by `Domain.key`.

    A domain absent from ``previous`` (new, restored under a new uuid) has no rates yet,
    as in xentop's first iteration. A non-positive interval yields no rates at all.
    """
    if previous is None:
        return {}
    seconds = current.monotonic - previous.monotonic
    if seconds <= 0:
        return {}
    before = previous.by_key()
    rates = {}
    for domain in current.domains:
        old = before.get(domain.key)
        if old is not None:
            rates[domain.key] = _domain_rates(old, domain, seconds)
    return rates
