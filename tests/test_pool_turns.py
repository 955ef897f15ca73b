"""The pool's refresh gives the event loop back between its members (xentui.backends.pool): a key pressed while
fifty simulated hosts are sampled waits for one member's sample, not for all of them."""

from __future__ import annotations

import asyncio
from itertools import pairwise

from xentui.backends.pool import ABSORB_BATCH, PoolBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.model import Sample


class Counted(SimBackend):
    """A simulated host that counts the samples taken, pool-wide."""

    done: list[str]

    async def sample(self) -> Sample:
        sample = await super().sample()
        self.done.append(self.host.hostname)
        return sample


def test_a_key_waits_for_one_members_sample_not_for_the_pool():
    async def run() -> tuple[list[int], int]:
        clock = ManualClock()
        cluster = SimCluster(seed=1, domains=5, clock=clock, hosts=20)
        done: list[str] = []
        members = []
        for name in cluster.hosts:
            member = Counted(cluster, name)
            member.done = done
            members.append((name, member))
        pool = PoolBackend(members)
        await pool.sample()
        clock.advance(2.0)
        done.clear()
        refresh = asyncio.ensure_future(pool.sample())
        seen: list[int] = []  # the samples taken at each turn of the loop that another task got
        while not refresh.done():
            seen.append(len(done))
            await asyncio.sleep(0)
        sample = refresh.result()
        assert len(sample.hosts) == 20
        return seen, len(done)

    seen, total = asyncio.run(run())
    assert total == 20
    steps = [after - before for before, after in pairwise(seen)]
    assert max(steps) <= 1  # never more than one member's sample between two turns of another task
    assert len(seen) >= total + 20 // ABSORB_BATCH  # and the rates are taken in a few at a time
