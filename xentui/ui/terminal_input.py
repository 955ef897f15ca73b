"""The private parts of Textual xentui relies on, in this one module, each with a test that fails when Textual
changes it (tests/ui/test_terminal_input.py): the key parser of the Linux driver, and a screen's binding chain.

Escape typed right before a punctuation key, as the terminal sends it: ESC then the key, often in one read.

Textual's parser reads ESC + letter as Alt+letter (XentuiApp.on_event takes that apart again), but
for ESC + any other key it drops the ESC and reports the key alone: "Escape, /" typed fast in the
filter put a '/' in it, and a guest in the console never got the ESC. The parser below reports
the Escape too. Installed for the Linux driver (what runs over ssh); Textual is pinned, and
tests/ui/test_terminal_input.py feeds it real byte strings.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import events
from textual._xterm_parser import XTermParser
from textual.drivers import linux_driver
from textual.screen import Screen


class EscapeKeepingParser(XTermParser):
    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        for event in super()._sequence_to_key_events(sequence, alt):
            # alt: this key came right after an ESC that began no known sequence
            if alt and not event.key.startswith("alt+"):
                yield events.Key("escape", "\x1b")
            yield event


def install() -> None:
    """Make the Linux driver read keys with `EscapeKeepingParser` (once; a no-op if Textual changed)."""
    if linux_driver.XTermParser is XTermParser:
        linux_driver.XTermParser = EscapeKeepingParser  # type: ignore[misc]


def screen_binds(screen: Screen, key: str) -> bool:
    """Whether anything on the screen's focus chain (the focused widget up to the app) binds ``key``."""
    return any(key in bindings.key_to_bindings for _, bindings in screen._binding_chain)
