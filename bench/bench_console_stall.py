"""A guest printing a megabyte at once: how long does the screen stop answering?

Run: .venv/bin/python bench/bench_console_stall.py
Opens a console on a simulated guest in the real app (headless, 160x50), has the guest print
`seq 150000` (about 1 MB), and prints how long that took to reach the screen and the longest
time the event loop was busy without a break (a key pressed then would wait that long).
"""

from __future__ import annotations

import asyncio
import time

from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.console_pane import ConsolePane
from xentui.ui.table import DomainTable


async def main() -> None:
    clock = ManualClock()
    app = XentuiApp(SimBackend(SimCluster(seed=1, clock=clock)), StartOptions(delay=1.0))
    async with app.run_test(size=(160, 50)) as pilot:
        while app.poll_count < 1:
            await pilot.pause(0.01)
        table = app.query_one(DomainTable)
        table.select(next(d.key for d in app.sample.domains if d.name == "mail-relay"))
        await pilot.press("t")
        await pilot.pause(0.2)
        view = app.query_one(ConsolePane).view
        gaps: list[float] = []
        running = True

        async def heartbeat() -> None:
            last = time.perf_counter()
            while running:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        beat = asyncio.create_task(heartbeat())
        start = time.perf_counter()
        await view.channel.write(b"seq 150000\r")
        await pilot.pause(0.05)
        while view.pending or view._draining:  # noqa: ASYNC110 - polling the widget is the measurement
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        running = False
        await beat
        print(f"burst: {view.bytes_fed / 1e6:.2f} MB reached the screen in {elapsed:.2f} s "
              f"({view.bytes_fed / elapsed / 1e6:.2f} MB/s through the emulator and the drawing)")
        print(f"longest event-loop stall during the burst: {max(gaps) * 1000:.1f} ms "
              f"(median tick {sorted(gaps)[len(gaps) // 2] * 1000:.2f} ms over {len(gaps)} ticks)")


if __name__ == "__main__":
    asyncio.run(main())
