"""One poll (`Sample`): the host and every domain, as records and, from a backend that makes them, as columns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING

from xentui.model.columns import DomainColumns
from xentui.model.records import Domain, DomainState, Host, state_of

if TYPE_CHECKING:
    from xentui.model.rates import Rates


@dataclass(slots=True)
class HostStatus:
    """One host of a pool, as the last refresh found it (see `xentui.backends.pool`)."""

    label: str  # its name in the pool
    backend: str  # "xl", "libvirt", "sim"
    host: Host | None  # what it last said of itself; None before its first answer
    error: str | None = None  # why it is down; None while it answers
    failing_since: float | None = None  # wall clock of the first failure in a row
    last_seen: float | None = None  # wall clock of its last good sample
    slow_for: float = 0.0  # seconds its sample in flight has taken, when longer than a refresh waits
    domains: int = 0  # its domains in the pool's sample (its last good sample's, when down)
    states: Mapping[DomainState, int] = field(default_factory=dict)
    cpu_pct: float = 0.0  # its domains' CPU use, % of one physical CPU
    group: str = ""  # the group the config file puts it in


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
    hosts: Sequence[HostStatus] = ()  # a pool's hosts, each host's domains together in this order
    rates: Rates | None = None  # rates the backend worked out itself (a pool's, each host over its own interval)
    _keys: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    _names: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    _index: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)
    _pool_hosts: dict[str, Host] | None = field(default=None, init=False, repr=False, compare=False)

    def host_of(self, domain: Domain) -> Host:
        """The host a domain is on: its pool host's, or the sample's. (A sort by memory share asks this for
        every domain: a lookup, not a walk over the pool's hosts.)"""
        if domain.host and self.hosts:
            if self._pool_hosts is None:
                self._pool_hosts = {status.label: status.host for status in self.hosts if status.host is not None}
            return self._pool_hosts.get(domain.host, self.host)
        return self.host

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
