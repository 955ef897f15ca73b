"""The live domain table, drawn with Textual's Line API.

Each refresh re-sorts and re-filters the domains (cheap, O(n log n) over keys) and lays out
one entry per screen line, but cells are formatted only for the lines on screen, so the
drawing cost follows the visible rows, not the number of domains. The NAME column stays
put while the rest scrolls sideways; the cursor follows a domain, not a row number.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from xentui.model import Domain, DomainState, Rates, Sample
from xentui.model.filters import DomainFilter
from xentui.textsafe import printable
from xentui.ui.columns import BY_ID, COLUMNS, HOST_COLUMN, Column
from xentui.ui.lines import (
    HOST_KEY,
    SUBROW_INDENT,
    DomainLines,
    GroupedLines,
    Line,
    ViewOptions,
    host_key,
    host_line_text,
    subrow_text,
)

NAME_MIN_WIDTH = 10


class DomainTable(ScrollView, can_focus=True):
    """Every domain of the last sample, one line each, sub-rows on request."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "cursor_first", "First domain", show=False),
        Binding("end", "cursor_last", "Last domain", show=False),
        Binding("left", "scroll_columns(-8)", "Scroll columns left", show=False),
        Binding("right", "scroll_columns(8)", "Scroll columns right", show=False),
        # A binding, not a key handler: it then runs after the cursor keys typed before it in one burst.
        Binding("enter", "activate", "details of the selected domain (Escape goes back)", show=False),
        Binding("minus", "fold", "fold or unfold the selected host's domains (a pool)", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "domain-table--header",
        "domain-table--header-sorted",
        "domain-table--cursor",
        "domain-table--subrow",
        "domain-table--sorted",
        "domain-table--marked",
        "domain-table--host",
        "domain-table--host-down",
        *(f"domain-table--{state.value}" for state in DomainState),
    }

    DEFAULT_CSS = """
    DomainTable {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 1;
    }
    DomainTable > .domain-table--header { background: $panel; color: $foreground; text-style: bold; }
    DomainTable > .domain-table--header-sorted { background: $panel; color: $accent; text-style: bold; }
    DomainTable > .domain-table--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }
    DomainTable:focus > .domain-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    DomainTable > .domain-table--subrow { color: $text-muted; }
    DomainTable > .domain-table--sorted { text-style: bold; }
    DomainTable > .domain-table--marked { text-style: bold underline; }
    DomainTable > .domain-table--host { background: $boost; color: $foreground; text-style: bold; }
    DomainTable > .domain-table--host-down { background: $boost; color: $error; text-style: bold; }
    DomainTable > .domain-table--running { color: $state-running; }
    DomainTable > .domain-table--blocked { color: $state-blocked; }
    DomainTable > .domain-table--paused { color: $state-paused; }
    DomainTable > .domain-table--shutdown { color: $state-shutdown; }
    DomainTable > .domain-table--crashed { color: $state-crashed; text-style: bold; }
    DomainTable > .domain-table--dying { color: $state-dying; }
    """

    cursor_key: reactive[str | None] = reactive(None, layout=False, repaint=False)
    """The selected domain (`Domain.key`); survives refreshes, sorts and filtering."""

    class CursorMoved(Message):
        def __init__(self, key: str | None) -> None:
            super().__init__()
            self.key = key

    class HeaderClicked(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    class Activated(Message):
        """Enter or a double click on a domain (a host line folds or unfolds instead)."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, options: ViewOptions | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.options = options or ViewOptions()
        self._sample: Sample | None = None
        self._rates = Rates()
        self._lines: Sequence[Line] = []
        self._domain_lines: Sequence[int] = []  # line index of each line the cursor may be on, in order
        self._line_of_key: dict[str, int] = {}
        self._ordered_keys: list[str] = []  # the keys of those lines (domains, and a pool's hosts), in order
        self._casefolded: dict[str, str] = {}  # name -> casefolded, for sorting and filtering
        self._by_name: tuple[list[str], list[int]] = ([], [])  # names as listed, their positions by name
        self._name_widths: dict[str, int] = {}  # name -> cells it takes as drawn
        self._name_width = NAME_MIN_WIDTH
        self._columns: list[Column] = []
        self._styles: dict[str, Style] = {}
        self._strips: dict[tuple[int, bool, int, int], Strip] = {}  # drawn lines of this sample
        self._name_cells: dict[tuple[str, int], str] = {}
        self._printable: dict[str, str] = {}  # name -> as shown
        self.marked: set[str] = set()  # domain keys marked for a bulk action
        self._cursor_position = 0  # among shown domains, to land near when the selected one goes
        # Until the operator picks a domain the cursor stays on the top row: the first sample has no
        # rates, so its order (by name) says nothing, and the domain on top then is no choice.
        self._cursor_chosen = False
        self.rebuilds = 0
        self.lines_rendered = 0

    # data ------------------------------------------------------------------------------------

    @property
    def shown_keys(self) -> list[str]:
        """The keys of the domains shown, in order."""
        return [key for key in self._ordered_keys if not key.startswith(HOST_KEY)]

    def keys_near_view(self) -> list[str] | None:
        """The keys of the domains on screen and a screenful each way (what a scroll reaches before the next
        refresh); None with sub-rows, where lines are not one per domain."""
        if len(self._domain_lines) != len(self._lines):
            return None
        top, height = self.scroll_offset.y, max(1, self.size.height)
        return self._ordered_keys[max(0, top - height):top + 2 * height]

    def keys_on_screen(self) -> list[str]:
        """The keys of the domains whose rows are on screen (with sub-rows: of the domains in the rows shown)."""
        top, height = self.scroll_offset.y, max(1, self.size.height)
        if len(self._domain_lines) == len(self._lines):
            return self._ordered_keys[top:top + height]
        return list(dict.fromkeys(line.domain.key for line in self._lines[top:top + height]
                                  if line.domain is not None))

    @property
    def selected(self) -> Domain | None:
        index = self._line_of_key.get(self.cursor_key or "")
        return None if index is None else self._lines[index].domain

    def update_sample(self, sample: Sample, rates: Rates) -> None:
        self._sample = sample
        self._rates = rates
        self.rebuild()

    def rebuild(self) -> None:
        """Filter, sort and lay out lines. O(n log n) in domains; no cell is formatted here.

        Runs at every refresh for every domain, so the per-domain work is kept to comprehensions
        and C-level sorting; `Line`s of the plain view are only made for the rows drawn.
        """
        self.rebuilds += 1
        sample = self._sample
        if sample is None:
            return
        options = self.options
        names = sample.names()
        self._learn_names(names)
        keys = sample.keys()
        positions: Sequence[int] = range(len(names))  # of the domains shown, in the sample
        if options.filter_text:
            shown, folded = self._printable, self._casefolded
            positions = DomainFilter.parse(options.filter_text).positions(
                sample, [folded[name] for name in names], [shown[name].casefold() for name in names])
            names = [names[i] for i in positions]
            keys = [keys[i] for i in positions]
        order = [positions[i] for i in self._order(positions, keys, names, sample)]
        if options.dom0_first:
            ids = sample.ids()
            order.sort(key=lambda i: ids[i] != 0)
        every_key = sample.keys()
        ordered_keys = [every_key[i] for i in order]
        lines: Sequence[Line]
        domain_lines: Sequence[int]
        if len(sample.hosts) > 1 and options.grouped:
            lines, domain_lines, ordered_keys = self._grouped_lines(sample, order, bool(options.filter_text))
        elif options.vcpus or options.networks or options.vbds or options.repeat_header:
            lines, domain_lines = self._lines_with_subrows([sample.domains[i] for i in order])
        else:
            lines, domain_lines = DomainLines(sample.domains, order), range(len(order))
        self._lines = lines
        self._domain_lines = domain_lines
        self._line_of_key = dict(zip(ordered_keys, domain_lines, strict=True))
        self._ordered_keys = ordered_keys
        self._name_width = max(NAME_MIN_WIDTH, max(map(self._name_widths.__getitem__, names), default=0))
        self._columns = [c for c in ordered_columns(options.order) if c.id not in options.hidden]
        if len(sample.hosts) > 1 and not options.grouped:  # one list across the pool: which host, beside NAME
            self._columns.insert(0, HOST_COLUMN)
        self._settle_cursor()
        self._strips.clear()
        size = Size(self._name_width + 1 + self._rest_width(), len(lines) + 1)
        if size != self.virtual_size:
            self.virtual_size = size
            self.refresh()
            return
        # The same number of lines as before (else the size changed): only the title row and those lines may
        # have changed. The blank rows under a short table stay as drawn (a few domains on a tall terminal).
        rows = 1 + len(lines) - self.scroll_offset.y
        if rows >= self.size.height:
            self.refresh()
        else:
            self.refresh(Region(0, 0, self.size.width, max(1, rows)))

    def _lines_with_subrows(self, ordered: list[Domain], lines: list[Line] | None = None,
                            domain_lines: list[int] | None = None) -> tuple[list[Line], list[int]]:
        options = self.options
        lines = [] if lines is None else lines
        domain_lines = [] if domain_lines is None else domain_lines
        for domain in ordered:
            if options.repeat_header and lines:
                lines.append(Line("header", None))
            domain_lines.append(len(lines))
            lines.append(Line("domain", domain))
            if options.vcpus:
                lines.extend(Line("vcpu", domain, vcpu.index) for vcpu in domain.vcpus if vcpu.online)
            if options.networks:
                lines.extend(Line("vif", domain, i) for i in range(len(domain.vifs)))
            if options.vbds:
                lines.extend(Line("vbd", domain, i) for i in range(len(domain.vbds)))
        return lines, domain_lines

    @staticmethod
    def _host_of_positions(sample: Sample) -> list[int]:
        """Which of `Sample.hosts` each domain of a pool's sample is on: the pool lists each host's domains
        together, in the hosts' order."""
        return [h for h, status in enumerate(sample.hosts) for _ in range(status.domains)]

    def _grouped_lines(self, sample: Sample, order: list[int],
                       filtering: bool) -> tuple[Sequence[Line], list[int], list[str]]:
        """A pool's view: a line per host, its domains (in the chosen order) under it unless folded. A host
        with no domain left by the filter is left out too, unless it is down (its trouble stays in sight)."""
        host_of = self._host_of_positions(sample)
        groups: list[list[int]] = [[] for _ in sample.hosts]
        for i in order:
            groups[host_of[i]].append(i)
        options = self.options
        plain = not (options.vcpus or options.networks or options.vbds or options.repeat_header)
        lines: list[Line] = []
        entries: list[int] = []  # the plain view's, see `GroupedLines`
        nav_lines: list[int] = []
        nav_keys: list[str] = []
        keys, domains = sample.keys(), sample.domains
        for h, status in enumerate(sample.hosts):
            if filtering and not groups[h] and status.error is None:
                continue
            nav_keys.append(host_key(status.label))
            if plain:
                nav_lines.append(len(entries))
                entries.append(-1 - h)
            else:
                nav_lines.append(len(lines))
                lines.append(Line("host", None, h))
            if status.label in options.folded:
                continue
            nav_keys.extend(keys[i] for i in groups[h])
            if plain:
                nav_lines.extend(range(len(entries), len(entries) + len(groups[h])))
                entries.extend(groups[h])
            else:
                self._lines_with_subrows([domains[i] for i in groups[h]], lines, nav_lines)
        return (GroupedLines(domains, entries) if plain else lines), nav_lines, nav_keys

    def _learn_names(self, names: list[str]) -> None:
        """How each name is drawn (control characters, escapes and bidi overrides made visible), its
        width and its casefolded form, worked out once per name: names rarely change between refreshes."""
        shown, widths, folded = self._printable, self._name_widths, self._casefolded
        if len(shown) > 4 * len(names) + 1000:  # names come and go: forget those long gone
            shown.clear()
            widths.clear()
            folded.clear()
        for name in [name for name in names if name not in shown]:
            shown[name] = printable(name)
            widths[name] = cell_len(shown[name])
            folded[name] = name.casefold()

    def _order(self, positions: Sequence[int], keys: list[str], names: list[str], sample: Sample) -> list[int]:
        """Indexes into ``positions`` (of domains in ``sample``, with these keys and names) in the chosen
        column's order; the name breaks ties, so equal values never shuffle between refreshes. A rate is
        compared as the column shows it (CPU % to a tenth): guests idling at 0.0 or busy at 100.0 keep
        their places whatever the noise below that."""
        options = self.options
        column = BY_ID.get(options.sort_column, BY_ID["cpu_pct"])
        descending = column.descending != options.sort_reverse
        by_name = self._positions_by_name(names)
        if column.id == "name":
            if not descending:
                return by_name
            return sorted(by_name, key=list(map(self._casefolded.__getitem__, names)).__getitem__, reverse=True)
        key_of = column.xentop_key if options.cumulative else column.key
        attr = getattr(key_of, "rate_attr", None)
        figure = getattr(key_of, "column_attr", None)
        if attr is not None:
            values = self._rates.column(attr, keys)  # a domain without rates yet sorts as below zero
            digits = getattr(key_of, "shown_digits", None)
            if digits is not None:
                values = list(map(round, values, repeat(digits)))
        elif figure is not None and sample.columns is not None:  # the record's figure, as a column: no records
            column_values = getattr(sample.columns, figure)
            values = [column_values[i] for i in positions]
        else:  # a figure of the record: rates are not read, and records are made for every domain shown
            domains, host_of = sample.domains, sample.host_of
            values = [key_of(domains[i], None, host_of(domains[i])) for i in positions]
        # A stable sort, reversed or not, keeps equal values in name order.
        return sorted(by_name, key=values.__getitem__, reverse=descending)

    def _positions_by_name(self, names: list[str]) -> list[int]:
        """Positions of ``names`` in name order (casefolded), kept while the same names come in the same order."""
        known_names, positions = self._by_name
        if names != known_names:
            folded = list(map(self._casefolded.__getitem__, names))
            positions = sorted(range(len(names)), key=folded.__getitem__)
            self._by_name = (names, positions)
        return positions

    def _settle_cursor(self) -> None:
        keys = self._domain_lines
        if not keys:
            self._set_cursor(None)
            return
        key = self.cursor_key
        if not self._cursor_chosen:  # the first domain (under a pool's first host line)
            first = next((i for i, key in enumerate(self._ordered_keys) if not key.startswith(HOST_KEY)), 0)
            self._cursor_position = first
            self._set_cursor(self._ordered_keys[first])
        elif key is not None and key in self._line_of_key:
            self._cursor_position = self._domain_position(key)
        else:  # gone (or filtered out): stay at the same height
            position = min(self._cursor_position, len(keys) - 1)
            self._set_cursor(self._ordered_keys[position])

    def _domain_position(self, key: str) -> int:
        line = self._line_of_key[key]
        low, high = 0, len(self._domain_lines)
        while low < high:  # the domain lines are in ascending order
            middle = (low + high) // 2
            if self._domain_lines[middle] < line:
                low = middle + 1
            else:
                high = middle
        return low

    def _set_cursor(self, key: str | None) -> None:
        if key != self.cursor_key:
            self.cursor_key = key
            self.post_message(self.CursorMoved(key))

    # geometry ------------------------------------------------------------------------------

    def _width_of(self, column: Column) -> int:
        cumulative = self.options.cumulative
        title = column.xentop_title if cumulative else column.title
        return max(column.xentop_width if cumulative else column.width, len(title) + 1)

    def _rest_width(self) -> int:
        return sum(self._width_of(column) + 1 for column in self._columns)

    def _pinned_width(self) -> int:
        """The NAME column as drawn: its full width, unless the screen is too narrow for that."""
        share = 0.4 if self.size.width >= 120 else 0.3
        cap = max(NAME_MIN_WIDTH + 6, int(self.size.width * share))
        if self.options.name_width is not None:
            cap = min(cap, max(NAME_MIN_WIDTH, self.options.name_width))
        return min(self._name_width, cap)

    # drawing ------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        self._styles.clear()
        self._strips.clear()
        super().notify_style_update()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"domain-table--{name}", partial=True)
        return style

    def render_line(self, y: int) -> Strip:
        self.lines_rendered += 1
        width = self.size.width
        index = -1 if y == 0 else self.scroll_offset.y + y - 1
        cursor = index >= 0 and index == self._line_of_key.get(self.cursor_key or "", -2)
        key = (index, cursor, self.scroll_offset.x, width)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._render(index, cursor, width)
        return strip

    def _render(self, index: int, cursor: bool, width: int) -> Strip:
        base = self.rich_style
        if index < 0:
            return self._header_strip(width, base)
        if index >= len(self._lines):
            return Strip.blank(width, base)
        line = self._lines[index]
        if line.kind == "header":
            return self._header_strip(width, base)
        if line.kind == "host":
            return self._host_strip(line.index, cursor, width, base)
        domain = line.domain
        assert domain is not None and self._sample is not None
        style = base + self._style(domain.state.value)
        if line.kind == "domain":
            if cursor:
                style += self._style("cursor")
            return self._domain_strip(domain, style, width)
        return self._subrow_strip(line, base + self._style("subrow"), width)

    def _name_cell(self, name: str, width: int) -> str:
        cell = self._name_cells.get((name, width))
        if cell is None:
            fits = cell_len(name) <= width
            cell = set_cell_size(name, width) if fits else set_cell_size(name, width - 1) + "…"
            if len(self._name_cells) > 20_000:
                self._name_cells.clear()
            self._name_cells[(name, width)] = cell
        return cell

    def _strip(self, pinned: str, pinned_style: Style, rest: str, style: Style, width: int,
               highlight: tuple[int, int, Style] | None = None) -> Strip:
        """One screen line: the pinned name, then ``rest`` scrolled sideways; ``rest`` is one cell per character.

        ``highlight`` (start, end, style) marks the sorted column within ``rest``.
        """
        name_width = self._pinned_width() + 1
        available = max(0, width - name_width)
        x = self.scroll_offset.x
        visible = rest[x:x + available]
        segments = [Segment(self._name_cell(pinned, name_width - 1) + " ", pinned_style)]
        if highlight is not None:
            start, end = max(0, highlight[0] - x), max(0, highlight[1] - x)
            segments += [Segment(visible[:start], style), Segment(visible[start:end], highlight[2]),
                         Segment(visible[end:], style)]
        else:
            segments.append(Segment(visible, style))
        if len(visible) < available:
            segments.append(Segment(" " * (available - len(visible)), style))
        return Strip(segments, name_width + available)

    def _sorted_span(self) -> tuple[int, int] | None:
        """Where the sorted column sits within the scrolling part, or None when it is NAME."""
        offset = 0
        for column in self._columns:
            step = self._width_of(column) + 1
            if column.id == self.options.sort_column:
                return offset, offset + step
            offset += step
        return None

    def _header_strip(self, width: int, base: Style) -> Strip:
        header = base + self._style("header")
        sorted_style = base + self._style("header-sorted")
        options = self.options
        ascending = BY_ID[options.sort_column].descending == options.sort_reverse
        # in ASCII "vCPU%" would read as a column of its own: + and - instead
        arrow = ("+" if ascending else "-") if getattr(self.app, "ascii", False) else ("▲" if ascending else "▼")
        by_name = options.sort_column == "name"
        titles = []
        for column in self._columns:
            title = column.xentop_title if options.cumulative else column.title
            if column.id == options.sort_column:
                title = arrow + title
            titles.append(" " + title.rjust(self._width_of(column)))
        span = self._sorted_span()
        return self._strip(arrow + "NAME" if by_name else "NAME", sorted_style if by_name else header,
                           "".join(titles), header, width, None if span is None else (*span, sorted_style))

    def _domain_strip(self, domain: Domain, style: Style, width: int) -> Strip:
        assert self._sample is not None
        marked = domain.key in self.marked
        if marked:
            style += self._style("marked")
        rates = self._rates.get(domain.key)
        host = self._sample.host_of(domain)
        cumulative = self.options.cumulative
        cells = [
            " " + (column.xentop_text if cumulative else column.text)(domain, rates, host).rjust(self._width_of(column))
            for column in self._columns
        ]
        sorted_style = style + self._style("sorted")
        by_name = self.options.sort_column == "name"
        span = self._sorted_span()
        name = ("* " if marked else "") + self._printable[domain.name]
        return self._strip(name, sorted_style if by_name else style, "".join(cells), style,
                           width, None if span is None else (*span, sorted_style))

    def _host_strip(self, index: int, cursor: bool, width: int, base: Style) -> Strip:
        """A pool host's line: its name, then what it is and how it is, or why it is down."""
        assert self._sample is not None
        status = self._sample.hosts[index]
        style = base + self._style("host" if status.error is None else "host-down")
        if cursor:
            style += self._style("cursor")
        sign = "▸ " if status.label in self.options.folded else "▾ "
        text = "  " + host_line_text(status)
        text = set_cell_size(text, cell_len(text)) if not text.isascii() else text
        return self._strip(sign + printable(status.label), style, text, style, width)

    def _subrow_strip(self, line: Line, style: Style, width: int) -> Strip:
        domain = line.domain
        assert domain is not None
        label, text = subrow_text(line, self._rates.get(domain.key), cumulative=self.options.cumulative)
        # paths may hold wide characters: make the text one cell per character before slicing
        text = set_cell_size(text, cell_len(text)) if not text.isascii() else text
        return self._strip(SUBROW_INDENT + label, style, " " + text, style, width)

    # marks --------------------------------------------------------------------------------------

    def toggle_mark(self, key: str) -> None:
        self.marked.symmetric_difference_update({key})
        self._redraw_domain(key)

    def clear_marks(self) -> None:
        keys, self.marked = self.marked, set()
        for key in keys:
            self._redraw_domain(key)

    def marked_domains(self) -> list[Domain]:
        """Marked domains still on the host, in table order."""
        if not self.marked:
            return []
        return [domain for i in self._domain_lines
                if (domain := self._lines[i].domain) is not None and domain.key in self.marked]

    def _redraw_domain(self, key: str) -> None:
        line = self._line_of_key.get(key)
        if line is not None:
            self._strips.clear()
            self.refresh_lines(line + 1)

    # cursor and keys ---------------------------------------------------------------------------

    def watch_cursor_key(self, old: str | None, new: str | None) -> None:
        for key in (old, new):  # only the two lines that changed are drawn again
            line = self._line_of_key.get(key or "")
            if line is not None:
                self.refresh_lines(line + 1)
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        line = self._line_of_key.get(self.cursor_key or "")
        if line is None:
            return
        rows = max(1, self.size.height - 1 - (1 if self.show_horizontal_scrollbar else 0))
        top = self.scroll_offset.y
        if line < top:
            self.scroll_to(y=line, animate=False, immediate=True)
        elif line >= top + rows:
            self.scroll_to(y=line - rows + 1, animate=False, immediate=True)

    def move_cursor(self, delta: int) -> None:
        if not self._domain_lines:
            return
        current = self._domain_position(self.cursor_key) if self.cursor_key in self._line_of_key else 0
        position = max(0, min(len(self._domain_lines) - 1, current + delta))
        self._cursor_chosen = True
        self._cursor_position = position
        self._set_cursor(self._ordered_keys[position])

    def select(self, key: str) -> bool:
        if key not in self._line_of_key:
            return False
        self._cursor_chosen = True
        self._cursor_position = self._domain_position(key)
        self._set_cursor(key)
        return True

    def action_cursor_up(self) -> None:
        self.move_cursor(-1)

    def action_cursor_down(self) -> None:
        self.move_cursor(1)

    def action_page_up(self) -> None:
        self.move_cursor(-max(1, self.size.height - 2))

    def action_page_down(self) -> None:
        self.move_cursor(max(1, self.size.height - 2))

    def action_cursor_first(self) -> None:
        self.move_cursor(-len(self._domain_lines))

    def action_cursor_last(self) -> None:
        self.move_cursor(len(self._domain_lines))

    def action_scroll_columns(self, cells: int) -> None:
        self.scroll_to(x=max(0, self.scroll_offset.x + cells), animate=False)

    def on_resize(self, event: events.Resize) -> None:
        self._scroll_to_cursor()

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            column = self._column_at(event.x)
            if column:
                self.post_message(self.HeaderClicked(column))
            return
        index = self.scroll_offset.y + event.y - 1
        if not 0 <= index < len(self._lines):
            return
        line = self._lines[index]
        if line.kind == "host" and self._sample is not None:
            self.select(host_key(self._sample.hosts[line.index].label))
            if event.chain == 2:
                self.action_fold()
        elif line.domain is not None:
            key = line.domain.key
            self.select(key)
            if event.chain == 2:
                self.post_message(self.Activated(key))

    def _column_at(self, x: int) -> str | None:
        name_width = self._pinned_width()
        if x <= name_width:
            return "name"
        position = x - name_width - 1 + self.scroll_offset.x
        for column in self._columns:
            step = self._width_of(column) + 1
            if position < step:
                return column.id
            position -= step
        return None

    def action_activate(self) -> None:
        if self.cursor_key is not None and self.cursor_key.startswith(HOST_KEY):
            self.action_fold()
        elif self.cursor_key is not None:
            self.post_message(self.Activated(self.cursor_key))

    def action_fold(self) -> None:
        """Fold the selected host's domains under its line, or unfold them; the cursor goes to the host line."""
        key = self.cursor_key
        if key is None or self._sample is None or len(self._sample.hosts) < 2:
            return
        if key.startswith(HOST_KEY):
            label = key[len(HOST_KEY):]
        else:
            selected = self.selected
            if selected is None:
                return
            label = selected.host
        self.options.folded.symmetric_difference_update({label})
        self.rebuild()
        self.select(host_key(label))


def ordered_columns(order: Sequence[str]) -> list[Column]:
    """The columns after NAME: those ``order`` names, in its order, then the others in the default order."""
    rest = COLUMNS[1:]
    if not order:
        return list(rest)
    by_id = {column.id: column for column in rest}
    first = [by_id[column_id] for column_id in order if column_id in by_id]
    return first + [column for column in rest if column.id not in order]
