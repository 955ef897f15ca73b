"""Make untrusted text (domain names, device paths) safe to print on a terminal.

A domain name is chosen by whoever created the domain. Printed raw, an ESC could drive the
operator's terminal, a carriage return could overwrite the line, and a bidi override (U+202E)
or an invisible format character could make one name look like another. `printable` turns
each such character into a visible escape and leaves everything else, including non-ASCII
letters, CJK and emoji, as it is.
"""

from __future__ import annotations

import unicodedata

__all__ = ["name_list", "printable"]

# Controls are caught by code point; these categories catch the rest: format characters
# (bidi controls, zero-width space, BOM, soft hyphen...), line and paragraph separators,
# surrogates (undecodable bytes under surrogateescape) and unassigned code points.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})


def _is_control(code: int) -> bool:
    """C0, DEL or C1."""
    return code < 0x20 or 0x7F <= code <= 0x9F


def _escape(char: str) -> str:
    code = ord(char)
    if _is_control(code):
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _needs_escape(char: str) -> bool:
    if _is_control(ord(char)):
        return True
    # isprintable() is False for every escaped category, but also for spaces other than
    # U+0020 and for private-use characters, which are harmless and stay.
    return not char.isprintable() and unicodedata.category(char) in _ESCAPED_CATEGORIES


def printable(text: str) -> str:
    """``text`` with terminal controls, bidi controls and invisible characters escaped.

    C0, DEL and C1 controls become ``\\xHH``; other escaped characters ``\\uHHHH`` (or
    ``\\UHHHHHHHH`` beyond the BMP). A zero-width joiner is a format character too, so an
    emoji ZWJ sequence shows as its parts with ``\\u200d`` between them.
    """
    # The common case, printed every refresh for every domain: isascii() is O(1) in CPython.
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape(char) if _needs_escape(char) else char for char in text)


def name_list(names: list[str], limit: int = 6) -> str:
    """Names for a question or a message, made printable: 'a, b and c'; past ``limit``, 'a, b, c and 4 more'."""
    shown = [printable(name) for name in names[:limit]]
    rest = len(names) - len(shown)
    if rest:
        return f"{', '.join(shown)} and {rest} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}" if shown else "none"
