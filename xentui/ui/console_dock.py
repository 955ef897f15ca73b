"""The console dock under the table: one tab per guest console, opened, left, maximised, closed and saved
from the keyboard. Mixed into the app, as the actions are."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual.content import Content
from textual.message import Message

from xentui.backends.base import Action, Backend, BackendError
from xentui.model import Domain
from xentui.textsafe import printable
from xentui.ui.table import DomainTable

if TYPE_CHECKING:

    from textual.screen import Screen

    from xentui.ui.main_screen import MainScreen


class ConsoleDockMixin:
    """Mixed into the app: it provides the backend, the table, notify and the refusals this needs."""

    backend: Backend
    table: DomainTable
    console_log_dir: Path
    _console_serial: int
    notify: Callable[..., None]
    main: MainScreen
    screen: Screen
    _console_focused: Callable[[], bool]
    _unavailable: Callable[[Action, list[Domain] | None], bool]

    async def action_console(self) -> None:
        """Open the selected domain's console under the table, or go back to it if it is open."""
        domain = self.table.selected
        if domain is None:
            self.notify("No domain selected.", severity="warning")
            return
        tabs = await self.main.console_tabs()
        for pane in self.main.console_panes():
            if pane.domain_key == domain.key and not pane.view.ended:
                tabs.active = pane.parent.id  # type: ignore[union-attr]
                pane.view.focus()
                return
        if self._unavailable(Action.CONSOLE, [domain]):
            return
        try:
            channel = await self.backend.for_domain(domain).open_console(domain.name)
        except BackendError as error:
            self.notify(str(error), severity="error", title="console")
            return
        from textual.widgets import TabPane

        from xentui.ui.console_pane import ConsolePane  # pyte loads with the first console, not at start

        self._console_serial += 1
        pane_id = f"console-{self._console_serial}"
        console = ConsolePane(channel, domain=domain.name, key=domain.key)
        await tabs.add_pane(TabPane(Content(printable(domain.name)), console, id=pane_id))  # not markup
        tabs.active = pane_id
        tabs.add_class("shown")
        console.view.focus()

    def action_leave_console(self) -> None:
        self.screen.set_focus(self.table)  # now, not on the next turn of the loop (see action_filter)

    def on_terminal_view_left(self, message: Message) -> None:
        self.screen.set_focus(self.table)

    def action_console_maximise(self) -> None:
        if not self.main.console_panes():
            return
        screen = self.main
        screen.toggle_class("console-maximised")
        if self._console_focused():
            return
        # Maximised, the table hides, and Textual would pass its focus on to whatever else shows (a kept filter's
        # field, which then takes every key): no focus, the keys are the app's; given back, the table has them.
        screen.set_focus(None if screen.has_class("console-maximised") else self.table)

    async def action_console_close(self) -> None:
        pane = self.main.current_console()
        if pane is None:
            return
        await pane.view.close()
        tabs = await self.main.console_tabs()
        await tabs.remove_pane(pane.parent.id)  # type: ignore[union-attr]
        if not self.main.console_panes():
            tabs.remove_class("shown")
            self.main.remove_class("console-maximised")
            self.table.focus()

    def action_console_save_log(self) -> None:
        pane = self.main.current_console()
        if pane is None:
            self.notify("No console open.", severity="warning")
            return
        try:
            path = pane.view.save_log(self.console_log_dir)
        except OSError as error:
            self.notify(f"the console log cannot be saved in {self.console_log_dir}: {error.strerror or error}",
                        severity="error", title="console")
            return
        self.notify(f"console log saved to {path}", title="console")
