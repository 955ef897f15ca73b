"""The screen under every dialog: the host header, the banners, the domain table, the filter field, the console
dock and the footer.

It owns the widgets and how a sample, an error or a console is shown on them; the app owns the keys, the
polling (what is shown) and the actions (what is done). The app finds it as `XentuiApp.main`, whatever
screen is on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from xentui.model import Rates, Sample
from xentui.ui.header import HostHeader
from xentui.ui.table import DomainTable, ViewOptions

if TYPE_CHECKING:
    from textual.widgets import TabbedContent

    from xentui.ui.console_pane import ConsolePane


class FilterField(Input):
    """The name filter's field. After Escape it drops the keys already queued to it, up to a marker
    queued behind them: typed before Escape, they belong to the filter Escape cleared."""

    _dropping = False

    def drop_queued_keys(self) -> None:
        self._dropping = True
        self.call_later(self._stop_dropping)

    def _stop_dropping(self) -> None:
        self._dropping = False

    async def _on_key(self, event: events.Key) -> None:
        if self._dropping:
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)


class MainScreen(Screen[None]):
    """The host header, a banner for errors and waits, one for the audit log, the table, the filter, the
    consoles (mounted with the first one: a quicker first frame) and the footer."""

    class Ready(Message):
        """The widgets are mounted: the app may focus the table and start polling."""

    def __init__(self, view: ViewOptions) -> None:
        super().__init__()
        self._view = view

    def compose(self) -> ComposeResult:
        yield HostHeader(id="host")
        yield Static(id="banner")
        yield Static(id="audit-banner")
        yield DomainTable(self._view, id="domains")
        # The filter field is there from the start (hidden) so that '/' focuses it at once: over ssh,
        # "/guest2" arrives in one read and every letter after '/' must land in it, not run as a key.
        yield FilterField(placeholder="filter: a name, state, id or uuid; host:, state:, id: (Enter keeps, Escape "
                                      "clears)", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.post_message(self.Ready())

    @property
    def showing(self) -> bool:
        """The widgets are up: False before they are mounted and once quitting has taken them down."""
        return bool(self.query(DomainTable))

    @property
    def table(self) -> DomainTable:
        return self.query_one(DomainTable)

    @property
    def filter_field(self) -> FilterField:
        return self.query_one(FilterField)

    @property
    def header(self) -> HostHeader:
        return self.query_one(HostHeader)

    # what is shown --------------------------------------------------------------------------------

    def show_banner(self, text: str | None, *, banner_id: str = "banner") -> None:
        """A line under the header (a backend error, staleness, a slow first sample), or none."""
        banner = self.query_one(f"#{banner_id}", Static)
        if text is None:
            banner.remove_class("shown")
            return
        banner.update(Text(text))  # never markup: the text carries names and errors from outside
        banner.add_class("shown")

    def banner_shown(self, banner_id: str = "banner") -> bool:
        return self.query_one(f"#{banner_id}", Static).has_class("shown")

    def show_sample(self, sample: Sample, rates: Rates) -> None:
        """The table shows the sample; a paused or crashed guest's console says why it is silent."""
        self.table.update_sample(sample, rates)
        for pane in self.console_panes():
            domain = sample.domain(pane.domain_key)
            pane.show_domain_state(None if domain is None else domain.state)

    # the console dock ---------------------------------------------------------------------------------

    def console_panes(self) -> list[ConsolePane]:
        return list(self.query("ConsolePane"))  # type: ignore[arg-type]

    async def console_tabs(self) -> TabbedContent:
        """The dock's tabs, mounted under the table when the first console opens."""
        from textual.widgets import TabbedContent  # with the first console: a quicker first frame

        found = self.query("#consoles")
        if found:
            return found.first(TabbedContent)
        tabs = TabbedContent(id="consoles")
        await self.mount(tabs, after=self.table)
        return tabs

    def current_console(self) -> ConsolePane | None:
        found_tabs = self.query("#consoles")
        if not found_tabs:
            return None
        tabs: TabbedContent = found_tabs.first()  # type: ignore[assignment]
        if not tabs.active:
            return None
        pane = tabs.get_pane(tabs.active)
        found = pane.query("ConsolePane")
        return found.first() if found else None  # type: ignore[return-value]
