"""The xentui application: one poller, the host header, the domain table, and the keys around them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.theme import Theme
from textual.timer import Timer
from textual.widgets import Input

from xentui.audit import AuditLog, state_dir
from xentui.backends.base import Backend, BackendError
from xentui.backends.readonly import ReadOnlyBackend
from xentui.history import History
from xentui.model import Rates, Sample, compute_rates
from xentui.model.filters import DomainFilter
from xentui.textsafe import printable
from xentui.themefiles import load_theme_specs
from xentui.ui import terminal_input
from xentui.ui.actions import ActionsMixin
from xentui.ui.columns import BY_ID, COLUMN_IDS
from xentui.ui.console_dock import ConsoleDockMixin
from xentui.ui.main_screen import FilterField, MainScreen
from xentui.ui.messages import SampleShown
from xentui.ui.palette import XentuiCommands
from xentui.ui.registry import ACTIONS_BY_ID, bindings
from xentui.ui.runner import ActionRunner
from xentui.ui.table import DomainTable, ViewOptions

if TYPE_CHECKING:
    from types import ModuleType


DEFAULT_THEME = "xentui-dark"
PLAIN_THEME = "xentui-plain"

# Fallbacks so any theme, Textual's own included, can colour the domain states.
STATE_VARIABLE_DEFAULTS = {
    "state-running": "ansi_green",
    "state-blocked": "ansi_default",
    "state-paused": "ansi_yellow",
    "state-shutdown": "ansi_bright_black",
    "state-crashed": "ansi_red",
    "state-dying": "ansi_magenta",
}


BACKEND_CLOSE_LIMIT = 5.0  # seconds the backend gets to end its children when the screen goes


def default_save_dir() -> Path:
    return state_dir() / "saves"


def default_console_log_dir() -> Path:
    """Beside the save directory, not in it: restore lists the save directory, and a log is no image."""
    return state_dir() / "console-logs"


def load_themes(problems: list[str] | None = None) -> list[Theme]:
    """The shipped themes and the operator's (``themes/`` beside the config file); a broken one is said in
    ``problems`` by its file's name, and left out."""
    from xentui.config import config_dir

    errors: dict[str, str] = {}
    themes = []
    for name, spec in load_theme_specs(errors, config_dir() / "themes").items():
        fields = {key: value for key, value in spec.items() if key != "variables"}
        try:
            themes.append(Theme(**fields, variables=dict(spec.get("variables", {}))))
        except (TypeError, ValueError) as error:  # a key Textual's Theme does not take, a colour it cannot read
            errors[f"theme {name!r}"] = str(error)
    if problems is not None:
        problems.extend(f"{where}: not loaded: {why}" for where, why in errors.items())
    return themes


@dataclass
class StartOptions:
    """What the command line sets before the first frame."""

    delay: float = 3.0
    theme: str | None = None
    view: ViewOptions | None = None
    tune_gc: bool = False  # process-wide, so only for the real program, not for tests
    save_dir: Path | None = None  # where save puts images and restore looks: default in the XDG state dir
    console_log_dir: Path | None = None  # where L puts console logs: default in the XDG state dir
    audit: AuditLog | None = None
    require_audit: bool = False  # refuse actions while the audit log cannot be written (--require-audit)
    keymap: dict[str, str] = field(default_factory=dict)  # the config file's [keymap]: binding id -> keys
    config_problems: list[str] = field(default_factory=list)  # what is wrong in the config file, said at start
    record: Path | None = None  # --record: every sample appended as a JSON line, for --replay later


# Columns whose figures come from each device: sorting by one needs every domain's devices read.
_DEVICE_COLUMNS = frozenset({"nettx", "netrx", "vbd_oo", "vbd_rd", "vbd_wr", "vbd_rsect", "vbd_wsect"})


class Polled(Message):
    def __init__(self, sample: Sample, rates: Rates) -> None:
        super().__init__()
        self.sample = sample
        self.rates = rates


class PollFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class SamplesEnded(Message):
    """The backend has no more samples to give (`Backend.finished`: a replay played its last iteration)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class XentuiApp(ConsoleDockMixin, ActionsMixin, App[None]):
    """xentop's live table, one you can act from."""

    TITLE = "xentui"
    CSS_PATH = "xentui.tcss"
    COMMANDS: ClassVar[set] = {XentuiCommands}  # not Textual's own (Screenshot, Keys, Maximize, its themes)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="help"),
        # priority: handled as it arrives, before the keys queued behind it reach the table (see action_filter)
        Binding("slash", "filter", "Filter", id="filter", priority=True),
        # priority too, only while the filter is focused: the key typed right after Enter belongs to the table
        Binding("enter", "keep_filter", "Keep the filter", id="filter-keep", show=False, priority=True),
        *bindings("domain"),
        Binding("s,S", "sort_next", "Sort", id="sort-next"),
        Binding("o", "sort_menu", "Sort by…", id="sort-menu", show=False),
        Binding("i", "sort_reverse", "Reverse", id="sort-reverse", show=False),
        Binding("d,D", "delay", "Delay", id="delay"),
        Binding("n,N", "toggle_networks", "Nets", id="networks"),
        Binding("b,B", "toggle_vbds", "VBDs", id="vbds"),
        Binding("v,V", "toggle_vcpus", "vCPUs", id="vcpus"),
        Binding("r,R", "toggle_repeat_header", "Repeat header", id="repeat-header", show=False),
        Binding("c", "toggle_cumulative", "Cumul.", id="cumulative"),
        Binding("z", "toggle_dom0_first", "Dom0 first", id="dom0-first", show=False),
        Binding("G", "toggle_grouped", "Pool: a line per host, or one list with a HOST column", id="group-hosts",
                show=False),
        # priority while the filter is focused, like Enter; on the table (a filter kept) an ordinary key
        Binding("escape", "escape_filter", "Clear filter", id="filter-escape", show=False, priority=True),
        Binding("escape", "clear_filter", "Clear filter", id="clear-filter", show=False),
        Binding("ctrl+l", "refresh_now", "Refresh now", id="refresh-now", show=False),
        # a replay only (check_action): pause, step, seek
        Binding("full_stop", "replay_pause", "Replay: pause or play", id="replay-pause", show=False),
        Binding("left_square_bracket", "replay_step(-1)", "Replay: one iteration back", id="replay-back",
                show=False),
        Binding("right_square_bracket", "replay_step(1)", "Replay: one iteration on", id="replay-on", show=False),
        Binding("left_curly_bracket", "replay_step(-10)", "Replay: ten back", id="replay-back-10", show=False),
        Binding("right_curly_bracket", "replay_step(10)", "Replay: ten on", id="replay-on-10", show=False),
        Binding("q,Q", "quit", "Quit", id="quit"),
        # Not priority bindings: in a console they belong to the guest (^C, ^Q); Ctrl-] leaves first.
        Binding("ctrl+c", "quit", "Quit", id="quit-ctrl-c", show=False),
        Binding("ctrl+q", "quit", "Quit", id="quit-ctrl-q", show=False),
        *bindings("console"),
    ]

    def __init__(self, backend: Backend, options: StartOptions | None = None) -> None:
        # NO_COLOR's convention: only a non-empty value counts. Textual counts an empty one too; it does not see it.
        empty_no_color = os.environ.get("NO_COLOR") == ""
        if empty_no_color:
            del os.environ["NO_COLOR"]
        try:
            super().__init__()
        finally:
            if empty_no_color:
                os.environ["NO_COLOR"] = ""  # as it was, for whatever xentui starts
        from xentui.ui import ascii as ascii_module

        self.ascii = ascii_module.wanted()
        if self.ascii:  # a terminal that is not UTF-8: every line drawn through the ASCII filter
            self._filters.append(ascii_module.AsciiFilter())
        terminal_input.install()
        options = options or StartOptions()
        self.backend = backend
        self.delay = options.delay
        self.view = options.view or ViewOptions()
        self.history = History()
        self.sample: Sample | None = None
        self.rates = Rates()
        self.poll_count = 0  # successful polls
        self._near_view: dict[str, int] = {}  # domain key -> the poll it was last on screen or near it
        self._churning_until = 0  # the poll until which every domain is in focus (the rows kept changing)
        self._focus_basis: tuple = ()  # what ordered the rows at the last refresh
        self.polls_done = 0  # successful or not: tests and benchmarks wait on this
        self.last_error: str | None = None
        self.finished: str | None = None  # the backend's `finished`: then no more polls
        self._fresh_at: float | None = None  # when the backend last gave newer figures (see `_stale_for`)
        self._timer: Timer | None = None
        self._polling = False
        self._poll_again = False  # an event came during a poll: poll once more right after it
        self._tune_gc = options.tune_gc
        self._gc_settling = False
        self.save_dir = options.save_dir or default_save_dir()
        self.console_log_dir = options.console_log_dir or default_console_log_dir()
        self.runner = ActionRunner(self, audit=options.audit, require_audit=options.require_audit)
        self._console_serial = 0
        self.xentui_themes: list[str] = []
        theme_problems: list[str] = []
        for theme in load_themes(theme_problems):
            self.register_theme(theme)
            self.xentui_themes.append(theme.name)
        wanted = options.theme or (PLAIN_THEME if self.no_color else DEFAULT_THEME)
        if wanted not in self.available_themes:  # the config file's theme, unknown: said, not raised
            options.config_problems.append(f"theme {wanted!r}: no such theme ({', '.join(self.xentui_themes)})")
            wanted = PLAIN_THEME if self.no_color else DEFAULT_THEME
        self.theme = wanted
        self.config_problems = [*options.config_problems, *theme_problems]
        self.recorder = Recorder(options.record) if options.record is not None else None
        self.keymap_problems = self._apply_keymap(options.keymap)
        self.config_problems += self.keymap_problems

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Priority keys (the palette's Ctrl+P, '/') must reach a guest typing in its console, and '/' must
        # reach a field being typed in (a path in the save dialog) or any screen above the table.
        console_focused = self._console_focused()
        if action == "command_palette":
            return not console_focused
        if action == "filter":
            return self.screen is self.main and isinstance(self.focused, DomainTable)
        if action in ("keep_filter", "escape_filter"):
            return isinstance(self.focused, FilterField)
        if action == "leave_console":
            return console_focused
        if action.startswith("replay_"):
            return self.replay is not None
        return True

    @property
    def replay(self) -> object | None:
        """The replay backend, when a recording is being played (its keys work only then)."""
        backend = getattr(self.backend, "inner", self.backend)
        return backend if hasattr(backend, "step") and hasattr(backend, "position_text") else None

    def action_replay_pause(self) -> None:
        """Pause the replay on the iteration shown, or play on."""
        replay = self.replay
        if replay is not None:
            replay.paused = not replay.paused  # type: ignore[attr-defined]
            self._show_header()
            if not replay.paused:  # type: ignore[attr-defined]
                self._resume_replay()

    def action_replay_step(self, delta: int) -> None:
        """One iteration (or ten) back or on; the replay pauses there."""
        replay = self.replay
        if replay is None:
            return
        replay.paused = True  # type: ignore[attr-defined]
        replay.step(delta)  # type: ignore[attr-defined]
        self._resume_replay()

    def _resume_replay(self) -> None:
        if self.finished is not None:  # stepped back from the end: it plays (or shows) again
            self.finished = None
            self.main.show_banner(None)
        self.action_refresh_now()

    def _console_focused(self) -> bool:
        return type(self.focused).__name__ == "TerminalView"  # without importing pyte for it

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and (keys := self._escape_then_key(event)):
            for key in keys:
                await super().on_event(key)
            return
        await super().on_event(event)

    def _escape_then_key(self, event: events.Key) -> tuple[events.Key, events.Key] | None:
        """Escape and a letter right behind it (typed fast, or read together over ssh) reach Textual as one
        ESC-prefixed Alt+letter. xentui binds no Alt key, so outside a guest's console (where it is the
        guest's Meta key, sent on whole) it is taken back apart into the two keys the operator typed."""
        character = event.character
        if character is None or len(character) != 1 or not character.isalnum():
            return None  # Alt on an arrow or function key comes in its own sequence, never split
        if event.key not in (f"alt+{character}", f"alt+shift+{character.lower()}"):
            return None
        if self._console_focused() or terminal_input.screen_binds(self.screen, event.key):
            return None
        return events.Key("escape", "\x1b"), events.Key(character, character)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **STATE_VARIABLE_DEFAULTS}

    def get_default_screen(self) -> MainScreen:
        self._main = MainScreen(self.view)
        return self._main

    @property
    def main(self) -> MainScreen:
        """The screen with the table, under whatever dialog is on top."""
        return self._main

    @property
    def table(self) -> DomainTable:
        return self._main.table

    def _apply_keymap(self, keymap: dict[str, str]) -> list[str]:
        """The operator's keys by binding id (the config file's [keymap]); an unknown id, or a key another binding
        of the table's screen has already, is refused and said, and that binding keeps its own key."""
        if not keymap:
            return []
        keymap = {binding_id: _key_names(keys) for binding_id, keys in keymap.items()}
        problems = []
        bindings = [b for b in [*self.BINDINGS, *DomainTable.BINDINGS] if isinstance(b, Binding)]
        known = {b.id: b for b in bindings if b.id}
        taken: dict[str, str] = {}  # the keys of the bindings the keymap leaves alone, then of those it moves
        for binding in bindings:
            if binding.id not in keymap:
                for key in binding.key.split(","):
                    taken.setdefault(key.strip(), binding.id or binding.action)
        accepted: dict[str, str] = {}
        for binding_id, keys in keymap.items():
            if binding_id not in known:
                problems.append(f"keymap: no binding {binding_id!r} (the ids are in the help, ?)")
                continue
            clash = [f"{key.strip()} is {taken[key.strip()]}'s" for key in keys.split(",")
                     if taken.get(key.strip()) not in (None, binding_id)]
            if clash:
                problems.append(f"keymap: {binding_id} = {keys!r} refused: {'; '.join(clash)}")
                continue
            accepted[binding_id] = keys
            for key in keys.split(","):
                taken[key.strip()] = binding_id
        if accepted:
            self.set_keymap(accepted)
        self.user_keys = accepted
        return problems

    user_keys: dict[str, str] = {}  # noqa: RUF012 - replaced, never changed in place
    """The keymap in force: binding id -> keys (the help shows these)."""

    def on_main_screen_ready(self) -> None:
        self.table.focus()
        for problem in self.config_problems:
            self.notify(problem, severity="warning", title="config file", timeout=20)
        if self.audit is not None:  # a log that cannot be written is said before the first action, not after
            self.audit.check()
            self.show_audit_health()
        self._start_poll()
        self.set_timer(5.0, lambda: self._settle_gc_soon(after=0.0))  # a first poll that hangs
        self._started_at = time.monotonic()
        self._waiting = self.set_interval(1.0, self._say_what_is_awaited)
        self.backend.watch_changes(self._changed_elsewhere)

    FIRST_SAMPLE_PATIENCE = 2.0  # seconds of a blank table before the screen says what it waits for

    def _say_what_is_awaited(self) -> None:
        """A first sample that is slow (a hung xl, a far libvirtd): say what is awaited, and since when."""
        if self.sample is not None or self.last_error is not None or self.finished is not None:
            self._waiting.stop()
            return
        waited = time.monotonic() - self._started_at
        if waited < self.FIRST_SAMPLE_PATIENCE:
            return
        doing = self.backend.activity or "its first sample"
        self.main.show_banner(f"Waiting for {self.backend.name}: {printable(doing)}, for {waited:.0f} s. q quits.")

    async def on_unmount(self) -> None:
        """Quitting, or a crash: the backend's children (the xentop stream, a console, an xl still running)
        are ended within a bounded time, never left behind."""
        self.backend.watch_changes(None)
        if self.recorder is not None:  # the samples already handed to it are written out
            await asyncio.to_thread(self.recorder.close)
        with contextlib.suppress(Exception):  # leaving anyway: a backend that cannot close must not keep us
            await asyncio.wait_for(self.backend.close(), BACKEND_CLOSE_LIMIT)

    def _changed_elsewhere(self) -> None:
        """The host says something changed outside xentui (libvirt events): poll now, not at the next tick."""
        if self._polling:
            self._poll_again = True
        else:
            self._start_poll()

    # polling -----------------------------------------------------------------------------------

    def _arm(self) -> None:
        """Re-arm after each poll completes, so polls never overlap; a new delay applies at once."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.finished is None:  # a backend with nothing more to give is not asked again
            self._timer = self.set_timer(self.delay, self._start_poll)

    def _start_poll(self) -> None:
        if self._polling or self.finished is not None:
            return
        self._polling = True
        self._poll()

    @work(group="poll", exit_on_error=False)
    async def _poll(self) -> None:
        started = time.perf_counter()
        try:
            sample = await self.backend.sample()
            if LOG.isEnabledFor(logging.DEBUG):
                LOG.debug("%s: sample of %d domains in %.3f s", self.backend.name, len(sample.domains),
                          time.perf_counter() - started)
        except BackendError as error:
            self.post_message(PollFailed(str(error)))
        except Exception as error:  # a backend bug must not take the screen down
            LOG.exception("%s: sample raised", self.backend.name)
            self.post_message(PollFailed(f"{type(error).__name__}: {error}"))
        else:
            finished = self.backend.finished
            if finished is not None:
                # Its last sample again: no new rate and no history point. Set before `_arm` below.
                self.finished = finished
                self.post_message(SamplesEnded(finished))
                return
            previous = self.sample
            if sample.rates is not None:  # the backend's own (a pool's; a replay stepped back and forth)
                rates = sample.rates
            elif previous is not None and sample.monotonic <= previous.monotonic:
                rates = self.rates  # no time has passed: the last rates still hold
            else:
                rates = compute_rates(previous, sample)
            self.post_message(Polled(sample, rates))
        finally:
            self._polling = False
            if self._poll_again:
                self._poll_again = False
                self._start_poll()
            else:
                self._arm()

    STALE_AFTER_MIN = 10.0
    """A sample that has not changed for this long (or three refresh periods, if longer) is called stale."""
    FOCUS_MEMORY = 10
    """Refreshes a domain stays in the backend's focus after it was last on screen or a scroll away."""

    def _stale_for(self, previous: Sample | None, sample: Sample) -> float:
        """For how long (real seconds) the backend has given no newer figures: 0 while they keep changing."""
        now = time.monotonic()
        if previous is None or sample.monotonic > previous.monotonic or self._fresh_at is None:
            self._fresh_at = now
            return 0.0
        return now - self._fresh_at

    def on_polled(self, message: Polled) -> None:
        if not self.main.showing:
            return  # quitting: the poll ended after the screen was taken down
        first = self.sample is None
        stale_for = self._stale_for(self.sample, message.sample)
        self.sample, self.rates = message.sample, message.rates
        self._settle_gc_soon()
        self.poll_count += 1
        self.polls_done += 1
        self.history.record(message.rates)
        if stale_for >= max(self.STALE_AFTER_MIN, 3 * self.delay):
            # xentop stalled or printing garbage: the same iteration comes back. Never shown as live.
            self.last_error = f"stale for {stale_for:.0f} s"
            when = time.strftime("%H:%M:%S", time.localtime(message.sample.wall))
            self.main.show_banner(f"Stale: no new figures from {self.backend.name} for {stale_for:.0f} s "
                                  f"(the last at {when}). The table shows that sample; still trying.")
        elif self.last_error is not None or first:
            if self.last_error is not None:
                LOG.info("%s: sampling again (after: %s)", self.backend.name, self.last_error)
            self.last_error = None
            self.main.show_banner(None)  # an error, staleness, or the wait for the first sample: over
        self.main.show_sample(message.sample, message.rates)
        replay = self.replay
        if replay is not None and not first:  # the actions of the audit trail, as the recording passes them
            for event in replay.events_between(self._replayed_wall, message.sample.wall):  # type: ignore[attr-defined]
                self.notify(event, title="action at the time", timeout=8)
        self._replayed_wall = message.sample.wall
        if self.recorder is not None:
            self.recorder.append(message.sample, message.rates, self._record_failed)
        self._focus_backend()
        self._show_header()
        self.open_console_after_create()
        if self.screen is not self.main:  # a screen on top may follow the figures (details)
            self.screen.post_message(SampleShown(message.sample, message.rates))

    _replayed_wall = 0.0

    def _record_failed(self, error: str) -> None:
        """From the recorder's thread: said once per new reason, on the screen and in the log."""
        LOG.warning("%s", error)
        self.call_from_thread(self.notify, error, severity="error", title="--record", timeout=15)

    def _focus_backend(self) -> None:
        """Tell the backend which domains are looked at: those on screen or a scroll away in the last
        `FOCUS_MEMORY` refreshes (rows that trade places between refreshes, idle guests around the same CPU %,
        keep their figures), the selected and the marked ones; every domain while a device column sorts the
        table or device sub-rows are shown, and while the rows near the screen keep changing (more than half of
        them new at a refresh: figures that differ by noise only): there a focus would leave them unread.

        Per-vCPU times for the rows on screen, the selected domain and one whose details are open (details show
        them), for every domain while vCPU sub-rows are shown, and for the whole focus while ``--record`` writes
        them."""
        view = self.view
        near = self.table.keys_near_view()
        closely = None if view.vcpus or self.recorder is not None else self._looked_at_closely()
        if near is None or view.sort_column in _DEVICE_COLUMNS or view.vcpus or view.networks or view.vbds:
            self.backend.focus(None, closely)
            return
        now, seen = self.poll_count, self._near_view
        # the same rows as last time but for their order (the first rates, a scroll, another sort or filter change
        # them once: that is not churn)
        basis = (view.sort_column, view.sort_reverse, view.filter_text, view.cumulative, len(self.rates) > 0,
                 self.table.scroll_offset.y)
        if seen and basis == self._focus_basis and 2 * sum(1 for key in near if key not in seen) > len(near):
            self._churning_until = now + self.FOCUS_MEMORY
        self._focus_basis = basis
        seen.update(dict.fromkeys(near, now))
        for key in self.table.marked | {self.table.cursor_key}:
            if key is not None:
                seen[key] = now
        since = now - self.FOCUS_MEMORY
        self._near_view = {key: when for key, when in seen.items() if when >= since}
        self.backend.focus(None if now <= self._churning_until else self._near_view.keys(), closely)

    def _looked_at_closely(self) -> set[str]:
        """The domains on screen, the selected one and those whose details screens are open."""
        keys = set(self.table.keys_on_screen())
        screens = sys.modules.get("xentui.ui.screens")  # imported when first opened: none open before
        if screens is not None:
            keys.update(screen.key for screen in self.screen_stack if isinstance(screen, screens.DetailsScreen))
        cursor = self.table.cursor_key
        if cursor is not None:
            keys.add(cursor)
        return keys

    def on_domain_table_cursor_moved(self, message: DomainTable.CursorMoved) -> None:
        """The next refresh reads what the new place shows (a scroll brought other rows, details may follow)."""
        if self.sample is not None and self.main.showing:  # not while quitting: the table is gone
            self._focus_backend()

    def _settle_gc_soon(self, after: float = 0.5) -> None:
        """Once, shortly after the first poll, good or not: the collector is off until then (see
        `xentui.__main__`). Not right after the refresh: the full collection holds the interpreter
        for tens of milliseconds, and the thread writing the first frame would wait for it."""
        if self._tune_gc and not self._gc_settling:
            self._gc_settling = True
            self.set_timer(min(after, self.delay / 2), _settle_garbage_collector)

    def on_poll_failed(self, message: PollFailed) -> None:
        if not self.main.showing:
            return
        self._settle_gc_soon()
        if message.error != self.last_error:
            LOG.warning("%s: sample failed: %s", self.backend.name, message.error)
        self.last_error = message.error
        self.polls_done += 1
        stale = " The table shows the last good sample." if self.sample is not None else ""
        self.main.show_banner(f"Backend error: {printable(message.error)}  Retrying every {self.delay:g}s.{stale}")

    def on_samples_ended(self, message: SamplesEnded) -> None:
        """A replay reached its end: say so, and keep the last recorded iteration on the screen."""
        if not self.main.showing:
            return
        self.polls_done += 1
        self.last_error = None
        self.main.show_banner(f"{self.backend.name}: {printable(message.reason)}. "
                              "The table keeps the last sample; q quits.")

    def _show_header(self) -> None:
        if self.sample is None:
            return
        view = self.view
        column = BY_ID[view.sort_column]
        parts = [f"sort {column.xentop_title if view.cumulative else column.title}"
                 f"{' reversed' if view.sort_reverse else ''}"]
        if view.filter_text:
            problem = DomainFilter.parse(view.filter_text).problem
            nothing = ": " + problem if problem else (": nothing matches" if not self.table.shown_keys else "")
            parts.append(f"filter {view.filter_text!r}{nothing}")
        if view.cumulative:
            parts.append("cumulative")
        replay = self.replay
        if replay is not None:
            parts.append(replay.position_text())  # type: ignore[attr-defined]
        if isinstance(self.backend, ReadOnlyBackend):
            parts.append("READ-ONLY")
        self.main.header.show(self.sample, self.rates, backend=self.backend.name, delay=self.delay,
                              view="  ".join(parts))

    def _relayout(self) -> None:
        self.table.rebuild()
        self._show_header()

    # actions ----------------------------------------------------------------------------------

    def action_refresh_now(self) -> None:
        self.refresh(repaint=True)
        self._start_poll()

    def action_columns(self) -> None:
        """The column chooser: which columns, in what order."""
        from xentui.ui.settings import ColumnsScreen

        def chosen(value: tuple[tuple[str, ...], set[str]] | None) -> None:
            if value is not None:
                self.view.order, self.view.hidden = value
                self._relayout()

        self.push_screen(ColumnsScreen(self.view), chosen)

    def action_save_settings(self) -> None:
        """Write the screen's settings into the config file's [settings], after showing them."""
        from xentui.config import config_path, save_settings
        from xentui.ui.settings import SaveSettingsScreen, current_settings

        path = config_path()
        settings = current_settings(self.theme, self.delay, self.view, path)

        def answered(yes: object) -> None:
            if not yes:
                return
            try:
                save_settings(settings, path)
            except OSError as error:
                self.notify(f"cannot write {path}: {error.strerror or error}", severity="error", title="settings")
            else:
                self.notify(f"settings written to {path}", title="settings")

        self.push_screen(SaveSettingsScreen(settings, path), answered)

    def action_toggle_networks(self) -> None:
        self.view.networks = not self.view.networks
        self._relayout()

    def action_toggle_vbds(self) -> None:
        self.view.vbds = not self.view.vbds
        self._relayout()

    def action_toggle_vcpus(self) -> None:
        self.view.vcpus = not self.view.vcpus
        self._relayout()

    def action_toggle_repeat_header(self) -> None:
        self.view.repeat_header = not self.view.repeat_header
        self._relayout()

    def action_toggle_cumulative(self) -> None:
        self.view.cumulative = not self.view.cumulative
        self._relayout()

    def action_toggle_grouped(self) -> None:
        self.view.grouped = not self.view.grouped
        self._relayout()

    def action_toggle_dom0_first(self) -> None:
        self.view.dom0_first = not self.view.dom0_first
        self._relayout()

    def sort_by(self, column: str) -> None:
        if column not in BY_ID:
            return
        if self.view.sort_column == column:
            self.view.sort_reverse = not self.view.sort_reverse
        else:
            self.view.sort_column, self.view.sort_reverse = column, False
        self._relayout()

    def action_sort_next(self) -> None:
        index = COLUMN_IDS.index(self.view.sort_column)
        self.view.sort_column = COLUMN_IDS[(index + 1) % len(COLUMN_IDS)]
        self.view.sort_reverse = False
        self._relayout()

    def action_sort_reverse(self) -> None:
        self.view.sort_reverse = not self.view.sort_reverse
        self._relayout()

    def action_sort_menu(self) -> None:
        def picked(column: str | None) -> None:
            if column is not None:
                self.view.sort_column, self.view.sort_reverse = column, False
                self._relayout()

        self.push_screen(_screens().SortScreen(self.view.sort_column), picked)

    def on_domain_table_header_clicked(self, message: DomainTable.HeaderClicked) -> None:
        self.sort_by(message.column)

    def action_delay(self) -> None:
        def chosen(value: float | None) -> None:
            if value is not None:
                self.set_delay(value)

        self.push_screen(_screens().DelayScreen(self.delay), chosen)

    def set_delay(self, seconds: float) -> None:
        self.delay = seconds
        self.run_worker(self.backend.set_poll_interval(seconds), group="poll-interval", exclusive=True)
        if not self._polling:
            self._arm()
        self._show_header()

    def action_filter(self) -> None:
        field = self.main.filter_field
        field.add_class("shown")
        field.value = self.view.filter_text
        # Now, not with focus() (which waits for the next turn of the message loop): the keys typed
        # right after '/' are already queued, and go wherever the focus is when each is handled.
        self.screen.set_focus(field)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.view.filter_text = event.value
            self._relayout()

    def action_keep_filter(self) -> None:
        """Enter in the filter: keep what it holds (it applied as typed) and give the table the keys."""
        field = self.main.filter_field
        if not field.value:
            field.remove_class("shown")
        self.screen.set_focus(self.table)  # now: the next key may already be queued (see action_filter)

    def action_escape_filter(self) -> None:
        """Escape in the filter: cleared now, and the table gets the keys from now on (see action_keep_filter).
        The keys typed before Escape, already queued to the field, were for the filter just cleared."""
        self.main.filter_field.drop_queued_keys()
        self.screen.set_focus(self.table)
        self._clear_filter()

    def action_clear_filter(self) -> None:
        self._clear_filter()
        self.table.focus()

    def _clear_filter(self) -> None:
        field = self.main.filter_field
        field.remove_class("shown")
        field.value = ""
        if self.view.filter_text:
            self.view.filter_text = ""
            self._relayout()

    def action_details(self) -> None:
        if self.table.cursor_key is not None:
            self._open_details(self.table.cursor_key)

    def on_domain_table_activated(self, message: DomainTable.Activated) -> None:
        self._open_details(message.key)

    def _open_details(self, key: str) -> None:
        self.push_screen(_screens().DetailsScreen(key, self.history, self.sample, self.rates))

    def action_help(self) -> None:
        from xentui.config import config_path

        self.push_screen(_screens().HelpScreen(self.key_help(), config_path()))

    def key_help(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Every key, grouped, with what it does: the bindings themselves (the registry's actions with their
        palette line), so the help cannot drift from the keys."""
        groups: dict[str, list[tuple[str, str]]] = {name: [] for name in HELP_GROUPS}
        seen: set[tuple[str, str]] = set()
        for binding in [*self.BINDINGS, *DomainTable.BINDINGS]:
            assert isinstance(binding, Binding)
            if binding.action == "activate":  # listed below as "Enter": Textual would show it as a symbol
                continue
            bound = self.user_keys.get(binding.id or "", binding.key)
            keys = ", ".join(_spelt_out(self.get_key_display(Binding(key.strip(), ""))) for key in bound.split(","))
            action = ACTIONS_BY_ID.get(binding.id or "")
            if action is not None:
                group = "Console" if action.group == "console" else "Domain actions"
                description = _without_key(action.help) or binding.description
            else:
                group, description = BINDING_HELP.get(binding.id or "", ("Moving around", binding.description))
            if (keys, description) not in seen:  # Escape: two bindings, by what has the focus
                seen.add((keys, description))
                groups[group].append((keys, description))
        groups["Moving around"].append(("Enter", "details of the selected domain (Escape goes back)"))
        groups["Console"].append(("Shift+PgUp, Shift+PgDn", "scroll the console's history"))
        groups["Views"].append(("Ctrl+P", "command palette: every command, by name"))
        groups["Sort and filter"].append(
            ("mouse", "click a header to sort by it (again to reverse); double-click a domain for details"))
        return [(name, rows) for name, rows in groups.items() if rows]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """None: Textual's (a Screenshot that fails without a reason, a Theme picker of Textual's themes...)
        are not xentui's; every command of xentui's is in `XentuiCommands`, named "category: action"."""
        return ()


HELP_GROUPS = ("Views", "Sort and filter", "Domain actions", "Console", "Moving around")

# The help's group and words for the app's own bindings (the registry's actions have theirs: their palette line)
BINDING_HELP = {
    "help": ("Views", "this help: every key, and where the config file is"),
    "delay": ("Views", "seconds between refreshes, fractions allowed (xentop's D)"),
    "networks": ("Views", "a line per NIC under each domain (xentop's N)"),
    "vbds": ("Views", "a line per disk under each domain (xentop's B)"),
    "vcpus": ("Views", "a line per vCPU under each domain (xentop's V)"),
    "repeat-header": ("Views", "repeat the column titles between domains (xentop's R)"),
    "cumulative": ("Views", "cumulative counters since each domain started, instead of rates"),
    "dom0-first": ("Views", "Domain-0 always on the first line"),
    "group-hosts": ("Views", "a pool: a line per host over its domains, or one list with a HOST column"),
    "refresh-now": ("Views", "refresh now"),
    "quit": ("Views", "quit; while an action runs it asks what becomes of it (xentop's Q)"),
    "quit-ctrl-c": ("Views", "quit, as q"),
    "quit-ctrl-q": ("Views", "quit, as q"),
    "sort-next": ("Sort and filter", "sort by the next column (xentop's S)"),
    "sort-menu": ("Sort and filter", "pick the column to sort by"),
    "sort-reverse": ("Sort and filter", "reverse the order"),
    "filter": ("Sort and filter", "filter: a name, a state, an id or a UUID's start; or host:, state:, id:, uuid: "
                                  "terms"),
    "filter-keep": ("Sort and filter", "in the filter: keep it and go back to the table"),
    "filter-escape": ("Sort and filter", "clear the filter"),
    "replay-pause": ("Views", "a replay: pause on the iteration shown, or play on"),
    "replay-back": ("Views", "a replay: one iteration back (it pauses there)"),
    "replay-on": ("Views", "a replay: one iteration on (it pauses there)"),
    "replay-back-10": ("Views", "a replay: ten iterations back"),
    "replay-on-10": ("Views", "a replay: ten iterations on"),
    "clear-filter": ("Sort and filter", "clear the filter"),
}


def _without_key(text: str) -> str:
    """A palette line without its trailing "(key)": the help shows the key beside it."""
    return re.sub(r"\s*\((?:Ctrl\+)?[\w+-]{1,6}\)", "", text)


_SPELT = {"⏎": "Enter", "esc": "Escape", "space": "Space", "pgup": "PgUp", "pgdn": "PgDn", "home": "Home",
          "end": "End"}


LOG = logging.getLogger("xentui.ui")


class Recorder:
    """``--record FILE``: each sample the screen shows, appended to FILE as one line of the batch JSON schema
    (every vif, vbd and vCPU), so ``--replay FILE`` plays the incident back later. Written in its own thread, in
    order, opened for each line (a log rotated meanwhile goes on in the new file); a failure is said once."""

    def __init__(self, path: Path) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from xentui.batch import BatchFormat, BatchOptions, JsonFormatter

        self.path = path
        self._formatter = JsonFormatter(BatchOptions(format=BatchFormat.JSON, networks=True, vbds=True, vcpus=True))
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xentui-record")
        self._said: str | None = None

    def append(self, sample: Sample, rates: Rates, failed: Callable[[str], None]) -> None:
        self._thread.submit(self._write, sample, rates, failed)

    def _write(self, sample: Sample, rates: Rates, failed: Callable[[str], None]) -> None:
        line = self._formatter.format(sample, rates).encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as error:
            reason = f"cannot record to {self.path}: {error.strerror or error}"
            if reason != self._said:
                self._said = reason
                failed(reason)
        else:
            self._said = None

    def close(self) -> None:
        self._thread.shutdown(wait=True)


def _key_names(keys: str) -> str:
    """A keymap's keys as Textual names them: ``Ctrl+X`` is ``ctrl+x``, ``F5`` is ``f5``; a letter keeps its case
    (``E`` and ``e`` are two keys)."""
    names = []
    for key in keys.split(","):
        *modifiers, last = key.strip().split("+")
        names.append("+".join([*(m.lower() for m in modifiers), last if len(last) == 1 and not modifiers
                               else last.lower()]))
    return ",".join(names)


def _spelt_out(display: str) -> str:
    """'^s' as 'Ctrl+S' for the help: the caret form is easily misread as a plain s; Enter, not a symbol."""
    if display.startswith("^") and len(display) > 1:
        return f"Ctrl+{display[1:].upper()}"
    return _SPELT.get(display, display)


def _screens() -> ModuleType:
    """Details, help, sort and delay screens, imported when first opened: a quicker first frame."""
    from xentui.ui import screens

    return screens


def _settle_garbage_collector() -> None:
    """After the first frame: park what start-up built, collect young objects less often, and turn
    the collector back on (the `xentui` command starts with it off).

    Each refresh makes thousands of short-lived, cycle-free objects (columns for every domain);
    with the defaults the collector would scan the whole long-lived heap (Textual's widgets,
    styles, the history) several times a second for no garbage. Refcounting frees the samples.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    gc.enable()


def run_app(backend: Backend, options: StartOptions | None = None, *, headless: bool = False) -> int:
    """The screen until q; its exit status: 0, or 1 when something unexpected ended it (Textual prints what)."""
    app = XentuiApp(backend, options)
    app.run(headless=headless)
    return app.return_code or 0
