"""The main screen driven by keys, as an operator would, against the simulated host."""

from __future__ import annotations

import os
import random
from collections.abc import Collection

import pytest
from textual import events
from textual.binding import Binding
from textual.widgets import Input, Static

from tests.rates_paths import without_columns
from xentui.backends.base import Backend, BackendError, Capabilities
from xentui.backends.sim import SimBackend, SimCluster
from xentui.model import Domain, DomainFlag, DomainType, Host, Sample
from xentui.ui.app import StartOptions, XentuiApp, _spelt_out
from xentui.ui.screens import DelayScreen, DetailsScreen, HelpScreen, SortScreen
from xentui.ui.table import DomainTable

from .helpers import NEVER, make_app, make_sim, poll, settle, wait_polls

pytestmark = pytest.mark.asyncio


def names(app: XentuiApp) -> list[str]:
    table = app.query_one(DomainTable)
    by_key = {d.key: d.name for d in app.sample.domains}
    return [by_key[key] for key in table.shown_keys]


def screen_text(app: XentuiApp) -> str:
    table = app.query_one(DomainTable)
    return "\n".join(table.render_line(y).text for y in range(table.size.height))


def selected(app: XentuiApp) -> str | None:
    domain = app.query_one(DomainTable).selected
    return None if domain is None else domain.name


async def test_first_screen_shows_every_domain_and_the_host():
    app, clock = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, app, clock)
        assert len(names(app)) == 13
        assert names(app)[0] == "batch-cruncher"  # default sort: CPU% biggest first
        header = str(app.query_one("#host").render())
        assert "sim-host-1" in header and "Xen 4.17.3" in header
        assert "13 domains: " in header and "1 crashed" in header and "dom0:" in header
        assert "CPUs: 16 @ 2394MHz" in header
        text = screen_text(app)
        assert "analytics-warehouse-reporting-cluster-node-03" in text  # full name, not cut to 10
        assert "no limit" in text


async def test_sort_next_reverse_and_pick(monkeypatch):
    app, clock = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("s")
        assert app.view.sort_column == "cpu_s"
        cpu = {d.name: d.cpu_ns for d in app.sample.domains}
        assert [cpu[n] for n in names(app)] == sorted(cpu.values(), reverse=True)
        await pilot.press("i")
        assert [cpu[n] for n in names(app)] == sorted(cpu.values())
        await pilot.press("o")
        assert isinstance(app.screen, SortScreen)
        await pilot.press("home", "enter")  # the first column: NAME
        assert app.view.sort_column == "name"
        assert names(app) == sorted(names(app), key=str.casefold)


async def test_click_on_a_header_sorts_and_clicking_again_reverses():
    app, clock = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, app, clock)
        table = app.query_one(DomainTable)
        await pilot.click(DomainTable, offset=(2, 0))
        assert app.view.sort_column == "name" and not app.view.sort_reverse
        await pilot.click(DomainTable, offset=(2, 0))
        assert app.view.sort_reverse
        assert names(app) == sorted(names(app), key=str.casefold, reverse=True)
        assert table.rebuilds > 2


async def test_filter_by_name_and_clear():
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("slash")
        assert app.focused is app.query_one("#filter", Input)
        await pilot.press(*"WEB")
        assert names(app) == ["web-frontend-01"]
        await pilot.press("enter")
        assert isinstance(app.focused, DomainTable)
        await poll(pilot, app, clock)
        assert names(app) == ["web-frontend-01"]  # the filter holds through refreshes
        assert "filter 'WEB'" in str(app.query_one("#host").render())
        await pilot.press("escape")
        assert len(names(app)) == 13


async def test_filter_by_state_and_id_and_say_when_nothing_matches():
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("slash", *"state:paused")
        assert names(app) == ["backup-old"]
        await pilot.press("enter")
        await poll(pilot, app, clock)
        assert names(app) == ["backup-old"]
        await pilot.press("slash", *"id:9999", "enter")
        await poll(pilot, app, clock)
        assert names(app) == []
        assert "filter 'id:9999': nothing matches" in str(app.query_one("#host").render())
        await pilot.press("slash", *"state:asleep", "enter")
        await poll(pilot, app, clock)
        assert "no state 'asleep'" in str(app.query_one("#host").render())


async def test_a_refresh_repaints_only_the_rows_that_can_change_and_blanks_rows_left_behind():
    """A short table on a tall terminal: a refresh repaints the title row and the domain rows, not the blank rows
    under them; rows a filter or a gone domain left behind are blanked (read from what the compositor draws)."""
    from textual.geometry import Region

    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        table = app.query_one(DomainTable)

        def drawn() -> list[str]:
            return [strip.text.rstrip() for strip in table.render_lines(Region(0, 0, table.size.width,
                                                                              table.size.height))]

        assert sum(1 for row in drawn() if row) == 14  # the title row and 13 domains
        drawn_before = table.lines_rendered
        await poll(pilot, app, clock)
        drawn()
        assert table.lines_rendered - drawn_before <= 14  # the 22 blank rows below were not drawn again
        await pilot.press("slash", *"WEB", "enter")
        await poll(pilot, app, clock)
        rows = drawn()
        assert rows[1].startswith("web-frontend-01") and not any(rows[2:])


async def test_the_backend_is_told_which_domains_are_looked_at(monkeypatch):
    """The rows on screen and a screenful each way, the selected and the marked domain; every domain while a
    device column sorts the table or device sub-rows are shown (a backend may then read devices for all).
    Per-vCPU times: the rows on screen, the selected domain's and an open details screen's, every domain's with
    vCPU rows shown."""
    backend, clock = make_sim(domains=150)
    focused: list[frozenset[str] | None] = []
    vcpus_focused: list[frozenset[str] | None] = []

    def focus(keys: Collection[str] | None, vcpu_keys: Collection[str] | None = None) -> None:
        focused.append(None if keys is None else frozenset(keys))
        vcpus_focused.append(None if vcpu_keys is None else frozenset(vcpu_keys))

    monkeypatch.setattr(backend, "focus", focus)
    app, _ = make_app(backend)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        table = app.query_one(DomainTable)
        shown = table.shown_keys
        near = focused[-1]
        assert near is not None and set(shown[:table.size.height]) <= near and len(near) < len(shown)
        await pilot.press("end")  # the last domain selected, far from the top
        await poll(pilot, app, clock)
        now = table.shown_keys
        assert table.cursor_key == now[-1] and now[-1] in focused[-1] and now[0] in focused[-1]  # just seen
        on_screen = set(table.keys_on_screen())
        assert now[-1] in on_screen and now[0] not in on_screen and len(on_screen) <= table.size.height
        assert vcpus_focused[-1] == on_screen
        await app.push_screen(DetailsScreen(now[0], app.history, app.sample, app.rates))  # another's details
        await poll(pilot, app, clock)
        assert vcpus_focused[-1] == set(table.keys_on_screen()) | {now[0]}
        await pilot.press("escape")
        await poll(pilot, app, clock)
        assert vcpus_focused[-1] == set(table.keys_on_screen()) and now[0] not in vcpus_focused[-1]
        await pilot.press("home")  # a move asks at once for what the new place shows, before the next refresh
        await pilot.pause()
        assert now[0] in vcpus_focused[-1] and now[0] in focused[-1] and now[-1] not in vcpus_focused[-1]
        await pilot.press("end")
        await pilot.pause()
        for _ in range(app.FOCUS_MEMORY + 1):  # rows long out of view leave the focus
            await poll(pilot, app, clock)
        now = table.shown_keys
        assert now[-1] in focused[-1] and now[0] not in focused[-1] and len(focused[-1]) < len(now)
        app.view.sort_column = "nettx"
        await poll(pilot, app, clock)
        assert focused[-1] is None and vcpus_focused[-1] == set(table.keys_on_screen())
        app.view.vcpus = True
        await poll(pilot, app, clock)
        assert focused[-1] is None and vcpus_focused[-1] is None
        app.view.vcpus = False
        app.view.sort_column = "cpu_pct"
        await poll(pilot, app, clock)
        assert focused[-1] is not None
        # rows that trade places with others far away at every refresh (the same figure but for noise): all in focus
        order = list(now)
        for _ in range(3):
            order = order[75:] + order[:75]
            monkeypatch.setattr(table, "keys_near_view", lambda order=order: order[:60])
            await poll(pilot, app, clock)
        assert focused[-1] is None and vcpus_focused[-1] == set(table.keys_on_screen())


class BusyGuests(Backend):
    """Guests all busy on one CPU (100 %) but for noise far below what CPU% shows (+-0.04 %), or above it."""

    name = "busy"

    def __init__(self, count: int, noise_ns: int) -> None:
        self.noise_ns, self.draw, self.at = noise_ns, random.Random(4), 0.0
        self.cpu = dict.fromkeys((f"guest-{i:03d}" for i in range(count)), 0)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    async def sample(self) -> Sample:
        self.at += 1.0
        for name in self.cpu:
            self.cpu[name] += 10**9 + self.draw.randint(-self.noise_ns, self.noise_ns)
        domains = [Domain(id=i + 1, name=name, uuid=f"u-{name}", type=DomainType.PV, flags=DomainFlag.RUNNING,
                          cpu_ns=cpu, mem_kib=1024, maxmem_kib=2048) for i, (name, cpu) in enumerate(self.cpu.items())]
        return Sample(monotonic=self.at, wall=1e9 + self.at, host=HOST, domains=domains)

    async def host_info(self) -> Host:
        return HOST

    async def open_console(self, name: str):  # type: ignore[no-untyped-def]
        raise NotImplementedError


HOST = Host("h", "Xen", "4.17.3", 64, 2000, 16 * 1024 * 1024, 8 * 1024 * 1024)


@pytest.mark.parametrize(("noise_ns", "steady"), [(400_000, True), (20_000_000, False)])
async def test_rows_that_show_the_same_cpu_keep_their_name_order_and_the_backend_a_focus(monkeypatch, noise_ns,
                                                                                         steady):
    """Sorted by CPU%, 600 guests that all show 100.0 stay in name order from refresh to refresh, and the
    backend is asked for the rows near the screen. With noise that CPU% shows (+-2 %), the rows trade places
    and every domain is put in focus (None), so none shows "?" for want of a read."""
    backend = BusyGuests(600, noise_ns)
    asked: list[frozenset[str] | None] = []
    monkeypatch.setattr(backend, "focus", lambda keys, vcpu_keys=None: asked.append(
        None if keys is None else frozenset(keys)))
    app, clock = make_app(backend)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        orders = []
        for _ in range(4):
            await poll(pilot, app, clock)
            orders.append(names(app))
        in_name_order = [f"guest-{i:03d}" for i in range(600)]
        assert (orders == [in_name_order] * 4) is steady
        assert (None not in asked[-3:]) is steady


async def test_keys_typed_ahead_after_slash_all_land_in_the_filter():
    """Over ssh "/db-" arrives in one read: every key is queued before '/' is handled. None may run as a
    command ('d' is the delay prompt, 'b' the vbd rows), all must reach the filter."""
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        for key, character in (("slash", "/"), ("d", "d"), ("b", "b"), ("minus", "-")):
            app.post_message(events.Key(key, character))
        await pilot.pause()
        await pilot.pause()
        assert app.query_one("#filter", Input).value == "db-"
        assert not isinstance(app.screen, DelayScreen) and not app.view.vbds
        assert names(app) == ["db-primary"]


async def test_the_cursor_stays_on_the_top_row_until_a_domain_is_picked():
    """The first sample has no rates, so its order is by name: the domain on top then ("[staging] api") is
    no choice, and the cursor must not follow it down once the table sorts by CPU."""
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        for _ in range(3):
            await poll(pilot, app, clock)
            assert selected(app) == names(app)[0] == "batch-cruncher"
        await pilot.press("down")
        chosen = selected(app)
        assert chosen == names(app)[1]
        await pilot.press("i")  # reversed: the chosen domain moves, and the cursor with it
        assert selected(app) == chosen and names(app).index(chosen) == len(names(app)) - 2


async def test_enter_opens_live_details_and_escape_returns():
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("down")  # db-primary, second by CPU
        chosen = selected(app)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, DetailsScreen)
        assert screen.domain is not None and screen.domain.name == chosen
        title = str(screen.query_one("#title", Static).render())
        assert chosen in title
        label = screen.query_one("#cpu-label")
        assert "last 1 sample" in str(label.render())  # history from before the screen opened
        await poll(pilot, app, clock)
        assert "last 2 samples" in str(label.render())
        assert screen.query_one("#cpu-spark").data[-1] > 0
        assert "vif" in str(screen.query_one("#vifs", Static).render()) or screen.domain.vifs == []
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailsScreen)


async def test_details_show_vcpu_times_not_read_as_unknown_not_as_zero():
    """A domain whose per-vCPU times were not read this time (out of the backend's vCPU focus): "?", not 0.0 s."""
    from rich.console import Console

    from xentui.model import UNKNOWN_VCPU_TIMES, Vcpu

    def text(unknown: frozenset[str]) -> str:
        domain = Domain(id=1, name="g", uuid="u", type=DomainType.PV, flags=DomainFlag.RUNNING, cpu_ns=0,
                        mem_kib=1, maxmem_kib=1, vcpus=[Vcpu(0, True, 5 * 10**9), Vcpu(1, True, 0)], unknown=unknown)
        console = Console(width=60, no_color=True)
        with console.capture() as captured:
            console.print(DetailsScreen._vcpus(domain, None))
        return captured.get()

    read, unread = text(frozenset()), text(frozenset({UNKNOWN_VCPU_TIMES}))
    assert "5.0" in read and "?" not in read
    assert "?" in unread and "5.0" not in unread and "0.0" not in unread


async def test_details_say_when_the_domain_is_gone():
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == "mail-relay"))
        await pilot.press("enter")
        await app.backend.destroy("mail-relay")
        await poll(pilot, app, clock)
        assert app.screen.has_class("gone")


async def test_cursor_stays_on_its_domain_through_refreshes_sorts_and_departures():
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        table = app.query_one(DomainTable)
        table.select(next(d.key for d in app.sample.domains if d.name == "mail-relay"))
        for _ in range(3):
            await poll(pilot, app, clock, 2.0)
            assert selected(app) == "mail-relay"
        for key in ("s", "s", "i", "c", "n", "v"):
            await pilot.press(key)
            assert selected(app) == "mail-relay"
        await app.backend.destroy("web-frontend-01")
        await poll(pilot, app, clock)
        assert selected(app) == "mail-relay"
        position = table.shown_keys.index(table.cursor_key)
        await app.backend.destroy("mail-relay")  # the selected one goes: land on its neighbour
        await poll(pilot, app, clock)
        assert selected(app) is not None and selected(app) != "mail-relay"
        assert table.shown_keys.index(table.cursor_key) == min(position, len(table.shown_keys) - 1)


async def test_delay_change_takes_fractions_refuses_nonsense_and_applies_at_once():
    app, clock = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("d")
        assert isinstance(app.screen, DelayScreen)
        await pilot.press("ctrl+a", "ctrl+k", *"abc", "enter")
        assert isinstance(app.screen, DelayScreen)
        assert "'abc' is not a number: 0.5 to 3600 s" in str(app.screen.query_one("#error").render())
        await pilot.press("ctrl+a", "ctrl+k", *"0.01", "enter")  # a floor: 0.01 s burnt half a core
        assert isinstance(app.screen, DelayScreen) and app.delay != 0.01
        assert "0.01 is too short: at least 0.5 s" in str(app.screen.query_one("#error").render())
        await pilot.press("ctrl+a", "ctrl+k", *"0.5", "enter")
        assert not isinstance(app.screen, DelayScreen)
        assert app.delay == 0.5
        done = app.polls_done
        await pilot.pause(1.3)  # the new delay is in force without waiting for the old hour-long one
        assert app.polls_done >= done + 2
        assert "every 0.5s" in str(app.query_one("#host").render())


async def test_xentop_toggles_add_and_remove_subrows():
    app, clock = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, app, clock)
        table = app.query_one(DomainTable)

        def kinds() -> set[str]:
            return {line.kind for line in table._lines}

        assert kinds() == {"domain"}
        await pilot.press("n")
        assert "vif" in kinds() and "xenbr0" in screen_text(app)
        await pilot.press("b")
        assert "vbd" in kinds()
        await pilot.press("v")
        assert "vcpu" in kinds() and "vCPU 0" in screen_text(app)
        await pilot.press("r")
        assert "header" in kinds()
        await pilot.press("n", "b", "v", "r")
        assert kinds() == {"domain"}


async def test_cumulative_toggle_shows_xentop_figures():
    app, clock = make_app()
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot, app, clock)
        assert "TX/s" in screen_text(app).splitlines()[0]
        await pilot.press("c")
        header = screen_text(app).splitlines()[0]
        assert "NETTX(k)" in header and "CPU(sec)" in header and "MEM(k)" in header
        dom0 = next(d for d in app.sample.domains if d.is_dom0)
        assert str(dom0.mem_kib) in screen_text(app)


async def test_dom0_first():
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        assert names(app)[0] != "Domain-0"
        await pilot.press("z")
        assert names(app)[0] == "Domain-0"


class FlakyBackend(SimBackend):
    broken = False

    async def sample(self):
        if self.broken:
            raise BackendError("xl: cannot talk to the hypervisor (libxl: error: xc_domain_getinfo failed)"
                               "\x1b]0;TITLE\x07")  # a tool's words: never raw on the terminal
        return await super().sample()


async def test_a_failing_backend_shows_a_banner_and_recovers():
    sim, clock = make_sim()
    backend = FlakyBackend(sim.cluster)
    app, _ = make_app(backend)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        banner = app.query_one("#banner", Static)
        assert not banner.has_class("shown")
        backend.broken = True
        await poll(pilot, app, clock)
        assert banner.has_class("shown") and banner.display
        assert "cannot talk to the hypervisor" in str(banner.render())
        assert "\x1b" not in str(banner.render()) and "\\x1b]0;TITLE\\x07" in str(banner.render())
        assert len(names(app)) == 13  # the last good figures stay
        await poll(pilot, app, clock)  # the poller keeps trying
        backend.broken = False
        await poll(pilot, app, clock)
        assert not banner.has_class("shown")
        assert app.last_error is None


class CrashingBackend(SimBackend):
    async def sample(self):
        raise RuntimeError("bug in a backend")


async def test_even_an_unexpected_exception_does_not_crash_the_app():
    sim, clock = make_sim()
    app, _ = make_app(CrashingBackend(sim.cluster))
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot, app, clock)
        assert "RuntimeError: bug in a backend" in str(app.query_one("#banner", Static).render())
        assert app.is_running


async def test_names_that_look_like_markup_or_controls_are_shown_literally(monkeypatch):
    from xentui.backends import sim as simmodule

    tricky = ("[red]x[/]", "[/b]", "evil\x1b[2J\x07name", "rtl\u202eeman", "[link=http://x]y")
    featured = tuple((name, *simmodule._FEATURED[i][1:]) for i, name in enumerate(tricky))
    monkeypatch.setattr(simmodule, "_FEATURED", featured + simmodule._FEATURED[len(tricky):])
    from xentui.clock import ManualClock

    clock = ManualClock()
    app, _ = make_app(SimBackend(SimCluster(seed=1, clock=clock)))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, app, clock)
        text = screen_text(app)
        assert "[red]x[/]" in text and "[/b]" in text and "[link=http://x]y" in text
        assert "evil\\x1b[2J\\x07name" in text and "rtl\\u202eeman" in text
        assert "\x1b" not in text and "\u202e" not in text
        table = app.query_one(DomainTable)
        table.select(next(d.key for d in app.sample.domains if d.name == "[red]x[/]"))
        await pilot.press("enter")
        assert "[red]x[/]" in str(app.screen.query_one("#title", Static).render())


async def test_help_lists_every_key():
    app, clock = make_app()
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = {key for keys, _ in app.screen.rows for key in keys.split(", ")}
        for binding in app.BINDINGS:
            for key in binding.key.split(","):
                assert _spelt_out(app.get_key_display(Binding(key, ""))) in listed, key
        assert {"Enter", "Shift+PgUp", "Shift+PgDn", "Ctrl+P"} <= listed
        groups = [name for name, _ in app.screen.groups]
        assert groups == ["Views", "Sort and filter", "Domain actions", "Console", "Moving around"]
        rows = dict(app.screen.rows)
        assert rows["Ctrl+S"] == "save to a file, stop or keep running"  # the palette's words, not "Save"
        assert "config.toml" in str(app.screen.query(Static)[1].render())
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_palette_runs_commands_by_name():
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("ctrl+p")
        await pilot.press(*"view: networks")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.view.networks
        await pilot.press("ctrl+p")
        await pilot.press(*"domain: vcpu-set")  # a registry action: its form opens, as with its key
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "VcpuScreen"
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"theme: xentui-light")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == "xentui-light"


async def test_q_quits():
    app, clock = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_no_color_picks_the_plain_theme(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = make_app(theme=None)
    assert app.theme == "xentui-plain" and app.no_color


async def test_an_empty_no_color_is_not_set_as_the_convention_says(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "")
    app, _ = make_app(theme=None)
    assert app.theme == "xentui-dark" and not app.no_color
    assert os.environ["NO_COLOR"] == ""  # left as it was for what xentui starts


async def test_cursor_keys_scroll_to_keep_the_selection_visible_on_a_big_host():
    sim, clock = make_sim(domains=300)
    app, _ = make_app(sim)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        table = app.query_one(DomainTable)

        def visible() -> bool:
            line = table._line_of_key[table.cursor_key]
            top = table.scroll_offset.y
            return top <= line < top + table.size.height - 1

        await pilot.press("end")
        assert table.cursor_key == table.shown_keys[-1] and visible()
        assert f"{selected(app)}"[:10] in screen_text(app)
        await pilot.press("home")
        assert table.cursor_key == table.shown_keys[0] and visible()
        await pilot.press("pagedown", "pagedown")
        assert table.shown_keys.index(table.cursor_key) > 20 and visible()
        await pilot.press("up")
        assert visible()
        # drawing follows the screen, not the host: one refresh draws about one screenful of lines
        drawn = table.lines_rendered
        await poll(pilot, app, clock)
        assert table.lines_rendered - drawn <= 2 * table.size.height


@pytest.mark.parametrize("cumulative", [False, True])
async def test_every_column_sorts_both_ways_as_its_key_says_with_the_name_breaking_ties(cumulative):
    """The table sorts with C-level keys (and reads rate columns directly); it must agree with each
    column's own key, biggest first for numbers, and keep equal values in name order both ways."""
    from xentui.ui.columns import COLUMNS

    backend, clock = make_sim(seed=3, domains=150)
    app, _ = make_app(backend)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, app, clock)
        app.view.cumulative = cumulative
        sample, rates, table = app.sample, app.rates, app.query_one(DomainTable)
        for column in COLUMNS:
            key = column.xentop_key if cumulative else column.key
            for reverse in (False, True):
                app.view.sort_column, app.view.sort_reverse = column.id, reverse
                table.rebuild()
                expected = sorted(sample.domains, key=lambda d: d.name.casefold())
                expected.sort(key=lambda d: key(d, rates.get(d.key), sample.host),
                              reverse=column.descending != reverse)
                assert names(app) == [d.name for d in expected], (column.id, reverse)


async def test_a_key_typed_right_after_enter_in_the_filter_runs_on_the_table():
    """Seen over ssh in the Xen lab: "/guest2", Enter, then 'm' queued before Enter was handled, and the
    'm' went into the filter. Enter keeps the filter and hands the focus back at once."""
    from xentui.ui.modals import MemoryScreen

    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        for key, character in (("slash", "/"), ("d", "d"), ("b", "b"), ("minus", "-"), ("enter", "\r"),
                               ("m", "m")):
            app.post_message(events.Key(key, character))
        for _ in range(5):
            await pilot.pause()
        assert app.query_one("#filter", Input).value == "db-"
        assert names(app) == ["db-primary"]
        assert isinstance(app.screen, MemoryScreen)


@pytest.mark.parametrize("escape_then_m", [[("escape", "\x1b"), ("m", "m")], [("alt+m", "m")]],
                         ids=["two-keys", "read-as-alt-m"])
async def test_a_key_typed_right_after_escape_in_the_filter_runs_on_the_table(escape_then_m):
    """Escape then 'm' typed fast over ssh: both queued before Escape is handled, or read together as one
    ESC m, which the terminal parser reports as Alt+M. Either way Escape clears the filter and 'm' opens
    mem-set on the table, instead of landing in the filter or being lost."""
    from xentui.ui.modals import MemoryScreen

    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        for key, character in (("slash", "/"), ("d", "d"), ("b", "b"), *escape_then_m):
            app.post_message(events.Key(key, character))
        for _ in range(5):
            await pilot.pause()
        assert app.query_one("#filter", Input).value == ""
        assert len(names(app)) == 13
        assert isinstance(app.screen, MemoryScreen)



@pytest.mark.parametrize("typed_before_escape", ["", "d"], ids=["nothing", "a-letter"])
async def test_slash_typed_right_after_escape_opens_a_fresh_filter(typed_before_escape):
    """'/', maybe a letter, Escape, '/', 'b' all queued at once: the second '/' opens the filter again and
    it holds just 'b' (what was typed before Escape went with it), shown and focused."""
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        keys = [("slash", "/"), *[(c, c) for c in typed_before_escape], ("escape", "\x1b"), ("slash", "/"),
                ("b", "b")]
        for key, character in keys:
            app.post_message(events.Key(key, character))
        for _ in range(5):
            await pilot.pause()
        field = app.query_one("#filter", Input)
        assert field.value == "b" and app.focused is field and field.has_class("shown")
        assert app.view.filter_text == "b"
        assert names(app) and all("b" in name.casefold() for name in names(app))


@pytest.mark.parametrize("first_poll_fails", [False, True])
async def test_the_collector_is_settled_once_soon_after_the_first_poll_good_or_not(monkeypatch, first_poll_fails):
    """The `xentui` command starts with the garbage collector off; the screen must turn it back on
    after its first poll, whether that poll worked or not, and only once."""
    import xentui.ui.app as app_module

    settled: list[float] = []
    monkeypatch.setattr(app_module, "_settle_garbage_collector", lambda: settled.append(app.polls_done))
    sim, _clock = make_sim()
    backend = FlakyBackend(sim.cluster)
    backend.broken = first_poll_fails
    app = XentuiApp(backend, app_module.StartOptions(delay=0.4, theme="xentui-dark", tune_gc=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        for _ in range(100):
            if settled:
                break
            await pilot.pause(0.02)
        assert settled and settled[0] >= 1  # after the first poll, not before
        await wait_polls(pilot, app, app.polls_done + 3)
        assert len(settled) == 1


@pytest.mark.parametrize(("column", "cumulative", "records"), [
    ("cpu_pct", False, False), ("cpu_pct", True, False), ("nettx", False, False), ("nets", False, True),
    ("vbds", False, True), ("mem", False, False), ("mem_pct", True, False), ("cpu_s", True, False),
    ("maxmem", False, True),
])
async def test_a_refresh_makes_records_for_the_rows_drawn_whatever_the_sort(column, cumulative, records, monkeypatch):
    """Scale: a refresh of 400 domains makes records, per-domain rates and vCPU, vif and vbd records for the rows
    drawn (and dom0's record for the header). A sort by a rate reads the rates' column; a sort by a
    record's figure the columns lack (NETS, MAXMEM) makes each record, but still no more rates or device records;
    MEM and CPU(s) are in the columns and make none."""
    from xentui.backends import sim as simulator
    from xentui.model import DomainRates

    made: dict[str, int] = {"records": 0, "rates": 0, "sub-records": 0}
    record, rates_init = simulator._SampledState.record, DomainRates.__init__

    def count(name, real):
        def counted(*args, **kwargs):
            made[name] += 1
            return real(*args, **kwargs)
        return counted

    monkeypatch.setattr(simulator._SampledState, "record", count("records", record))
    monkeypatch.setattr(DomainRates, "__init__", count("rates", rates_init))
    for kind in (simulator.VcpuTimes, simulator.VifRecords, simulator.VbdRecords):
        monkeypatch.setattr(kind, "_make", count("sub-records", kind._make))
    backend, clock = make_sim(domains=400)
    app, _ = make_app(backend)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, app, clock)
        app.table.options.sort_column, app.table.options.cumulative = column, cumulative
        await poll(pilot, app, clock)
        await pilot.pause()
        for name in made:
            made[name] = 0
        await poll(pilot, app, clock)
        await pilot.pause()
        rows = app.table.size.height
        assert made["records"] >= 401 if records else made["records"] <= rows + 2, made
        assert made["rates"] <= rows and made["sub-records"] <= 3 * rows, made


@pytest.mark.parametrize(("column", "cumulative", "reverse"), [
    ("mem", False, False), ("mem", True, True), ("mem_pct", False, False), ("cpu_s", True, False),
    ("cpu_s", False, True),
])
async def test_a_sort_by_a_figure_of_the_columns_orders_as_the_records_do(column, cumulative, reverse):
    """One model: sorted by MEM or CPU(s) from the sample's columns, the table lists the domains in the order
    their records give, ties in name order, as it does for the same sample without columns."""
    backend, clock = make_sim(domains=60)
    app, _ = make_app(backend)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, app, clock)
        table = app.table
        table.options.sort_column, table.options.cumulative = column, cumulative
        table.options.sort_reverse = reverse
        await poll(pilot, app, clock)
        await pilot.pause()
        sample = app.sample
        assert sample.columns is not None
        from_columns = table.shown_keys
        figure = "cpu_ns" if column == "cpu_s" else "mem_kib"
        by_name = sorted(sample.domains, key=lambda d: d.name.casefold())
        expected = sorted(by_name, key=lambda d: getattr(d, figure), reverse=not reverse)
        assert from_columns == [d.key for d in expected]
        assert len({getattr(d, figure) for d in sample.domains}) >= 5  # the order says something (ties too)
        table._sample = without_columns(sample)
        table.rebuild()
        assert table.shown_keys == from_columns


async def test_down_and_enter_typed_together_open_the_domain_the_cursor_moved_to():
    """Over ssh "Down, Down, Enter" can arrive in one read: Enter must open the domain the cursor reached,
    not the one it was on when the keys came (Enter was a key handler, run before Down's binding)."""
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        table = app.table
        for key in ("down", "down", "enter"):
            app.post_message(events.Key(key, None))
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, DetailsScreen)
        assert app.screen.key == table.shown_keys[2] == table.cursor_key


async def test_space_marks_and_moves_down_and_the_help_and_readme_say_so():
    """As in a file manager, Space marks and steps to the next domain (a run of Spaces marks a run of rows):
    the help and the README's keys table say it moves, so the move is no surprise."""
    from pathlib import Path

    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        table = app.query_one(DomainTable)
        first, second = table.shown_keys[:2]
        table.select(first)
        await pilot.press("space")
        assert table.marked == {first} and table.cursor_key == second
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        space = [description for key, description in app.screen.rows if key.lower() == "space"]
        assert space and "move" in space[0].lower() and "down" in space[0].lower()
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `Space`"))
    assert "mark" in row and ("move" in row or "next" in row)


async def palette_titles(pilot, app: XentuiApp, query: str) -> list[str]:
    """The commands the palette offers for what was typed (all of them, not only those on the screen)."""
    from textual.command import CommandList, CommandPalette

    await pilot.press("ctrl+p")
    assert isinstance(app.screen, CommandPalette)
    await pilot.press(*query)
    await pilot.pause(0.5)
    found = app.screen.query_one(CommandList)
    titles = [str(found.get_option_at_index(i).prompt).split("\n")[0] for i in range(found.option_count)]
    await pilot.press("escape")
    await pilot.pause()
    return [title.strip() for title in titles]


async def test_the_palette_offers_xentuis_commands_and_themes_only():
    """Not Textual's own (Screenshot, Keys, Maximize, Theme and its twenty themes): every command is xentui's."""
    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        assert await palette_titles(pilot, app, "screenshot") == []
        assert await palette_titles(pilot, app, "keys") == ["help: keys"]
        themes = await palette_titles(pilot, app, "theme")
        assert sorted(themes) == ["theme: xentui-dark", "theme: xentui-light", "theme: xentui-plain"]
        assert not [title for title in await palette_titles(pilot, app, "max") if ":" not in title]


async def test_a_backend_that_keeps_giving_the_same_sample_is_marked_stale_then_live_again():
    """xentop stalled (or printing garbage) left the table frozen with the header's time stuck and no word of it."""
    sim, clock = make_sim()

    class Stalls(type(sim)):
        stuck = False
        last = None

        async def sample(self):
            if self.stuck and self.last is not None:
                return self.last  # the same iteration again, as the xl backend gives while xentop prints nothing
            self.last = await super().sample()
            return self.last

    backend = Stalls(sim.cluster)
    app = XentuiApp(backend, StartOptions(delay=NEVER, theme="xentui-dark"))
    app.STALE_AFTER_MIN = 3.0  # wall-clock: well above what one poll takes on a loaded machine
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        banner = app.query_one("#banner")
        app.delay = 0.05  # three refresh periods are less than STALE_AFTER_MIN: it decides
        backend.stuck = True
        await poll(pilot, app, clock)
        assert not banner.has_class("shown")  # not yet: once is not stale
        await pilot.pause(3.1)
        await poll(pilot, app, clock)
        assert banner.has_class("shown") and "Stale: no new figures from sim" in str(banner.render())
        backend.stuck = False
        await poll(pilot, app, clock)
        assert not banner.has_class("shown")


async def test_quitting_closes_the_backend():
    sim, clock = make_sim()

    class Closes(type(sim)):
        closed = False

        async def close(self):
            self.closed = True

    backend = Closes(sim.cluster)
    app = XentuiApp(backend, StartOptions(delay=NEVER, theme="xentui-dark"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("q")
        await pilot.pause(0.1)
    assert backend.closed


async def test_a_slow_first_sample_is_said_with_what_is_awaited_then_cleared():
    """A hung `xl` at start left "waiting for the first sample" for 60 s with no word of what or why."""
    import asyncio

    sim, _clock = make_sim()
    gate = asyncio.Event()

    class Hangs(type(sim)):
        async def sample(self):
            self.activity = "xl list -l (gives up after 60 s)"
            await gate.wait()
            self.activity = None
            return await super().sample()

    app = XentuiApp(Hangs(sim.cluster), StartOptions(delay=NEVER, theme="xentui-dark"))
    app.FIRST_SAMPLE_PATIENCE = 0.1
    async with app.run_test(size=(100, 30)) as pilot:
        banner = app.query_one("#banner")
        for _ in range(40):
            await pilot.pause(0.1)
            if banner.has_class("shown"):
                break
        text = str(banner.render())
        assert "Waiting for sim: xl list -l (gives up after 60 s), for 1 s" in text, text
        gate.set()
        await wait_polls(pilot, app, 1)
        assert not banner.has_class("shown")


async def test_the_screen_listens_for_changes_made_elsewhere_from_the_start():
    """libvirt's events: a change outside xentui polls at once, not at the next tick (the delay here is NEVER)."""
    sim, clock = make_sim()

    class Tells(type(sim)):
        listener = None

        def watch_changes(self, callback):
            self.listener = callback

    backend = Tells(sim.cluster)
    app = XentuiApp(backend, StartOptions(delay=NEVER, theme="xentui-dark"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        assert backend.listener is not None
        done = app.polls_done
        backend.listener()
        await wait_polls(pilot, app, done + 1)
    assert backend.listener is None  # and it stops listening when the screen goes
