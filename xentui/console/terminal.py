"""The terminal core of the console view: pyte, plus the guards a guest's serial console needs.

pyte does the VT100/xterm work (escape parsing, cursor, erasing, scrolling regions, SGR). What it
lacks or gets wrong, this module adds or fences off, without ever looping per byte in Python on
the common path:

* Bytes are decoded with an incremental UTF-8 decoder: a character split across two reads
  survives, invalid bytes become U+FFFD, nothing raises.
* A filter runs on every decoded chunk before pyte sees it. Its fast path is one regex search:
  a chunk with no suspicious character or sequence goes to pyte untouched. Otherwise it
    - drops OSC/DCS/SOS/PM/APC strings (pyte prints the payload of DCS/APC, and an OSC that
      is never terminated swallows all later output); OSC 0/2 set `TerminalCore.title`;
    - drops CSI sequences pyte misparses (intermediate bytes like ``CSI ! p``/``CSI 2 SP q``,
      ``<``/``=``/``>`` prefixes like ``CSI > 4 ; 2 m``, which pyte takes for plain SGR) and
      rewrites colon SGR (``CSI 38:2::r:g:b m``) to the semicolon form;
    - drops a CSI or other escape sequence broken off by ESC or by a character that cannot be
      part of it (pyte would print the rest, swallow the next ESC, or crash with ValueError on
      a Unicode digit such as ``²``);
    - holds back an escape sequence cut by the end of the chunk and prepends it to the next;
    - replaces C0 controls a terminal does not act on, and all C1 controls, with U+FFFD
      (pyte's draw() silently drops the rest of the text after one of them);
    - drops zero-width format characters (category Cf such as U+200B/U+200D/U+FEFF,
      variation selectors, line/paragraph separators): pyte would lose the text after them,
      and keeping VS16/ZWJ would make the outer terminal draw emoji wider than we counted;
    - hands zero-width marks (combining marks of any combining class, zero-width spacing
      marks, Hangul medial/final jamo) to `_Screen.attach`, which joins them to the previous
      cell (NFC-composed when possible), instead of to pyte, which loses the text after a
      mark of combining class 0 and misplaces one that follows a wide character.
* The screen subclass draws text itself (sharing one cell object per character and
  attributes, where pyte allocates one per character drawn, and wrapping a wide character
  that lands on the last column, which pyte cuts in half), fixes pyte's crashes (unknown
  ``CSI n K``/``CSI n J``, ``CSI ? n`` and extra parameters to handlers that take fewer,
  DECOM with no margins), implements the alternate screen (47/1047/1049), keeps its own
  compact scrollback, resizes without throwing away the top of the screen, clamps
  out-of-range 24-bit colours, ignores DECCOLM (the widget decides the width) and adds
  SU/SD/CBT/REP and ANSI save/restore cursor. ``ESC ( 0`` and SO/SI select DEC line drawing
  (pyte ignores them in its UTF-8 mode).

Cell widths follow pyte's own ``wcwidth`` (the table that laid the cells out; rich agrees with
it). ``unicodedata.east_asian_width`` would disagree: it lags the Unicode version and, in
CPython 3.11, calls unassigned code points "F".

This is deliberately one file over 600 lines: it does one thing, a terminal emulator, and its filter, screen
and read-back share one state (the filter hands marks to the screen mid-chunk and carries cut sequences and
control strings across feeds), so splitting it would spread one mechanism over several modules.
"""

from __future__ import annotations

import codecs
import copy
import inspect
import logging
import re
import unicodedata
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import pyte
from pyte import charsets as cs
from pyte import modes as mo
from pyte.screens import Char, Cursor, Margins, StaticDefaultDict
from pyte.screens import wcwidth as _pyte_wcwidth

__all__ = ["DEFAULT_ATTRS", "Attrs", "Run", "TerminalCore", "cell_width"]

log = logging.getLogger(__name__)


class Attrs(NamedTuple):
    """The look of a run of cells. Colours are pyte's: "default", a name ("red", "brightred", and
    pyte's "brown"/"brightbrown" for SGR 33/93) or six hex digits ("ff8700")."""

    fg: str
    bg: str
    bold: bool
    italics: bool
    underline: bool
    reverse: bool
    strikethrough: bool


DEFAULT_ATTRS = Attrs("default", "default", False, False, False, False, False)

Run = tuple[str, Attrs]
Line = StaticDefaultDict[int, Char]

_ESC = "\x1b"
_REPLACEMENT = "\ufffd"
_MAX_CARRY = 1024  # an unfinished escape sequence longer than this is garbage: dropped, not held back
_MAX_TITLE = 256
_MAX_OSC = 4096
_CACHE_LIMIT = 65536
_ALT_MODES = frozenset({47, 1047, 1049})
_DECCOLM_PRIVATE = 3

# ---------------------------------------------------------------------------------------------
# Character classes
# ---------------------------------------------------------------------------------------------

_width_cache: dict[str, int] = {}


def _char_width(ch: str) -> int:
    """Cells one code point takes on the screen: 0, 1 or 2 (controls count 0)."""
    width = _width_cache.get(ch)
    if width is None:
        width = max(_pyte_wcwidth(ch), 0)
        if len(_width_cache) > _CACHE_LIMIT:
            _width_cache.clear()
        _width_cache[ch] = width
    return width


def cell_width(text: str) -> int:
    """Cells `text` takes on a terminal (the measure `TerminalCore.line` keeps equal to `columns`)."""
    if text.isascii() and text.isprintable():
        return len(text)
    return sum(_char_width(ch) for ch in text)


# C0 controls pyte acts on (or drops itself: NUL, DEL), passed through untouched.
_PASSED_CONTROLS = frozenset("\x00\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x1b\x7f")
_VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
_DROPPED_CATEGORIES = frozenset({"Cf", "Zl", "Zp", "Cn", "Cs", "Co"})
_ATTACH = "attach"  # marker returned by _classify
_classify_cache: dict[str, str] = {}


def _classify(ch: str) -> str:
    """What the filter does with one suspicious character: the text to put instead, or _ATTACH."""
    action = _classify_cache.get(ch)
    if action is not None:
        return action
    code = ord(ch)
    width = _pyte_wcwidth(ch)
    if ch in _PASSED_CONTROLS or width > 0:
        action = ch
    elif code < 0x20 or 0x7F <= code < 0xA0:
        action = _REPLACEMENT
    elif unicodedata.category(ch) in _DROPPED_CATEGORIES or any(
        low <= code <= high for low, high in _VARIATION_SELECTORS
    ):
        action = ""
    else:
        action = _ATTACH
    if len(_classify_cache) > _CACHE_LIMIT:
        _classify_cache.clear()
    _classify_cache[ch] = action
    return action


def _zero_width_ranges() -> list[tuple[int, int]]:
    """Code point ranges pyte's wcwidth measures as 0 (besides controls)."""
    try:  # the table pyte's wcwidth itself consults
        from wcwidth import ZERO_WIDTH

        def version_key(version: str) -> tuple[int, ...]:
            return tuple(int(part) for part in version.split("."))

        ranges = [(int(low), int(high)) for low, high in ZERO_WIDTH[max(ZERO_WIDTH, key=version_key)]]
        if ranges:
            return ranges
    except Exception:  # an older or newer wcwidth without that table: measure instead
        log.debug("wcwidth.ZERO_WIDTH unavailable, scanning", exc_info=True)
    ranges = []
    start = None
    for code in range(0xA0, 0x110000):
        zero = not 0xD800 <= code < 0xE000 and _pyte_wcwidth(chr(code)) == 0
        if zero and start is None:
            start = code
        elif not zero and start is not None:
            ranges.append((start, code - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))
    return ranges


def _class_from_ranges(ranges: Iterable[tuple[int, int]]) -> str:
    parts = []
    for low, high in ranges:
        if high < 0x80:
            continue
        low = max(low, 0x80)
        parts.append(re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}")
    return "".join(parts)


# ASCII controls the filter must see: everything in 0x00-0x1F except those pyte handles well.
_ODD_ASCII = "".join(re.escape(chr(code)) for code in range(0x20) if chr(code) not in _PASSED_CONTROLS)
_ODD_WIDE = (
    _ODD_ASCII + r"\x80-\x9f" + _class_from_ranges(_zero_width_ranges()) + _class_from_ranges(_VARIATION_SELECTORS)
)

# Order matters: whole sequences first, then a sequence cut by the end of the chunk, then odd characters.
_SEQUENCES = (
    r"(?P<string>\x1b[\]PX^_])"  # OSC, DCS, SOS, PM, APC
    r"|(?P<csi>\x1b\[(?=[0-?]*[:<=>]|[0-?]*[ -/])[0-?]*[ -/]*[@-~])"  # a CSI pyte would misparse
    r"|(?P<broken>\x1b\[[0-?]*[ -/]*(?=[^\x07-\x0d -~])"  # a CSI cut off by ESC or a stray character,
    r"|\x1b[ -/]*(?=[^ -~]))"  # or any other escape sequence (pyte eats the ESC of "ESC ESC c")
    r"|(?P<tail>\x1b(?:[ -/]*|\[[0-?]*[ -/]*)\Z)"  # unfinished at the end of the chunk
)
_FILTER_ASCII = re.compile(_SEQUENCES + f"|(?P<odd>[{_ODD_ASCII}]+)")
_FILTER_WIDE = re.compile(_SEQUENCES + f"|(?P<odd>[{_ODD_WIDE}]+)")
_STRING_END = re.compile(r"[\x07\x18\x1a\x1b]")
_LINUX_PALETTE = re.compile(r"P[0-9A-Fa-f]{7}|R")  # Linux console ESC ] P nrrggbb / ESC ] R: no terminator


def _rewrite_csi(sequence: str) -> str:
    """Colon SGR (ITU T.416 style) in the form pyte understands; any other odd CSI dropped."""
    body = sequence[2:-1]
    if sequence[-1] != "m" or not body or body[0] in "<=>?" or not all(c in "0123456789:;" for c in body):
        return ""
    params: list[str] = []
    for group in body.split(";"):
        sub = group.split(":")
        head = sub[0] or "0"
        if len(sub) == 1:
            params.append(head)
        elif head in ("38", "48") and len(sub) >= 3 and sub[1] == "5":
            params += [head, "5", sub[2] or "0"]
        elif head in ("38", "48") and sub[1] == "2" and len(sub) >= 5:
            rgb = sub[3:6] if len(sub) >= 6 else sub[2:5]
            params += [head, "2", *(value or "0" for value in rgb)]
        elif head == "4":
            params.append("24" if sub[1] == "0" else "4")  # curly, dotted ... underline: plain underline
        elif head not in ("38", "48", "58"):
            params.append(head)
    return f"\x1b[{';'.join(params)}m" if params else ""


# ---------------------------------------------------------------------------------------------
# Rendering cells into runs
# ---------------------------------------------------------------------------------------------

_attrs_cache: dict[tuple[Any, ...], Attrs] = {}


def _attrs(key: tuple[Any, ...]) -> Attrs:
    attrs = _attrs_cache.get(key)
    if attrs is None:
        fg, bg, bold, italics, underscore, strikethrough, reverse = key
        attrs = Attrs(fg, bg, bool(bold), bool(italics), bool(underscore), bool(reverse), bool(strikethrough))
        if len(_attrs_cache) > _CACHE_LIMIT:
            _attrs_cache.clear()
        _attrs_cache[key] = attrs
    return attrs


def _render(line: Line | None, width: int) -> list[Run]:
    """Runs of equal attributes covering exactly `width` cells of a pyte line."""
    if not line:
        return [(" " * width, DEFAULT_ATTRS)] if width > 0 else []
    default = line.default
    get = line.get
    runs: list[Run] = []
    texts: list[str] = []
    key: tuple[Any, ...] | None = None
    x = 0
    while x < width:
        cell = get(x, default)
        data = cell.data
        step = 1
        if not data:  # the placeholder after a wide character whose head was overwritten
            text = " "
        else:
            first = data[0]
            cells = 1 if " " <= first < "\x7f" else _char_width(first)
            if cells == 1:
                text = data
            elif cells == 2:
                if x + 1 < width and get(x + 1, default).data == "":
                    text = data
                    step = 2
                else:  # no room, or its placeholder was overwritten
                    text = " "
            else:  # a lone mark: give it a base so it keeps its cell
                text = " " + data
        cell_key = cell[1:8]
        if cell_key != key:
            if texts:
                runs.append(("".join(texts), _attrs(key)))  # type: ignore[arg-type]
            texts = [text]
            key = cell_key
        else:
            texts.append(text)
        x += step
    if texts:
        runs.append(("".join(texts), _attrs(key)))  # type: ignore[arg-type]
    return runs


class _HistoryLine(NamedTuple):
    """A line that scrolled off the top, kept as runs (a pyte line costs ~200 bytes a cell)."""

    width: int
    runs: tuple[Run, ...]


def _compact(line: Line, columns: int) -> _HistoryLine:
    if not line:
        return _HistoryLine(0, ())
    runs = _render(line, min(max(line) + 1, columns))
    while runs and runs[-1][1] == DEFAULT_ATTRS:
        text = runs[-1][0].rstrip(" ")
        if text:
            runs[-1] = (text, DEFAULT_ATTRS)
            break
        runs.pop()
    return _HistoryLine(sum(cell_width(text) for text, _ in runs), tuple(runs))


def _fit(entry: _HistoryLine, columns: int) -> list[Run]:
    """A history line padded or cut to `columns` cells."""
    if entry.width <= columns:
        runs = list(entry.runs)
        if entry.width < columns:
            runs.append((" " * (columns - entry.width), DEFAULT_ATTRS))
        return runs
    runs = []
    room = columns
    for text, attrs in entry.runs:
        width = cell_width(text)
        if width <= room:
            runs.append((text, attrs))
            room -= width
            continue
        kept = []
        for ch in text:
            cells = _char_width(ch)
            if cells > room:
                if room:
                    kept.append(" ")
                    room = 0
                break
            kept.append(ch)
            room -= cells
        if kept:
            runs.append(("".join(kept), attrs))
        break
    if room:
        runs.append((" " * room, DEFAULT_ATTRS))
    return runs


# ---------------------------------------------------------------------------------------------
# The screen
# ---------------------------------------------------------------------------------------------


_BLANK = Char(" ", "default", "default")
_BLANK_REVERSE = Char(" ", "default", "default", reverse=True)


class _CellCache(dict[str, Char]):
    """Char objects with given attributes, one per character, made on first use."""

    def __init__(self, attrs: Char) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, ch: str) -> Char:
        cell = self[ch] = self.attrs._replace(data=ch)
        return cell


class _AltState(NamedTuple):
    """The main screen while the alternate one is shown."""

    buffer: dict[int, Line]
    cursor: Cursor
    restore_cursor: bool


class _Screen(pyte.Screen):
    """pyte's Screen with the fixes listed in the module docstring."""

    def __init__(self, columns: int, lines: int, scrollback: int) -> None:
        # set before pyte's __init__, which calls reset()
        self.scrollback = scrollback
        self.pending: list[Line] = []  # lines scrolled off, compacted later (most never are, in a flood)
        self.alt: _AltState | None = None
        self.replies: list[str] = []
        self.last_char = " "
        self._cell_caches: dict[Char, _CellCache] = {}
        super().__init__(columns, lines)

    def _new_buffer(self) -> dict[int, Line]:
        return defaultdict(lambda: StaticDefaultDict(self.default_char))

    # -- lifecycle ------------------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        self.alt = None  # RIS clears the screen and returns to the main one

    def write_process_input(self, data: str) -> None:
        self.replies.append(data)

    # -- text -----------------------------------------------------------------------------------

    def _cells(self) -> _CellCache:
        """Shared Char objects for the current attributes (pyte builds one per drawn character)."""
        attrs = self.cursor.attrs
        cells = self._cell_caches.get(attrs)
        if cells is None:
            if len(self._cell_caches) > 1024:
                self._cell_caches.clear()
            cells = self._cell_caches[attrs] = _CellCache(attrs)
        return cells

    def draw(self, data: str) -> None:
        """Our own draw(): pyte's stops at the first zero-width character, cuts a wide character
        at the last column in half (xterm wraps it) and builds a new Char per character."""
        if not data:
            return
        charset = self.g1_charset if self.charset else self.g0_charset
        if charset is not cs.LAT1_MAP:
            data = data.translate(charset)
        self.last_char = data[-1]
        if mo.IRM not in self.mode and data.isascii() and data.isprintable():
            self._draw_narrow(data)
        else:
            self._draw_any(data)

    def _draw_narrow(self, data: str) -> None:
        """Characters one cell wide each, in replace mode: whole slices per line."""
        cursor = self.cursor
        columns = self.columns
        cells = self._cells()
        autowrap = mo.DECAWM in self.mode
        pos = 0
        end = len(data)
        while pos < end:
            if cursor.x >= columns:
                if not autowrap:  # each further character overwrites the last column
                    self.buffer[cursor.y][columns - 1] = cells[data[-1]]
                    break
                self.dirty.add(cursor.y)
                cursor.x = 0
                self.linefeed()
            x = cursor.x
            piece = data[pos : pos + columns - x]
            self.buffer[cursor.y].update(zip(range(x, x + len(piece)), map(cells.__getitem__, piece), strict=True))
            cursor.x = x + len(piece)
            pos += len(piece)
        self.dirty.add(cursor.y)

    def _draw_any(self, data: str) -> None:
        cursor = self.cursor
        columns = self.columns
        cells = self._cells()
        autowrap = mo.DECAWM in self.mode
        insert = mo.IRM in self.mode
        line = self.buffer[cursor.y]
        for ch in data:
            width = 1 if " " <= ch < "\x7f" else _char_width(ch)
            if width == 0:  # the filter keeps these away; never let one move the cursor
                continue
            if cursor.x >= columns or (width == 2 and cursor.x == columns - 1 and autowrap and columns > 1):
                if autowrap:
                    if cursor.x < columns:  # a wide character that does not fit: blank the last cell, wrap
                        line[cursor.x] = cells[" "]
                    self.dirty.add(cursor.y)
                    cursor.x = 0
                    self.linefeed()
                    line = self.buffer[cursor.y]
                else:
                    cursor.x = max(0, columns - width)
            if insert:
                self.insert_characters(width)
            line[cursor.x] = cells[ch]
            if width == 2 and cursor.x + 1 < columns:
                line[cursor.x + 1] = cells[""]
            cursor.x = min(cursor.x + width, columns)
        self.dirty.add(cursor.y)

    def attach(self, marks: str) -> None:
        """Join zero-width marks to the character before the cursor (dropped at column 0)."""
        x, y = self.cursor.x, self.cursor.y
        if x <= 0:
            return
        line = self.buffer[y]
        x = min(x, self.columns) - 1
        if line[x].data == "" and x > 0:  # the placeholder of a wide character: join to the character
            x -= 1
        cell = line[x]
        data = cell.data + marks
        composed = unicodedata.normalize("NFC", data)
        if composed and cell.data and _char_width(composed[0]) == _char_width(cell.data[0]):
            data = composed
        line[x] = cell._replace(data=data)
        self.dirty.add(y)

    def repeat_last(self, count: int | None = None, *_: Any) -> None:
        """REP: the last drawn character, `count` more times."""
        self.draw(self.last_char * min(count or 1, self.columns * self.lines))

    # -- modes and the alternate screen ---------------------------------------------------------

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            alt = [mode for mode in modes if mode in _ALT_MODES]
            modes = tuple(mode for mode in modes if mode not in _ALT_MODES and mode != _DECCOLM_PRIVATE)
            if modes:
                super().set_mode(*modes, **kwargs)
            for mode in alt:
                self._enter_alt(save_cursor=mode == 1049)
            return
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            alt = [mode for mode in modes if mode in _ALT_MODES]
            modes = tuple(mode for mode in modes if mode not in _ALT_MODES and mode != _DECCOLM_PRIVATE)
            if modes:
                super().reset_mode(*modes, **kwargs)
            for _mode in alt:
                self._leave_alt()
            return
        super().reset_mode(*modes, **kwargs)

    def _enter_alt(self, *, save_cursor: bool) -> None:
        if self.alt is None:
            self.alt = _AltState(self.buffer, copy.copy(self.cursor), save_cursor)
        self.buffer = self._new_buffer()
        self.dirty.update(range(self.lines))

    def _leave_alt(self) -> None:
        if self.alt is None:
            return
        self.buffer = self.alt.buffer
        if self.alt.restore_cursor:
            self.cursor = self.alt.cursor
            self.cursor.y = min(self.cursor.y, self.lines - 1)
            self.cursor.x = min(self.cursor.x, self.columns)
        self.alt = None
        self.dirty.update(range(self.lines))

    # -- scrolling and scrollback ---------------------------------------------------------------

    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if self.cursor.y != bottom:
            self.cursor_down()
            return
        buffer = self.buffer
        if top == 0 and self.alt is None:
            if 0 in buffer:
                self.pending.append(buffer[0])
                if len(self.pending) > 2 * self.scrollback + 64:
                    del self.pending[: len(self.pending) - self.scrollback]
            elif self.scrollback:
                self.pending.append(StaticDefaultDict(self.default_char))
        if top == 0 and bottom == self.lines - 1:  # the whole screen: renumber the rows in one go
            rows = [(y - 1, row) for y, row in buffer.items() if y > 0]
            buffer.clear()
            buffer.update(rows)
            self.dirty.update(self._all_rows)
        else:
            super().index()

    @property
    def _all_rows(self) -> range:
        return range(self.lines)

    @property
    def default_char(self) -> Char:
        """An empty cell (pyte builds a new one each time a line is made)."""
        return _BLANK_REVERSE if mo.DECSCNM in self.mode else _BLANK

    def _scroll(self, count: int | None, up: bool) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        count = max(1, min(count or 1, bottom - top + 1))
        rows: list[Line | None] = [self.buffer.pop(y, None) for y in range(top, bottom + 1)]
        rows = rows[count:] + [None] * count if up else [None] * count + rows[:-count]
        for offset, row in enumerate(rows):
            if row is not None:
                self.buffer[top + offset] = row
        self.dirty.update(range(top, bottom + 1))

    def insert_lines(self, count: int | None = None) -> None:
        """IL. pyte's leaves a stale row where the row to move down is absent from the sparse buffer."""
        count = count or 1
        top, bottom = self.margins or Margins(0, self.lines - 1)
        y = self.cursor.y
        if top <= y <= bottom:
            buffer = self.buffer
            self.dirty.update(range(y, self.lines))
            for row in range(bottom, y - 1, -1):
                source = row - count
                if source >= y and source in buffer:
                    buffer[row] = buffer.pop(source)
                else:
                    buffer.pop(row, None)
            self.carriage_return()

    def delete_lines(self, count: int | None = None) -> None:
        """DL. pyte's keeps a row whose replacement is absent from the sparse buffer."""
        count = count or 1
        top, bottom = self.margins or Margins(0, self.lines - 1)
        y = self.cursor.y
        if top <= y <= bottom:
            buffer = self.buffer
            self.dirty.update(range(y, self.lines))
            for row in range(y, bottom + 1):
                source = row + count
                if source <= bottom and source in buffer:
                    buffer[row] = buffer.pop(source)
                else:
                    buffer.pop(row, None)
            self.carriage_return()

    def scroll_up(self, count: int | None = None, *_: Any) -> None:
        """SU: the scrolling region moves up `count` lines."""
        self._scroll(count, up=True)

    def scroll_down(self, count: int | None = None, *_: Any) -> None:
        """SD: the scrolling region moves down `count` lines."""
        self._scroll(count, up=False)

    def back_tab(self, count: int | None = None, *_: Any) -> None:
        """CBT: back to the previous tab stop, `count` times."""
        for _step in range(min(count or 1, self.columns)):
            stops = [stop for stop in self.tabstops if stop < self.cursor.x]
            self.cursor.x = max(stops) if stops else 0

    def save_cursor_ansi(self, *params: int, **kwargs: Any) -> None:
        """CSI s (SCOSC); with parameters it would be DECSLRM, which pyte lacks."""
        if not kwargs and params in ((), (0,)):
            self.save_cursor()

    def restore_cursor_ansi(self, *params: int, **kwargs: Any) -> None:
        """CSI u (SCORC); CSI ? u is a keyboard protocol query, ignored."""
        if not kwargs and params in ((), (0,)):
            self.restore_cursor()

    # -- pyte handlers that crash on some input -------------------------------------------------

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        if how in (0, 1, 2):
            super().erase_in_line(how, private)

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        if how == 3:  # xterm: erase the saved lines only
            self.pending.clear()
            self.clear_history = True
        elif how in (0, 1, 2):
            super().erase_in_display(how)

    clear_history = False  # set by ED 3, acted on by TerminalCore

    def cursor_to_line(self, line: int | None = None, *_: Any) -> None:
        self.cursor.y = (line or 1) - 1
        if mo.DECOM in self.mode and self.margins is not None:
            self.cursor.y += self.margins.top
        self.ensure_vbounds()

    def report_device_status(self, mode: int = 0, *_: Any) -> None:
        if mode == 5:
            self.write_process_input("\x1b[0n")
        elif mode == 6:
            y = self.cursor.y + 1
            if mo.DECOM in self.mode and self.margins is not None:
                y -= self.margins.top
            self.write_process_input(f"\x1b[{y};{min(self.cursor.x, self.columns - 1) + 1}R")

    def select_graphic_rendition(self, *attrs: int, **kwargs: Any) -> None:
        if kwargs.get("private"):  # CSI ? Pp m is XTQMODKEYS, a query, not SGR
            return
        if 38 in attrs or 48 in attrs:
            attrs = _clamp_colours(attrs)
        super().select_graphic_rendition(*attrs)

    # -- size -----------------------------------------------------------------------------------

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Like xterm: rows leave from the top only as far as needed to keep the cursor on the
        screen (into the scrollback), otherwise from the bottom; columns are cut on the right."""
        lines = max(1, lines or self.lines)
        columns = max(1, columns or self.columns)
        old_lines, old_columns = self.lines, self.columns
        if (lines, columns) == (old_lines, old_columns):
            return
        if lines < old_lines:
            shift = self._shrink(self.buffer, self.cursor.y, old_lines, lines, to_history=self.alt is None)
            self.cursor.y -= shift
            if self.alt is not None:
                saved = self.alt.cursor
                saved.y -= self._shrink(self.alt.buffer, saved.y, old_lines, lines, to_history=True)
        if columns < old_columns:
            buffers = [self.buffer] + ([self.alt.buffer] if self.alt is not None else [])
            for buffer in buffers:
                for line in buffer.values():
                    for x in [x for x in line if x >= columns]:
                        del line[x]
        self.lines, self.columns = lines, columns
        self.margins = None
        self.tabstops = {stop for stop in self.tabstops if stop < columns} | set(range(8, columns, 8)).difference(
            range(old_columns)
        )
        cursors = [self.cursor] + ([self.alt.cursor] if self.alt is not None else [])
        for cursor in cursors:
            cursor.y = max(0, min(cursor.y, lines - 1))
            if columns != old_columns:
                cursor.x = max(0, min(cursor.x, columns - 1))
        self.dirty = set(range(lines))

    def _shrink(self, buffer: dict[int, Line], cursor_y: int, old_lines: int, lines: int, *, to_history: bool) -> int:
        shift = max(0, cursor_y - (lines - 1))
        if to_history:
            for y in range(shift):
                self.pending.append(buffer[y] if y in buffer else StaticDefaultDict(self.default_char))
        kept = {y - shift: buffer[y] for y in range(shift, min(old_lines, shift + lines)) if y in buffer}
        buffer.clear()
        buffer.update(kept)
        return shift


def _clamp_colours(attrs: tuple[int, ...]) -> tuple[int, ...]:
    """38;2;r;g;b with a component over 255 would make pyte write a 7-digit "hex" colour."""
    values = list(attrs)
    index = 0
    while index < len(values):
        if values[index] in (38, 48) and index + 1 < len(values):
            if values[index + 1] == 2:
                for component in range(index + 2, min(index + 5, len(values))):
                    values[component] = min(values[component], 255)
                index += 5
                continue
            if values[index + 1] == 5:
                index += 3
                continue
        index += 1
    return tuple(values)


def _tolerant(method: Callable[..., Any]) -> Callable[..., Any]:
    """A CSI handler that ignores surplus parameters, and private (``CSI ? ...``) variants it
    does not implement, instead of raising TypeError from inside pyte's parser."""
    signature = inspect.signature(method)
    parameters = list(signature.parameters.values())[1:]  # without self
    takes_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    positional = sum(
        p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) and p.name != "private"
        for p in parameters
    )
    takes_private = any(p.kind is inspect.Parameter.VAR_KEYWORD or p.name == "private" for p in parameters)

    def handler(self: _Screen, *args: Any, **kwargs: Any) -> Any:
        if kwargs and not takes_private:
            return None
        if not takes_varargs:
            args = args[:positional]
        return method(self, *args, **kwargs)

    return handler


class _Stream(pyte.Stream):
    """pyte's Stream with the extra CSI handlers, each made tolerant."""

    csi = {  # noqa: RUF012 - pyte reads this class attribute
        **pyte.Stream.csi,
        "S": "scroll_up",
        "T": "scroll_down",
        "Z": "back_tab",
        "b": "repeat_last",
        "s": "save_cursor_ansi",
        "u": "restore_cursor_ansi",
    }


for _final, _name in list(_Stream.csi.items()):
    setattr(_Screen, f"_csi_{_name}", _tolerant(getattr(_Screen, _name)))
    _Stream.csi[_final] = f"_csi_{_name}"
del _final, _name


# ---------------------------------------------------------------------------------------------
# The public core
# ---------------------------------------------------------------------------------------------


class TerminalCore:
    """A terminal screen fed with the guest's bytes, read back as runs of styled text.

    Not thread-safe; feed and read from one thread (the event loop).
    """

    def __init__(self, columns: int = 80, rows: int = 24, *, scrollback: int = 5000) -> None:
        columns, rows = max(1, columns), max(1, rows)
        self._screen = _Screen(columns, rows, max(0, scrollback))
        self._stream = _Stream(self._screen)
        self._stream.use_utf8 = False  # honour ESC ( 0 and SO/SI: DEC line drawing, as xterm does
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._history: deque[_HistoryLine] = deque(maxlen=max(0, scrollback))
        self._carry = ""  # an escape sequence cut by the end of the last chunk
        self._string: str | None = None  # the kind of control string being skipped ("]", "P", ...)
        self._osc: list[str] = []
        self._osc_size = 0
        self.title = ""
        self.internal_errors = 0  # exceptions pyte raised despite the guards (then the chunk is dropped)

    # -- size -----------------------------------------------------------------------------------

    @property
    def columns(self) -> int:
        return self._screen.columns

    @property
    def rows(self) -> int:
        return self._screen.lines

    def resize(self, columns: int, rows: int) -> None:
        self._flush_history()
        self._screen.resize(lines=max(1, rows), columns=max(1, columns))
        self._flush_history()

    # -- input ----------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take bytes from the guest. Never raises."""
        text = self._decoder.decode(data)
        if self._carry:
            text = self._carry + text
            self._carry = ""
        if not text:
            return
        try:
            self._feed_text(text)
        except Exception:
            self.internal_errors += 1
            log.debug("terminal: pyte failed on a chunk; dropped", exc_info=True)
        if self._screen.clear_history:
            self._screen.clear_history = False
            self._history.clear()
        if len(self._screen.pending) > 1024:
            self._flush_history()

    def _feed_text(self, text: str) -> None:
        screen = self._screen
        feed = self._stream.feed
        search = (_FILTER_ASCII if text.isascii() else _FILTER_WIDE).search
        out: list[str] = []
        pos = 0
        end = len(text)
        while pos < end:
            if self._string is not None:
                pos = self._skip_string(text, pos)
                continue
            match = search(text, pos)
            if match is None:
                out.append(text[pos:] if pos else text)
                break
            out.append(text[pos : match.start()])
            pos = match.end()
            kind = match.lastgroup
            if kind == "odd":
                marks = []
                for ch in match.group():
                    action = _classify(ch)
                    if action is _ATTACH:
                        marks.append(ch)
                        continue
                    if marks:
                        feed("".join(out))
                        out.clear()
                        screen.attach("".join(marks))
                        marks.clear()
                    out.append(action)
                if marks:
                    feed("".join(out))
                    out.clear()
                    screen.attach("".join(marks))
            elif kind == "string":
                kind_char = match.group()[1]
                if kind_char == "]" and (palette := _LINUX_PALETTE.match(text, pos)):
                    pos = palette.end()
                    continue
                self._string = kind_char
                self._osc.clear()
                self._osc_size = 0
            elif kind == "csi":
                out.append(_rewrite_csi(match.group()))
            elif kind == "tail" and len(match.group()) <= _MAX_CARRY:
                self._carry = match.group()
            # "broken": dropped
        if out:
            feed("".join(out))

    def _skip_string(self, text: str, pos: int) -> int:
        """Skip (and for OSC, collect) a control string up to ST, BEL, CAN, SUB or a new ESC."""
        match = _STRING_END.search(text, pos)
        stop = match.start() if match else len(text)
        if self._string == "]" and self._osc_size < _MAX_OSC:
            piece = text[pos:stop]
            self._osc.append(piece)
            self._osc_size += len(piece)
        if match is None:
            return len(text)
        if text[stop] == _ESC:
            if stop + 1 == len(text):
                self._carry = _ESC  # ST or a new sequence: the next chunk tells
                return len(text)
            after = stop + 2 if text[stop + 1] == "\\" else stop  # any other ESC starts a new sequence
        else:
            after = stop + 1
        self._end_string()
        return after

    def _end_string(self) -> None:
        if self._string == "]":
            code, _, value = "".join(self._osc).partition(";")
            if code in ("0", "2"):
                self.title = "".join(ch for ch in value if ch.isprintable())[:_MAX_TITLE]
        self._string = None
        self._osc.clear()
        self._osc_size = 0

    def take_replies(self) -> bytes:
        """Answers the terminal owes the guest (cursor position, device attributes), to be sent back."""
        if not self._screen.replies:
            return b""
        data = "".join(self._screen.replies).encode()
        self._screen.replies.clear()
        return data

    # -- output ---------------------------------------------------------------------------------

    def take_dirty(self) -> set[int]:
        """Screen rows changed since the last call (all of them after a resize, clear or scroll)."""
        screen = self._screen
        rows = screen.lines
        dirty = {y for y in screen.dirty if 0 <= y < rows}
        screen.dirty.clear()
        return dirty

    def line(self, y: int, *, scroll: int = 0) -> list[Run]:
        """Row `y` as runs of equal attributes, exactly `columns` cells wide (see `cell_width`).

        With ``scroll=N`` the view is moved N lines back into the scrollback.
        """
        columns = self.columns
        if not 0 <= y < self.rows:
            return [(" " * columns, DEFAULT_ATTRS)]
        if scroll > 0:
            self._flush_history()
            history = self._history
            index = len(history) - min(scroll, len(history)) + y
            if index < len(history):
                return _fit(history[index], columns)
            y = index - len(history)
        return _render(self._screen.buffer.get(y), columns)

    @property
    def cursor(self) -> tuple[int, int]:
        """(x, y) of the cursor on the screen."""
        cursor = self._screen.cursor
        return min(cursor.x, self.columns - 1), cursor.y

    @property
    def cursor_visible(self) -> bool:
        return mo.DECTCEM in self._screen.mode

    @property
    def application_cursor(self) -> bool:
        """DECCKM: arrow keys should be sent as ESC O A rather than ESC [ A."""
        return (1 << 5) in self._screen.mode  # DECCKM, private mode 1

    @property
    def bracketed_paste(self) -> bool:
        """The guest asked (CSI ? 2004 h) for pastes wrapped in ESC [ 200~ ... ESC [ 201~."""
        return (2004 << 5) in self._screen.mode

    @property
    def history_size(self) -> int:
        """Lines available in the scrollback."""
        self._flush_history()
        return len(self._history)

    @property
    def in_alternate_screen(self) -> bool:
        return self._screen.alt is not None

    def screen_text(self) -> list[str]:
        """Plain text of each screen row, `columns` cells wide."""
        return ["".join(text for text, _ in self.line(y)) for y in range(self.rows)]

    def log_text(self) -> str:
        """The scrollback then the screen as plain text: blanks at line ends and empty lines at the end removed."""
        self._flush_history()
        lines = ["".join(text for text, _ in entry.runs).rstrip() for entry in self._history]
        lines += [text.rstrip() for text in self.screen_text()]
        return "\n".join(lines).rstrip("\n")

    def save_log(self, path: Path) -> None:
        """Write `log_text` to `path` as UTF-8."""
        Path(path).write_text(self.log_text(), encoding="utf-8")

    # -- scrollback -----------------------------------------------------------------------------

    def _flush_history(self) -> None:
        pending = self._screen.pending
        if not pending:
            return
        maxlen = self._history.maxlen or 0
        if maxlen:
            columns = self.columns
            self._history.extend(_compact(line, columns) for line in pending[-maxlen:])
        pending.clear()
