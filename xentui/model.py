"""Plain data shared by every layer: what a backend sampled, and rates derived from two samples.

Backends fill `Sample`s with cumulative counters exactly as the hypervisor reports them.
Rates are computed here and only here (`compute_rates`), so the TUI, the batch formats and
the tests all agree on what "CPU %" or "bytes/s" means.
"""

from __future__ import annotations

import enum
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import add, attrgetter, mul, sub, truediv
from typing import overload

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

    @property
    def mem_ceiling_kib(self) -> int | None:
        """What mem-set may reach (None: no limit): the static maximum where known, else Xen's limit."""
        return self.maxmem_kib if self.static_maxmem_kib is None else self.static_maxmem_kib

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


@dataclass(slots=True, frozen=True)
class DomainColumns:
    """What every refresh reads of every domain, as columns in `Sample.domains` order, from a backend
    that can make them: the table sorts and filters by them, the header counts states, `compute_rates`
    works out the totals in a few C-level passes. The records are then only read for what is shown.

    The counters come with a promise, for each domain: under the same domid and the same ``layouts``
    entry, none of its device counters went back, so the change of a total is the sum of its devices'
    changes. Totals count readable vbds only (as `Domain.vbd_totals`), and a vif that could not be read
    counts zero; a layout must change when a vbd's or a vif's readability does.
    """

    keys: Sequence[str]  # `Domain.key`
    names: Sequence[str]
    ids: Sequence[int]
    flags: Sequence[DomainFlag]
    cpu_ns: Sequence[int]
    net_rx_bytes: Sequence[int]
    net_tx_bytes: Sequence[int]
    vbd_rd_reqs: Sequence[int]
    vbd_wr_reqs: Sequence[int]
    vbd_oo_reqs: Sequence[int]
    vbd_rd_sectors: Sequence[int]
    vbd_wr_sectors: Sequence[int]
    layouts: Sequence[object]  # which devices each domain has; compared with `is` first, then `==`


class LazyDomains(Sequence[Domain]):
    """A sample's domains, each record made when first read (the rows drawn, details, batch output), for a
    backend whose refresh reads `Sample.columns`: ``make(i)`` makes the record of the i-th domain."""

    __slots__ = ("_made", "_make")

    def __init__(self, count: int, make: Callable[[int], Domain]) -> None:
        self._make = make
        self._made: list[Domain | None] = [None] * count

    def __len__(self) -> int:
        return len(self._made)

    @overload
    def __getitem__(self, index: int) -> Domain: ...
    @overload
    def __getitem__(self, index: slice) -> list[Domain]: ...
    def __getitem__(self, index: int | slice) -> Domain | list[Domain]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._made))[index]]
        made = self._made[index]
        if made is None:
            made = self._made[index] = self._make(index % len(self._made))
        return made

    def __iter__(self) -> Iterator[Domain]:
        return map(self.__getitem__, range(len(self._made)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, LazyDomains)) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(list(self))


@dataclass(slots=True)
class Sample:
    """One poll: host plus every domain, with cumulative counters.

    ``monotonic`` is for rates (seconds, never goes back); ``wall`` is for display (epoch seconds).
    ``columns``: the figures every refresh reads, from a backend that makes them (see `DomainColumns`);
    its ``domains`` may then make each record when first read.
    """

    monotonic: float
    wall: float
    host: Host
    domains: Sequence[Domain]
    columns: DomainColumns | None = None
    _keys: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    _names: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    _index: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def keys(self) -> list[str]:
        """Each domain's `Domain.key`, in order: worked out once, as the rates and the table both need them."""
        if self._keys is None:
            columns = self.columns
            self._keys = [domain.key for domain in self.domains] if columns is None else list(columns.keys)
        return self._keys

    def names(self) -> list[str]:
        if self._names is None:
            columns = self.columns
            self._names = [domain.name for domain in self.domains] if columns is None else list(columns.names)
        return self._names

    def ids(self) -> Sequence[int]:
        return [domain.id for domain in self.domains] if self.columns is None else self.columns.ids

    def positions(self) -> dict[str, int]:
        """Each domain's position in `domains`, by key."""
        if self._index is None:
            keys = self.keys()
            self._index = dict(zip(keys, range(len(keys)), strict=True))
        return self._index

    def domain(self, key: str) -> Domain | None:
        position = self.positions().get(key)
        return None if position is None else self.domains[position]

    def state_counts(self) -> dict[DomainState, int]:
        counts = dict.fromkeys(DomainState, 0)
        flags = map(attrgetter("flags"), self.domains) if self.columns is None else self.columns.flags
        # counted by flag combination first (a C-level pass): a handful of distinct ones, whatever the count
        for combination, count in Counter(flags).items():
            counts[state_of(combination)] += count
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


# The domain totals of `DomainRates`, in the order `_totals_between` gives them; also `Rates`' columns.
RATE_TOTALS = (
    "cpu_pct", "net_rx_bytes_s", "net_tx_bytes_s", "vbd_rd_reqs_s", "vbd_wr_reqs_s", "vbd_oo_reqs_s",
    "vbd_rd_bytes_s", "vbd_wr_bytes_s",
)


def _totals_between(old: Domain, new: Domain, seconds: float) -> tuple[float, ...]:
    """The domain totals from two records of one domid, device by device (matched by devid)."""
    cpu_pct = counter_delta(old.cpu_ns, new.cpu_ns) / seconds / 1e7
    rx = tx = 0
    for prior, vif in _pairs(old.vifs, new.vifs):
        if prior.error or vif.error:
            continue
        rx += counter_delta(prior.rx_bytes, vif.rx_bytes)
        tx += counter_delta(prior.tx_bytes, vif.tx_bytes)
    rd = wr = oo = rsect = wsect = 0
    for prior_vbd, vbd in _pairs(old.vbds, new.vbds):
        if prior_vbd.error or vbd.error:
            continue
        rd += counter_delta(prior_vbd.rd_reqs, vbd.rd_reqs)
        wr += counter_delta(prior_vbd.wr_reqs, vbd.wr_reqs)
        oo += counter_delta(prior_vbd.oo_reqs, vbd.oo_reqs)
        rsect += counter_delta(prior_vbd.rd_sectors, vbd.rd_sectors)
        wsect += counter_delta(prior_vbd.wr_sectors, vbd.wr_sectors)
    return (cpu_pct, rx / seconds, tx / seconds, rd / seconds, wr / seconds, oo / seconds,
            rsect * SECTOR_BYTES / seconds, wsect * SECTOR_BYTES / seconds)


class DomainRates:
    """Per-second rates of one domain over one interval. CPU % is of one physical CPU, as xentop (can exceed 100).

    The domain totals are worked out at once (or handed over by `Rates`, from its columns); per-vCPU,
    per-vif and per-vbd figures only when asked for (details, sub-rows).
    """

    __slots__ = (
        "_new", "_old", "_vbds", "_vcpu_pct", "_vifs", "cpu_pct", "interval_s",
        "net_rx_bytes_s", "net_tx_bytes_s", "vbd_oo_reqs_s", "vbd_rd_bytes_s", "vbd_rd_reqs_s",
        "vbd_wr_bytes_s", "vbd_wr_reqs_s",
    )

    def __init__(self, old: Domain, new: Domain, seconds: float, totals: Sequence[float] | None = None) -> None:
        # Same domain under a new domid (restored, rebooted, migrated back): every counter
        # restarted from zero, whatever the old values were.
        if old.id != new.id:
            old = _at_start(new)
        self._old, self._new = old, new
        self.interval_s = seconds
        self._vcpu_pct: dict[int, float] | None = None
        self._vifs: dict[int, VifRates] | None = None
        self._vbds: dict[int, VbdRates] | None = None
        (self.cpu_pct, self.net_rx_bytes_s, self.net_tx_bytes_s, self.vbd_rd_reqs_s, self.vbd_wr_reqs_s,
         self.vbd_oo_reqs_s, self.vbd_rd_bytes_s, self.vbd_wr_bytes_s) = (
            _totals_between(old, new, seconds) if totals is None else totals)

    def _per_s(self, previous: int, current: int) -> float:
        return counter_delta(previous, current) / self.interval_s

    @property
    def vcpu_pct(self) -> dict[int, float]:
        if self._vcpu_pct is None:
            if UNKNOWN_VCPU_TIMES in self._old.unknown or UNKNOWN_VCPU_TIMES in self._new.unknown:
                self._vcpu_pct = {}
                return self._vcpu_pct
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
                if (prior := before.get(vif.devid)) is not None and not prior.error and not vif.error
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


NO_RATE = -1.0  # a domain's place in a `Rates` column before it has rates: below every real figure

# How each `DomainColumns` counter becomes a rate (the same arithmetic as `_totals_between`): "cpu" as %
# of one physical CPU, "sectors" as bytes per second, "count" per second.
_COLUMN_RATES = (
    ("cpu_ns", "cpu_pct", "cpu"), ("net_rx_bytes", "net_rx_bytes_s", "count"),
    ("net_tx_bytes", "net_tx_bytes_s", "count"), ("vbd_rd_reqs", "vbd_rd_reqs_s", "count"),
    ("vbd_wr_reqs", "vbd_wr_reqs_s", "count"), ("vbd_oo_reqs", "vbd_oo_reqs_s", "count"),
    ("vbd_rd_sectors", "vbd_rd_bytes_s", "sectors"), ("vbd_wr_sectors", "vbd_wr_bytes_s", "sectors"),
)


class Rates(Mapping[str, DomainRates]):
    """Every domain's rates over one interval: a `DomainRates` by `Domain.key`, made when first asked
    for, and each domain total as a column in the newer sample's order, which the table sorts by and
    the history records from without an object per domain.

    A domain absent from the older sample has no rates: it is not in the mapping, and its place in a
    column holds `NO_RATE`.
    """

    __slots__ = ("_columns", "_current", "_made", "_missing", "_olds", "_previous", "_unlisted", "interval_s")

    def __init__(self) -> None:
        """No rates at all: before the second sample."""
        self._previous: Sample | None = None
        self._current: Sample | None = None
        self.interval_s = 0.0
        self._olds: Sequence[int | None] = ()
        self._missing: frozenset[int] = frozenset()
        self._unlisted: frozenset[int] = frozenset()  # missing, or a key a later domain has too
        self._columns: dict[str, list[float]] = {name: [] for name in RATE_TOTALS}
        self._made: dict[int, DomainRates] = {}

    @classmethod
    def between(cls, previous: Sample, current: Sample, seconds: float) -> Rates:
        rates = cls()
        rates._previous, rates._current, rates.interval_s = previous, current, seconds
        keys = current.keys()
        if keys == previous.keys():  # the usual case: the same domains in the same order, paired by position
            rates._olds = range(len(keys))
        else:
            where = previous.positions()
            rates._olds = [where.get(key) for key in keys]
            rates._missing = frozenset(i for i, j in enumerate(rates._olds) if j is None)
        rates._unlisted = rates._missing
        where = current.positions()
        if len(where) != len(keys):  # two domains with one key (a uuid twice, mid-migration): the last counts
            rates._unlisted |= {i for i, key in enumerate(keys) if where[key] != i}
        if current.columns is not None and previous.columns is not None:
            rates._from_columns(previous.columns, current.columns)
        else:
            rates._from_records(range(len(keys)))
        return rates

    def _aligned(self, column: Sequence) -> Sequence:
        """An older sample's column, in the newer sample's order (0 where a domain is new)."""
        olds = self._olds
        if isinstance(olds, range):
            return column
        return [0 if j is None else column[j] for j in olds]

    def _from_columns(self, old: DomainColumns, new: DomainColumns) -> None:
        seconds, missing = self.interval_s, self._missing
        # Domains whose totals must come from their records, device by device: back under a new
        # domid, with other devices, or with a total that went back (the backend did not promise that).
        by_records: set[int] = set()
        old_ids = self._aligned(old.ids)
        if old_ids != new.ids:
            by_records.update(i for i, (a, b) in enumerate(zip(old_ids, new.ids, strict=True)) if a != b)
        old_layouts = self._aligned(old.layouts)
        if old_layouts != new.layouts:
            by_records.update(i for i, (a, b) in enumerate(zip(old_layouts, new.layouts, strict=True))
                              if a is not b and a != b)
        columns = self._columns
        per_s = repeat(seconds)
        for name, rate, kind in _COLUMN_RATES:  # each rate in one chained C-level pass, checked after
            before, after = self._aligned(getattr(old, name)), getattr(new, name)
            change = map(sub, after, before)
            if kind == "cpu":
                values = list(map(truediv, map(truediv, change, per_s), repeat(1e7)))
            elif kind == "sectors":
                values = list(map(truediv, map(mul, change, repeat(SECTOR_BYTES)), per_s))
            else:
                values = list(map(truediv, change, per_s))
            if values and min(values) < 0:  # a counter went back
                for i, value in enumerate(values):
                    if value >= 0:
                        continue
                    if kind == "cpu":  # one counter: a wrap or a reset, as for a record
                        values[i] = counter_delta(before[i], after[i]) / seconds / 1e7
                    else:
                        by_records.add(i)
            columns[rate] = values
        for i in missing:
            for column in columns.values():
                column[i] = NO_RATE
        self._from_records(by_records - missing)

    def _from_records(self, positions: Iterable[int]) -> None:
        """Totals worked out from the records, for these positions (all, for a backend without columns)."""
        columns = self._columns
        count = len(self._current.domains)  # type: ignore[union-attr]
        for column in columns.values():
            if len(column) != count:
                column[:] = [NO_RATE] * count
        for i in positions:
            if i in self._missing:
                continue
            made = self._make(i, None)
            for name, column in columns.items():
                column[i] = getattr(made, name)

    def _make(self, i: int, totals: Sequence[float] | None) -> DomainRates:
        old = self._previous.domains[self._olds[i]]  # type: ignore[union-attr,index]
        made = self._made[i] = DomainRates(old, self._current.domains[i], self.interval_s, totals)  # type: ignore[union-attr]
        return made

    def _position(self, key: str) -> int | None:
        if self._current is None:
            return None
        i = self._current.positions().get(key)
        return None if i is None or i in self._missing else i

    def __getitem__(self, key: str) -> DomainRates:
        i = self._position(key)
        if i is None:
            raise KeyError(key)
        made = self._made.get(i)
        if made is None:
            made = self._make(i, [column[i] for column in self._columns.values()])
        return made

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._position(key) is not None

    def __iter__(self) -> Iterator[str]:
        if self._current is None:
            return iter(())
        unlisted = self._unlisted
        if not unlisted:
            return iter(self._current.keys())
        return (key for i, key in enumerate(self._current.keys()) if i not in unlisted)

    def __len__(self) -> int:
        return 0 if self._current is None else len(self._current.domains) - len(self._unlisted)

    def column(self, name: str, keys: list[str]) -> Sequence[float]:
        """One total (a `RATE_TOTALS` name) for each of ``keys``; `NO_RATE` for a domain without rates.
        Possibly the column itself: read it, do not change it."""
        current = self._current
        if current is None:
            return [NO_RATE] * len(keys)
        column = self._columns[name]
        if keys is current.keys() or keys == current.keys():
            return column
        where = current.positions()
        return [NO_RATE if (i := where.get(key)) is None else column[i] for key in keys]

    def points(self) -> Iterator[tuple[str, float, float, float]]:
        """(key, CPU %, network bytes/s both ways, disk bytes/s both ways) of each domain with rates."""
        if self._current is None:
            return iter(())
        columns, unlisted = self._columns, self._unlisted
        points = zip(self._current.keys(), columns["cpu_pct"],
                     map(add, columns["net_rx_bytes_s"], columns["net_tx_bytes_s"]),
                     map(add, columns["vbd_rd_bytes_s"], columns["vbd_wr_bytes_s"]), strict=True)
        if not unlisted:
            return points
        return (point for i, point in enumerate(points) if i not in unlisted)


def compute_rates(previous: Sample | None, current: Sample) -> Rates:
    """Rates for every domain present in both samples, keyed by `Domain.key`.

    A domain absent from ``previous`` (new, restored under a new uuid) has no rates yet,
    as in xentop's first iteration. A non-positive interval yields no rates at all.
    """
    if previous is None:
        return Rates()
    seconds = current.monotonic - previous.monotonic
    if seconds <= 0:
        return Rates()
    return Rates.between(previous, current, seconds)
