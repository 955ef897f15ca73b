"""Each backend's refresh beside the raw call it makes, at 1,000 domains, in one run: the figures issue 19 aims at.

Run: .venv/bin/python bench/bench_backends.py [--domains 1000] [--calls 15] [--window 30]

Prints medians (ms) and ratios:
- libvirt (the test driver, one disk and one NIC per domain): the raw ``getAllDomainStats()`` on a connection of
  its own, then ``LibvirtBackend.sample()``, and sample / raw (the goal: at most 1.5). The test driver's bulk
  records carry the state group only, so xentui lists the domains' ids instead and makes the per-domain calls;
  each sample is printed beside those calls, raw, for three kinds of refresh: nothing in focus (batch mode, the
  exporter: every figure of every domain, per-vCPU times included), the screen reading every domain's devices
  (sorted by a device column, or rows that trade places at every refresh), and the screen as it mostly is (the
  devices of 150 domains: those shown at 160x50 and a screen each way); the screen reads the vCPUs of the 50
  rows it shows;
- the simulator's ``sample()`` at the same size;
- ``compute_rates`` on two libvirt samples and on two sim samples, and libvirt / sim (the goal: about 1);
- the whole program on a pseudo-terminal, sim and libvirt: first frame, idle CPU, peak RSS, and their ratios.
The xl figures (libxenstat and xentop per iteration) need the Xen lab: bench/bench_xl_lab.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_core's timing, bench_tui's pseudo-terminal

from bench_core import timed

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


def the_calls_it_needs(conn: object, kept: dict[int, object], nics: dict[int, str], devices: int,
                       vcpus: int) -> None:
    """The libvirt calls a refresh of the test driver needs, bare: its bulk records carry the state group only, so
    the domains' ids are listed and each kept domain object (``kept``, by id, looked up beforehand) is asked for
    info(); the first ``devices`` of them for interfaceStats() and blockStats(), the first ``vcpus`` for vcpus()
    (virt-top makes these too, for every domain). ``nics``: each domain's vif by domid, as the XML names it."""
    for index, domid in enumerate(conn.listDomainsID()):  # type: ignore[attr-defined]
        dom = kept[domid]
        dom.info()  # type: ignore[attr-defined]
        if index < vcpus:
            dom.vcpus()  # type: ignore[attr-defined]
        if index < devices:
            dom.interfaceStats(nics[domid])  # type: ignore[attr-defined]
            dom.blockStats("xvda")  # type: ignore[attr-defined]


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
        raw_ms = timed(raw.getAllDomainStats, calls)
        kept = {dom.ID(): dom for dom in raw.listAllDomains()}
        nics = {domid: f"vif{int(dom.name()[3:])}.0" for domid, dom in kept.items()}
        # what each kind of refresh needs: (device reads, vCPU reads)
        needs = {"all": (domains, domains), "churn": (domains, 50), "steady": (150, 50)}
        calls_ms = {kind: timed(lambda d=d, v=v: the_calls_it_needs(raw, kept, nics, d, v), calls)
                    for kind, (d, v) in needs.items()}
        raw.close()
        backend = LibvirtBackend(uri)
        try:
            first = await backend.sample()
            sample_ms = await median_ms_async(backend.sample, calls)  # nothing focused: batch, export
            second = await backend.sample()
            shown = first.keys()[:50]  # the rows on screen at 160x50: their vCPUs are read
            # the screen sorted by a device column, or with rows that trade places at every refresh: every
            # domain's devices
            backend.focus(None, shown)
            churn_ms = await median_ms_async(backend.sample, calls)
            # the screen as it mostly is at 160x50: the devices of the rows shown and a screen each way
            backend.focus(first.keys()[:150], shown)
            await backend.sample()
            focused_ms = await median_ms_async(backend.sample, calls)
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
    lv_rates = timed(lambda: compute_rates(first, second), calls)
    sim_rates = timed(lambda: compute_rates(sim_first, sim_second), calls)

    print(f"{domains} domains, median of {calls} calls (ms)")
    print(f"libvirt test driver: raw getAllDomainStats {raw_ms:7.2f}   LibvirtBackend.sample {sample_ms:7.2f}"
          f"   ratio {sample_ms / raw_ms:5.1f} (goal <= 1.5)")
    print("  the test driver's records carry the state group only: beside each sample, the calls it needs, raw")
    for label, kind, ms in (("nothing in focus (batch, export)", "all", sample_ms),
                            ("the screen, every domain's devices", "churn", churn_ms),
                            ("the screen, 150 domains in focus", "steady", focused_ms)):
        print(f"  {label:36s} sample {ms:7.2f}   calls {calls_ms[kind]:7.2f}   sample / calls"
              f" {ms / calls_ms[kind]:5.2f}   sample / getAllDomainStats {ms / raw_ms:5.2f}")
    print(f"sim:                 SimBackend.sample     {sim_ms:7.2f}")
    print(f"rates:               libvirt {lv_rates:7.2f}   sim {sim_rates:7.2f}   ratio {lv_rates / sim_rates:5.1f}"
          " (goal about 1)")


def screens(domains: int, window: float, size: tuple[int, int] = (160, 50)) -> None:
    """The whole program on a pseudo-terminal, the simulator's and the libvirt test driver's at the same size:
    first frame (each alone), then idle CPU and peak RSS with both running at once (the machine's drift weighs
    on both alike). Both with no config file (not the machine's settings)."""
    import psutil
    from bench_tui import PYTHON, Terminal, first_frame

    with tempfile.TemporaryDirectory() as scratch, _config_home(Path(scratch)):
        node = Path(scratch) / "node.xml"
        node.write_text(libvirt_node(domains))
        programs = {
            "sim": [PYTHON, "-m", "xentui", "--demo", "--seed", "1", "--sim-domains", str(domains), "-d", "1"],
            "libvirt": [PYTHON, "-m", "xentui", "-c", f"test://{node}", "-d", "1"],
        }
        frames = {name: statistics.median(first_frame(argv, b" domains: ", size) for _ in range(3))
                  for name, argv in programs.items()}
        terms = {name: Terminal(argv, *size) for name, argv in programs.items()}
        try:
            for term in terms.values():
                term.wait_for(b" domains: ")

            def pump(seconds: float) -> None:
                end = time.perf_counter() + seconds
                while time.perf_counter() < end:
                    for term in terms.values():
                        term.drain(0.025)

            pump(3)
            processes = {name: psutil.Process(term.proc.pid) for name, term in terms.items()}
            before = {name: sum(process.cpu_times()[:2]) for name, process in processes.items()}
            peak = dict.fromkeys(terms, 0)
            start = time.perf_counter()
            while time.perf_counter() - start < window:
                pump(0.5)
                for name, process in processes.items():
                    peak[name] = max(peak[name], process.memory_info().rss)
            elapsed = time.perf_counter() - start
            idle = {name: (sum(process.cpu_times()[:2]) - before[name]) / elapsed * 100
                    for name, process in processes.items()}
        finally:
            for term in terms.values():
                term.close()
    print(f"the program, {size[0]}x{size[1]}, refresh 1 s, {window:g} s idle with both running:")
    for name in programs:
        print(f"  {name:8s} first frame {frames[name]:5.2f} s   idle {idle[name]:5.2f} % of a core"
              f"   peak RSS {peak[name] / 2**20:5.0f} MiB")
    print(f"  libvirt / sim: first frame {frames['libvirt'] / frames['sim']:4.2f} (goal <= 1.5)"
          f"   idle {idle['libvirt'] / idle['sim']:4.2f} (goal <= 1.25)   RSS {peak['libvirt'] / peak['sim']:4.2f}"
          " (goal <= 1.25)")
    python, with_libvirt = baselines(domains)
    print(f"  the RSS that is not xentui's: a bare Python {python / 2**20:.0f} MiB; the same with libvirt's test "
          f"driver open on this node and its stats read once {with_libvirt / 2**20:.0f} MiB (the library, and the "
          "driver's domains, in the process; with a libvirtd they are the daemon's)")
    own_sim, own_libvirt = peak["sim"] - python, peak["libvirt"] - with_libvirt
    print(f"  xentui's own, above those: sim {own_sim / 2**20:.0f} MiB, libvirt {own_libvirt / 2**20:.0f} MiB "
          f"({own_libvirt / own_sim:4.2f} x)")


_BASELINE = '''
import sys
if len(sys.argv) > 1:
    import libvirt
    connection = libvirt.openReadOnly(sys.argv[1])
    connection.getAllDomainStats()
# the peak of this process image (ru_maxrss would carry the forking parent's over the exec)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) * 1024)
'''


def baselines(domains: int) -> tuple[int, int]:
    """Peak RSS of a bare Python, and of one that opens libvirt's test driver on the same node and reads its
    stats once: what the libvirt process carries before xentui does anything."""
    import subprocess

    from bench_tui import PYTHON

    with tempfile.TemporaryDirectory() as scratch:
        node = Path(scratch) / "node.xml"
        node.write_text(libvirt_node(domains))
        bare = subprocess.run([PYTHON, "-c", _BASELINE], capture_output=True, text=True, check=True)
        opened = subprocess.run([PYTHON, "-c", _BASELINE, f"test://{node}"], capture_output=True, text=True,
                                check=True)
    return int(bare.stdout), int(opened.stdout)


@contextlib.contextmanager
def _config_home(scratch: Path) -> Iterator[None]:
    """XDG_CONFIG_HOME for the programs started meanwhile: an empty one, not the machine's settings."""
    home = scratch / "config"
    home.mkdir()
    before = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(home)
    try:
        yield
    finally:
        if before is None:
            del os.environ["XDG_CONFIG_HOME"]
        else:
            os.environ["XDG_CONFIG_HOME"] = before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--window", type=float, default=30.0, help="seconds of idle measured (0: in-process only)")
    args = parser.parse_args()
    asyncio.run(measure(args.domains, args.calls))
    if args.window > 0:
        screens(args.domains, args.window)


if __name__ == "__main__":
    main()
