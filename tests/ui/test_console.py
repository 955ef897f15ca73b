"""The console pane against the simulated guests: typing, answers, SysRq, leaving, resizing, floods."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import TabbedContent

from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.console_pane import FEED_SLICE, ConsolePane, TerminalView
from xentui.ui.table import DomainTable

from .helpers import NEVER, make_sim, poll, settle

pytestmark = pytest.mark.asyncio


@pytest.fixture
def env(tmp_path):
    sim, clock = make_sim()
    app = XentuiApp(sim, StartOptions(delay=NEVER, theme="xentui-dark", save_dir=tmp_path / "saves"))
    return app, sim, clock


def choose(app: XentuiApp, name: str) -> None:
    app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == name))


async def drained(pilot, view: TerminalView) -> None:
    for _ in range(500):
        await pilot.pause(0.01)
        if not view.pending and not view._draining:
            return
    raise AssertionError("the console never caught up")


async def open_console(pilot, app, name: str) -> TerminalView:
    choose(app, name)
    await pilot.press("t")
    await pilot.pause(0.1)
    views = [p.view for p in app.query(ConsolePane) if p.domain_name == name]
    assert views, "no console pane opened"
    return views[-1]


async def typed(pilot, view: TerminalView, text: str) -> None:
    for char in text:
        await pilot.press("space" if char == " " else char)
    await pilot.press("enter")
    await drained(pilot, view)


def screen(view: TerminalView) -> str:
    return "\n".join(view.core.screen_text())


async def test_type_a_command_and_see_the_answer(env):
    app, _sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "web-frontend-01")
        assert app.focused is view
        assert app.query_one("#consoles").display and app.query_one(DomainTable).display  # both visible
        await typed(pilot, view, "uname -a")
        assert "Linux web-frontend-01 6.1.0" in screen(view)
        await typed(pilot, view, "nproc")
        assert any(line.strip() == "2" for line in view.core.screen_text())


async def test_sysrq_output_appears_in_the_open_console(env):
    app, sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "db-primary")
        await sim.sysrq("db-primary", "m")
        await pilot.pause(0.05)
        await drained(pilot, view)
        log = view.core.log_text()
        assert "sysrq: Show Memory" in log and "pages RAM" in screen(view)


async def test_keys_belong_to_the_guest_until_ctrl_bracket(env):
    app, _sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "mail-relay")
        await pilot.press("q", "ctrl+c", "ctrl+p", "ctrl+q", "s")  # xentui's keys, but the guest's now
        await drained(pilot, view)
        assert app.is_running and app.screen is app.screen_stack[0]
        assert "^C" in screen(view)
        assert app.view.sort_column == "cpu_pct"  # 's' did not re-sort the table
        await pilot.press("ctrl+right_square_bracket")
        assert isinstance(app.focused, DomainTable)
        await pilot.press("s")
        assert app.view.sort_column != "cpu_pct"


async def test_a_key_typed_right_after_ctrl_bracket_goes_to_the_table(env):
    """Over ssh Ctrl-] and the next key can arrive in one read: the key must not reach the guest."""
    app, _sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "mail-relay")
        await drained(pilot, view)
        app.post_message(events.Key("ctrl+right_square_bracket", "\x1d"))
        app.post_message(events.Key("n", "n"))
        await pilot.pause()
        await pilot.pause()
        await drained(pilot, view)
        assert isinstance(app.focused, DomainTable) and app.view.networks  # 'n' toggled the vif rows
        assert not screen(view).rstrip().endswith("n")  # and was not typed at the guest's prompt


async def test_alt_keys_belong_to_the_guest_whole(env):
    """Outside a console an Alt+letter is read as Escape then the letter (see XentuiApp.on_event); in a
    console it is the guest's Meta key and goes to it unchanged, in one write."""
    app, sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "mail-relay")
        await drained(pilot, view)
        channel = sim.host.domains["mail-relay"].console
        writes: list[bytes] = []
        real_write = channel.write

        async def recorded(data: bytes) -> None:
            writes.append(data)
            await real_write(data)

        channel.write = recorded
        app.post_message(events.Key("alt+m", "m"))
        await pilot.pause()
        await pilot.pause()
        assert writes == [b"\x1bm"]
        assert app.focused is view


async def test_console_follows_the_pane_size(env):
    app, sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "mail-relay")
        channel = sim.host.domains["mail-relay"].console
        assert (view.core.columns, view.core.rows) == (view.size.width, view.size.height)
        await pilot.resize_terminal(160, 50)
        await pilot.pause(0.2)
        assert (view.core.columns, view.core.rows) == (view.size.width, view.size.height)
        assert channel.size == (view.size.width, view.size.height)


async def test_domain_gone_keeps_the_last_screen(env):
    app, sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "[staging] api")
        await typed(pilot, view, "hostname")
        await sim.destroy("[staging] api")
        await pilot.pause(0.2)
        await drained(pilot, view)
        pane = app.query_one(ConsolePane)
        assert view.ended and pane.has_class("ended")
        assert "gone" in str(pane.query_one(".console-title").render())
        assert "staging--api" in screen(view)  # the answer to hostname is still on the screen


async def test_a_console_already_taken_says_so(env):
    app, sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        other = await sim.open_console("mail-relay")
        choose(app, "mail-relay")
        await pilot.press("t")
        await pilot.pause(0.1)
        assert not list(app.query(ConsolePane))
        assert any("already in use" in str(n.message) for n in app._notifications)
        await other.close()


async def test_a_flood_is_fed_in_slices_and_the_keys_stay_live(env):
    app, _sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "mail-relay")
        for char in "seq 100000":
            await pilot.press("space" if char == " " else char)
        await pilot.press("enter")
        await pilot.press("ctrl+right_square_bracket")  # a key during the flood is handled
        assert isinstance(app.focused, DomainTable)
        await drained(pilot, view)
        assert view.bytes_fed > 500_000
        # bounded slices, one per frame: never the whole burst in one go
        assert view.slices_fed >= view.bytes_fed // FEED_SLICE
        assert "100000" in screen(view)


async def test_scrollback_and_saving_the_log(env, tmp_path):
    app, _sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "mail-relay")
        await typed(pilot, view, "seq 3000")
        assert view.core.history_size > 2000
        await pilot.press("shift+pageup")
        assert view.scroll_back > 0
        shown = [text for runs in (view.core.line(y, scroll=view.scroll_back) for y in range(view.core.rows))
                 for text, _ in runs]
        assert "3000" not in "".join(shown)
        await pilot.press("shift+pagedown")
        assert view.scroll_back == 0
        await pilot.press("ctrl+right_square_bracket", "L")
        saved = list((tmp_path / "saves").glob("console-mail-relay-*.log"))
        assert len(saved) == 1 and "\n1500\n" in saved[0].read_text()


async def test_several_consoles_as_tabs_and_maximised(env):
    app, _sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        first = await open_console(pilot, app, "mail-relay")
        await pilot.press("ctrl+right_square_bracket")
        await open_console(pilot, app, "db-primary")
        assert len(list(app.query(ConsolePane))) == 2
        await pilot.press("ctrl+right_square_bracket")
        choose(app, "mail-relay")
        await pilot.press("t")  # back to its open console, not a second one
        await pilot.pause(0.1)
        assert len(list(app.query(ConsolePane))) == 2 and app.focused is first
        await pilot.press("ctrl+right_square_bracket", "f")
        assert not app.query_one(DomainTable).display
        await pilot.press("f", "x")
        await pilot.pause(0.1)
        assert len(list(app.query(ConsolePane))) == 1
        assert app.query_one(DomainTable).display
        assert app.query_one("#consoles", TabbedContent).has_class("shown")
        before = app.polls_done
        await poll(pilot, app, clock)  # the table keeps refreshing with a console open
        assert app.polls_done == before + 1
