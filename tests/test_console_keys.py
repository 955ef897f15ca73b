"""Keys and pastes as a VT100/xterm would send them."""

from __future__ import annotations

import pytest

from xentui.console.keys import encode_key, encode_paste


@pytest.mark.parametrize(
    ("key", "character", "expected"),
    [
        # printable characters
        ("a", "a", b"a"),
        ("A", "A", b"A"),
        ("slash", "/", b"/"),
        ("plus", "+", b"+"),
        ("eacute", "é", "é".encode()),
        ("中", "中", "中".encode()),
        ("a", None, b"a"),
        ("space", " ", b" "),
        # editing keys
        ("enter", "\r", b"\r"),
        ("tab", "\t", b"\t"),
        ("shift+tab", None, b"\x1b[Z"),
        ("backspace", "\x7f", b"\x7f"),
        ("backspace", "\x08", b"\x7f"),
        ("escape", "\x1b", b"\x1b"),
        # cursor keys
        ("up", None, b"\x1b[A"),
        ("down", None, b"\x1b[B"),
        ("right", None, b"\x1b[C"),
        ("left", None, b"\x1b[D"),
        ("home", None, b"\x1b[H"),
        ("end", None, b"\x1b[F"),
        ("insert", None, b"\x1b[2~"),
        ("delete", None, b"\x1b[3~"),
        ("pageup", None, b"\x1b[5~"),
        ("pagedown", None, b"\x1b[6~"),
        # function keys
        ("f1", None, b"\x1bOP"),
        ("f2", None, b"\x1bOQ"),
        ("f3", None, b"\x1bOR"),
        ("f4", None, b"\x1bOS"),
        ("f5", None, b"\x1b[15~"),
        ("f6", None, b"\x1b[17~"),
        ("f7", None, b"\x1b[18~"),
        ("f8", None, b"\x1b[19~"),
        ("f9", None, b"\x1b[20~"),
        ("f10", None, b"\x1b[21~"),
        ("f11", None, b"\x1b[23~"),
        ("f12", None, b"\x1b[24~"),
        # ctrl
        ("ctrl+a", "\x01", b"\x01"),
        ("ctrl+c", "\x03", b"\x03"),
        ("ctrl+z", "\x1a", b"\x1a"),
        ("ctrl+shift+a", None, b"\x01"),
        ("ctrl+space", None, b"\x00"),
        ("ctrl+@", None, b"\x00"),
        ("ctrl-at", None, b"\x00"),
        ("ctrl+left_square_bracket", None, b"\x1b"),
        ("ctrl+[", None, b"\x1b"),
        ("ctrl+backslash", None, b"\x1c"),
        ("ctrl+\\", None, b"\x1c"),
        ("ctrl+right_square_bracket", None, b"\x1d"),
        ("ctrl+]", None, b"\x1d"),
        ("ctrl+circumflex_accent", None, b"\x1e"),
        ("ctrl+^", None, b"\x1e"),
        ("ctrl+underscore", None, b"\x1f"),
        ("ctrl+_", None, b"\x1f"),
        ("ctrl+backspace", None, b"\x08"),
        # alt
        ("alt+a", "a", b"\x1ba"),
        ("alt+shift+a", "A", b"\x1bA"),
        ("alt+x", None, b"\x1bx"),
        ("alt+ctrl+a", None, b"\x1b\x01"),
        ("alt+enter", None, b"\x1b\r"),
        ("alt+backspace", None, b"\x1b\x7f"),
        ("alt+period", ".", b"\x1b."),
        # modified cursor and function keys
        ("ctrl+up", None, b"\x1b[1;5A"),
        ("ctrl+down", None, b"\x1b[1;5B"),
        ("ctrl+right", None, b"\x1b[1;5C"),
        ("ctrl+left", None, b"\x1b[1;5D"),
        ("shift+up", None, b"\x1b[1;2A"),
        ("shift+down", None, b"\x1b[1;2B"),
        ("shift+right", None, b"\x1b[1;2C"),
        ("shift+left", None, b"\x1b[1;2D"),
        ("alt+up", None, b"\x1b[1;3A"),
        ("ctrl+shift+left", None, b"\x1b[1;6D"),
        ("ctrl+home", None, b"\x1b[1;5H"),
        ("shift+end", None, b"\x1b[1;2F"),
        ("ctrl+delete", None, b"\x1b[3;5~"),
        ("shift+pageup", None, b"\x1b[5;2~"),
        ("ctrl+f1", None, b"\x1b[1;5P"),
        ("shift+f5", None, b"\x1b[15;2~"),
        # nothing a terminal would send
        ("f20", None, None),
        ("super+a", "a", None),
        ("ctrl+f13", None, None),
        ("unknown_key", None, None),
    ],
)
def test_encode_key(key: str, character: str | None, expected: bytes | None) -> None:
    assert encode_key(key, character) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("up", b"\x1bOA"),
        ("down", b"\x1bOB"),
        ("right", b"\x1bOC"),
        ("left", b"\x1bOD"),
        ("home", b"\x1b[H"),
        ("ctrl+up", b"\x1b[1;5A"),
    ],
)
def test_application_cursor_mode(key: str, expected: bytes) -> None:
    assert encode_key(key, None, application_cursor=True) == expected


def test_every_ctrl_letter() -> None:
    for offset, letter in enumerate("abcdefghijklmnopqrstuvwxyz", start=1):
        assert encode_key(f"ctrl+{letter}", chr(offset)) == bytes([offset])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("echo hi", b"echo hi"),
        ("one\ntwo\n", b"one\rtwo\r"),
        ("one\r\ntwo", b"one\rtwo"),
        ("cr\ronly", b"cr\ronly"),
        ("tab\tkept", b"tab\tkept"),
        ("no\x1b[31mescape", b"no[31mescape"),
        ("bell\x07nul\x00del\x7fc1\x9b", b"bellnuldelc1"),
        ("naïve 中文", "naïve 中文".encode()),
        ("", b""),
    ],
)
def test_encode_paste(text: str, expected: bytes) -> None:
    assert encode_paste(text) == expected


def test_bracketed_paste_cannot_be_closed_from_inside() -> None:
    assert encode_paste("a\x1b[201~b\n", bracketed=True) == b"\x1b[200~a[201~b\r\x1b[201~"
