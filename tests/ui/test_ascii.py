"""A terminal that is not UTF-8 (LANG=C, TERM=linux): every symbol drawn in ASCII, chosen from the locale."""

from __future__ import annotations

import html
import re

import pytest

from xentui.ui.ascii import ascii_text, wanted

from .helpers import make_app, settle


@pytest.mark.parametrize(("environ", "expected"), [
    ({"LANG": "en_GB.UTF-8"}, False),
    ({"LANG": "C"}, True),
    ({"LANG": "C", "LC_CTYPE": "C.UTF-8"}, True),  # Python's own coercion of a C locale (PEP 538)
    ({"LC_ALL": "C.UTF-8", "LANG": "C"}, False),
    ({}, True),
    ({"LANG": "en_US.UTF-8", "TERM": "linux"}, True),
    ({"LANG": "en_US.ISO-8859-1"}, True),
    ({"LANG": "C", "XENTUI_ASCII": "0"}, False),
    ({"LANG": "en_US.UTF-8", "XENTUI_ASCII": "1"}, True),
])
def test_ascii_is_chosen_from_the_locale_and_the_terminal(environ, expected):
    assert wanted(environ) is expected


def test_every_symbol_has_an_ascii_form_of_the_same_width():
    drawn = "╭─┤▲▼▾▸…✓✗⚠▁▂▃▄▅▆▇█▔▊▎▐X▌ é 名"
    plain = ascii_text(drawn)
    assert plain.isascii() and len(plain) == len(drawn) + 1  # the wide 名 takes two cells: ??
    assert plain == "+-+^vv>~+x!_.:-=+*#-||[X] e ??"


def test_the_screen_under_lang_c_is_ascii_only(snap_compare, monkeypatch):
    monkeypatch.setenv("LANG", "C")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_CTYPE", raising=False)
    monkeypatch.delenv("XENTUI_ASCII", raising=False)
    app, clock = make_app()
    drawn: list[str] = []

    async def run_before(pilot) -> None:
        await settle(pilot, app, clock)
        await pilot.press("A")
        await pilot.pause(0.3)
        for field in app.screen.query("Input"):  # a blinking cursor would make the snapshot flicker
            field.cursor_blink = False
        await pilot.pause()
        svg = app.export_screenshot()
        drawn.extend(html.unescape(text).replace("\xa0", " ") for text in re.findall(r"<text[^>]*>([^<]*)</text>", svg))

    assert app.ascii
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
    assert drawn and all(text.isascii() for text in drawn), [t for t in drawn if not t.isascii()][:5]
