"""libvirt's sample() beside the raw getAllDomainStats() on real QEMU guests (the libvirt lab's libvirtd), where the
bulk records carry every group: no per-domain call, so the ratio is xentui's own cost over the call it makes.

Run (as root, after tests/libvirtlab/setup.sh): .venv/bin/python bench/bench_libvirt_qemu.py [--guests 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.libvirtlab.conftest import LAB_URI, Lab, _unavailable  # noqa: E402


async def measure(calls: int) -> tuple[float, float, int]:
    import libvirt

    from xentui.backends.libvirt import LibvirtBackend

    raw = libvirt.openReadOnly(LAB_URI)
    groups = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
              | libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
    flags = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
    backend = LibvirtBackend(LAB_URI)
    raw_runs, sample_runs = [], []
    try:
        sample = await backend.sample()
        for _ in range(calls):  # interleaved, so the guests' drift weighs on both alike
            start = time.perf_counter()
            raw.getAllDomainStats(groups, flags)
            raw_runs.append(time.perf_counter() - start)
            start = time.perf_counter()
            sample = await backend.sample()
            sample_runs.append(time.perf_counter() - start)
    finally:
        await backend.close()
        raw.close()
    return statistics.median(raw_runs) * 1000, statistics.median(sample_runs) * 1000, len(sample.domains)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=4)
    parser.add_argument("--calls", type=int, default=31)
    args = parser.parse_args()
    reason = _unavailable()
    if reason is not None:
        print(f"no libvirt lab: {reason}", file=sys.stderr)
        return 2
    lab = Lab()
    try:
        for _ in range(args.guests):
            lab.start()
        time.sleep(5)
        raw_ms, sample_ms, domains = asyncio.run(measure(args.calls))
    finally:
        lab.close()
    print(f"qemu:///system, {domains} real QEMU guests (TCG), median of {args.calls} calls, interleaved (ms):")
    print(f"  raw getAllDomainStats (the groups xentui asks for) {raw_ms:7.2f}   LibvirtBackend.sample {sample_ms:7.2f}"
          f"   ratio {sample_ms / raw_ms:5.2f} (goal <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
