"""Draw the README's pictures from the simulated host: `.venv/bin/python screenshots/make_screenshots.py`.

Seeded and on a frozen clock, so the pictures change only when the screen does.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.table import DomainTable

HERE = Path(__file__).resolve().parent

SHOTS = (
    # file, size, theme, selected domain, keys
    ("main-160x50", (160, 50), "xentui-dark", "db-primary", ()),
    ("main-80x24", (80, 24), "xentui-dark", "db-primary", ()),
    ("subrows", (160, 50), "xentui-dark", "batch-cruncher", ("n", "b", "v")),
    ("details", (120, 40), "xentui-dark", "db-primary", ("enter",)),
    ("help", (100, 40), "xentui-dark", None, ("question_mark",)),
    ("light", (120, 30), "xentui-light", "kernel-dev", ()),
    ("plain", (120, 30), "xentui-plain", "kernel-dev", ()),
    ("console", (120, 36), "xentui-dark", "web-frontend-01",
     ("t", *"uname -a", "enter", *"free -m", "enter")),
)


async def shoot(name: str, size: tuple[int, int], theme: str, select: str | None, keys: tuple[str, ...]) -> None:
    clock = ManualClock()
    app = XentuiApp(SimBackend(SimCluster(seed=7, clock=clock)), StartOptions(delay=2, theme=theme))
    async with app.run_test(size=size) as pilot:
        while app.poll_count < 1:
            await pilot.pause(0.01)
        for _ in range(3):  # a few refreshes, so sparklines and rates have a past
            clock.advance(2)
            done = app.polls_done
            app.action_refresh_now()
            while app.polls_done == done:
                await pilot.pause(0.01)
        if select is not None:
            table = app.query_one(DomainTable)
            table.select(next(d.key for d in app.sample.domains if d.name == select))
        for key in keys:
            await pilot.press("space" if key == " " else key)
        await pilot.pause(0.1)
        app.save_screenshot(filename=f"{name}.svg", path=str(HERE))
    print(f"screenshots/{name}.svg")


async def main() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    for shot in SHOTS:
        await shoot(*shot)


if __name__ == "__main__":
    asyncio.run(main())
