"""The action registry: one entry per action, from which the keys and the palette are built."""

from __future__ import annotations

import pytest

from xentui.backends.base import Action
from xentui.ui.app import XentuiApp
from xentui.ui.registry import SCREEN_ACTIONS, bindings, palette_commands

from .helpers import make_app, settle

XENTOP_KEYS = set("dnbvrsq")  # xentop reads these case-insensitively; an operator types them by habit


def _spelt(key: str) -> str:
    names = {"space": "Space", "ctrl+right_square_bracket": "Ctrl-]"}
    return names.get(key, f"Ctrl+{key[5:].upper()}" if key.startswith("ctrl+") else key)


def test_each_entry_is_whole_and_names_a_real_action():
    ids = [action.id for action in SCREEN_ACTIONS]
    assert len(ids) == len(set(ids))
    for action in SCREEN_ACTIONS:
        assert callable(getattr(XentuiApp, f"action_{action.method}", None)), action.id
        assert action.keys is not None or action.command is not None, f"{action.id}: neither key nor palette"


def test_a_key_and_the_palette_line_that_names_it_cannot_drift_apart():
    for action in palette_commands():
        if action.keys is not None:
            assert f"({_spelt(action.keys)})" in action.help, action.id


def test_a_destructive_action_is_never_on_a_key_an_xentop_user_types_by_habit():
    destructive = [action for action in SCREEN_ACTIONS if action.destructive]
    assert {action.id for action in destructive} >= {"destroy", "shutdown", "reboot", "save", "sysrq"}
    for action in destructive:
        assert action.keys is not None and action.keys.lower() not in XENTOP_KEYS, action.id


def test_the_app_binds_exactly_the_registry_and_the_palette_lists_it():
    registered = {binding.id for binding in [*bindings("domain"), *bindings("console")]}
    bound = {binding.id for binding in XentuiApp.BINDINGS}
    assert registered <= bound
    assert {a.id for a in SCREEN_ACTIONS if a.keys is not None} == registered


@pytest.mark.asyncio
async def test_the_palette_offers_each_registered_command_with_its_reason_when_unavailable():
    from xentui.backends.readonly import ReadOnlyBackend
    from xentui.ui.palette import XentuiCommands

    from .helpers import make_sim

    sim, clock = make_sim()
    app, _ = make_app(ReadOnlyBackend(sim))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        provider = XentuiCommands(app.screen)
        offered = {title: help_text for title, _, help_text in provider._commands()}
    for action in palette_commands():
        if action.needs is not None and action.needs is not Action.CONSOLE:  # read-only still shows consoles
            assert offered[action.command] == "unavailable: xentui was started with --read-only", action.id
        else:
            assert offered[action.command] == action.help, action.id
