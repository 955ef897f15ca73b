"""The guest's serial console in a pane under the table: a pyte terminal drawn with the Line API.

Bytes from the backend's console channel are queued and fed to the terminal core in bounded
slices, one slice per frame, so a guest printing a megabyte cannot freeze the table or the keys.
Every key goes to the guest as an xterm would send it, except Ctrl-], which leaves the console
as ``xl console`` does. A guest that cannot print (paused, crashed, shut down, dying) gets a line
under the title that says why its console is silent: `ConsolePane.show_domain_state`.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from xentui.backends.base import BackendError, ConsoleChannel
from xentui.console.keys import encode_key, encode_paste
from xentui.console.terminal import Attrs, TerminalCore
from xentui.errors import ReadOnlyError
from xentui.model import DomainState
from xentui.textsafe import printable

FEED_SLICE = 8 * 1024  # bytes fed to the emulator per frame (~15 ms of pyte): a flood never stalls the screen
LEAVE_KEY = "ctrl+right_square_bracket"
SCROLLBACK_KEYS = {"shift+pageup": -1, "shift+pagedown": 1}

# Why a domain in this state prints nothing on its console, in words (readable without colour).
SILENT_STATES = {
    DomainState.PAUSED: "{name} is paused: its console prints nothing until it is unpaused (Ctrl-] then p)",
    DomainState.CRASHED: "{name} has crashed: its console prints nothing until it is destroyed and started again",
    DomainState.SHUTDOWN: "{name} has shut down: its console prints nothing until it is started again",
    DomainState.DYING: "{name} is dying: its console prints nothing more (Xen is tearing the domain down)",
}

_NAMED = {
    "black": 0, "red": 1, "green": 2, "brown": 3, "yellow": 3, "blue": 4, "magenta": 5, "cyan": 6, "white": 7,
}


def _colour(name: str) -> Color | None:
    """A pyte colour name ('red', 'brightblue', 'ff8700', 'default') as a rich colour."""
    if name == "default":
        return None
    if len(name) == 6:
        try:
            return Color.parse(f"#{name}")
        except Exception:
            return None
    bright = name.startswith("bright")
    number = _NAMED.get(name.removeprefix("bright"))
    if number is None:
        return None
    return Color.from_ansi(number + (8 if bright else 0))


class TerminalView(Widget, can_focus=True):
    """One console: the screen of a `TerminalCore`, fed from a `ConsoleChannel`."""

    DEFAULT_CSS = """
    TerminalView { height: 1fr; background: $background; color: $foreground; }
    TerminalView:focus { background-tint: $foreground 3%; }
    """

    class Left(Message):
        """Ctrl-] was pressed: give the keys back to the table."""

    class Ended(Message):
        """The console channel reached its end: the domain went away or the console closed."""

        def __init__(self, view: TerminalView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, channel: ConsoleChannel, *, name: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.channel = channel
        self.domain_name = name
        self.core = TerminalCore(80, 24, scrollback=5000)
        self.pending = bytearray()
        self.ended = False
        self.scroll_back = 0  # lines into the scrollback; 0 = live
        self._styles: dict[Attrs, Style] = {}
        self._draining = False
        self.bytes_fed = 0
        self.slices_fed = 0
        self._cursor_row = 0

    def on_mount(self) -> None:
        self.reader()

    @work(exclusive=True, group="console-read", exit_on_error=False)
    async def reader(self) -> None:
        try:
            while True:
                data = await self.channel.read()
                if not data:
                    break
                self.pending += data
                self._schedule_drain()
        except BackendError as error:
            self.pending += f"\r\n[console error: {error}]\r\n".encode()
        self.ended = True
        self._schedule_drain()
        self.post_message(self.Ended(self))

    def _schedule_drain(self) -> None:
        if not self._draining:
            self._draining = True
            self.call_after_refresh(self._drain)

    def _drain(self) -> None:
        """Feed one bounded slice, draw what changed, and come back next frame for the rest."""
        chunk, self.pending = bytes(self.pending[:FEED_SLICE]), self.pending[FEED_SLICE:]
        if chunk:
            self.core.feed(chunk)
            self.bytes_fed += len(chunk)
            self.slices_fed += 1
            self._refresh_dirty()
            replies = self.core.take_replies()  # answers the guest asked for (cursor position...)
            if replies and not self.ended:
                self.run_worker(self._send(replies, typed=False), group="console-replies", exit_on_error=False)
        if self.pending:
            self.set_timer(1 / 120, self._drain)
        else:
            self._draining = False

    def _refresh_dirty(self) -> None:
        dirty = self.core.take_dirty()
        if self.scroll_back:
            self.refresh()
            return
        row = self.core.cursor[1]
        for line in dirty | {row, self._cursor_row}:  # the cursor's old and new rows too
            self.refresh_line(line)
        self._cursor_row = row

    def refresh_line(self, y: int) -> None:
        self.refresh(Region(0, y, self.size.width, 1))

    # drawing -----------------------------------------------------------------------------------

    def _style(self, attrs: Attrs) -> Style:
        style = self._styles.get(attrs)
        if style is None:
            style = Style(color=_colour(attrs.fg), bgcolor=_colour(attrs.bg), bold=attrs.bold,
                          italic=attrs.italics, underline=attrs.underline, reverse=attrs.reverse,
                          strike=attrs.strikethrough)
            self._styles[attrs] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y >= self.core.rows:
            return Strip.blank(width, base)
        segments = []
        cursor_x, cursor_y = self.core.cursor
        show_cursor = self.has_focus and not self.scroll_back and self.core.cursor_visible and y == cursor_y
        x = 0
        for text, attrs in self.core.line(y, scroll=self.scroll_back):
            style = base + self._style(attrs)
            if show_cursor and x <= cursor_x < x + len(text):
                cut = cursor_x - x
                segments += [Segment(text[:cut], style), Segment(text[cut], style + Style(reverse=True)),
                             Segment(text[cut + 1:], style)]
            else:
                segments.append(Segment(text, style))
            x += len(text)
        return Strip(segments).adjust_cell_length(width, base)

    # size -----------------------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        columns, rows = max(2, event.size.width), max(1, event.size.height)
        if (columns, rows) != (self.core.columns, self.core.rows):
            self.core.resize(columns, rows)
            if not self.ended:
                self.run_worker(self.channel.resize(columns, rows), group="console-resize", exit_on_error=False)
            self.refresh()

    # keys -----------------------------------------------------------------------------------------

    async def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        if event.key == LEAVE_KEY:
            self.post_message(self.Left())
            return
        step = SCROLLBACK_KEYS.get(event.key)
        if step is not None:
            page = max(1, self.size.height - 1)
            self.scroll_back = min(self.core.history_size, max(0, self.scroll_back - step * page))
            self.refresh()
            return
        if self.scroll_back:  # any other key returns to the live screen first
            self.scroll_back = 0
            self.refresh()
        data = encode_key(event.key, event.character, application_cursor=self.core.application_cursor)
        if data:
            await self._send(data)

    async def on_paste(self, event: events.Paste) -> None:
        event.stop()
        await self._send(encode_paste(event.text, bracketed=self.core.bracketed_paste))

    async def _send(self, data: bytes, *, typed: bool = True) -> None:
        """``typed``: the operator's keys. Otherwise the terminal's own answers to the guest's queries (DA,
        cursor position), which nobody typed: a console that takes no input drops them without a word."""
        if self.ended:
            if typed:
                self.notify(f"{printable(self.domain_name)}'s console is closed", severity="warning")
            return
        try:
            await self.channel.write(data)
        except ReadOnlyError as error:
            if typed:
                self.notify(str(error), severity="warning", title="console")
        except BackendError as error:
            self.notify(str(error), severity="error", title="console")

    def save_log(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.domain_name) or "domain"
        path = directory / f"console-{safe}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        self.core.save_log(path)
        return path

    async def close(self) -> None:
        self.ended = True
        await self.channel.close()


class ConsolePane(Vertical):
    """A title line and the terminal; says so when the domain went away, and keeps its last screen.

    While the domain cannot print (paused, crashed...), a notice line under the title says why.
    """

    DEFAULT_CSS = """
    ConsolePane { height: 1fr; }
    ConsolePane > .console-title { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    ConsolePane.ended > .console-title { background: $warning 40%; }
    ConsolePane > .console-notice {
        display: none; height: 1; padding: 0 1; background: $warning 30%; color: $foreground; text-style: bold;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    ConsolePane.silent > .console-notice { display: block; }
    """

    def __init__(self, channel: ConsoleChannel, *, domain: str, key: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.domain_name = domain
        self.domain_key = key
        self.view = TerminalView(channel, name=domain)
        self.notice = Static("", classes="console-notice")
        self.domain_state: DomainState | None = None
        """The state the app last reported (`show_domain_state`); None: not told, or not in the sample."""

    def compose(self) -> ComposeResult:
        yield Static(self._title(), classes="console-title")
        yield self.notice
        yield self.view

    def show_domain_state(self, state: DomainState | None) -> None:
        """The domain's state after a poll (None: it is not in the sample). While it is paused, crashed,
        shut down or dying, a line under the title says why its console is silent; running again, it goes.
        Once the console has ended (the domain went away) the title says so, and states change nothing."""
        if self.view.ended:
            state = None
        if state == self.domain_state:
            return
        self.domain_state = state
        template = SILENT_STATES.get(state) if state is not None else None
        self.notice.update(Text(template.format(name=printable(self.domain_name))) if template else "")
        self.set_class(template is not None, "silent")

    @property
    def notice_text(self) -> str:
        """What the notice line says ('' when it is hidden)."""
        return str(self.notice.render()) if self.has_class("silent") else ""

    def _title(self) -> Text:
        if self.view.ended:
            return Text(f"console: {printable(self.domain_name)} — gone (destroyed, migrated, saved or shut down);"
                        " last screen kept")
        return Text(f"console: {printable(self.domain_name)} — Ctrl-] leaves, Shift+PgUp/PgDn scroll back")

    def on_terminal_view_ended(self, message: TerminalView.Ended) -> None:
        self.add_class("ended")
        self.show_domain_state(None)  # the title says it is gone: no notice that waits for an unpause
        self.query_one(".console-title", Static).update(self._title())
