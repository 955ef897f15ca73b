"""How the core scales with the number of domains: sim sample, rates, and each batch format.

Run: .venv/bin/python bench/bench_core.py
Prints milliseconds per call (median of several) and the cost per domain, for 12 to 5,000 domains.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from xentui.backends.sim import SimBackend, SimCluster
from xentui.batch import BatchFormat, BatchOptions, make_formatter
from xentui.clock import ManualClock
from xentui.model import compute_rates

SIZES = (12, 100, 1000, 5000)
REPEATS = 7


def timed(call, repeats: int = REPEATS) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


async def measure(size: int) -> dict[str, float]:
    clock = ManualClock()
    sim = SimBackend(SimCluster(seed=1, domains=size, clock=clock))
    previous = await sim.sample()
    clock.advance(1)

    figures = {}
    runs = []
    for _ in range(REPEATS):
        clock.advance(1)
        start = time.perf_counter()
        current = await sim.sample()
        runs.append(time.perf_counter() - start)
    figures["sample"] = statistics.median(runs) * 1000
    figures["rates"] = timed(lambda: compute_rates(previous, current))
    rates = compute_rates(previous, current)
    for fmt in BatchFormat:
        options = BatchOptions(format=fmt, networks=True, vbds=True, vcpus=True)
        figures[f"fmt-{fmt.value}"] = timed(lambda options=options: make_formatter(options).format(current, rates))
    return figures


async def main() -> None:
    print(f"{'domains':>8} " + " ".join(f"{name:>12}" for name in
                                         ("sample", "rates", "fmt-xentop", "fmt-csv", "fmt-json")) + "   (ms)")
    per_domain = {}
    for size in SIZES:
        figures = await measure(size)
        per_domain[size] = figures["sample"] / (size + 1)
        print(f"{size:>8} " + " ".join(f"{value:12.2f}" for value in figures.values()))
    print("sample cost per domain (us): " + ", ".join(f"{s}: {v * 1000:.1f}" for s, v in per_domain.items()))


if __name__ == "__main__":
    asyncio.run(main())
