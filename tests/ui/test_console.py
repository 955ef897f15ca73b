"""The console pane against the simulated guests: typing, answers, SysRq, leaving, resizing, floods."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import Input, TabbedContent

from xentui.model import DomainState
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.console_pane import FEED_SLICE, ConsolePane, TerminalView
from xentui.ui.table import DomainTable

from .helpers import NEVER, make_sim, poll, settle

pytestmark = pytest.mark.asyncio


@pytest.fixture
def env(tmp_path):
    sim, clock = make_sim()
    app = XentuiApp(sim, StartOptions(delay=NEVER, theme="xentui-dark", save_dir=tmp_path / "saves",
                                      console_log_dir=tmp_path / "console-logs"))
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
        saved = list((tmp_path / "console-logs").glob("console-mail-relay-*.log"))
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


def pane_of(app: XentuiApp, view: TerminalView) -> ConsolePane:
    return next(pane for pane in app.query(ConsolePane) if pane.view is view)


def shown_notice(pane: ConsolePane) -> str:
    """The notice line as drawn on the screen ('' if it takes no room)."""
    notice = pane.notice
    if not notice.display or notice.region.height == 0:
        return ""
    return notice.render_line(0).text.strip()


async def test_a_paused_guests_console_says_why_it_is_silent_until_it_runs_again(env):
    app, sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "backup-old")  # paused in the demo
        pane = pane_of(app, view)
        await typed(pilot, view, "nproc")  # queued by the paused guest: nothing comes back
        height = view.size.height
        pane.show_domain_state(DomainState.PAUSED)
        await pilot.pause()
        notice = shown_notice(pane)
        assert notice.startswith("backup-old is paused: its console prints nothing until it is unpaused")
        title = pane.query_one(".console-title")
        # a line of the pane between the title and the guest's screen, not a line of the guest's screen
        assert title.region.y < pane.notice.region.y < view.region.y
        assert "paused" not in screen(view) and "paused" not in view.core.log_text()
        assert view.size.height == height - 1 and view.core.rows == view.size.height
        pane.show_domain_state(DomainState.PAUSED)  # the next poll, the same state: nothing changes
        await sim.unpause("backup-old")
        pane.show_domain_state(DomainState.BLOCKED)
        await pilot.pause()
        assert shown_notice(pane) == "" and not pane.has_class("silent")
        assert view.size.height == height
        await drained(pilot, view)
        assert any(line.strip() == "1" for line in view.core.screen_text())  # the guest answered at last


@pytest.mark.parametrize(("state", "why"), [
    (DomainState.CRASHED, "has crashed"), (DomainState.SHUTDOWN, "has shut down"), (DomainState.DYING, "is dying"),
])
async def test_a_crashed_shut_down_or_dying_guests_console_says_why_in_words(state, why, tmp_path):
    """Words, not colour alone: under NO_COLOR (the plain theme) the notice reads the same."""
    sim, clock = make_sim()
    app = XentuiApp(sim, StartOptions(delay=NEVER, theme="xentui-plain", save_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "[staging] api")
        pane = pane_of(app, view)
        pane.show_domain_state(state)
        await pilot.pause()
        assert shown_notice(pane).startswith(f"[staging] api {why}: its console prints nothing")
        assert pane.notice_text == shown_notice(pane)
        for running in (DomainState.RUNNING, DomainState.BLOCKED, None):
            pane.show_domain_state(state)
            pane.show_domain_state(running)
            await pilot.pause()
            assert shown_notice(pane) == "" and pane.notice_text == ""


async def test_a_gone_domains_console_shows_no_silent_notice(env):
    """The title says the domain is gone; a notice that waits for an unpause would be wrong there."""
    app, sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "mail-relay")
        pane = pane_of(app, view)
        pane.show_domain_state(DomainState.PAUSED)
        await sim.destroy("mail-relay")
        await pilot.pause(0.2)
        await drained(pilot, view)
        assert view.ended and shown_notice(pane) == ""
        pane.show_domain_state(DomainState.PAUSED)
        await pilot.pause()
        assert shown_notice(pane) == ""


async def test_after_leaving_the_console_a_kept_filter_does_not_take_the_keys(env):
    """'/web' Enter, 't', Ctrl-], 'f': the table hides under the maximised console; its focus must not pass to
    the kept filter's field (the next key would be typed into the filter); un-maximised, the table has it."""
    app, _sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("slash", "w", "e", "b", "enter")
        assert isinstance(app.focused, DomainTable) and app.view.filter_text == "web"
        await pilot.press("t")
        await pilot.pause(0.1)
        assert isinstance(app.focused, TerminalView)
        await pilot.press("ctrl+right_square_bracket", "f")
        await pilot.pause()
        assert not app.query_one(DomainTable).display  # maximised
        assert not isinstance(app.focused, Input)
        await pilot.press("s")  # an app key, not a letter of the filter
        await pilot.pause()
        assert app.view.filter_text == "web" and app.view.sort_column != "cpu_pct"
        await pilot.press("f")
        await pilot.pause()
        assert app.query_one(DomainTable).display and isinstance(app.focused, DomainTable)
        await pilot.press("down")
        assert app.view.filter_text == "web"


async def test_every_poll_tells_the_open_consoles_their_domains_state(env):
    """Paused on the host (by anyone): after the next poll its console says why it is silent; unpaused, not."""
    app, sim, clock = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "mail-relay")
        pane = pane_of(app, view)
        await pilot.press("ctrl+right_square_bracket")
        other = await open_console(pilot, app, "db-primary")
        assert pane.notice_text == "" and pane_of(app, other).notice_text == ""
        await sim.pause("mail-relay")
        await poll(pilot, app, clock)
        assert "paused" in pane.notice_text and pane.domain_state is DomainState.PAUSED
        assert pane_of(app, other).notice_text == ""
        await sim.unpause("mail-relay")
        await poll(pilot, app, clock)
        assert pane.notice_text == "" and pane.domain_state is not DomainState.PAUSED


async def test_console_logs_go_to_their_own_directory_not_among_the_saved_images(tmp_path, monkeypatch):
    """By default beside the save directory in the state dir, not in it: restore lists only saved images."""
    from xentui.ui.modals import RestoreScreen

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    sim, clock = make_sim()
    app = XentuiApp(sim, StartOptions(delay=NEVER, theme="xentui-dark"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        await open_console(pilot, app, "mail-relay")
        await pilot.press("ctrl+right_square_bracket", "L")
        logs = list((tmp_path / "xentui" / "console-logs").glob("console-mail-relay-*.log"))
        assert len(logs) == 1
        saves = tmp_path / "xentui" / "saves"
        assert not list(saves.glob("*.log")) if saves.exists() else True
        saves.mkdir(parents=True, exist_ok=True)
        image = saves / "db-primary-20250101-120000.save"
        image.write_bytes(b"image")
        (saves / "console-db-primary-20250101-120000.log").write_text("a log an older xentui saved here\n")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, RestoreScreen) and app.screen.files == [image]


async def test_read_only_console_drops_the_terminals_answers_without_a_word_but_refuses_typing(tmp_path):
    """A guest's DA/DSR query under --read-only made a 'typing into the console refused' toast: nobody typed."""
    from xentui.backends.readonly import ReadOnlyBackend

    sim, clock = make_sim()
    app = XentuiApp(ReadOnlyBackend(sim), StartOptions(delay=NEVER, theme="xentui-dark", save_dir=tmp_path,
                                                       console_log_dir=tmp_path / "logs"))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot, app, clock)
        view = await open_console(pilot, app, "mail-relay")
        await drained(pilot, view)
        before = len(app._notifications)
        view.pending += b"\x1b[c\x1b[6n"  # the guest asks: what terminal are you, where is the cursor
        view._drain()
        await drained(pilot, view)
        await pilot.pause(0.2)
        assert len(app._notifications) == before
        await pilot.press("x")  # the operator types: that is refused, and said
        await pilot.pause(0.2)
        assert any("typing into the console refused" in n.message for n in list(app._notifications)[before:])
