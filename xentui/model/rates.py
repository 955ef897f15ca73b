"""Rates derived from two samples: what "CPU %" or "bytes/s" means is worked out here and only here
(`compute_rates`), so the TUI, the batch formats and the tests all agree.

A domain's totals come two ways, which must agree to the last bit (`tests/rates_paths.py`): from the columns of a
backend that makes them (a few C-level passes over every domain), or from the records, device by device (a backend
without columns, and a domain whose columns cannot be trusted this time). Both paths turn changes into rates with
one function, `_per_second` (a column of changes in one C-level pass); one value at a time (a device's figures, a
CPU counter that wrapped) takes `_rate` beside it, the same arithmetic (`tests/test_rates_arithmetic.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import add, mul, sub, truediv

from xentui.model.columns import DomainColumns
from xentui.model.records import SECTOR_BYTES, UNKNOWN_VCPU_TIMES, Domain, Vbd, Vcpu, Vif
from xentui.model.sample import Sample

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


# How a counter's change becomes a rate (`_per_second`, `_rate`).
_CPU = "cpu"  # nanoseconds of CPU time: % of one physical CPU, as xentop (can exceed 100)
_COUNT = "count"  # bytes, requests, packets: per second
_SECTORS = "sectors"  # 512-byte sectors: bytes per second


def _per_second(changes: Iterable[int], per_s: Iterable[float], unit: str) -> list[float]:
    """How much counters grew over their intervals (``per_s``: each one's seconds), as rates, in one chained
    C-level pass whatever the count: every domain total, from the columns as from the records."""
    if unit == _CPU:
        return list(map(truediv, map(truediv, changes, per_s), repeat(1e7)))
    if unit == _SECTORS:
        return list(map(truediv, map(mul, changes, repeat(SECTOR_BYTES)), per_s))
    return list(map(truediv, changes, per_s))


def _rate(change: int, seconds: float, unit: str) -> float:
    """`_per_second` of one change, without building lists: the same arithmetic in the same order, so a figure
    is the same to the last bit whichever of the two works it out."""
    if unit == _CPU:
        return change / seconds / 1e7
    if unit == _SECTORS:
        return change * SECTOR_BYTES / seconds
    return change / seconds


# A domain's totals: the `DomainColumns` counter each comes from, its name in `DomainRates` and in `Rates`'
# columns, and its unit. `_changes_between` works the changes out from records in this order.
_TOTALS = (
    ("cpu_ns", "cpu_pct", _CPU), ("net_rx_bytes", "net_rx_bytes_s", _COUNT),
    ("net_tx_bytes", "net_tx_bytes_s", _COUNT), ("vbd_rd_reqs", "vbd_rd_reqs_s", _COUNT),
    ("vbd_wr_reqs", "vbd_wr_reqs_s", _COUNT), ("vbd_oo_reqs", "vbd_oo_reqs_s", _COUNT),
    ("vbd_rd_sectors", "vbd_rd_bytes_s", _SECTORS), ("vbd_wr_sectors", "vbd_wr_bytes_s", _SECTORS),
)
RATE_TOTALS = tuple(rate for _, rate, _ in _TOTALS)


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


def _interval(old: Domain, new: Domain, seconds: float) -> float:
    """The seconds between two reads of one domain: its own, where both records say when they were read (a
    backend reading domain after domain), else the samples' ``seconds``."""
    if old.read_at is None or new.read_at is None:
        return seconds
    own = new.read_at - old.read_at
    return own if own > 0 else seconds


def _intervals(old: Sequence[float] | None, new: Sequence[float] | None, seconds: float) -> list[float] | repeat:
    """`_interval` for every domain from the columns (``old`` aligned to ``new``): a list of each one's own
    where both columns are there (a domain new here has none of use: it has no rates), else ``seconds``
    repeated."""
    if old is None or new is None:
        return repeat(seconds)
    own = list(map(sub, new, old))
    if own and min(own) <= 0:  # not from a monotonic clock; as `_interval` would have it all the same
        return [value if value > 0 else seconds for value in own]
    return own


def _since(old: Domain, new: Domain) -> Domain:
    """What ``new``'s counters grew from: ``old``, or, for the same domain under a new domid (restored, rebooted,
    migrated back), the domain as it restarted: every counter from zero, whatever the old values were."""
    return old if old.id == new.id else _at_start(new)


def _changes_between(old: Domain, new: Domain) -> tuple[int, ...]:
    """How much each domain total's counter grew (in `_TOTALS`' order), from two records of one domain, device by
    device (matched by devid; a device not read either time counts nothing)."""
    old = _since(old, new)
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
    return counter_delta(old.cpu_ns, new.cpu_ns), rx, tx, rd, wr, oo, rsect, wsect


def _record_totals(olds: Sequence[Domain], news: Sequence[Domain], intervals: Sequence[float]) -> list[list[float]]:
    """The totals of each pair of records, over each pair's interval (`_interval`), as one list per
    `RATE_TOTALS` name."""
    changes = list(zip(*map(_changes_between, olds, news), strict=True)) or [()] * len(_TOTALS)
    return [_per_second(column, intervals, unit) for column, (_, _, unit) in zip(changes, _TOTALS, strict=True)]


class DomainRates:
    """Per-second rates of one domain over one interval. CPU % is of one physical CPU, as xentop (can exceed 100).

    The domain totals are worked out at once (or handed over by `Rates`, from its columns or its records);
    per-vCPU, per-vif and per-vbd figures only when asked for (details, sub-rows).
    """

    __slots__ = (
        "_new", "_old", "_vbds", "_vcpu_pct", "_vifs", "cpu_pct", "interval_s",
        "net_rx_bytes_s", "net_tx_bytes_s", "vbd_oo_reqs_s", "vbd_rd_bytes_s", "vbd_rd_reqs_s",
        "vbd_wr_bytes_s", "vbd_wr_reqs_s",
    )

    def __init__(self, old: Domain, new: Domain, seconds: float, totals: Sequence[float] | None = None) -> None:
        """``seconds``: between the two samples; the domain's own interval is used where known (`_interval`)."""
        seconds = _interval(old, new, seconds)
        old = _since(old, new)
        self._old, self._new = old, new
        self.interval_s = seconds
        self._vcpu_pct: dict[int, float] | None = None
        self._vifs: dict[int, VifRates] | None = None
        self._vbds: dict[int, VbdRates] | None = None
        if totals is None:
            totals = [column[0] for column in _record_totals((old,), (new,), (seconds,))]
        (self.cpu_pct, self.net_rx_bytes_s, self.net_tx_bytes_s, self.vbd_rd_reqs_s, self.vbd_wr_reqs_s,
         self.vbd_oo_reqs_s, self.vbd_rd_bytes_s, self.vbd_wr_bytes_s) = totals

    @property
    def vcpu_pct(self) -> dict[int, float]:
        if self._vcpu_pct is None:
            if UNKNOWN_VCPU_TIMES in self._old.unknown or UNKNOWN_VCPU_TIMES in self._new.unknown:
                self._vcpu_pct = {}
                return self._vcpu_pct
            old_vcpus = {vcpu.index: vcpu for vcpu in self._old.vcpus}
            seconds = self.interval_s
            self._vcpu_pct = {
                vcpu.index: _rate(counter_delta(old_vcpus[vcpu.index].cpu_ns, vcpu.cpu_ns), seconds, _CPU)
                for vcpu in self._new.vcpus
                if vcpu.index in old_vcpus
            }
        return self._vcpu_pct

    @property
    def vifs(self) -> dict[int, VifRates]:
        if self._vifs is None:
            before, seconds = {vif.devid: vif for vif in self._old.vifs}, self.interval_s
            self._vifs = {
                vif.devid: VifRates(
                    rx_bytes_s=_rate(counter_delta(prior.rx_bytes, vif.rx_bytes), seconds, _COUNT),
                    tx_bytes_s=_rate(counter_delta(prior.tx_bytes, vif.tx_bytes), seconds, _COUNT),
                    rx_packets_s=_rate(counter_delta(prior.rx_packets, vif.rx_packets), seconds, _COUNT),
                    tx_packets_s=_rate(counter_delta(prior.tx_packets, vif.tx_packets), seconds, _COUNT),
                )
                for vif in self._new.vifs
                if (prior := before.get(vif.devid)) is not None and not prior.error and not vif.error
            }
        return self._vifs

    @property
    def vbds(self) -> dict[int, VbdRates]:
        if self._vbds is None:
            before, seconds = {vbd.devid: vbd for vbd in self._old.vbds}, self.interval_s
            self._vbds = {
                vbd.devid: VbdRates(
                    rd_reqs_s=_rate(counter_delta(prior.rd_reqs, vbd.rd_reqs), seconds, _COUNT),
                    wr_reqs_s=_rate(counter_delta(prior.wr_reqs, vbd.wr_reqs), seconds, _COUNT),
                    oo_reqs_s=_rate(counter_delta(prior.oo_reqs, vbd.oo_reqs), seconds, _COUNT),
                    rd_bytes_s=_rate(counter_delta(prior.rd_sectors, vbd.rd_sectors), seconds, _SECTORS),
                    wr_bytes_s=_rate(counter_delta(prior.wr_sectors, vbd.wr_sectors), seconds, _SECTORS),
                )
                for vbd in self._new.vbds
                if (prior := before.get(vbd.devid)) is not None and not prior.error and not vbd.error
            }
        return self._vbds


NO_RATE = -1.0  # a domain's place in a `Rates` column before it has rates: below every real figure


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
        # Two domains with one key (a uuid twice, mid-migration): the last counts. Found with a set, a quarter of
        # the cost of the positions, which only a lookup by key needs (a pool's member: rarely).
        if len(set(keys)) != len(keys):
            where = current.positions()
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
        old_read_at = None if old.read_at is None else self._aligned(old.read_at)
        intervals = _intervals(old_read_at, new.read_at, seconds)
        for name, rate, unit in _TOTALS:  # each rate in one chained C-level pass, checked after
            before, after = self._aligned(getattr(old, name)), getattr(new, name)
            values = _per_second(map(sub, after, before), intervals, unit)
            if values and min(values) < 0:  # a counter went back
                for i, value in enumerate(values):
                    if value >= 0:
                        continue
                    if unit == _CPU:  # one counter: a wrap or a reset, as for a record
                        own = intervals[i] if isinstance(intervals, list) else seconds
                        values[i] = _rate(counter_delta(before[i], after[i]), own, unit)
                    else:
                        by_records.add(i)
            columns[rate] = values
        for i in missing:
            for column in columns.values():
                column[i] = NO_RATE
        self._from_records(by_records - missing)

    def _from_records(self, positions: Iterable[int]) -> None:
        """Totals worked out from the records, for these positions (all, for a backend without columns)."""
        columns, previous, current = self._columns, self._previous, self._current
        count = len(current.domains)  # type: ignore[union-attr]
        for column in columns.values():
            if len(column) != count:
                column[:] = [NO_RATE] * count
        positions = [i for i in positions if i not in self._missing]
        if not positions:
            return
        olds = [previous.domains[self._olds[i]] for i in positions]  # type: ignore[union-attr,index]
        news = [current.domains[i] for i in positions]  # type: ignore[union-attr]
        seconds = self.interval_s
        totals = _record_totals(olds, news, [_interval(old, new, seconds) for old, new in zip(olds, news, strict=True)])
        for column, values in zip(columns.values(), totals, strict=True):
            for i, value in zip(positions, values, strict=True):
                column[i] = value
        seconds, made = self.interval_s, self._made
        for i, old, new, figures in zip(positions, olds, news, zip(*totals, strict=True), strict=True):
            made[i] = DomainRates(old, new, seconds, figures)

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

    def point_columns(self) -> tuple[Sequence[str], Sequence[float], Sequence[float], Sequence[float]]:
        """`points` as four columns (keys, CPU %, network bytes/s, disk bytes/s), in C-level passes: what the
        history records at every refresh. Possibly the rates' own columns: read them, do not change them."""
        if self._current is None:
            return [], [], [], []
        columns, unlisted = self._columns, self._unlisted
        keys, cpu = self._current.keys(), columns["cpu_pct"]
        net = list(map(add, columns["net_rx_bytes_s"], columns["net_tx_bytes_s"]))
        disk = list(map(add, columns["vbd_rd_bytes_s"], columns["vbd_wr_bytes_s"]))
        if not unlisted:
            return keys, cpu, net, disk
        kept = [True] * len(keys)
        for i in unlisted:
            kept[i] = False
        return (list(compress(keys, kept)), list(compress(cpu, kept)), list(compress(net, kept)),
                list(compress(disk, kept)))

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
    if current.rates is not None:  # the backend's own (a pool's: each host over its own interval)
        return current.rates
    if previous is None:
        return Rates()
    seconds = current.monotonic - previous.monotonic
    if seconds <= 0:
        return Rates()
    return Rates.between(previous, current, seconds)
