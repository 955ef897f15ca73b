"""The pool: several hosts' backends as one table, each sampled on its own (xentui.backends.pool)."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from tests.pool_members import Flaky
from xentui.backends.base import BackendError
from xentui.backends.pool import PoolBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.batch import BatchFormat, BatchOptions, run_batch
from xentui.clock import ManualClock
from xentui.errors import InvalidArgument
from xentui.model import NO_RATE, DomainState, compute_rates

pytestmark = pytest.mark.asyncio


def sim_pool(clock: ManualClock, **kwargs) -> tuple[PoolBackend, dict[str, SimBackend]]:
    cluster = SimCluster(seed=7, domains=12, clock=clock)
    members = {name: SimBackend(cluster, name) for name in cluster.hosts}
    return PoolBackend(list(members.items()), **kwargs), members


async def test_every_host_is_in_the_one_sample_each_domain_under_its_host():
    clock = ManualClock()
    pool, members = sim_pool(clock)
    sample = await pool.sample()
    by_host: dict[str, list[str]] = {}
    for domain in sample.domains:
        by_host.setdefault(domain.host, []).append(domain.name)
    for label, member in members.items():
        own = await member.sample()
        assert sorted(by_host[label]) == sorted(domain.name for domain in own.domains)
    # three Domain-0s (one uuid of zeros on Xen) and every key once: keys carry the host
    assert sum(1 for domain in sample.domains if domain.is_dom0) == 3
    assert len(set(sample.keys())) == len(sample.domains)
    assert sample.keys() == [domain.key for domain in sample.domains]
    assert all(key.startswith(f"{domain.host}/") for key, domain in zip(sample.keys(), sample.domains, strict=True))
    assert [status.label for status in sample.hosts] == list(members)
    assert all(status.error is None and status.host is not None for status in sample.hosts)
    assert sample.host.nr_cpus == sum(status.host.nr_cpus for status in sample.hosts)


async def test_rates_are_each_hosts_own_over_its_own_interval():
    clock = ManualClock()
    pool, _members = sim_pool(clock)
    first = await pool.sample()
    clock.advance(2.0)
    second = await pool.sample()
    rates = compute_rates(first, second)
    assert rates is second.rates
    keys = second.keys()
    cpu = rates.column("cpu_pct", keys)
    assert len(cpu) == len(keys) and all(value != NO_RATE for value in cpu)
    for key, value in zip(keys, cpu, strict=True):
        assert rates[key].cpu_pct == pytest.approx(value)
    assert set(rates) == set(keys) and len(rates) == len(keys)
    # the same figures as each member's own rates over the same interval
    runaway = next(domain for domain in second.domains if rates[domain.key].cpu_pct > 90)
    assert runaway.state is DomainState.RUNNING
    assert [point[0] for point in rates.points()] == keys


async def test_a_host_that_fails_is_shown_down_backs_off_and_comes_back():
    clock = ManualClock()
    cluster = SimCluster(seed=7, domains=6, clock=clock)
    flaky = Flaky(SimBackend(cluster, "sim-host-2"))
    pool = PoolBackend([("a", SimBackend(cluster, "sim-host-1")), ("b", flaky)])
    await pool.set_poll_interval(0.05)
    await pool.sample()
    flaky.mode = "fail"
    sample = await pool.sample()
    down = sample.hosts[1]
    assert down.error == "ssh: connect to host dom0b port 22: Connection refused"
    assert down.failing_since is not None and down.last_seen is not None
    assert {domain.host for domain in sample.domains} == {"a", "b"}  # b's last figures stay, said as old
    calls = flaky.calls
    await pool.sample()  # within the back-off: b is not asked again
    assert flaky.calls == calls
    await asyncio.sleep(0.06)
    again = await pool.sample()
    assert flaky.calls == calls + 1 and again.hosts[1].error is not None
    flaky.mode = "ok"
    await asyncio.sleep(0.11)  # the second failure doubled the wait
    back = await pool.sample()
    assert back.hosts[1].error is None and back.hosts[1].failing_since is None
    assert sample.hosts[0].error is None


async def test_a_hung_host_does_not_hold_the_others_and_is_called_down_after_its_timeout():
    clock = ManualClock()
    cluster = SimCluster(seed=7, domains=6, clock=clock)
    hung = Flaky(SimBackend(cluster, "sim-host-2"))
    pool = PoolBackend([("a", SimBackend(cluster, "sim-host-1")), ("b", hung)], timeout=1.5)
    await pool.sample()
    hung.mode = "hang"
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = await pool.sample()
    assert loop.time() - started < 1.0  # the grace, not the hung host's time
    assert first.hosts[1].error is None
    clock.advance(1.0)
    second = await pool.sample()
    assert second.hosts[1].slow_for > 0 and hung.calls == 2  # still the one call in flight
    assert {domain.host for domain in second.domains} == {"a", "b"}
    await asyncio.sleep(1.0)
    third = await pool.sample()
    assert third.hosts[1].error == "no answer in 1.5 s"
    hung.mode = "ok"
    hung.release.set()
    await pool.close()


async def test_actions_go_to_the_domains_own_host():
    clock = ManualClock()
    pool, members = sim_pool(clock)
    sample = await pool.sample()
    target = next(domain for domain in sample.domains if domain.host == "sim-host-2" and not domain.is_dom0
                  and domain.state is not DomainState.PAUSED)
    await pool.for_domain(target).pause(target.name)
    after = await pool.sample()
    assert after.domain(target.key).state is DomainState.PAUSED
    on_host_2 = await members["sim-host-2"].sample()
    assert next(d for d in on_host_2.domains if d.name == target.name).state is DomainState.PAUSED
    with pytest.raises(BackendError, match="no host named 'elsewhere'"):
        pool.member("elsewhere")


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")
def test_host_names_must_be_unique_and_plain():
    sim = SimBackend(SimCluster(seed=1, domains=2, clock=ManualClock()))
    with pytest.raises(InvalidArgument, match="same name"):
        PoolBackend([("a", sim), ("a", sim)])
    with pytest.raises(InvalidArgument, match="'/'"):
        PoolBackend([("a/b", sim)])
    with pytest.raises(InvalidArgument, match="at least one"):
        PoolBackend([])


async def batch_text(pool: PoolBackend, fmt: str, clock: ManualClock, iterations: int = 2) -> str:
    out = io.StringIO()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    await run_batch(pool, BatchOptions(format=BatchFormat(fmt), iterations=iterations, delay=1.0), out, sleep=sleep)
    return out.getvalue()


async def test_batch_json_carries_each_domains_host_and_every_hosts_state():
    clock = ManualClock()
    pool, members = sim_pool(clock)
    last = json.loads((await batch_text(pool, "json", clock)).splitlines()[-1])
    assert [host["name"] for host in last["hosts"]] == list(members)
    assert all(host["up"] and host["error"] is None for host in last["hosts"])
    own = {label: {d.name for d in (await member.sample()).domains} for label, member in members.items()}
    for record in last["domains"]:
        assert record["name"] in own[record["host"]]
        host = next(h for h in last["hosts"] if h["name"] == record["host"])
        assert record["mem_pct"] == round(100 * record["mem_kib"] / host["total_kib"], 1)  # its own host's memory
    assert all(record["cpu_pct"] is not None for record in last["domains"])  # rates, per host


async def test_batch_xentop_prints_a_block_per_host_and_a_line_for_one_down():
    clock = ManualClock()
    cluster = SimCluster(seed=7, domains=3, clock=clock)
    flaky = Flaky(SimBackend(cluster, "sim-host-2"))
    pool = PoolBackend([("a", SimBackend(cluster, "sim-host-1")), ("b", flaky)])
    text = await batch_text(pool, "xentop", clock, iterations=1)
    lines = text.splitlines()
    assert lines[0] == "HOST a Xen 4.17.3" and "HOST b Xen 4.17.3" in lines
    assert sum(1 for line in lines if line.lstrip().startswith("NAME")) == 2
    flaky.mode = "fail"
    down = await batch_text(pool, "xentop", clock, iterations=1)
    assert "HOST b DOWN: ssh: connect to host dom0b port 22: Connection refused" in down.splitlines()
    csv_text = await batch_text(pool, "csv", clock, iterations=1)
    assert csv_text.splitlines()[0].startswith("host,time,id,name")
    assert {row.split(",")[0] for row in csv_text.splitlines()[1:]} == {"a", "b"}  # b's last figures


async def test_a_refresh_brings_each_simulated_host_up_once_not_once_per_member(monkeypatch):
    """The cost of one more host is its own domains, not the pool's: counted, as integrations per refresh."""
    for hosts in (3, 12):
        clock = ManualClock()
        cluster = SimCluster(seed=2, domains=5, clock=clock, hosts=hosts)
        pool = PoolBackend([(name, SimBackend(cluster, name)) for name in cluster.hosts])
        await pool.sample()
        advanced: list[str] = []
        original = cluster._advance_host
        def counted(host, now, advanced=advanced, original=original):
            advanced.append(host.hostname)
            original(host, now)

        monkeypatch.setattr(cluster, "_advance_host", counted)
        clock.advance(1.0)
        await pool.sample()
        assert sorted(advanced) == sorted(cluster.hosts)  # each host once
