"""The screen's side of the config file: the column chooser, and writing the current settings back (only when
the operator asks, from the palette; the file's other tables and comments stay as they were)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, SelectionList
from textual.widgets.selection_list import Selection

from xentui.config import Settings, load_settings, settings_text
from xentui.textsafe import printable
from xentui.ui.columns import Column
from xentui.ui.dialogs import FormScreen
from xentui.ui.lines import ViewOptions
from xentui.ui.table import ordered_columns


class ColumnsScreen(FormScreen):
    """Which columns the table shows, and in what order: Space shows or hides the highlighted one, Ctrl+Up and
    Ctrl+Down move it; NAME always comes first."""

    DEFAULT_CSS = "ColumnsScreen SelectionList { height: auto; max-height: 20; }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+up", "move(-1)", "Move up"),
        Binding("ctrl+down", "move(1)", "Move down"),
    ]

    def __init__(self, view: ViewOptions) -> None:
        super().__init__()
        self.columns: list[Column] = ordered_columns(view.order)
        self.shown = {c.id for c in self.columns if c.id not in view.hidden}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Columns: Space shows or hides one, Ctrl+Up / Ctrl+Down move it (NAME stays first)",
                        classes="title")
            yield SelectionList[str](*self._selections(), id="columns")
            yield Label("", classes="problem")
            yield self.buttons("Apply")

    def _selections(self) -> list[Selection[str]]:
        return [Selection(f"{c.title:<7} {c.help}", c.id, c.id in self.shown) for c in self.columns]

    def action_move(self, step: int) -> None:
        picker = self.query_one("#columns", SelectionList)
        index = picker.highlighted
        if index is None or not 0 <= index + step < len(self.columns):
            return
        self.shown = set(picker.selected)
        self.columns[index], self.columns[index + step] = self.columns[index + step], self.columns[index]
        picker.clear_options()
        picker.add_options(self._selections())
        picker.highlighted = index + step

    def submit(self) -> None:
        shown = set(self.query_one("#columns", SelectionList).selected)
        if not shown:
            self.show_error("keep one column at least, beside NAME")
            return
        self.dismiss((tuple(c.id for c in self.columns), {c.id for c in self.columns} - shown))


class SaveSettingsScreen(FormScreen):
    """What would be written, and where; nothing is written until the operator says so."""

    def __init__(self, settings: Settings, path: Path) -> None:
        super().__init__()
        self.settings, self.path = settings, path

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Write these settings to {printable(str(self.path))}?"), classes="title")
            yield Label(Text(settings_text(self.settings)), classes="facts")
            yield Label("Only the [settings] table is replaced; the hosts, the keymap and comments stay.")
            yield Label("", classes="problem")
            yield Horizontal(Button("Cancel", id="cancel"), Button("Write", id="ok", variant="primary"),
                             classes="buttons")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    def submit(self) -> None:
        self.dismiss(True)


def current_settings(theme: str, delay: float, view: ViewOptions, path: Path) -> Settings:
    """The screen's settings now, over what the file says of the rest (the save directory, the audit log)."""
    settings, _ = load_settings(path)
    settings.theme, settings.delay = theme, delay
    settings.sort, settings.reverse = view.sort_column, view.sort_reverse
    columns = [c.id for c in ordered_columns(view.order) if c.id not in view.hidden]
    settings.columns = tuple(columns) if (view.order or view.hidden) else None
    settings.name_width = view.name_width
    settings.networks, settings.vbds, settings.vcpus = view.networks, view.vbds, view.vcpus
    settings.dom0_first = view.dom0_first
    return settings
