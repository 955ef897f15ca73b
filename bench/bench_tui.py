"""The interactive screen's speed, measured as an operator would feel it, in a real pseudo-terminal.

Run: .venv/bin/python bench/bench_tui.py [--domains 1000] [--window 60] [--size 160x50]
 or: .venv/bin/python bench/bench_tui.py --sim-hosts 50 --domains 200 --delay 2 [--window 30] [--mem-sort]   (the pool)

Prints, for xentui on the simulated host refreshing every second:
- first full frame (the table with its domains) and, in the same run, an empty Textual app's first frame;
- CPU used while idle over the window (% of one core), peak RSS;
- key-to-screen (a sort key until the new header is drawn), quit time;
- the refresh cycle at 50 and at N domains, and their ratio: CPU per refresh of the real program drawing
  to a real terminal (sample, rates, table, Textual's compositor, output), the two programs running at
  once so that the machine's drift weighs on both alike, and where it goes in-process.

With --sim-hosts N (the pool: N simulated hosts of --domains domUs each, refreshed every --delay seconds),
prints instead, side by side, for a bare Textual app, xentui on one simulated host of --domains domUs and
xentui on the pool: first frame (the pool's: its header line "hosts: N up" and its first host line drawn),
idle CPU over the window, peak RSS, key-to-screen and quit time, with the ratio pool / one host; then the
cost of one more host: the pool's refresh in-process (every member's sample and the rates, as
bench_pool.py) for pools of 1, 10, 25 and N hosts and for the same domains on N/5 hosts, per refresh, per
domain and per added host, beside the table's layout of that sample sorted by CPU% and by MEM. With
--mem-sort, also the pool's idle CPU sorted by MEM (a figure of the record, which the sample's columns carry).
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
from collections.abc import Awaitable, Callable
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

BARE_APP = """
from textual.app import App
from textual.widgets import Static
class Bare(App):
    presses = 0
    def compose(self):
        yield Static("EMPTY-READY")
    def on_key(self, event):
        if event.key == "q":
            self.exit()
            return
        self.presses += 1
        self.query_one(Static).update(f"PRESSED-{self.presses}")
Bare().run()
"""

SORT_KEYS = ((b"s", "▼CPU(s)"), (b"s", "▼MEM"), (b"i", "▲MEM"), (b"c", "▲MEM(k)"), (b"o", "Sort by"))
"""Each key draws something that was not on the screen before it (s, S: the next sort column, as xentop's S)."""
POOL_KEYS = (*SORT_KEYS[:4], *((b"i", "▼MEM(k)"), (b"i", "▲MEM(k)")) * 3, SORT_KEYS[4])
"""With --sim-hosts, more keys for a steadier median: the sort reversed six times more before the sort menu."""
BARE_KEYS = tuple((key, f"PRESSED-{n}") for n, (key, _needle) in enumerate(POOL_KEYS, start=1))


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


def first_frame(argv: list[str], needle: bytes | tuple[bytes, ...], size: tuple[int, int]) -> float:
    term = Terminal(argv, *size)
    try:
        for each in (needle,) if isinstance(needle, bytes) else needle:
            term.wait_for(each)
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


def measure_session(domains: int, window: float, size: tuple[int, int], *, argv: list[str] | None = None,
                    ready: tuple[bytes, ...] = (b" domains: ",),
                    keys: tuple[tuple[bytes, str], ...] = SORT_KEYS) -> dict[str, float]:
    """One program's session: first frame (every ``ready`` drawn), idle CPU over ``window``, peak RSS,
    key-to-screen (each of ``keys`` until its text is drawn), quit time. Default: xentui --demo."""
    if argv is None:
        argv = [PYTHON, "-m", "xentui", "--demo", "--seed", "1", "--sim-domains", str(domains), "-d", "1"]
    term = Terminal(argv, *size)
    figures: dict[str, float] = {}
    try:
        for needle in ready:
            term.wait_for(needle)
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
        for key, needle in keys:  # each key draws something that was not on the screen before it
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


def idle_sorted(argv: list[str], ready: tuple[bytes, ...], sort: tuple[tuple[bytes, str], ...], window: float,
                size: tuple[int, int]) -> tuple[float, float]:
    """Idle CPU (% of one core) and peak RSS (MiB) over ``window`` once ``sort``'s keys have sorted the table (each
    key until its text is drawn): a sort by a figure of the records (MEM) reads the sample's column of it, as a sort
    by a rate (CPU%) reads the rates' column; a figure the columns lack (NETS) would make every record."""
    term = Terminal(argv, *size)
    try:
        for needle in ready:
            term.wait_for(needle)
        for key, needle in sort:
            mark = len(term.seen)
            term.send(key)
            term.wait_for(needle.encode(), limit=10, since=mark)
        process = psutil.Process(term.proc.pid)
        term.pump(2)
        cpu_before = sum(process.cpu_times()[:2])
        peak = process.memory_info().rss
        start = time.perf_counter()
        while time.perf_counter() - start < window:
            term.pump(0.5)
            peak = max(peak, process.memory_info().rss)
        elapsed = time.perf_counter() - start
        return (sum(process.cpu_times()[:2]) - cpu_before) / elapsed * 100, peak / 2**20
    finally:
        term.close()


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


async def pool_refresh_costs(domains: int, hosts: tuple[int, ...]) -> list[tuple[int, int, float, float, float]]:
    """For pools of each count of ``hosts`` simulated hosts of ``domains`` domUs: (hosts, domains in all, ms per
    refresh, ms of the table's layout sorted by CPU%, the same sorted by MEM), medians, in-process. A refresh
    is the pool's (every member's sample and the rates, the joined columns, the host lines) as bench_pool.py
    times it, with a ManualClock; the layout is `DomainTable.rebuild` of that sample, grouped by host (no
    drawing): what each refresh adds, and what a sort key costs (CPU% sorts by a rate, MEM by a record's
    figure). Times are this process's CPU time (`time.process_time`), not the wall clock: on a loaded machine
    the wall clock also counts the time other programs held the CPU."""
    from bench_pool import REPEATS, _Bare

    from xentui.backends.pool import PoolBackend
    from xentui.backends.sim import SimBackend, SimCluster
    from xentui.clock import ManualClock
    from xentui.model import compute_rates
    from xentui.ui.table import DomainTable, ViewOptions

    def timed(call: Callable[[], object]) -> float:
        runs = []
        for _ in range(REPEATS):
            start = time.process_time()
            call()
            runs.append(time.process_time() - start)
        return statistics.median(runs) * 1000

    async def timed_async(make: Callable[[], Awaitable[object]]) -> float:
        runs = []
        for _ in range(REPEATS):
            start = time.process_time()
            await make()
            runs.append(time.process_time() - start)
        return statistics.median(runs) * 1000

    rows: list[tuple[int, int, float, float, float]] = []
    app = _Bare()
    async with app.run_test(size=(160, 50)):
        for count in hosts:
            clock = ManualClock()
            cluster = SimCluster(seed=1, domains=domains, clock=clock, hosts=count)
            pool = PoolBackend([(name, SimBackend(cluster, name)) for name in cluster.hosts])
            last = await pool.sample()
            last_rates = compute_rates(last, last)

            async def refresh(pool: PoolBackend = pool, clock: ManualClock = clock) -> None:
                nonlocal last, last_rates
                clock.advance(1.0)
                sample = await pool.sample()
                last_rates = compute_rates(last, sample)
                last = sample

            await refresh()  # one warm-up refresh: every member has a previous sample, as on the screen
            cost = await timed_async(refresh)
            layouts = []
            for sort_column in ("cpu_pct", "mem"):
                table = DomainTable(ViewOptions(sort_column=sort_column))
                await app.mount(table)
                table.update_sample(last, last_rates)
                layouts.append(timed(table.rebuild))
                await table.remove()
            rows.append((count, len(last.domains), cost, *layouts))
            await pool.close()
    return rows


def _fit(points: list[tuple[float, float]], values: list[float]) -> tuple[float, float]:
    """Least squares of ``value = a + b * x + c * y`` over ``points`` (x, y): (b, c), by the normal equations."""
    rows = [(1.0, x, y) for x, y in points]
    matrix = [[sum(r[i] * r[j] for r in rows) for j in range(3)] for i in range(3)]
    vector = [sum(r[i] * v for r, v in zip(rows, values, strict=True)) for i in range(3)]

    def det(m: list[list[float]]) -> float:
        return (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))

    whole = det(matrix)

    def solve(column: int) -> float:
        return det([[vector[i] if j == column else matrix[i][j] for j in range(3)] for i in range(3)]) / whole

    return solve(1), solve(2)


def pool_main(args: argparse.Namespace, size: tuple[int, int]) -> None:
    """The pool beside one host and a bare Textual app, then the cost of one more host."""
    columns, rows = size
    hosts, domains, delay = args.sim_hosts, args.domains, args.delay
    xentui = [PYTHON, "-m", "xentui", "--demo", "--seed", "1", "--sim-domains", str(domains), "-d", f"{delay:g}"]
    programs = {
        "bare Textual": ([PYTHON, "-c", BARE_APP], (b"EMPTY-READY",), BARE_KEYS),
        # one host: the pool's first host alone (its table and header, no host lines)
        "one host": ([*xentui, "--sim-hosts", "1"], (b" domains: ",), POOL_KEYS),
        # the pool: every host answered (the header's pool line) and the table's first host line drawn
        f"pool of {hosts}": ([*xentui, "--sim-hosts", str(hosts)],
                             (f"hosts: {hosts} up".encode(), "▾ sim-host-1 ".encode()), POOL_KEYS),
    }
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"terminal {columns}x{rows}; {hosts} simulated hosts of {domains} domUs each, refreshed every {delay:g} s, "
          f"beside one host of {domains} domUs and a bare Textual app")
    print(f"machine: {os.cpu_count()} CPUs, load average {load} before the run (other work on the machine "
          f"weighs on every column alike)")
    frames = {name: statistics.median(first_frame(argv, ready, size) for _ in range(3))
              for name, (argv, ready, _keys) in programs.items()}
    sessions = {name: measure_session(domains, args.window, size, argv=argv, ready=ready, keys=keys)
                for name, (argv, ready, keys) in programs.items()}
    for name, figures in sessions.items():
        figures["first_frame_s"] = frames[name]  # the median of three starts, not the session's own
    names = list(programs)
    pool, one = sessions[names[2]], sessions[names[1]]
    print(f"{'':28}{names[0]:>14}{names[1]:>14}{names[2]:>14}{'pool / one':>12}   target (pool)")
    for label, key, unit, digits, target in (
        ("first frame", "first_frame_s", "s", 3, "<= 2 s"),
        (f"idle CPU over {args.window:g} s", "idle_cpu_pct", "%", 2, "<= 5 % of one core"),
        ("peak RSS", "peak_rss_mib", "MiB", 1, "<= 200 MiB"),
        ("key to screen, median", "key_to_screen_ms_median", "ms", 1, "< 100 ms"),
        ("key to screen, max", "key_to_screen_ms_max", "ms", 1, "< 100 ms"),
        ("quit", "quit_s", "s", 3, ""),
    ):
        cells = "".join(f"{sessions[name][key]:>10.{digits}f} {unit:<3}" for name in names)
        ratio = pool[key] / one[key] if one[key] else float("nan")
        print(f"{label:28}{cells}{ratio:>11.2f}x   {target}".rstrip())
    print(f"  (key to screen: {len(POOL_KEYS)} keys, s s i c i i i i i i o: the next sort column twice, reverse, "
          f"cumulative, reverse six times, the sort menu; the bare app redraws a line per key)")
    if args.mem_sort:
        argv, ready, _keys = programs[names[2]]
        idle, rss = idle_sorted(argv, ready, SORT_KEYS[:2], args.window, size)
        print(f"{'the pool sorted by MEM:':28}idle CPU over {args.window:g} s {idle:.2f} % of one core "
              f"({idle / pool['idle_cpu_pct']:.2f}x sorted by CPU%), peak RSS {rss:.1f} MiB")

    counts = tuple(sorted({1, 10, 25, hosts}))
    costs = asyncio.run(pool_refresh_costs(domains, counts))
    print(f"the cost of one more host: the pool's refresh in-process (every member's sample + rates, "
          f"ManualClock), {domains} domUs per host; CPU time, medians:")
    print(f"{'':45}per added host    table layout, ms (us/domain)")
    print(f"{'hosts':>7}{'domains':>9}{'ms/refresh':>12}{'us/domain':>11}{'ms':>9}{'us/domain':>11}"
          f"{'sort CPU%':>18}{'sort MEM':>18}")

    def line(count: int, total: int, cost: float, by_cpu: float, by_mem: float, added: str) -> str:
        return (f"{count:>7}{total:>9}{cost:>12.2f}{cost * 1000 / total:>11.2f}{added}"
                f"{by_cpu:>10.2f} ({by_cpu * 1000 / total:4.2f}){by_mem:>10.2f} ({by_mem * 1000 / total:4.2f})")

    previous: tuple[int, int, float, float, float] | None = None
    for row in costs:
        count, total, cost = row[:3]
        added = f"{'':20}" if previous is None else (f"{(cost - previous[2]) / (count - previous[0]):>9.2f}"
                                                     f"{(cost - previous[2]) * 1000 / (total - previous[1]):>11.2f}")
        print(line(*row, added))
        previous = row
    # the same domains in all, on fewer hosts: if the pool's cost follows its domains, this matches the last line
    few = max(1, hosts // 5)
    per_host = min(5000, domains * hosts // few)
    (row,) = asyncio.run(pool_refresh_costs(per_host, (few,)))
    print(line(*row, f"{'':20}") + f"   (the same domains on {few} hosts of {per_host})")
    # least squares over every line: ms = fixed + per_domain * domains + per_host * hosts
    every = (*costs, row)
    for index, what in ((2, "refresh"), (3, "layout sorted by CPU%"), (4, "layout sorted by MEM")):
        per_domain, per_host_ms = _fit([(float(r[1]), float(r[0])) for r in every], [r[index] for r in every])
        print(f"  fitted over these lines, {what + ':':23}{per_domain * 1000:6.2f} us per domain, "
              f"{per_host_ms:+.3f} ms per host beyond its domains")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"machine: load average {load} after the run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", type=int, default=1000, help="simulated domUs (with --sim-hosts: per host)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of idle CPU measurement")
    parser.add_argument("--size", default="160x50")
    parser.add_argument("--sim-hosts", type=int, default=None, metavar="N",
                        help="measure a simulated pool of N hosts of --domains each, beside one host and a bare app")
    parser.add_argument("--delay", type=float, default=None, metavar="SEC",
                        help="with --sim-hosts: each host's refresh delay (default 2)")
    parser.add_argument("--mem-sort", action="store_true",
                        help="with --sim-hosts: also the pool's idle CPU sorted by MEM (every record read)")
    args = parser.parse_args()
    if args.delay is not None and args.sim_hosts is None:
        parser.error("--delay goes with --sim-hosts (the single-host bench refreshes every second)")
    if args.mem_sort and args.sim_hosts is None:
        parser.error("--mem-sort goes with --sim-hosts")
    columns, rows = (int(part) for part in args.size.split("x"))
    size = (columns, rows)
    # An installed wheel comes with its bytecode compiled; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would compile xentui at every start. Measure the installed case.
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "xentui")], check=True)
    if args.sim_hosts is not None:
        if args.delay is None:
            args.delay = 2.0
        pool_main(args, size)
        return

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
