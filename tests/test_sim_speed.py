"""The simulator made cheaper stays the same simulator (xentui.backends.sim.physics): its figures, to the last
bit, through a scripted run with actions (pause, caps, weights, balloons, vCPUs, shutdown, reboot, destroy), as
digests taken with the physics before it was reworked for speed; and a pool's refresh integrates each host once."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

import xentui.backends.sim.cluster as cluster_module
from xentui.backends.pool import PoolBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock

# sha256 of the run's states, taken with the physics as it was (one domain at a time, every domain at every step)
DIGESTS = {
    "demo": "cb7bc1e5a4c8c9f2",
    "pool": "2be946265b1e9494",
    "big": "da0e5f9d02818123",
}


def _state(cluster: SimCluster) -> list[tuple]:
    out: list[tuple] = []
    for host in cluster.hosts.values():
        out.append((host.hostname, host.last_t))
        for d in host.domains.values():
            out.append((d.name, d.domid, tuple(d.cpu), tuple(d.io), d.mem_kib, d.vif_drops, d.vbd_ring_full,
                        d.last_demand, d.status, d.paused))
    return out


async def _run(kind: str) -> list:
    clock = ManualClock()
    if kind == "pool":
        cluster = SimCluster(seed=5, domains=120, clock=clock, hosts=4)  # 16 CPUs each: the scheduler shares
    elif kind == "big":
        cluster = SimCluster(seed=2, domains=600, clock=clock)
    else:
        cluster = SimCluster(seed=9, domains=40, clock=clock)
    backends = {name: SimBackend(cluster, name) for name in cluster.hosts}
    first = backends["sim-host-1"]
    names = [name for name in first.host.domains if name != "Domain-0"]
    doms = first.host.domains
    actions = {
        1: lambda: first.pause(names[3]),
        2: lambda: first.set_sched(names[1], cap=30),
        3: lambda: first.set_sched(names[2], weight=1024),
        4: lambda: first.mem_set(names[4], int(doms[names[4]].target_kib * 0.5)),
        5: lambda: first.mem_set(names[5], int(doms[names[5]].maxmem_kib or doms[names[5]].target_kib)),
        6: lambda: first.vcpu_set(names[6], 1),
        7: lambda: first.shutdown(names[7]),
        8: lambda: first.reboot(names[0]),
        9: lambda: first.destroy(names[8]),
        10: lambda: first.unpause(names[3]),
    }
    states: list = []
    for step, seconds in enumerate((1.0, 2.0, 0.3, 2.7, 1.02, 7.0, 0.5, 2.0, 2.0, 3.3, 1.0, 11.0, 2.0)):
        clock.advance(seconds)
        try:
            if step in actions:
                await actions[step]()
        except Exception as error:  # a refusal is part of the run
            states.append(("error", type(error).__name__))
        for name, backend in backends.items():
            sample = await backend.sample()
            columns = sample.columns
            assert columns is not None
            states.append((name, columns.cpu_ns, columns.net_rx_bytes, columns.vbd_wr_sectors,
                           [flag.value for flag in columns.flags]))
        states.append(_state(cluster))
    return states


@pytest.mark.parametrize("kind", sorted(DIGESTS))
def test_the_same_figures_to_the_last_bit(kind: str):
    states = asyncio.run(_run(kind))
    assert hashlib.sha256(repr(states).encode()).hexdigest()[:16] == DIGESTS[kind]


@pytest.mark.parametrize("hosts", [5, 20])
def test_a_pool_refresh_integrates_each_host_once(hosts: int, monkeypatch: pytest.MonkeyPatch):
    """Each member's sample brings its own host up to the clock, not every host: integrations per refresh
    equal the hosts, whatever their number (not hosts x hosts)."""
    calls: list[str] = []
    integrate = cluster_module.integrate

    def counted(host, start, end):  # type: ignore[no-untyped-def]
        calls.append(host.hostname)
        integrate(host, start, end)

    monkeypatch.setattr(cluster_module, "integrate", counted)

    async def run() -> list[str]:
        clock = ManualClock()
        cluster = SimCluster(seed=1, domains=10, clock=clock, hosts=hosts)
        pool = PoolBackend([(name, SimBackend(cluster, name)) for name in cluster.hosts])
        await pool.sample()
        calls.clear()
        clock.advance(2.0)
        await pool.sample()
        await pool.close()
        return list(calls)

    assert sorted(asyncio.run(run())) == sorted(f"sim-host-{n}" for n in range(1, hosts + 1))


def _reference_share(demands: list[float], weights: list[int], cpus: float) -> list[float]:
    """The credit scheduler's water-filling as it was written first, round by round over every hungry domain."""
    if sum(demands) <= cpus:
        return demands
    granted = [0.0] * len(demands)
    hungry = [i for i, wanted in enumerate(demands) if wanted > 0]
    left = float(cpus)
    while hungry and left > 1e-9:
        total_weight = sum(weights[i] for i in hungry)
        fair = {i: left * weights[i] / total_weight for i in hungry}
        satisfied = [i for i in hungry if demands[i] - granted[i] <= fair[i]]
        if not satisfied:
            for i in hungry:
                granted[i] += fair[i]
            break
        for i in satisfied:
            left -= demands[i] - granted[i]
            granted[i] = demands[i]
        done = set(satisfied)
        hungry = [i for i in hungry if i not in done]
    return granted


def test_the_credit_share_is_the_same_to_the_last_bit():
    """Equal weights take a shortcut (`_equal_share`): the same shares as round by round, whatever the demands."""
    import random

    from xentui.backends.sim.physics import _credit_share

    rng = random.Random(20)
    for _ in range(3000):
        count = rng.choice((1, 2, 3, 10, 50, 200))
        demands = [0.0 if rng.random() < 0.15 else rng.choice((0.5, 1.0, 2.0, rng.random() * rng.choice((1, 4, 8))))
                   for _ in range(count)]
        weights = [256] * count if rng.random() < 0.8 else [rng.choice((128, 256, 512)) for _ in range(count)]
        cpus = rng.choice((0.5, 1, 2, 4, 16, 64))
        expected = _reference_share(list(demands), list(weights), cpus)
        got = _credit_share(list(demands), list(weights), cpus)
        assert [value.hex() for value in got] == [value.hex() for value in expected]
