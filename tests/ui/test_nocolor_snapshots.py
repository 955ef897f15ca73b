"""Under NO_COLOR no state may be told by colour alone (issue 16): ticked or not, the cursor, a mark, a highlight.

Each picture comes with a check on what was drawn (the box's glyph, reverse video on the cursor line), so a
test fails on the old look even if its snapshot were regenerated. NO_COLOR alone picks the plain theme; the
dark theme asked for by name under NO_COLOR is checked too (xentui.tcss's ``:nocolor`` rules).
Review `snapshot_report.html` before accepting changes with `pytest --snapshot-update`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import Checkbox, OptionList

from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.table import DomainTable

from .helpers import NEVER, make_sim, settle

SAVE_DIR = Path("/tmp/xentui-nocolor-snapshot-saves")
FROZEN_WALL = 1_795_000_000.0
SIZE = (100, 30)

THEMES = {"plain": None, "dark": "xentui-dark"}  # None: what NO_COLOR chooses by itself


@pytest.fixture(autouse=True)
def no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")


def make(theme: str | None) -> tuple[XentuiApp, object]:
    sim, clock = make_sim()
    SAVE_DIR.mkdir(exist_ok=True)
    for old in SAVE_DIR.iterdir():
        old.unlink()
    image = SAVE_DIR / "mail-relay-20261126-0300.save"
    image.write_bytes(b"xentui-sim saved domain v1\n{}")
    os.utime(image, (FROZEN_WALL, FROZEN_WALL))
    app = XentuiApp(sim, StartOptions(delay=NEVER, theme=theme, save_dir=SAVE_DIR))
    app.wall_clock = lambda: FROZEN_WALL
    assert app.no_color
    return app, clock


def key_of(app: XentuiApp, name: str) -> str:
    return next(d.key for d in app.sample.domains if d.name == name)


def reversed_all(strip: Strip) -> bool:
    return all(segment.style is not None and segment.style.reverse for segment in strip if segment.text.strip())


def reversed_any(strip: Strip) -> bool:
    return any(segment.style is not None and segment.style.reverse for segment in strip if segment.text.strip())


# --- the table: cursor and mark -----------------------------------------------------------------


@pytest.mark.parametrize("theme", list(THEMES))
def test_table_cursor_and_mark(snap_compare, theme):
    """The cursor line is reverse video (it was light grey on near-white in the plain theme, a colour
    difference only in the others); a marked line says "* " and is bold underlined, not reversed."""
    app, clock = make(THEMES[theme])
    seen: dict[str, object] = {}

    async def run_before(pilot) -> None:
        await settle(pilot, app, clock)
        table = app.query_one(DomainTable)
        table.toggle_mark(key_of(app, "db-primary"))
        table.select(key_of(app, "web-frontend-01"))
        table.focus()
        await pilot.pause()
        lines = {strip.text.split()[0] if strip.text.split() else "": strip
                 for strip in (table.render_line(y) for y in range(1, table.size.height))}
        seen["cursor"] = lines["web-frontend-01"]
        seen["marked"] = lines["*"]
        seen["others"] = [strip for first, strip in lines.items() if first not in ("web-frontend-01", "*")]

    matched = snap_compare(app, terminal_size=SIZE, run_before=run_before)
    cursor, marked = seen["cursor"], seen["marked"]
    assert reversed_all(cursor)
    assert all(segment.style.bold for segment in cursor if segment.text.strip())
    assert marked.text.startswith("* db-primary")
    assert all(segment.style.bold and segment.style.underline for segment in marked if segment.text.strip())
    assert not reversed_any(marked)
    assert not any(reversed_any(strip) for strip in seen["others"])
    assert matched


# --- the modals with a checkbox -----------------------------------------------------------------

CHECKBOX_MODALS = {
    "vcpu-set": ("vcpu_set", "#overcommit"),
    "save": ("save", "#keep"),
    "restore": ("restore", "#paused"),
    "migrate": ("migrate", "#live"),
    "evacuate": ("evacuate", "#carry-on"),
}


@pytest.mark.parametrize("ticked", [True, False], ids=["ticked", "unticked"])
@pytest.mark.parametrize("modal", list(CHECKBOX_MODALS))
def test_checkbox_modal(snap_compare, modal, ticked):
    """A ticked box draws [X], an unticked one [ ] (Textual draws X in both, only the colour differs)."""
    action, selector = CHECKBOX_MODALS[modal]
    app, clock = make(None)
    seen: dict[str, str] = {}

    async def run_before(pilot) -> None:
        await settle(pilot, app, clock)
        app.query_one(DomainTable).select(key_of(app, "mail-relay"))
        await app.run_action(action)
        await pilot.pause()
        box = app.screen.query_one(selector, Checkbox)
        box.value = ticked
        await pilot.pause()
        seen["box"] = box.render().plain
        seen["label"] = str(box.label)

    matched = snap_compare(app, terminal_size=SIZE, run_before=run_before)
    glyph = "[X]" if ticked else "[ ]"
    assert seen["box"].startswith(f"{glyph} {seen['label']}")
    assert matched


# --- focus and highlight: a focused checkbox, the restore list, the sort picker ----------------


@pytest.mark.parametrize("theme", list(THEMES))
def test_focused_checkbox(snap_compare, theme):
    """The focused box's label is reverse video; the focused button elsewhere is Textual's bold reverse."""
    app, clock = make(THEMES[theme])
    seen: dict[str, object] = {}

    async def run_before(pilot) -> None:
        await settle(pilot, app, clock)
        app.query_one(DomainTable).select(key_of(app, "mail-relay"))
        await app.run_action("vcpu_set")
        await pilot.pause()
        box = app.screen.query_one("#overcommit", Checkbox)
        box.focus()
        await pilot.pause()
        seen["focused"] = app.focused is box
        seen["lines"] = box.render_lines(Region(0, 0, *box.outer_size))

    matched = snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert seen["focused"]
    label = [segment for strip in seen["lines"] for segment in strip if "more vCPUs" in segment.text]
    assert label and all(segment.style.reverse for segment in label)
    assert matched


@pytest.mark.parametrize("theme", list(THEMES))
@pytest.mark.parametrize("picker", ["restore", "sort_menu"])
def test_list_highlight(snap_compare, picker, theme):
    """The highlighted option of a list (restore's files, the sort picker) is reverse video, the rest not."""
    app, clock = make(THEMES[theme])
    seen: dict[str, object] = {}

    async def run_before(pilot) -> None:
        await settle(pilot, app, clock)
        await app.run_action(picker)
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        options.focus()
        await pilot.pause()
        assert options.highlighted_option is not None
        seen["highlighted"] = str(options.highlighted_option.prompt)
        seen["lines"] = [options.render_line(y) for y in range(options.virtual_size.height)]

    matched = snap_compare(app, terminal_size=SIZE, run_before=run_before)
    lines = [strip for strip in seen["lines"] if strip.text.strip()]
    reversed_lines = [strip.text for strip in lines if reversed_all(strip)]
    assert " ".join(" ".join(reversed_lines).split()) == " ".join(str(seen["highlighted"]).split())
    assert all(reversed_all(strip) or not reversed_any(strip) for strip in lines)
    assert matched
