"""Keys as the terminal sends them, through the parser xentui installs for the Linux driver."""

from __future__ import annotations

import pytest
from textual._xterm_parser import XTermParser
from textual.drivers import linux_driver

from xentui.ui.terminal_input import EscapeKeepingParser, install


def keys(parser_class: type[XTermParser], data: str) -> list[str]:
    parser = parser_class()
    events = list(parser.feed(data))
    events += list(parser.feed(""))  # end of input: what waited for more bytes comes out
    return [event.key for event in events if hasattr(event, "key")]


@pytest.mark.parametrize(("data", "expected"), [
    ("\x1b/", ["escape", "slash"]),
    ("\x1b?", ["escape", "question_mark"]),
    ("\x1b\r", ["escape", "enter"]),
    ("/d\x1b/we", ["slash", "d", "escape", "slash", "w", "e"]),
    ("\x1bj", ["alt+j"]),  # a letter: taken apart by XentuiApp.on_event, which knows about consoles
    ("\x1b", ["escape"]),
    ("\x1b\x1b", ["escape", "escape"]),
    ("\x1b[A", ["up"]),
    ("\x1b[1;3A", ["alt+up"]),
    ("ab", ["a", "b"]),
])
def test_escape_before_a_key_is_kept(data, expected):
    assert keys(EscapeKeepingParser, data) == expected


def test_textuals_own_parser_drops_that_escape():
    """Why the parser is replaced: if this fails, Textual now keeps the Escape itself and
    EscapeKeepingParser (and this test) can go."""
    assert keys(XTermParser, "\x1b/") == ["slash"]


def test_the_app_installs_it_for_the_linux_driver():
    install()
    assert linux_driver.XTermParser is EscapeKeepingParser
    install()  # twice is once
    assert linux_driver.XTermParser is EscapeKeepingParser


@pytest.mark.asyncio
async def test_screen_binds_reads_textuals_binding_chain():
    """xentui asks whether a key is bound before taking an Alt+letter apart (Textual's private _binding_chain):
    if Textual renames or reshapes it, this fails rather than every Alt+letter silently staying whole."""
    from xentui.ui.terminal_input import screen_binds

    from .helpers import make_app, settle

    app, clock = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        assert screen_binds(app.screen, "q") and screen_binds(app.screen, "ctrl+k")
        assert not screen_binds(app.screen, "alt+z")
