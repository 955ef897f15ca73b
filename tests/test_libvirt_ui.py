"""The screen on the libvirt backend, against the libvirt test driver: the table, sorting, an action."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh)")

from xentui.backends.libvirt import LibvirtBackend
from xentui.model import DomainState
from xentui.ui.app import XentuiApp
from xentui.ui.screens import SortScreen
from xentui.ui.table import DomainTable

from .ui.helpers import make_app, poll, settle

pytestmark = pytest.mark.asyncio

URI = f"test://{(Path(__file__).parent / 'fixtures' / 'libvirt-testnode.xml').resolve()}"
MARKUP = "[red]x [bold]y"


def names(app: XentuiApp) -> list[str]:
    by_key = {d.key: d.name for d in app.sample.domains}
    return [by_key[key] for key in app.query_one(DomainTable).shown_keys]


def screen_text(app: XentuiApp) -> str:
    table = app.query_one(DomainTable)
    return "\n".join(table.render_line(y).text for y in range(table.size.height))


async def finish(pilot, app) -> None:
    for _ in range(300):
        await pilot.pause(0.01)
        if not app.busy and not app._polling:
            break
    await pilot.pause(0.05)


async def test_table_sort_and_unpause_on_the_test_driver():
    backend = LibvirtBackend(URI)
    app, clock = make_app(backend)
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot, app, clock)
            shown = names(app)
            assert len(shown) == 35
            assert {MARKUP, "build runner 7", "ünïcødé-vm", "paused-vm", "crashed-vm"} <= set(shown)
            header = str(app.query_one("#host").render())
            assert "TEST" in header and "35 domains" in header and "1 crashed" in header
            text = screen_text(app)
            assert MARKUP in text  # shown as typed, not taken for markup
            assert "analytics-warehouse-reporting-cluster-node-03" in text

            await pilot.press("o")
            assert isinstance(app.screen, SortScreen)
            await pilot.press("home", "enter")  # NAME
            assert names(app) == sorted(shown, key=str.casefold)

            table = app.query_one(DomainTable)
            table.select(next(d.key for d in app.sample.domains if d.name == "paused-vm"))
            await pilot.press("p")  # everything targeted is paused: p unpauses
            await finish(pilot, app)
            state = {d.name: d.state for d in app.sample.domains}
            assert state["paused-vm"] is DomainState.RUNNING
            assert app.action_log[-1][2:4] == ("unpause", "ok")
            assert table.selected.name == "paused-vm"  # the cursor stayed on it through the refresh
    finally:
        await backend.close()


async def test_test_driver_domains_show_100_and_sort_by_name_as_shown():
    """Every test-driver domain is at 100 % (its CPU time is the driver's clock, read over each domain's own
    interval): the table shows 100.0 and, CPU% sorting as shown, keeps them in name order (a domain whose read
    met a hiccup of the machine may show 100.1 and stand first: the order is checked as the table's rule says)."""
    backend = LibvirtBackend(URI)
    app, clock = make_app(backend)
    try:
        async with app.run_test(size=(120, 24)) as pilot:
            await settle(pilot, app, clock)
            await pilot.pause(0.2)
            await poll(pilot, app, clock)
            shown = {key: round(app.rates[key].cpu_pct, 1) for key in app.rates}
            assert len(shown) == 35
            assert sum(share == 100.0 for share in shown.values()) >= 0.9 * len(shown), shown
            by_key = {d.key: d.name for d in app.sample.domains}
            order = app.query_one(DomainTable).shown_keys
            expected = sorted(sorted(order, key=lambda key: by_key[key].casefold()),
                              key=lambda key: shown.get(key, -1.0), reverse=True)
            assert order == expected
    finally:
        await backend.close()
