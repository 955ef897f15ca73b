"""The pool's records (xentui.backends.pool): each domain's record as its member's with the host set, made when
first read, and kept from one refresh to the next while the member brings nothing new."""

from __future__ import annotations

import asyncio
import dataclasses

from tests.pool_members import Flaky
from xentui.backends.pool import PoolBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock


def test_each_record_is_its_members_with_the_host_set():
    async def run() -> None:
        clock = ManualClock()
        cluster = SimCluster(seed=4, domains=10, clock=clock)
        members = {name: SimBackend(cluster, name) for name in cluster.hosts}
        pool = PoolBackend(list(members.items()))
        await pool.sample()
        clock.advance(2.0)
        sample = await pool.sample()
        own = {member.label: member.sample.domains for member in pool._members}  # the samples the pool took
        expected = [dataclasses.replace(domain, host=label) for label, domains in own.items() for domain in domains]
        assert list(sample.domains) == expected
        assert [domain.key for domain in sample.domains] == sample.keys()
        assert sample.domains[-1] == expected[-1] and sample.domains[len(expected) // 2] == expected[len(expected) // 2]
        await pool.close()

    asyncio.run(run())


def test_a_refresh_with_nothing_new_makes_no_record_again():
    """Members that are slow (their last sample stays) give the same records: none is made again."""

    async def run() -> None:
        clock = ManualClock()
        cluster = SimCluster(seed=4, domains=30, clock=clock, hosts=4)
        flaky = [Flaky(SimBackend(cluster, name)) for name in cluster.hosts]
        pool = PoolBackend([(member.inner.host.hostname, member) for member in flaky])
        first = await pool.sample()
        before = list(first.domains)
        # one member hangs: its records stay the very same objects, the others' are new
        flaky[1].mode = "hang"
        clock.advance(2.0)
        second = await pool.sample()
        hosts = [domain.host for domain in before]
        again = [new is old for new, old in zip(second.domains, before, strict=True)]
        assert all(same == (host == "sim-host-2") for same, host in zip(again, hosts, strict=True))
        # every member hangs: a refresh makes no record at all
        for member in flaky:
            member.mode = "hang"
        third = await pool.sample()
        fourth = await pool.sample()
        assert all(a is b for a, b in zip(third.domains, fourth.domains, strict=True))
        for member in flaky:
            member.release.set()
        await pool.close()

    asyncio.run(run())
