"""Plain data shared by every layer: what a backend sampled, and rates derived from two samples.

Backends fill `Sample`s with cumulative counters exactly as the hypervisor reports them.
Rates are computed here and only here (`compute_rates`), so the TUI, the batch formats and
the tests all agree on what "CPU %" or "bytes/s" means.
"""

from __future__ import annotations

import enum
import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter

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
    vcpus: Sequence[Vcpu] = field(default_factory=list)  # a backend may make the records when first read
    vcpus_max: int = 0
    vifs: list[Vif] = field(default_factory=list)
    vbds: list[Vbd] = field(default_factory=list)
    sched_weight: int | None = None
    sched_cap: int | None = None
    ssid: int = 0
    target_kib: int | None = None  # the balloon target, when the backend knows it
    # Fields the backend could not read this time (UNKNOWN_* names): shown as unknown, never as 0.
    unknown: frozenset[str] = frozenset()

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
    _keys: list[str] | None = field(default=None, init=False, repr=False, compare=False)

    def keys(self) -> list[str]:
        """Each domain's `Domain.key`, in order: worked out once, as the rates and the table both need them."""
        if self._keys is None:
            self._keys = [domain.key for domain in self.domains]
        return self._keys

    def by_key(self) -> dict[str, Domain]:
        return dict(zip(self.keys(), self.domains, strict=True))

    def state_counts(self) -> dict[DomainState, int]:
        counts = dict.fromkeys(DomainState, 0)
        # counted by flag combination first (a C-level pass): a handful of distinct ones, whatever the count
        for flags, count in Counter(map(attrgetter("flags"), self.domains)).items():
            counts[state_of(flags)] += count
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


def _pairs(before: list, after: list) -> list[tuple] | zip:
    """(old, new) for each device present in both samples, matched by devid."""
    if len(before) == len(after) == 1:  # the usual case, without building a dict
        return zip(before, after) if before[0].devid == after[0].devid else []  # noqa: B905 - lengths checked
    if not after:
        return []
    earlier = {device.devid: device for device in before}
    return [(earlier[device.devid], device) for device in after if device.devid in earlier]


def _at_start(domain: Domain) -> Domain:
    """The domain as it was when it (re)started: the same devices, every counter at zero."""
    return Domain(domain.id, domain.name, domain.uuid, domain.type, domain.flags, 0, 0, None,
                  vcpus=[Vcpu(vcpu.index, vcpu.online, 0) for vcpu in domain.vcpus],
                  vifs=[Vif(vif.devid, vif.ifname) for vif in domain.vifs],
                  vbds=[Vbd(vbd.devid, vbd.device) for vbd in domain.vbds])


class DomainRates:
    """Per-second rates of one domain over one interval. CPU % is of one physical CPU, as xentop (can exceed 100).

    The domain totals are computed at once; per-vCPU, per-vif and per-vbd figures only when
    asked for (details, sub-rows), so a refresh of a thousand domains pays only for totals.
    """

    __slots__ = (
        "_new", "_old", "_vbds", "_vcpu_pct", "_vifs", "cpu_pct", "interval_s",
        "net_rx_bytes_s", "net_tx_bytes_s", "vbd_oo_reqs_s", "vbd_rd_bytes_s", "vbd_rd_reqs_s",
        "vbd_wr_bytes_s", "vbd_wr_reqs_s",
    )

    def __init__(self, old: Domain, new: Domain, seconds: float) -> None:
        # Same domain under a new domid (restored, rebooted, migrated back): every counter
        # restarted from zero, whatever the old values were.
        if old.id != new.id:
            old = _at_start(new)
        self._old, self._new = old, new
        self.interval_s = seconds
        self._vcpu_pct: dict[int, float] | None = None
        self._vifs: dict[int, VifRates] | None = None
        self._vbds: dict[int, VbdRates] | None = None
        self.cpu_pct = counter_delta(old.cpu_ns, new.cpu_ns) / seconds / 1e7
        rx = tx = 0
        for prior, vif in _pairs(old.vifs, new.vifs):
            if prior is vif:  # the backend kept the device's record: nothing moved
                continue
            rx += counter_delta(prior.rx_bytes, vif.rx_bytes)
            tx += counter_delta(prior.tx_bytes, vif.tx_bytes)
        self.net_rx_bytes_s = rx / seconds
        self.net_tx_bytes_s = tx / seconds
        rd = wr = oo = rsect = wsect = 0
        for prior_vbd, vbd in _pairs(old.vbds, new.vbds):
            if prior_vbd is vbd or prior_vbd.error or vbd.error:
                continue
            rd += counter_delta(prior_vbd.rd_reqs, vbd.rd_reqs)
            wr += counter_delta(prior_vbd.wr_reqs, vbd.wr_reqs)
            oo += counter_delta(prior_vbd.oo_reqs, vbd.oo_reqs)
            rsect += counter_delta(prior_vbd.rd_sectors, vbd.rd_sectors)
            wsect += counter_delta(prior_vbd.wr_sectors, vbd.wr_sectors)
        self.vbd_rd_reqs_s = rd / seconds
        self.vbd_wr_reqs_s = wr / seconds
        self.vbd_oo_reqs_s = oo / seconds
        self.vbd_rd_bytes_s = rsect * SECTOR_BYTES / seconds
        self.vbd_wr_bytes_s = wsect * SECTOR_BYTES / seconds

    def _per_s(self, previous: int, current: int) -> float:
        return counter_delta(previous, current) / self.interval_s

    @property
    def vcpu_pct(self) -> dict[int, float]:
        if self._vcpu_pct is None:
            old_vcpus = {vcpu.index: vcpu for vcpu in self._old.vcpus}
            self._vcpu_pct = {
                vcpu.index: self._per_s(old_vcpus[vcpu.index].cpu_ns, vcpu.cpu_ns) / 1e7
                for vcpu in self._new.vcpus
                if vcpu.index in old_vcpus
            }
        return self._vcpu_pct

    @property
    def vifs(self) -> dict[int, VifRates]:
        if self._vifs is None:
            before = {vif.devid: vif for vif in self._old.vifs}
            per_s = self._per_s
            self._vifs = {
                vif.devid: VifRates(
                    rx_bytes_s=per_s(prior.rx_bytes, vif.rx_bytes),
                    tx_bytes_s=per_s(prior.tx_bytes, vif.tx_bytes),
                    rx_packets_s=per_s(prior.rx_packets, vif.rx_packets),
                    tx_packets_s=per_s(prior.tx_packets, vif.tx_packets),
                )
                for vif in self._new.vifs
                if (prior := before.get(vif.devid)) is not None
            }
        return self._vifs

    @property
    def vbds(self) -> dict[int, VbdRates]:
        if self._vbds is None:
            before = {vbd.devid: vbd for vbd in self._old.vbds}
            per_s = self._per_s
            self._vbds = {
                vbd.devid: VbdRates(
                    rd_reqs_s=per_s(prior.rd_reqs, vbd.rd_reqs),
                    wr_reqs_s=per_s(prior.wr_reqs, vbd.wr_reqs),
                    oo_reqs_s=per_s(prior.oo_reqs, vbd.oo_reqs),
                    rd_bytes_s=per_s(prior.rd_sectors, vbd.rd_sectors) * SECTOR_BYTES,
                    wr_bytes_s=per_s(prior.wr_sectors, vbd.wr_sectors) * SECTOR_BYTES,
                )
                for vbd in self._new.vbds
                if (prior := before.get(vbd.devid)) is not None and not prior.error and not vbd.error
            }
        return self._vbds


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
    keys = current.keys()
    if keys == previous.keys():  # the usual case: the same domains in the same order, paired by position
        olds: list[Domain | None] = previous.domains  # type: ignore[assignment]
    else:
        get = previous.by_key().get
        olds = [get(key) for key in keys]
    return {key: DomainRates(old, new, seconds)
            for key, old, new in zip(keys, olds, current.domains, strict=True) if old is not None}
