"""The command palette: every action and view by name, built from the action registry and the columns.

Actions the backend cannot do stay listed, saying why (the palette is where an operator looks for them).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from xentui.ui.columns import COLUMNS
from xentui.ui.registry import palette_commands

if TYPE_CHECKING:
    from xentui.ui.app import XentuiApp

__all__ = ["XentuiCommands"]


class XentuiCommands(Provider):
    """Every command, titled "category: action", for the command palette."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = cast("XentuiApp", self.app)
        commands: list[tuple[str, Callable[[], object], str]] = [
            ("domain: details", app.action_details, "everything about the selected domain, live"),
            ("view: networks", app.action_toggle_networks, "per-vif rows under each domain (n)"),
            ("view: vbds", app.action_toggle_vbds, "per-vbd rows under each domain (b)"),
            ("view: vcpus", app.action_toggle_vcpus, "per-vCPU rows under each domain (v)"),
            ("view: repeat header", app.action_toggle_repeat_header, "the header before every domain (r)"),
            ("view: cumulative figures", app.action_toggle_cumulative, "xentop's counters instead of rates (c)"),
            ("view: Domain-0 first", app.action_toggle_dom0_first, "pin Domain-0 above the sorted rest (z)"),
            ("view: group by host", app.action_toggle_grouped,
             "a pool: a line per host with its domains, or one list with a HOST column (G)"),
            ("view: filter by name", app.action_filter, "show only names containing some text (/)"),
            ("view: clear filter", app.action_clear_filter, "show every domain again (Escape)"),
            ("poll: change delay", app.action_delay, "seconds between updates (d)"),
            ("poll: refresh now", app.action_refresh_now, "sample at once (Ctrl+L)"),
            ("sort: next column", app.action_sort_next, "as xentop's s"),
            ("sort: reverse", app.action_sort_reverse, "flip the order (i)"),
            ("sort: pick a column", app.action_sort_menu, "choose from every column (o)"),
            ("view: columns", app.action_columns, "which columns the table shows, and in what order"),
            ("settings: write to the config file", app.action_save_settings,
             "theme, delay, sort, columns, views into [settings] of the config file, after showing them"),
            ("help: keys", app.action_help, "every key (?)"),
            ("app: quit", app.action_quit, "leave xentui (q)"),
        ]
        capabilities = app.backend.capabilities
        for action in palette_commands():
            why = capabilities.why_not(action.needs) if action.needs is not None else None
            shown = action.help if why is None else f"unavailable: {why}"
            commands.append((action.command or action.id, partial(app.run_action, action.method), shown))
        for column in COLUMNS:
            commands.append((f"sort: {column.title}", partial(app.sort_by, column.id), column.help))
        for name in sorted(app.xentui_themes):  # xentui's, not the twenty Textual registers
            commands.append((f"theme: {name}", partial(setattr, app, "theme", name), "switch colours"))
        return commands

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
