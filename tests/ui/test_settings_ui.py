"""The config file on the screen: a keymap by binding id (conflicts refused and said), user themes (a broken one
said by name), the column chooser, and the settings written back only when asked."""

from __future__ import annotations

import tomllib

import pytest
from textual.widgets import SelectionList

from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.devices import DisksScreen
from xentui.ui.settings import ColumnsScreen, SaveSettingsScreen
from xentui.ui.table import DomainTable, ViewOptions

from .helpers import NEVER, make_sim, settle, wait_for

pytestmark = pytest.mark.asyncio


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "xentui").mkdir()
    return tmp_path / "xentui"


def make(options: StartOptions | None = None):
    sim, clock = make_sim()
    return XentuiApp(sim, options or StartOptions(delay=NEVER, theme="xentui-dark")), clock


async def test_a_keymap_moves_a_binding_and_a_conflict_is_refused_and_said():
    app, clock = make(StartOptions(delay=NEVER, theme="xentui-dark",
                                   keymap={"disks": "F5", "destroy": "d", "no-such": "x"}))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("f5")
        assert isinstance(app.screen, DisksScreen)
        await pilot.press("escape")
        assert "keymap: destroy = 'd' refused: d is delay's" in app.config_problems
        assert "keymap: no binding 'no-such' (the ids are in the help, ?)" in app.config_problems
        rows = {key.lower(): text for key, text in app.key_help()[2][1]}  # the help shows the key in force
        assert rows["f5"] == "the guest's disks: attach one, detach one" and "a" not in rows


async def test_a_user_theme_is_offered_and_a_broken_one_said_by_name(config_home):
    themes = config_home / "themes"
    themes.mkdir()
    (themes / "night.toml").write_text('name = "night"\nprimary = "#224466"\ndark = true\n')
    (themes / "broken.toml").write_text('name = "broken"\nprimary = \n')
    app, clock = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        assert "night" in app.xentui_themes
        assert any("broken.toml: not loaded" in problem for problem in app.config_problems)
        app.theme = "night"
        await pilot.pause()


async def test_the_column_chooser_hides_and_moves_columns():
    app, clock = make()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app, clock)
        app.action_columns()
        await pilot.pause()
        assert isinstance(app.screen, ColumnsScreen)
        picker = app.screen.query_one("#columns", SelectionList)
        picker.deselect("cpu_s")
        picker.highlighted = 3  # MEM after STATE, CPU%, CPU(s)
        await pilot.press("ctrl+up")
        app.screen.submit()
        await pilot.pause()
        titles = [c.title for c in app.query_one(DomainTable)._columns]
        assert titles[:4] == ["STATE", "CPU%", "MEM", "MEM%"] and "CPU(s)" not in titles


async def test_settings_are_written_back_only_when_asked(config_home):
    (config_home / "config.toml").write_text('[[hosts]]\nname = "a"\naddress = "root@a"\n')
    app, clock = make(StartOptions(delay=NEVER, theme="xentui-dark", view=ViewOptions(sort_column="mem")))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("v")
        assert "settings" not in tomllib.loads((config_home / "config.toml").read_text())  # not behind our back
        app.action_save_settings()
        await pilot.pause()
        assert isinstance(app.screen, SaveSettingsScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "settings" in tomllib.loads((config_home / "config.toml").read_text()))
    document = tomllib.loads((config_home / "config.toml").read_text())
    assert document["hosts"] == [{"name": "a", "address": "root@a"}]
    assert document["settings"]["sort"] == "mem" and document["settings"]["vcpus"] is True
    assert document["settings"]["theme"] == "xentui-dark"
