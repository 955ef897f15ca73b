"""A terminal that is not UTF-8 (``LANG=C``, ``TERM=linux``, a serial or IPMI console): every symbol the screen
draws, xentui's and Textual's alike (borders, the sort arrow, sparklines, tick boxes, the ellipsis, scroll bars),
in ASCII, chosen from the locale and the terminal. One filter over every line drawn, so nothing can slip by;
each character keeps its width, so the layout is the same.

``XENTUI_ASCII=1`` forces it on, ``XENTUI_ASCII=0`` off.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping

from rich.cells import cell_len
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

_BOXES = {
    "-": "─━═╌╍┄┅┈┉╴╶╸╺╼╾",
    "|": "│┃║╎╏┆┇┊┋╵╷╹╻╽╿",
    "+": "┌┐└┘├┤┬┴┼╭╮╯╰┏┓┗┛┣┫┳┻╋╔╗╚╝╠╣╦╩╬╒╓╕╖╘╙╛╜╞╟╡╢╤╥╧╨╪╫┍┎┑┒┕┖┙┚┝┞┟┠┡┢┥┦┧┨┩┪┭┮┯┰┱┲┵┶┷┸┹┺┽┾┿╀╁╂╃╄╅╆╇╈╉╊",
}
_SYMBOLS = {
    # blocks: the sparklines' eight levels, input fields' and buttons' edges, scroll bars
    " ": "\u00a0", "_": "▁", ".": "▂", ":": "▃", "-": "▄▔", "=": "▅", "+": "▆", "*": "▇", "#": "█▉▓▒░", "|": "▊▋▍▎▏▕",
    "~": "…", "^": "▲△▴▵⬆↑", "v": "▼▽▾▿⬇↓", ">": "▸▹►▶→⏵", "<": "◂◃◄◀←⏴⏎", "x": "✗✘×",
    "[": "▐", "]": "▌",  # a tick box's sides: [X]
}
_MARKS = {"✓": "+", "✔": "+", "⚠": "!", "•": "*", "·": ".", "—": "-", "–": "-", "’": "'", "‘": "'", "“": '"',
          "”": '"', "°": "o", "µ": "u", "≥": ">", "≤": "<", "±": "+"}


def _table() -> dict[int, str]:
    table: dict[int, str] = {}
    for mapping in (_BOXES, _SYMBOLS):  # two tables: both map to "-", "|" and "+"
        for target, sources in mapping.items():
            for source in sources:
                table[ord(source)] = target
    for source, target in _MARKS.items():
        table[ord(source)] = target
    return table


TABLE: Mapping[int, str] = _table()


def ascii_text(text: str) -> str:
    """``text`` in ASCII, each character as wide as before: the symbols by their look-alike, other letters
    by their base letter where they have one (é is e), else ``?`` (``??`` for a wide one)."""
    if text.isascii():
        return text
    out = text.translate(TABLE)
    if out.isascii():
        return out
    chars = []
    for char in out:
        if char.isascii():
            chars.append(char)
            continue
        base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        width = cell_len(char)
        chars.append(base[:1] if base and width == 1 else "?" * max(width, 0))
    return "".join(chars)


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """ASCII when asked (``XENTUI_ASCII``), else when the locale is not UTF-8 or the terminal is one that
    draws little beyond ASCII (the Linux console, a vt100, a dumb one)."""
    env = os.environ if environ is None else environ
    forced = env.get("XENTUI_ASCII", "")
    if forced in ("0", "1"):
        return forced == "1"
    lang = env.get("LANG", "")
    ctype = env.get("LC_CTYPE", "")
    if not env.get("LC_ALL") and ctype == "C.UTF-8" and lang in ("", "C", "POSIX"):
        ctype = ""  # Python itself set it (PEP 538's coercion of a C locale): the terminal's is still C
    locale = env.get("LC_ALL") or ctype or lang or "C"
    utf8 = "utf-8" in locale.lower() or "utf8" in locale.lower()
    return not utf8 or env.get("TERM", "") in ("linux", "vt100", "vt102", "vt220", "dumb")


class AsciiFilter(LineFilter):
    """Every segment's text through `ascii_text`, styles kept."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [segment if segment.text.isascii() else Segment(ascii_text(segment.text), segment.style,
                                                              segment.control)
                for segment in segments]
