"""Pictures of every screen, from a seeded simulation on a frozen clock.

Review `snapshot_report.html` before accepting changes with `pytest --snapshot-update`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from textual.widgets import Input

from xentui.backends.base import BackendError, MigratePhase, MigrateProgress
from xentui.backends.sim import SimBackend
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.table import DomainTable

from .helpers import NEVER, make_app, make_sim, poll, settle


def scene(*, theme: str = "xentui-dark", keys: tuple[str, ...] = (), select: str | None = None,
          backend=None, clock=None):
    app, made_clock = make_app(backend, theme=theme)
    clock = clock or made_clock

    async def run_before(pilot) -> None:
        await settle(pilot, app, clock)
        if select is not None:
            app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == select))
        for key in keys:
            await pilot.press(key)
        await pilot.pause()

    return app, run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_main_screen(snap_compare, size):
    app, run_before = scene(select="db-primary")
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_main_screen_with_every_subrow(snap_compare):
    app, run_before = scene(keys=("n", "b", "v"))
    assert snap_compare(app, terminal_size=(160, 50), run_before=run_before)


def test_main_screen_cumulative_like_xentop(snap_compare):
    app, run_before = scene(keys=("c", "z"))
    assert snap_compare(app, terminal_size=(160, 50), run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_details(snap_compare, size):
    app, run_before = scene(select="db-primary", keys=("enter",))
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_help(snap_compare):
    app, run_before = scene(keys=("question_mark",))
    assert snap_compare(app, terminal_size=(100, 40), run_before=run_before)


@pytest.mark.parametrize("theme", ["xentui-dark", "xentui-light", "xentui-plain"])
def test_each_theme(snap_compare, theme):
    app, run_before = scene(theme=theme, select="kernel-dev")
    assert snap_compare(app, terminal_size=(120, 30), run_before=run_before)


class BrokenAfterFirst(SimBackend):
    polls = 0

    async def sample(self):
        self.polls += 1
        if self.polls > 2:
            raise BackendError("xl: cannot talk to the hypervisor (libxl: error: xc_domain_getinfo failed)")
        return await super().sample()


def test_backend_error_banner(snap_compare):
    sim, clock = make_sim()
    app, _ = make_app(BrokenAfterFirst(sim.cluster))

    async def run_before(pilot) -> None:
        await settle(pilot, app, clock)
        await poll(pilot, app, clock)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


# --- the action modals -------------------------------------------------------------------------

SAVE_DIR = Path("/tmp/xentui-snapshot-saves")
FROZEN_WALL = 1_795_000_000.0


class HeldMigration(SimBackend):
    """A migration that stops at 40 % and stays there: a picture of one in progress."""

    async def migrate(self, domain, target, *, live=True):
        yield MigrateProgress(MigratePhase.PREFLIGHT, 0.0, f"migrating {domain} to {target}")
        yield MigrateProgress(MigratePhase.COPYING, 0.4, "round 1: 3.2G sent", 3 << 30, 8 << 30)
        await asyncio.Event().wait()


def modal_scene(keys: tuple[str, ...], *, select: str = "db-primary", typed: dict[str, str] | None = None,
                after: tuple[str, ...] = (), backend_class=SimBackend):
    sim, clock = make_sim()
    backend = backend_class(sim.cluster)
    SAVE_DIR.mkdir(exist_ok=True)
    for old in SAVE_DIR.iterdir():
        old.unlink()
    image = SAVE_DIR / "mail-relay-20261126-0300.save"
    image.write_bytes(b"xentui-sim saved domain v1\n{}")
    os.utime(image, (FROZEN_WALL, FROZEN_WALL))
    app = XentuiApp(backend, StartOptions(delay=NEVER, theme="xentui-dark", save_dir=SAVE_DIR))
    app.wall_clock = lambda: FROZEN_WALL

    async def run_before(pilot) -> None:
        await settle(pilot, app, clock)
        app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == select))
        for key in keys:
            await pilot.press(key)
        await pilot.pause()
        for selector, text in (typed or {}).items():
            field = app.screen.query_one(selector, Input)
            field.value = text
        for key in after:
            await pilot.press(key)
            await pilot.pause(0.1)
        await pilot.pause(0.1)

    return app, run_before


MODALS = {
    "mem-set-refused": dict(keys=("m",), typed={"#size": "16G"}, after=("enter",)),
    "mem-max": dict(keys=("M",)),
    "vcpu-set": dict(keys=("C",)),
    "sched": dict(keys=("w",), select="batch-cruncher"),
    "save": dict(keys=("ctrl+s",), select="mail-relay"),
    "restore": dict(keys=("ctrl+r",)),
    "sysrq": dict(keys=("X",)),
    "shutdown-confirm": dict(keys=("h",)),
    "destroy": dict(keys=("ctrl+k",), select="kernel-dev"),
    "migrate-preflight": dict(keys=("g",), typed={"#target": "sim-host-3"}, after=("enter",)),
    "migrate-in-progress": dict(keys=("g",), typed={"#target": "sim-host-2"}, after=("enter", "enter"),
                                backend_class=HeldMigration),
    "evacuate": dict(keys=("E",)),
}


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
@pytest.mark.parametrize("modal", list(MODALS))
def test_action_modal(snap_compare, modal, size):
    app, run_before = modal_scene(**MODALS[modal])
    assert snap_compare(app, terminal_size=size, run_before=run_before)


# --- the console pane ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_console_beside_the_table(snap_compare, size):
    sim, clock = make_sim()
    app = XentuiApp(sim, StartOptions(delay=NEVER, theme="xentui-dark", save_dir=SAVE_DIR))

    async def run_before(pilot) -> None:
        await settle(pilot, app, clock)
        app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == "web-frontend-01"))
        await pilot.press("t")
        await pilot.pause(0.1)
        for command in ("uname -a", "free -m"):
            for char in command:
                await pilot.press("space" if char == " " else char)
            await pilot.press("enter")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
