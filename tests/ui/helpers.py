"""A deterministic xentui for UI tests: seeded sim, frozen clock, polls only when the test says so."""

from __future__ import annotations

import os
import time

from textual.pilot import Pilot

from xentui.backends.base import Backend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.table import ViewOptions

os.environ["TZ"] = "UTC"
time.tzset()

NEVER = 3600.0  # the poll timer's delay in tests: polls come from `poll()` only


def make_sim(seed: int = 7, domains: int = 12) -> tuple[SimBackend, ManualClock]:
    clock = ManualClock()
    return SimBackend(SimCluster(seed=seed, domains=domains, clock=clock)), clock


def make_app(backend: Backend | None = None, *, theme: str | None = "xentui-dark",
             view: ViewOptions | None = None) -> tuple[XentuiApp, ManualClock | None]:
    clock = None
    if backend is None:
        backend, clock = make_sim()
    return XentuiApp(backend, StartOptions(delay=NEVER, theme=theme, view=view)), clock


async def wait_polls(pilot: Pilot, app: XentuiApp, count: int) -> None:
    for _ in range(500):
        if app.polls_done >= count and not app._polling:
            break
        await pilot.pause(0.01)
    else:
        raise AssertionError(f"only {app.polls_done} polls of {count} came")
    await pilot.pause()


async def poll(pilot: Pilot, app: XentuiApp, clock: ManualClock | None, seconds: float = 1.0) -> None:
    """Move the simulated time on, sample, and wait until the screen has the result."""
    if clock is not None:
        clock.advance(seconds)
    target = app.polls_done + 1
    app.action_refresh_now()
    await wait_polls(pilot, app, target)


async def settle(pilot: Pilot, app: XentuiApp, clock: ManualClock | None) -> None:
    """The first sample (on mount) and a second one a second later, so every rate is there."""
    await wait_polls(pilot, app, 1)
    await poll(pilot, app, clock)


async def wait_for(pilot: Pilot, condition, tries: int = 300) -> None:
    """Until ``condition()`` holds (a background action, a dialog's worker), or fail after ``tries`` short pauses."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition never held")


async def until(pilot: Pilot, what: str, check, within: float) -> None:
    """Until ``check()`` holds, on the wall clock (a real host's answers: lab tests), or fail naming WHAT."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:g} s")
        await pilot.pause(0.2)


async def refreshed(pilot: Pilot, app: XentuiApp, within: float = 120.0) -> None:
    """One refresh asked for (the app's refresh-now) and waited for to its end."""
    done = app.polls_done
    app.action_refresh_now()
    await until(pilot, "a refresh", lambda: app.polls_done > done and not app._polling, within)
