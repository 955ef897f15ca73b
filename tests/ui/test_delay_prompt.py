"""The 'd' prompt at 80x24: the same floor and messages as -d, and every message readable in its 50 columns."""

from __future__ import annotations

import pytest
from textual.containers import Vertical

from xentui.ui.app import XentuiApp
from xentui.ui.screens import DelayScreen

from .helpers import make_app, settle

pytestmark = pytest.mark.asyncio


def prompt_text(app: XentuiApp) -> str:
    """What the operator sees inside the prompt's box, its lines joined: a message cut at the box edge fails."""
    box = app.screen.query_one(Vertical).content_region
    lines = [strip.text for strip in app.screen._compositor.render_strips()]
    return " ".join(" ".join(line[box.x:box.right].split()) for line in lines[box.y:box.bottom])


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0", "0 is too short: at least 0.5 s"),
        ("0.01", "0.01 is too short: at least 0.5 s"),
        ("1e9", "1e9 is too long: at most 3600 s"),
        ("abc", "'abc' is not a number: 0.5 to 3600 s"),
        # longer than the box is wide: the label wraps instead of cutting it
        ("0.000000000000000001", "0.000000000000000001 is too short: at least 0.5 s"),
        ("0.25", "0.25 is too short: at least 0.5 s"),
    ],
)
async def test_delay_prompt_refuses_out_of_range_values_with_the_whole_reason(typed, message):
    app, clock = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("d")
        assert isinstance(app.screen, DelayScreen)
        assert "0.5 to 3600" in prompt_text(app)
        await pilot.press("ctrl+a", "ctrl+k", *typed, "enter")
        await pilot.pause()
        assert isinstance(app.screen, DelayScreen)
        assert message in prompt_text(app)
        await pilot.press("ctrl+a", "ctrl+k", *"0.5", "enter")
        assert not isinstance(app.screen, DelayScreen)
        assert app.delay == 0.5
