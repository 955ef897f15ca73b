"""What a pool costs beside its hosts sampled one by one: the pool's refresh (every member's sample, each host's
rates, the joined columns and the per-host lines) against the same members' own samples and rates, in one run.

Run: .venv/bin/python bench/bench_pool.py [--hosts 4] [--domains 1000]
Prints milliseconds per refresh (median of several) and the ratio pool / members; and the table's layout
(`DomainTable.rebuild`, no drawing) for one host, the pool grouped, and the pool as one list.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from bench_core import timed
from textual.app import App

from xentui.backends.pool import PoolBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.model import compute_rates
from xentui.ui.app import STATE_VARIABLE_DEFAULTS
from xentui.ui.table import DomainTable, ViewOptions

REPEATS = 9


async def timed_async(make, repeats: int = REPEATS) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        await make()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


class _Bare(App[None]):
    """An app with nothing but the table's theme variables (the states' colours)."""

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **STATE_VARIABLE_DEFAULTS}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--domains", type=int, default=1000, help="domUs on each host")
    args = parser.parse_args()
    clock = ManualClock()
    cluster = SimCluster(seed=1, domains=args.domains, clock=clock, hosts=args.hosts)
    members = [(name, SimBackend(cluster, name)) for name in cluster.hosts]
    pool = PoolBackend(members)
    previous = {name: await member.sample() for name, member in members}
    last_pool = await pool.sample()

    async def members_alone() -> None:  # what polling each host on its own would cost: sample + rates
        clock.advance(1.0)
        for name, member in members:
            sample = await member.sample()
            compute_rates(previous[name], sample)
            previous[name] = sample

    async def pooled() -> None:
        nonlocal last_pool
        clock.advance(1.0)
        sample = await pool.sample()
        compute_rates(last_pool, sample)
        last_pool = sample

    alone = await timed_async(members_alone)
    together = await timed_async(pooled)
    count = sum(len(cluster.hosts[name].domains) for name in cluster.hosts)
    print(f"{args.hosts} hosts, {count} domains in all (refresh: sample + rates)")
    print(f"  members one by one  {alone:8.2f} ms")
    print(f"  the pool            {together:8.2f} ms   pool / members: {together / alone:.2f}x")

    # the table's layout of each refresh: one host's table, the pool grouped by host, the pool as one list
    _first_name, first = members[0]
    single = await first.sample()
    clock.advance(1.0)
    single_next = await first.sample()
    single_rates = compute_rates(single, single_next)
    clock.advance(1.0)
    pooled_sample = await pool.sample()
    pooled_rates = compute_rates(last_pool, pooled_sample)
    app = _Bare()
    async with app.run_test(size=(160, 50)):
        for title, sample, rates, view in (
            (f"one host ({len(single_next.domains)} domains)", single_next, single_rates, ViewOptions()),
            (f"pool grouped ({len(pooled_sample.domains)})", pooled_sample, pooled_rates, ViewOptions()),
            (f"pool as one list ({len(pooled_sample.domains)})", pooled_sample, pooled_rates,
             ViewOptions(grouped=False)),
        ):
            table = DomainTable(view)
            await app.mount(table)
            table.update_sample(sample, rates)
            cost = timed(table.rebuild, REPEATS)
            print(f"  layout: {title:32} {cost:8.2f} ms   {cost * 1000 / len(sample.domains):6.2f} us/domain")
            await table.remove()


if __name__ == "__main__":
    asyncio.run(main())
