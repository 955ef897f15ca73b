"""The history kept as one frame per refresh (xentui.history): the same series, point for point, as the
per-domain deques it replaced, for one host and for a pool; recording does not make an object per domain."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path

from tests.pool_members import Flaky
from xentui.backends.pool import PoolBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.history import History
from xentui.model import Rates, compute_rates


class DequeHistory:
    """The history as it was: three deques per domain, a domain gone forgotten (the reference)."""

    def __init__(self, points: int) -> None:
        self.points = points
        self.series: dict[str, tuple[deque, deque, deque]] = {}

    def record(self, rates: Rates) -> None:
        for key in self.series.keys() - set(rates):
            del self.series[key]
        for key, cpu, net, disk in rates.points():
            entry = self.series.get(key)
            if entry is None:
                entry = self.series[key] = (deque(maxlen=self.points), deque(maxlen=self.points),
                                            deque(maxlen=self.points))
            for values, value in zip(entry, (cpu, net, disk), strict=True):
                values.append(value)


def assert_same(history: History, reference: DequeHistory, keys: list[str]) -> None:
    assert len(history) == len(reference.series)
    for key in {*keys, *reference.series}:
        series, expected = history.get(key), reference.series.get(key)
        if expected is None:
            assert series is None or not series.cpu_pct
            continue
        assert series is not None
        got = (list(series.cpu_pct), list(series.net_bytes_s), list(series.disk_bytes_s))
        assert got == tuple(map(list, expected)), key


def test_one_host_the_same_series_through_a_destroy_a_restore_and_a_reboot(tmp_path: Path):
    async def run() -> None:
        clock = ManualClock()
        backend = SimBackend(SimCluster(seed=3, domains=30, clock=clock), save_dir=tmp_path)
        history, reference = History(points=5), DequeHistory(points=5)
        previous = await backend.sample()
        every: list[str] = list(previous.keys())
        for step in range(14):
            clock.advance(1.5)
            if step == 3:
                await backend.destroy("mail-relay")
            if step == 5:
                await backend.save("db-primary", tmp_path / "db.save")
            if step == 8:
                await backend.restore(tmp_path / "db.save")
            if step == 9:
                await backend.reboot("web-frontend-01")
            sample = await backend.sample()
            rates = compute_rates(previous, sample)
            history.record(rates)
            reference.record(rates)
            every.extend(sample.keys())
            assert_same(history, reference, every)
            previous = sample

    asyncio.run(run())


def test_a_pool_the_same_series_while_a_host_fails_and_comes_back():
    async def run() -> None:
        clock = ManualClock()
        cluster = SimCluster(seed=7, domains=8, clock=clock)
        flaky = Flaky(SimBackend(cluster, "sim-host-2"))
        pool = PoolBackend([("a", SimBackend(cluster, "sim-host-1")), ("b", flaky),
                            ("c", SimBackend(cluster, "sim-host-3"))])
        await pool.set_poll_interval(0.01)
        history, reference = History(points=4), DequeHistory(points=4)
        previous = await pool.sample()
        every = list(previous.keys())
        for step in range(10):
            clock.advance(1.0)
            flaky.mode = "fail" if 3 <= step < 6 else "ok"
            await asyncio.sleep(0.02)  # past the back-off
            sample = await pool.sample()
            rates = compute_rates(previous, sample)
            history.record(rates)
            reference.record(rates)
            every.extend(sample.keys())
            assert_same(history, reference, every)
            previous = sample
        await pool.close()

    asyncio.run(run())


def objects_held(history: History) -> int:
    """Objects reachable from the history, its keys' strings aside (the samples hold those anyway)."""
    import gc

    seen: set[int] = set()
    todo: list[object] = [history]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (str, type)):
            continue
        seen.add(id(obj))
        todo.extend(gc.get_referents(obj))
    return len(seen)


def test_recording_holds_no_object_per_domain():
    """A few objects a refresh, whatever the number of domains: not a float, a deque or a series per domain."""

    async def held(domains: int) -> int:
        clock = ManualClock()
        backend = SimBackend(SimCluster(seed=1, domains=domains, clock=clock))
        history = History(points=10)
        previous = await backend.sample()
        for _ in range(3):
            clock.advance(1.0)
            sample = await backend.sample()
            history.record(compute_rates(previous, sample))
            previous = sample
        assert len(history) == domains + 1
        return objects_held(history)

    assert asyncio.run(held(50)) == asyncio.run(held(800))
