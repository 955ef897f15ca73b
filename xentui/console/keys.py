"""Key presses as the bytes an xterm would send to the guest.

Key names are Textual's ("a", "enter", "ctrl+a", "alt+x", "shift+tab", "ctrl+left", "f5", ...),
but nothing here imports Textual. Modified cursor and function keys use xterm's parameter
(CSI 1 ; m A, CSI n ; m ~) where m = 1 + shift + 2*alt + 4*ctrl; Alt on anything else is an ESC
prefix, as xterm does with metaSendsEscape.
"""

from __future__ import annotations

__all__ = ["encode_key", "encode_paste"]

_ESC = b"\x1b"

# Keys whose bytes never change.
_PLAIN: dict[str, bytes] = {
    "enter": b"\r",
    "return": b"\r",
    "ctrl+m": b"\r",
    "tab": b"\t",
    "ctrl+i": b"\t",
    "shift+tab": b"\x1b[Z",
    "backspace": b"\x7f",
    "escape": b"\x1b",
    "space": b" ",
    "ctrl-at": b"\x00",  # Textual's alias for ctrl+space
}

# Cursor keys: the final byte after CSI (normal mode) or SS3 (application cursor mode).
_CURSOR: dict[str, bytes] = {"up": b"A", "down": b"B", "right": b"C", "left": b"D"}
# Home and End are always CSI H / CSI F here; their SS3 forms only matter to a few applications.
_HOME_END: dict[str, bytes] = {"home": b"H", "end": b"F"}
# Function keys F1-F4: SS3 P..S unmodified, CSI 1 ; m P..S modified.
_SS3_FUNCTION: dict[str, bytes] = {"f1": b"P", "f2": b"Q", "f3": b"R", "f4": b"S"}
# Keys sent as CSI n ~.
_TILDE: dict[str, int] = {
    "insert": 2,
    "delete": 3,
    "pageup": 5,
    "pagedown": 6,
    "f5": 15,
    "f6": 17,
    "f7": 18,
    "f8": 19,
    "f9": 20,
    "f10": 21,
    "f11": 23,
    "f12": 24,
}

# Ctrl with a non-letter: the C0 code a VT220 keyboard sends (Textual's names and the characters).
_CTRL_SYMBOLS: dict[str, bytes] = {
    "@": b"\x00",
    "at": b"\x00",
    "space": b"\x00",
    "2": b"\x00",
    "[": b"\x1b",
    "left_square_bracket": b"\x1b",
    "left_square_brace": b"\x1b",
    "3": b"\x1b",
    "\\": b"\x1c",
    "backslash": b"\x1c",
    "4": b"\x1c",
    "]": b"\x1d",
    "right_square_bracket": b"\x1d",
    "5": b"\x1d",
    "^": b"\x1e",
    "circumflex_accent": b"\x1e",
    "6": b"\x1e",
    "_": b"\x1f",
    "underscore": b"\x1f",
    "slash": b"\x1f",
    "/": b"\x1f",
    "7": b"\x1f",
    "?": b"\x7f",
    "question_mark": b"\x7f",
    "8": b"\x7f",
}

_MODIFIER_BITS = {"shift": 1, "alt": 2, "meta": 2, "ctrl": 4}


def _split(key: str) -> tuple[frozenset[str], str]:
    """("ctrl+shift+left") -> ({"ctrl", "shift"}, "left"); Textual spells "+" as "plus"."""
    if key == "+":
        return frozenset(), "+"
    if key.endswith("++"):  # a literal plus with modifiers, should anything send it
        head, base = key[:-2], "+"
    else:
        head, _, base = key.rpartition("+")
    modifiers = frozenset(part for part in head.split("+") if part)
    return modifiers, base


def _special(base: str, modifier: int, application_cursor: bool) -> bytes | None:
    """Cursor, editing and function keys, with xterm's modifier parameter when modifier > 1."""
    if base in _CURSOR or base in _HOME_END:
        final = _CURSOR.get(base) or _HOME_END[base]
        if modifier > 1:
            return b"\x1b[1;%d" % modifier + final
        if application_cursor and base in _CURSOR:
            return b"\x1bO" + final
        return b"\x1b[" + final
    if base in _SS3_FUNCTION:
        final = _SS3_FUNCTION[base]
        return b"\x1b[1;%d" % modifier + final if modifier > 1 else b"\x1bO" + final
    if base in _TILDE:
        number = _TILDE[base]
        return b"\x1b[%d;%d~" % (number, modifier) if modifier > 1 else b"\x1b[%d~" % number
    return None


def encode_key(key: str, character: str | None, *, application_cursor: bool = False) -> bytes | None:
    """The bytes a terminal sends for this key, or None when it has no meaning to the guest."""
    if key in _PLAIN:
        return _PLAIN[key]
    modifiers, base = _split(key)
    if not modifiers <= _MODIFIER_BITS.keys():
        return None  # super/hyper combinations: nothing a VT would send

    modifier = 1 + sum({_MODIFIER_BITS[name] for name in modifiers})
    special = _special(base, modifier, application_cursor)
    if special is not None:
        return special

    if "alt" in modifiers or "meta" in modifiers:
        rest = "+".join([*sorted(modifiers - {"alt", "meta"}), base])
        inner = encode_key(rest, character, application_cursor=application_cursor)
        return None if inner is None else _ESC + inner

    if "ctrl" in modifiers:
        if len(base) == 1 and base.isascii() and base.isalpha():
            return bytes([ord(base.lower()) - ord("a") + 1])
        if base in _CTRL_SYMBOLS:
            return _CTRL_SYMBOLS[base]
        if base in ("enter", "return", "tab", "escape", "backspace"):
            return b"\x08" if base == "backspace" else _PLAIN[base]
        return None

    if base in _PLAIN:  # shift+enter, shift+space, shift+backspace ...
        return _PLAIN[base]
    if character and character.isprintable():
        return character.encode("utf-8")
    if len(base) == 1 and base.isprintable():
        return (base.upper() if "shift" in modifiers else base).encode("utf-8")
    return None


def encode_paste(text: str, *, bracketed: bool = False) -> bytes:
    """Pasted text as typed keys: line ends become CR (what Enter sends); other control
    characters except tab are removed, so a paste cannot smuggle in escape sequences.

    With `bracketed` (the guest enabled mode 2004), the text is wrapped in ESC [ 200~ ... ESC [ 201~.
    """
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    cleaned = "".join(ch for ch in text if ch in "\t\r" or not (ch < " " or "\x7f" <= ch < "\xa0"))
    data = cleaned.encode("utf-8", errors="replace")
    return b"\x1b[200~" + data + b"\x1b[201~" if bracketed else data
