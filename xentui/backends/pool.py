"""Several hosts as one backend: the pool.

Each member is a whole backend (xl over ssh, libvirt, a simulated host), and each is sampled on its own: a
refresh starts a sample on every member that is not already busy with one, waits a short grace for them,
and shows every member's latest figures. A member that is slow keeps its last sample on the screen (said
as slow, with since when) while the others refresh; one that fails or does not answer within its timeout
is called down, with its error and since when, and asked again after a back-off that grows with each
failure; it comes back by itself.

Every domain of the pool carries its host (`Domain.host`), so its key is unique across the pool; rates are
worked out per member, each over its own interval, and the pool's `PooledRates` reads them by key.
Actions go to the domain's own member (`PoolBackend.for_domain`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import itertools
import operator
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from xentui.backends.base import Action, Backend, Capabilities, ConsoleChannel
from xentui.errors import BackendError, DomainNotFound, InvalidArgument
from xentui.model import (
    NO_RATE,
    Domain,
    DomainColumns,
    DomainRates,
    Host,
    HostStatus,
    LazyDomains,
    Rates,
    Sample,
    compute_rates,
)
from xentui.textsafe import printable

MEMBER_TIMEOUT = 30.0
"""Seconds a member's sample may take before it is abandoned and the host called down."""
GRACE = 0.5
"""Seconds a refresh waits for members still sampling before it shows the others' figures."""
FIRST_GRACE = 5.0
"""The first refresh waits longer: a first frame with every host that answers in time."""
ABSORB_BATCH = 8
"""Members whose samples are taken in (their rates worked out) in one turn of the event loop."""
MAX_BACKOFF = 60.0
"""The longest wait before a down host is asked again."""


@dataclass(slots=True)
class _Member:
    label: str
    backend: Backend
    group: str = ""
    sample: Sample | None = None
    rates: Rates = field(default_factory=Rates)
    task: asyncio.Task[Sample] | None = None
    started: float = 0.0  # monotonic, when the sample in flight was asked for
    failures: int = 0
    retry_at: float = 0.0  # monotonic: not asked again before
    error: str | None = None
    failing_since: float | None = None  # wall clock
    qualified_keys: list[str] = field(default_factory=list)
    # Its domains under its label, made when first read, kept while its sample is the same: a refresh that
    # brings nothing new from a member (slow, down) makes none of its records again.
    pooled: LazyDomains | None = None
    pooled_of: Sample | None = None

    def pooled_domains(self) -> LazyDomains:
        sample = self.sample
        assert sample is not None
        if self.pooled is None or self.pooled_of is not sample:
            own, label = sample.domains, self.label
            with_host = getattr(own, "with_host", None)  # a backend that makes them under a host itself (sim)
            self.pooled = (with_host(label) if with_host is not None
                           else LazyDomains(len(own), lambda i: _with_host(own[i], label)))
            self.pooled_of = sample
        return self.pooled

    def status(self, now_wall: float, now_mono: float) -> HostStatus:
        sample = self.sample
        slow_for = now_mono - self.started if self.task is not None and self.error is None else 0.0
        states = sample.state_counts() if sample is not None else {}
        return HostStatus(
            label=self.label, backend=self.backend.name, group=self.group,
            host=sample.host if sample is not None else None,
            error=self.error, failing_since=self.failing_since,
            last_seen=sample.wall if sample is not None else None,
            slow_for=slow_for if slow_for > GRACE else 0.0,
            domains=len(sample.domains) if sample is not None else 0,
            states={state: count for state, count in states.items() if count},
            cpu_pct=sum(value for value in self.rates.column("cpu_pct", sample.keys()) if value > 0)
            if sample is not None else 0.0,
        )


def _qualified(label: str, key: str) -> str:
    return f"{label}/{key}"


_INIT_FIELDS = [f.name for f in dataclasses.fields(Domain) if f.init]
_HOST_AT = _INIT_FIELDS.index("host")
_BUT_HOST = operator.attrgetter(*(name for name in _INIT_FIELDS if name != "host"))


def _with_host(domain: Domain, label: str) -> Domain:
    """``dataclasses.replace(domain, host=label)``, a quarter of its cost: every field but the host read in one
    C-level call, and given by position (a pool sorted by MEM reads every domain's record at each refresh)."""
    values = _BUT_HOST(domain)
    return Domain(*values[:_HOST_AT], label, *values[_HOST_AT:])


class PooledRates(Rates):
    """The rates of every member, each over its own interval, read by the pool's keys (host/key).

    Each part is a member's label, its sample, its rates and its domains' pool keys (in its sample's order):
    the whole pool's columns are the members' columns one after the other, with no key made per refresh."""

    __slots__ = ("_joined", "_parts")

    def __init__(self, parts: Sequence[tuple[str, Sample, Rates, list[str]]]) -> None:
        super().__init__()
        self._parts = parts
        self._joined: list[str] | None = None  # every part's pool keys, one after the other

    def _find(self, key: str) -> tuple[Rates, str] | None:
        for label, _sample, rates, _keys in self._parts:
            if key.startswith(label) and key[len(label):len(label) + 1] == "/":
                return rates, key[len(label) + 1:]
        return None

    def __getitem__(self, key: str) -> DomainRates:
        found = self._find(key)
        if found is None:
            raise KeyError(key)
        rates, member_key = found
        return rates[member_key]

    def __contains__(self, key: object) -> bool:
        found = self._find(key) if isinstance(key, str) else None
        return found is not None and found[1] in found[0]

    def __iter__(self) -> Iterator[str]:
        for label, _sample, rates, _keys in self._parts:
            for key in rates:
                yield _qualified(label, key)

    def __len__(self) -> int:
        return sum(len(rates) for _label, _sample, rates, _keys in self._parts)

    def _joined_keys(self) -> list[str]:
        if self._joined is None:
            self._joined = [key for _label, _sample, _rates, keys in self._parts for key in keys]
        return self._joined

    def column(self, name: str, keys: list[str]) -> Sequence[float]:
        """One total for each of ``keys`` (`NO_RATE` where a domain has none), as `Rates.column`."""
        values: list[float] = []
        for _label, sample, rates, _keys in self._parts:
            values.extend(rates.column(name, sample.keys()))
        joined = self._joined_keys()
        if keys is joined or keys == joined:  # the pool's sample's own order: the usual case
            return values
        where = dict(zip(joined, values, strict=True))
        return [where.get(key, NO_RATE) for key in keys]

    def point_columns(self) -> tuple[Sequence[str], Sequence[float], Sequence[float], Sequence[float]]:
        """`points` as four columns, each member's one after the other: no tuple per domain."""
        every_key: list[str] = []
        cpu: list[float] = []
        net: list[float] = []
        disk: list[float] = []
        for label, sample, rates, keys in self._parts:
            own, own_cpu, own_net, own_disk = rates.point_columns()
            current = sample.keys()
            if own is current or own == current:  # the rates of this very sample, every domain listed
                every_key.extend(keys)
            else:  # some domains without rates, or rates of an earlier sample
                pool_key = dict(zip(current, keys, strict=True))
                every_key.extend(pool_key.get(key) or _qualified(label, key) for key in own)
            cpu.extend(own_cpu)
            net.extend(own_net)
            disk.extend(own_disk)
        return every_key, cpu, net, disk

    def points(self) -> Iterator[tuple[str, float, float, float]]:
        for label, sample, rates, keys in self._parts:
            pool_key = dict(zip(sample.keys(), keys, strict=True))  # the rates may be of an earlier sample
            for key, cpu, net, disk in rates.points():
                yield pool_key.get(key) or _qualified(label, key), cpu, net, disk


class PoolBackend(Backend):
    """Many hosts, each its own backend, as one table."""

    def __init__(self, members: Sequence[tuple[str, Backend]], *, timeout: float = MEMBER_TIMEOUT,
                 groups: Mapping[str, str] | None = None, addresses: Mapping[str, str] | None = None) -> None:
        """``groups``: a group name per host (the config file's); ``addresses``: how the other hosts reach one
        for a migration, where it is not the host part of its name."""
        if not members:
            raise InvalidArgument("a pool needs at least one host")
        labels = [label for label, _backend in members]
        if len(set(labels)) != len(labels):
            raise InvalidArgument(f"two hosts of the pool have the same name: {', '.join(labels)}")
        if any("/" in label or not label for label in labels):
            raise InvalidArgument("a pool host's name may not be empty nor hold '/'")
        self._members = [_Member(label, backend, group=(groups or {}).get(label, "")) for label, backend in members]
        self._addresses = dict(addresses or {})
        self.timeout = timeout
        self._interval = 3.0
        self._sampled_once = False

    # the members --------------------------------------------------------------------------------

    @property
    def name(self) -> str:  # type: ignore[override]
        """The members' backends: "xl", "sim", "xl+libvirt"."""
        return "+".join(dict.fromkeys(member.backend.name for member in self._members))

    @property
    def labels(self) -> list[str]:
        return [member.label for member in self._members]

    def for_host(self, label: str) -> Backend:
        """The backend of that host: where every action on its domains goes."""
        return self.member(label)

    def member(self, label: str) -> Backend:
        for member in self._members:
            if member.label == label:
                backend = member.backend
                return backend.resolved() if isinstance(backend, LateMember) else backend
        raise DomainNotFound(f"no host named {printable(label)!r} in the pool")

    def address_of(self, label: str) -> str:
        """How the pool's other hosts reach this one, for a migration: the address the pool was given for it
        (a libvirt host's URI), else its name without the ssh user."""
        return self._addresses.get(label) or label.rsplit("@", 1)[-1]

    @property
    def capabilities(self) -> Capabilities:
        """What the pool as a whole can do: actions are each member's (see `for_domain`)."""
        return Capabilities()

    @property
    def activity(self) -> str | None:  # type: ignore[override]
        waiting = [member.label for member in self._members if member.task is not None]
        return f"waiting for {', '.join(waiting)}" if waiting else None

    # sampling ---------------------------------------------------------------------------------

    async def sample(self) -> Sample:
        loop = asyncio.get_running_loop()
        now = loop.time()
        started = False
        for member in self._members:
            if member.task is None and now >= member.retry_at:
                if started:
                    # One member's start per turn of the event loop: a member that samples without waiting (a
                    # simulated host) runs at once, and a key pressed meanwhile waits for one member, not all.
                    await asyncio.sleep(0)
                member.task = asyncio.ensure_future(member.backend.sample())
                member.started = loop.time()
                started = True
        pending = [member.task for member in self._members if member.task is not None]
        if pending:
            grace = FIRST_GRACE if not self._sampled_once else GRACE
            await asyncio.wait(pending, timeout=min(grace, self.timeout))
        self._sampled_once = True
        now = loop.time()
        for count, member in enumerate(self._members, start=1):
            self._absorb(member, now)
            if count % ABSORB_BATCH == 0:
                await asyncio.sleep(0)  # the rates of a few members per turn of the event loop, as above
        return self._pooled(now)

    def _absorb(self, member: _Member, now: float) -> None:
        """Take a member's finished sample (or its failure); abandon one that took longer than the timeout."""
        task = member.task
        if task is None:
            return
        if not task.done():
            if now - member.started >= self.timeout:
                task.cancel()
                member.task = None
                self._failed(member, f"no answer in {self.timeout:g} s", now)
            return
        member.task = None
        try:
            sample = task.result()
        except asyncio.CancelledError:
            self._failed(member, "sampling was cancelled", now)
            return
        except BackendError as error:
            self._failed(member, str(error), now)
            return
        except Exception as error:  # a member's bug takes that host down, not the pool
            self._failed(member, f"{type(error).__name__}: {error}", now)
            return
        member.error, member.failing_since, member.failures = None, None, 0
        previous = member.sample
        if previous is None or sample.monotonic > previous.monotonic:  # else no time passed: the rates hold
            member.rates = compute_rates(previous, sample)
        member.sample = sample
        if previous is None or sample.keys() != previous.keys():  # the same domains: the same pool keys
            member.qualified_keys = [_qualified(member.label, key) for key in sample.keys()]  # noqa: SIM118

    def _failed(self, member: _Member, error: str, now: float) -> None:
        member.failures += 1
        if member.error is None:
            member.failing_since = time.time()
        member.error = error
        member.retry_at = now + min(MAX_BACKOFF, self._interval * 2 ** (member.failures - 1))

    def _pooled(self, now: float) -> Sample:
        wall = time.time()
        answered = [member for member in self._members if member.sample is not None]
        parts = [(member.label, member.sample, member.rates, member.qualified_keys) for member in answered]
        statuses = [member.status(wall, now) for member in self._members]
        domains = [member.pooled_domains() for member in answered]
        starts = list(itertools.accumulate(map(len, domains), initial=0))
        count = starts.pop()

        def make(i: int) -> Domain:
            if not 0 <= i < count:
                raise IndexError(i)
            part = bisect.bisect_right(starts, i) - 1
            return domains[part][i - starts[part]]

        columns = _joined_columns([(member.qualified_keys, member.sample) for member in answered])
        rates = PooledRates(parts)
        pooled = Sample(monotonic=now, wall=wall, host=_pool_host(statuses), domains=LazyDomains(count, make),
                        columns=columns, hosts=statuses, rates=rates)
        # Its keys are the members' pool keys, known already: not one record made per domain to learn them.
        pooled._keys = rates._joined_keys()
        return pooled

    async def host_info(self) -> Host:
        sample = await self.sample()
        return sample.host

    async def set_poll_interval(self, seconds: float) -> None:
        self._interval = seconds
        for member in self._members:
            with contextlib.suppress(BackendError):
                await member.backend.set_poll_interval(seconds)

    def focus(self, keys: Collection[str] | None, vcpu_keys: Collection[str] | None = None) -> None:
        """Each member looks at its own domains of those the screen looks at."""
        for member in self._members:
            prefix = member.label + "/"
            member.backend.focus(_own_keys(keys, prefix), _own_keys(vcpu_keys, prefix))

    def watch_changes(self, callback: Callable[[], None] | None) -> None:
        for member in self._members:
            member.backend.watch_changes(callback)

    def warm_up(self) -> None:
        for member in self._members:
            member.backend.warm_up()

    async def close(self) -> None:
        for member in self._members:
            if member.task is not None:
                member.task.cancel()
        await asyncio.gather(*(member.backend.close() for member in self._members), return_exceptions=True)

    async def open_console(self, name: str):  # type: ignore[no-untyped-def]
        raise InvalidArgument("a pool opens a console on the domain's own host (for_domain)")


class LateMember(Backend):
    """A pool host's backend, built (connected, its environment checked, in a thread) at its first sample
    and again after a failure to build: a host that is down when xentui starts comes up in the pool later."""

    def __init__(self, label: str, build: Callable[[], Backend], kind: str = "pool member") -> None:
        self.label = label
        self._build = build
        self._kind = kind  # the backend it will be ("xl", "libvirt"), named before it is built
        self._backend: Backend | None = None
        self._interval: float | None = None
        self._focus: tuple[Collection[str] | None, Collection[str] | None] = (None, None)
        self._watch: Callable[[], None] | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._backend.name if self._backend is not None else self._kind

    async def _built(self) -> Backend:
        if self._backend is None:
            backend = await asyncio.to_thread(self._build)
            if self._interval is not None:
                await backend.set_poll_interval(self._interval)
            backend.focus(*self._focus)
            if self._watch is not None:
                backend.watch_changes(self._watch)
            self._backend = backend
        return self._backend

    def resolved(self) -> Backend:
        """The backend once built, which every action goes to; until then this, which refuses them."""
        return self if self._backend is None else self._backend

    def watch_changes(self, callback: Callable[[], None] | None) -> None:
        self._watch = callback
        if self._backend is not None:
            self._backend.watch_changes(callback)

    @property
    def capabilities(self) -> Capabilities:
        if self._backend is None:
            return Capabilities({action: f"{self.label} has not answered yet" for action in Action})
        return self._backend.capabilities

    async def sample(self) -> Sample:
        return await (await self._built()).sample()

    async def host_info(self) -> Host:
        return await (await self._built()).host_info()

    async def open_console(self, name: str) -> ConsoleChannel:
        return await (await self._built()).open_console(name)

    async def set_poll_interval(self, seconds: float) -> None:
        self._interval = seconds
        if self._backend is not None:
            await self._backend.set_poll_interval(seconds)

    def focus(self, keys: Collection[str] | None, vcpu_keys: Collection[str] | None = None) -> None:
        self._focus = (keys, vcpu_keys)
        if self._backend is not None:
            self._backend.focus(keys, vcpu_keys)

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()


def _own_keys(keys: Collection[str] | None, prefix: str) -> list[str] | None:
    """A member's own keys among the pool's (those with its prefix, without it); None stays None (all)."""
    if keys is None:
        return None
    return [key[len(prefix):] for key in keys if key.startswith(prefix)]


def _joined_columns(parts: list[tuple[list[str], Sample]]) -> DomainColumns | None:
    """The members' columns one after the other, under the pool's keys; None unless every member has them."""
    if not parts or any(sample.columns is None for _keys, sample in parts):
        return None
    joined: dict[str, list | None] = {name: [] for name in DomainColumns.__dataclass_fields__}
    for keys, sample in parts:
        columns = sample.columns
        assert columns is not None
        for name, values in joined.items():
            if values is None:
                continue
            column = keys if name == "keys" else getattr(columns, name)
            if column is None:  # an optional column (read_at) some member has not
                joined[name] = None
                continue
            values.extend(column)
    return DomainColumns(**joined)  # type: ignore[arg-type]


def _pool_host(statuses: list[HostStatus]) -> Host:
    """The pool as one host for the header's totals: CPUs and memory of the hosts that answer."""
    hosts = [status.host for status in statuses if status.host is not None]
    return Host(
        hostname=f"pool of {len(statuses)}",
        hypervisor="/".join(sorted({host.hypervisor for host in hosts})) or "-",
        version=_version_span({host.version for host in hosts}),
        nr_cpus=sum(host.nr_cpus for host in hosts),
        cpu_mhz=max((host.cpu_mhz for host in hosts), default=0),
        total_kib=sum(host.total_kib for host in hosts),
        free_kib=sum(host.free_kib for host in hosts),
    )


def _version_span(versions: set[str]) -> str:
    """One version, or the span of them by major.minor ("4.16–4.17"): short enough for the header's first line."""
    if len(versions) <= 1:
        return next(iter(versions), "-")

    def order(version: str) -> tuple:
        return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))

    low, high = min(versions, key=order), max(versions, key=order)
    return f"{'.'.join(low.split('.')[:2])}–{'.'.join(high.split('.')[:2])}"


__all__ = ["LateMember", "PoolBackend", "PooledRates"]
