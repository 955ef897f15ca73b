"""Each backend's refresh beside the raw call it makes, at 1,000 domains, in one run: the figures issue 19 aims at.

Run: .venv/bin/python bench/bench_backends.py [--domains 1000] [--calls 15]

Prints medians (ms) and ratios:
- libvirt (the test driver, one disk and one NIC per domain): the raw ``getAllDomainStats()`` on a connection of
  its own, then ``LibvirtBackend.sample()``, and sample / raw (the goal: at most 1.5);
- the simulator's ``sample()`` at the same size;
- ``compute_rates`` on two libvirt samples and on two sim samples, and libvirt / sim (the goal: about 1).
The xl figures (libxenstat and xentop per iteration) need the Xen lab: tests/xenlab.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.model import compute_rates


def libvirt_node(domains: int) -> str:
    """A libvirt test-driver node of running HVM domains, each with a disk and a bridged NIC."""
    draw = random.Random(5)
    parts = ['<?xml version="1.0"?>', '<node xmlns:test="http://libvirt.org/schemas/domain/test/1.0">',
             "<cpu><mhz>2600</mhz><model>x86_64</model><active>64</active><nodes>1</nodes><sockets>2</sockets>"
             "<cores>16</cores><threads>2</threads></cpu>", "<memory>1073741824</memory>"]
    for i in range(domains):
        kib = draw.choice([1, 2, 4, 8]) * 1048576
        parts.append(
            f'<domain type="test"><name>vm-{i:04d}</name><uuid>{uuid.UUID(int=draw.getrandbits(128))}</uuid>'
            f"<memory>{kib * 2}</memory><currentMemory>{kib}</currentMemory><vcpu>{draw.choice([1, 2, 4])}</vcpu>"
            '<os><type>hvm</type></os><devices><disk type="file" device="disk">'
            f'<source file="/var/lib/img/vm-{i}.img"/><target dev="xvda" bus="xen"/></disk>'
            f'<interface type="bridge"><mac address="00:16:3e:{i // 65536 % 256:02x}:{i // 256 % 256:02x}:'
            f'{i % 256:02x}"/><source bridge="xenbr0"/><target dev="vif{i}.0"/></interface></devices>'
            "<test:runstate>1</test:runstate></domain>")
    parts.append("</node>")
    return "\n".join(parts)


def median_ms(call: Callable[[], object], calls: int) -> float:
    runs = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


async def median_ms_async(call: Callable[[], Awaitable[object]], calls: int) -> float:
    runs = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


async def measure(domains: int, calls: int) -> None:
    import libvirt

    from xentui.backends.libvirt import LibvirtBackend

    with tempfile.TemporaryDirectory() as scratch:
        node = Path(scratch) / "node.xml"
        node.write_text(libvirt_node(domains))
        uri = f"test://{node}"
        raw = libvirt.openReadOnly(uri)
        raw_ms = median_ms(raw.getAllDomainStats, calls)
        raw.close()
        backend = LibvirtBackend(uri)
        try:
            first = await backend.sample()
            sample_ms = await median_ms_async(backend.sample, calls)
            second = await backend.sample()
        finally:
            await backend.close()
    clock = ManualClock()
    sim = SimBackend(SimCluster(seed=7, domains=domains, clock=clock))
    sim_first = await sim.sample()

    async def sim_sample() -> object:
        clock.advance(1.0)
        return await sim.sample()

    sim_ms = await median_ms_async(sim_sample, calls)
    clock.advance(1.0)
    sim_second = await sim.sample()
    lv_rates = median_ms(lambda: compute_rates(first, second), calls)
    sim_rates = median_ms(lambda: compute_rates(sim_first, sim_second), calls)

    print(f"{domains} domains, median of {calls} calls (ms)")
    print(f"libvirt test driver: raw getAllDomainStats {raw_ms:7.2f}   LibvirtBackend.sample {sample_ms:7.2f}"
          f"   ratio {sample_ms / raw_ms:5.1f} (goal <= 1.5)")
    print(f"sim:                 SimBackend.sample     {sim_ms:7.2f}")
    print(f"rates:               libvirt {lv_rates:7.2f}   sim {sim_rates:7.2f}   ratio {lv_rates / sim_rates:5.1f}"
          " (goal about 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(measure(args.domains, args.calls))


if __name__ == "__main__":
    main()
