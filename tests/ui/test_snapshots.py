"""Pictures of every screen, from a seeded simulation on a frozen clock.

Review `snapshot_report.html` before accepting changes with `pytest --snapshot-update`.
"""

from __future__ import annotations

import pytest

from xentui.backends.base import BackendError
from xentui.backends.sim import SimBackend
from xentui.ui.table import DomainTable

from .helpers import make_app, make_sim, poll, settle


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
