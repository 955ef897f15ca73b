"""The xl backend's fallback when libxenstat cannot be loaded: ONE long-running ``xentop -b``.

xentop prints a whole iteration at once every DELAY seconds, then sleeps. A reader task
collects lines; an iteration is complete when the next header arrives or the stream has
been quiet for a moment. The process is restarted when the delay changes or it dies, and
a sample taken while it is down raises BackendUnavailable with xentop's last words.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from xentui.backends.host import LocalHost, end_process
from xentui.backends.xentop_parser import HEADER_RE, XentopRow, parse_xentop_log, rebuild_cpu_ns
from xentui.errors import BackendUnavailable
from xentui.textsafe import printable

__all__ = ["XentopStream"]

_QUIET = 0.25  # no new line for this long after a domain row: the iteration is complete
_FIRST_ITERATION_GRACE = 5.0  # how long the first sample waits for xentop's first iteration
_MAX_PENDING_LINES = 200_000  # a stream that never ends an iteration is not xentop


async def _start_here(argv: list[str]) -> asyncio.subprocess.Process:
    return await LocalHost().start(argv)


class XentopStream:
    """``xentop -b -d DELAY -x -v -f``: per-vbd and per-vCPU rows, full names, one process."""

    def __init__(self, xentop: str = "xentop", delay: float = 3.0,
                 start: Callable[[list[str]], Awaitable[asyncio.subprocess.Process]] | None = None) -> None:
        self.xentop = xentop
        self._spawn = start or _start_here  # where xentop runs: the xl backend's host
        self.delay = delay
        self.starts = 0  # how many times a process was started (restarts are visible to tests)
        self.garbage_lines = 0  # lines too long to be xentop's, dropped
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._latest: list[XentopRow] | None = None
        self._latest_at = 0.0
        self.sequence = 0  # iterations seen since the first start
        # CPU counters rebuilt for every iteration printed, sampled or not, so rates stay right
        # when a sample skips one: xentop prints whole seconds and the CPU % of its own interval.
        self.cpu_ns: dict[str, int] = {}
        self._updated = asyncio.Event()
        self._last_error = ""

    @property
    def argv(self) -> list[str]:
        return [self.xentop, "-b", "-d", f"{self.delay:g}", "-x", "-v", "-f"]

    async def set_delay(self, delay: float) -> None:
        if delay != self.delay:
            self.delay = delay
            await self.stop()

    async def latest(self, newer_than: int = -1) -> tuple[list[XentopRow], float, int]:
        """The last complete iteration, when it arrived (monotonic) and its sequence number.

        With ``newer_than``, wait (up to one delay and a grace period) for an iteration after
        that one, so two samples never carry the same figures. Starts xentop if needed.
        """
        if self._process is None or self._process.returncode is not None:
            await self._start()
        limit = self.delay + _FIRST_ITERATION_GRACE
        deadline = time.monotonic() + limit
        while self._latest is None or self.sequence <= newer_than:
            self._updated.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self._process is not None and self._process.returncode is not None
                                  and self._reader is not None and self._reader.done()):
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._updated.wait(), remaining)
        if self._latest is None:
            raise BackendUnavailable(f"xentop printed nothing in {limit:g} s"
                                     + (f": {self._last_error}" if self._last_error else ""))
        return self._latest, self._latest_at, self.sequence

    async def _start(self) -> None:
        await self.stop()
        self._process = await self._spawn(self.argv)
        self.starts += 1
        self._latest = None
        self._last_error = ""
        self._updated.clear()
        self._reader = asyncio.create_task(self._read(self._process))

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None and process.stderr is not None
        pending: list[str] = []
        rows_seen = False
        while True:
            try:
                raw = await asyncio.wait_for(process.stdout.readline(), _QUIET if rows_seen else None)
            except TimeoutError:
                self._publish(pending)
                pending, rows_seen = [], False
                continue
            except ValueError:
                # A line longer than the reader's limit (garbage, not xentop): asyncio has dropped it from its
                # buffer. Drop the iteration it was in too, and go on reading: the next one is whole again.
                self.garbage_lines += 1
                self._last_error = "xentop printed a line of garbage longer than 64 KiB (dropped)"
                pending, rows_seen = [], False
                continue
            if not raw:
                break
            line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
            if HEADER_RE.match(line) and rows_seen:
                self._publish(pending)
                pending, rows_seen = [], False
            pending.append(line)
            rows_seen = rows_seen or not HEADER_RE.match(line)
            if len(pending) > _MAX_PENDING_LINES:
                pending, rows_seen = [], False
        if rows_seen:
            self._publish(pending)
        err = await process.stderr.read()
        self._last_error = printable(err.decode("utf-8", "replace").strip().splitlines()[-1]) if err.strip() else (
            f"xentop exited with status {await process.wait()}")
        self._updated.set()

    def _publish(self, lines: list[str]) -> None:
        log = parse_xentop_log("\n".join(lines))
        if log.iterations:
            rows = log.iterations[-1]
            self.cpu_ns = {row.name: rebuild_cpu_ns(row, self.cpu_ns.get(row.name), self.delay) for row in rows}
            self._latest = rows
            self._latest_at = time.monotonic()
            self.sequence += 1
            self._updated.set()

    async def stop(self) -> None:
        process, reader = self._process, self._reader
        self._process = self._reader = None
        if process is not None:
            await end_process(process, grace=2.0)
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
