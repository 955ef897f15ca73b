"""The xl backend's cost per refresh beside xentop's per iteration, measured in a Xen dom0 (the lab's).

Run in dom0 as root (bench/bench_xl_lab.py does, through ssh): /root/venv/bin/python bench/xl_lab_dom0.py

Prints one JSON object. CPU time is user + system, in milliseconds:
- ``xentop_ms``: ``xentop -b -d 1`` per iteration, the marginal cost (a run of 13 iterations minus a run of 3, over
  10), so its start-up is not counted;
- ``sample_ms``: xentui's ``XlBackend.sample()`` through libxenstat plus ``compute_rates``, per refresh, in
  process (after three warm-up refreshes);
- ``tui_ms``: the whole program, ``xentui --backend xl -d 1`` drawing into a pseudo-terminal, per second of idle
  after its first frame: every refresh up to the drawn table, and Textual's own idle work;
- ``stream_ms`` and ``stream_xentop_ms``: with ``--stats xentop`` (no libxenstat): xentui's work per refresh and
  the one ``xentop -b`` child's per iteration;
- ``xl_list_long_runs``: how many times ``xl list -l`` ran over those refreshes (the set of domains did not change).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import psutil

from xentui.backends.host import LocalHost
from xentui.backends.xl import XlBackend
from xentui.backends.xl_tool import ToolResult
from xentui.model import compute_rates


def cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def xentop_run(iterations: int) -> float:
    """CPU seconds of one ``xentop -b -d 1 -i N`` run, start to end."""
    before = os.times()
    subprocess.run(["xentop", "-b", "-d", "1", "-i", str(iterations)], stdout=subprocess.DEVNULL, check=True)
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


def xentop_per_iteration() -> float:
    short, long = xentop_run(3), xentop_run(13)
    return (long - short) / 10


class CountingHost(LocalHost):
    """This dom0, counting the commands run through it."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[list[str]] = []

    async def run(self, argv: list[str], **options) -> ToolResult:
        self.runs.append(list(argv))
        return await super().run(argv, **options)


async def sample_cost(refreshes: int, stats: str) -> tuple[float, int, int, float | None]:
    """CPU ms per refresh (sample + rates) in this process, the domains seen, ``xl list -l`` runs over the
    measured refreshes, and the xentop child's CPU ms per refresh (with ``stats="xentop"``)."""
    host = CountingHost()
    backend = XlBackend(stats=stats, delay=1.0, host=host)
    me = psutil.Process()
    try:
        previous = await backend.sample()
        for _ in range(3):  # warm up: configs read, caches filled
            previous = await backend.sample()
        host.runs.clear()
        child = next(iter(me.children()), None) if stats == "xentop" else None
        child_before = cpu_of(child) if child else 0.0
        started = time.process_time()
        for _ in range(refreshes):
            current = await backend.sample()
            compute_rates(previous, current)
            previous = current
        spent = time.process_time() - started
        child_ms = (cpu_of(child) - child_before) / refreshes * 1000 if child else None
        long_lists = sum(1 for argv in host.runs if argv[1:3] == ["list", "-l"])
        return spent / refreshes * 1000, len(previous.domains), long_lists, child_ms
    finally:
        await backend.close()


def tui_cost(seconds: float, size: tuple[int, int] = (160, 50)) -> float:
    """CPU ms per second of the real program idling at -d 1 in a pseudo-terminal, after its first frame."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "xentui", "--backend", "xl", "-d", "1"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    output = bytearray()

    def pump(until: float) -> None:
        while time.monotonic() < until:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    output.extend(os.read(fd, 65536))
                except OSError:
                    return
            del output[:-4096]

    try:
        deadline = time.monotonic() + 120
        while b"Domain-0" not in output and time.monotonic() < deadline:
            pump(time.monotonic() + 0.5)
        pump(time.monotonic() + 5)  # settle: the second refresh, rates on screen
        process = psutil.Process(pid)
        before, started = cpu_of(process), time.monotonic()
        pump(started + seconds)
        return (cpu_of(process) - before) / (time.monotonic() - started) * 1000
    finally:
        os.write(fd, b"q")
        pump(time.monotonic() + 5)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        os.waitpid(pid, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--refreshes", type=int, default=20)
    parser.add_argument("--tui-seconds", type=float, default=30.0)
    args = parser.parse_args()
    sample_ms, domains, long_lists, _ = asyncio.run(sample_cost(args.refreshes, "xenstat"))
    stream_ms, _, stream_long_lists, stream_xentop_ms = asyncio.run(sample_cost(max(5, args.refreshes // 3), "xentop"))
    result = {
        "domains": domains,
        "xentop_ms": xentop_per_iteration() * 1000,
        "sample_ms": sample_ms,
        "tui_ms": tui_cost(args.tui_seconds),
        "stream_ms": stream_ms,
        "stream_xentop_ms": stream_xentop_ms,
        "xl_list_long_runs": long_lists + stream_long_lists,
        "refreshes": args.refreshes + max(5, args.refreshes // 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
