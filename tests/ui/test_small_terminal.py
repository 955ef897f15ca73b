"""At 80x24, the smallest terminal xentui supports: every picker entry reachable, no toast over a modal's buttons."""

from __future__ import annotations

import pytest
from textual.containers import Vertical
from textual.widgets import OptionList

from xentui.ui.app import XentuiApp
from xentui.ui.columns import COLUMNS
from xentui.ui.screens import SortScreen

from .helpers import make_app, settle

pytestmark = pytest.mark.asyncio


def box_lines(app: XentuiApp, selector: str = "Vertical") -> list[str]:
    """The lines drawn inside a widget of the top screen, as the operator sees them (cut at it and the screen)."""
    box = app.screen.query_one(selector).content_region
    lines = [strip.text for strip in app.screen._compositor.render_strips()]
    return [line[box.x:box.right] for line in lines[box.y:box.bottom]]


async def test_every_sort_column_can_be_reached_and_seen_at_80x24():
    app, clock = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, SortScreen)
        options = app.screen.query_one("#columns", OptionList)
        box = app.screen.query_one(Vertical)
        # the list fits in its box, and the box on the screen: nothing of either is cut off
        assert box.region.bottom <= app.size.height and box.region.y >= 0
        assert options.region.bottom <= box.content_region.bottom
        await pilot.press("home")
        for index, column in enumerate(COLUMNS):
            if index:
                await pilot.press("down")
            await pilot.pause()
            assert options.highlighted == index
            shown = [line.split() for line in box_lines(app, "#columns")]
            assert any(words[:1] == [column.title] for words in shown), f"{column.title} is not on the screen"
        await pilot.press("home", "end")
        await pilot.pause()
        assert options.highlighted == len(COLUMNS) - 1
        assert any(line.split()[:1] == ["TYPE"] for line in box_lines(app, "#columns"))
        await pilot.press("enter")
        assert app.view.sort_column == COLUMNS[-1].id


@pytest.mark.parametrize("key", ["m", "w", "C", "ctrl+s", "ctrl+r", "g", "E", "ctrl+k", "h"])
async def test_toasts_never_cover_a_modals_buttons_at_80x24(key, tmp_path):
    """Several results come in while a prompt is open: they show, and its buttons stay visible and clickable."""
    from textual.screen import ModalScreen
    from textual.widgets import Button
    from textual.widgets._toast import Toast

    from xentui.ui.app import StartOptions
    from xentui.ui.table import DomainTable

    from .helpers import NEVER, make_sim

    sim, clock = make_sim()
    app = XentuiApp(sim, StartOptions(delay=NEVER, theme="xentui-dark", save_dir=tmp_path))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot, app, clock)
        table = app.query_one(DomainTable)
        table.select(next(d.key for d in app.sample.domains if d.name == "web-frontend-01"))
        await pilot.press(key)
        await pilot.pause(0.2)
        assert isinstance(app.screen, ModalScreen)
        buttons = [button for button in app.screen.query(Button) if button.display]
        assert buttons
        for number in range(6):
            app.notify(f"db-{number}: mem-set to 2048 MiB failed: the balloon driver did not answer in time",
                       title="mem-set", severity="error" if number % 2 else "information")
        await pilot.pause(0.3)
        screen = app.screen.region
        toasts = [toast.region.intersection(screen) for toast in app.screen.query(Toast)]
        toasts = [region for region in toasts if region]
        assert toasts  # the notifications are shown, not swallowed
        for button in buttons:
            region = button.region
            assert region and screen.contains_region(region), f"{button.label} is not on the screen"
            assert not any(region.overlaps(toast) for toast in toasts), f"a toast covers {button.label}"
            for y in range(region.y, region.bottom):  # and on top at every cell: nothing drawn over it
                for x in range(region.x, region.right):
                    assert app.screen.get_widget_at(x, y)[0] is button, f"something covers {button.label}"
