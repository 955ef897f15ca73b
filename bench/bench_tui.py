"""The interactive screen's speed, measured as an operator would feel it, in a real pseudo-terminal.

Run: .venv/bin/python bench/bench_tui.py [--domains 1000] [--window 60] [--size 160x50]

Prints, for xentui on the simulated host refreshing every second:
- first full frame (the table with its domains) and, in the same run, an empty Textual app's first frame;
- CPU used while idle over the window (% of one core), peak RSS;
- key-to-screen (a sort key until the new header is drawn), quit time;
- the refresh cycle at 50 and at N domains, and their ratio: CPU per refresh of the real program drawing
  to a real terminal (sample, rates, table, Textual's compositor, output), the two programs running at
  once so that the machine's drift weighs on both alike, and where it goes in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

EMPTY_APP = """
from textual.app import App
from textual.widgets import Static
class Empty(App):
    def compose(self):
        yield Static("EMPTY-READY")
Empty().run()
"""


class Terminal:
    """A program on a pty of a given size; reads everything it draws."""

    def __init__(self, argv: list[str], columns: int, rows: int) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                                     close_fds=True)
        os.close(slave)
        self.seen = bytearray()

    def drain(self, timeout: float = 0.0) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], timeout)
            if not ready:
                return
            try:
                chunk = os.read(self.master, 1 << 20)
            except OSError:
                return
            if not chunk:
                return
            self.seen += chunk
            timeout = 0.0

    def pump(self, seconds: float) -> None:
        """Keep reading for ``seconds``, as a terminal would, so the program never blocks on output."""
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            self.drain(min(left, 0.05))

    def wait_for(self, needle: bytes, limit: float = 30.0, since: int = 0) -> float:
        """Seconds until ``needle`` appears in what was drawn after byte ``since``."""
        start = time.perf_counter()
        while needle not in self.seen[since:]:
            if time.perf_counter() - start > limit:
                raise TimeoutError(f"{needle!r} not drawn within {limit}s")
            self.drain(0.005)
        return time.perf_counter() - start

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def first_frame(argv: list[str], needle: bytes, size: tuple[int, int]) -> float:
    term = Terminal(argv, *size)
    try:
        term.wait_for(needle)
        return time.perf_counter() - term.started
    finally:
        term.close()


def paired_cycles(domains: int, window: float, size: tuple[int, int], *, frozen: bool = False) -> tuple[float, float]:
    """CPU seconds per second at 50 and at ``domains`` domains, refreshing every second: the cost of one real
    refresh cycle, drawing to a real terminal included. Both programs run at once, so the machine's drift
    (other guests on its host, clock speed) weighs on both alike and their ratio holds from run to run.
    ``frozen``: the backend replays one snapshot (the screen's cost only)."""
    program = [str(ROOT / "bench" / "frozen_sample_xentui.py")] if frozen else ["-m", "xentui"]
    terms = [Terminal([PYTHON, *program, "--demo", "--seed", "1", "--sim-domains", str(count), "-d", "1"], *size)
             for count in (50, domains)]
    try:
        for term in terms:
            term.wait_for(b" domains: ")

        def pump(seconds: float) -> None:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                for term in terms:
                    term.drain(0.025)

        pump(2)
        processes = [psutil.Process(term.proc.pid) for term in terms]
        before = [sum(process.cpu_times()[:2]) for process in processes]
        start = time.perf_counter()
        pump(window)
        elapsed = time.perf_counter() - start
        small, large = (
            (sum(process.cpu_times()[:2]) - used) / elapsed for process, used in zip(processes, before, strict=True)
        )
        return small, large
    finally:
        for term in terms:
            term.close()


def measure_session(domains: int, window: float, size: tuple[int, int]) -> dict[str, float]:
    argv = [PYTHON, "-m", "xentui", "--demo", "--seed", "1", "--sim-domains", str(domains), "-d", "1"]
    term = Terminal(argv, *size)
    figures: dict[str, float] = {}
    try:
        term.wait_for(b" domains: ")
        figures["first_frame_s"] = time.perf_counter() - term.started
        process = psutil.Process(term.proc.pid)
        term.pump(2)  # let start-up work settle
        cpu_before = sum(process.cpu_times()[:2])
        peak = process.memory_info().rss
        start = time.perf_counter()
        while time.perf_counter() - start < window:
            term.pump(0.5)
            peak = max(peak, process.memory_info().rss)
        elapsed = time.perf_counter() - start
        figures["idle_cpu_pct"] = (sum(process.cpu_times()[:2]) - cpu_before) / elapsed * 100
        latencies = []
        # each key draws something that was not on the screen before it
        for key, needle in ((b"s", "▼CPU(s)"), (b"s", "▼MEM"), (b"i", "▲MEM"), (b"c", "▲MEM(k)"),
                            (b"o", "Sort by")):
            term.pump(0.3)
            mark = len(term.seen)
            sent = time.perf_counter()
            term.send(key)
            term.wait_for(needle.encode(), limit=10, since=mark)
            latencies.append(time.perf_counter() - sent)
            peak = max(peak, process.memory_info().rss)
        figures["key_to_screen_ms_median"] = statistics.median(latencies) * 1000
        figures["key_to_screen_ms_max"] = max(latencies) * 1000
        figures["peak_rss_mib"] = peak / 2**20
        term.send(b"\r")  # pick the highlighted column, which closes the sort menu
        term.pump(0.5)
        sent = time.perf_counter()
        term.send(b"q")
        while term.proc.poll() is None:
            term.drain(0.01)
            if time.perf_counter() - sent > 20:
                raise TimeoutError(f"did not quit; last output: {bytes(term.seen[-600:])!r}")
        figures["quit_s"] = time.perf_counter() - sent
    finally:
        term.close()
    return figures


async def refresh_parts(domains: int, size: tuple[int, int], rounds: int = 15) -> dict[str, float]:
    """Median seconds of each step of a refresh, in-process: sample, rates, history, table, header, lines."""
    from xentui.backends.sim import SimBackend, SimCluster
    from xentui.clock import ManualClock
    from xentui.model import compute_rates
    from xentui.ui.app import StartOptions, XentuiApp
    from xentui.ui.header import HostHeader
    from xentui.ui.table import DomainTable

    clock = ManualClock()
    backend = SimBackend(SimCluster(seed=1, domains=domains, clock=clock))
    app = XentuiApp(backend, StartOptions(delay=3600))
    parts: dict[str, list[float]] = {name: [] for name in ("sample", "rates", "history", "table", "header",
                                                           "lines")}
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        table = app.query_one(DomainTable)
        header = app.query_one(HostHeader)
        previous = await backend.sample()
        for _ in range(rounds):
            clock.advance(1)
            marks = [time.perf_counter()]
            sample = await backend.sample()
            marks.append(time.perf_counter())
            rates = compute_rates(previous, sample)
            marks.append(time.perf_counter())
            app.history.record(rates)
            marks.append(time.perf_counter())
            table.update_sample(sample, rates)
            marks.append(time.perf_counter())
            header.show(sample, rates, backend="sim", delay=1, view="")
            marks.append(time.perf_counter())
            for y in range(table.size.height):
                table.render_line(y)
            marks.append(time.perf_counter())
            for name, start, end in zip(parts, marks, marks[1:], strict=False):
                parts[name].append(end - start)
            previous = sample
            await pilot.pause()
    return {name: statistics.median(values) for name, values in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of idle CPU measurement")
    parser.add_argument("--size", default="160x50")
    args = parser.parse_args()
    columns, rows = (int(part) for part in args.size.split("x"))
    size = (columns, rows)
    # An installed wheel comes with its bytecode compiled; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would compile xentui at every start. Measure the installed case.
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "xentui")], check=True)

    empty = statistics.median(first_frame([PYTHON, "-c", EMPTY_APP], b"EMPTY-READY", size) for _ in range(3))
    ours = statistics.median(
        first_frame([PYTHON, "-m", "xentui", "--demo", "--seed", "1", "--sim-domains", str(args.domains), "-d", "1"],
                    b" domains: ", size)
        for _ in range(3)
    )
    print(f"terminal {columns}x{rows}, {args.domains} simulated domains refreshed every second")
    print(f"first frame, empty Textual app:     {empty:.3f} s")
    print(f"first full frame, xentui:           {ours:.3f} s   (ratio {ours / empty:.2f}, target <= 1.5)")
    session = measure_session(args.domains, args.window, size)
    print(f"idle CPU over {args.window:.0f} s:               {session['idle_cpu_pct']:.2f} % of one core (target <= 3)")
    print(f"peak RSS:                           {session['peak_rss_mib']:.1f} MiB (target <= 100)")
    print(f"key to screen:                      median {session['key_to_screen_ms_median']:.1f} ms, "
          f"max {session['key_to_screen_ms_max']:.1f} ms (target < 100)")
    print(f"quit:                               {session['quit_s']:.3f} s (target < 0.5)")
    small, large = paired_cycles(args.domains, args.window, size)
    print("refresh cycle in the terminal, both running at once:")
    print(f"  50 domains:   {small * 1000:.2f} ms CPU")
    print(f"  {args.domains} domains: {large * 1000:.2f} ms CPU   (ratio {large / small:.2f}, target <= 2)")
    screen_small, screen_large = paired_cycles(args.domains, args.window / 2, size, frozen=True)
    print(f"the screen's share (backend replaying one snapshot): {screen_small * 1000:.2f} ms at 50, "
          f"{screen_large * 1000:.2f} ms at {args.domains} (ratio {screen_large / screen_small:.2f})")
    parts_small = asyncio.run(refresh_parts(50, size))
    parts_large = asyncio.run(refresh_parts(args.domains, size))
    print("where a cycle goes (ms, median, in-process; Textual's compositor and terminal output not included):")
    for name in parts_small:
        print(f"  {name:10} {parts_small[name] * 1000:8.2f} at 50   {parts_large[name] * 1000:8.2f} at {args.domains}")

if __name__ == "__main__":
    main()
