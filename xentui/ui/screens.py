"""Screens over the table: one domain's details, every key, and the small prompts (delay, sort)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, OptionList, Sparkline, Static
from textual.widgets.option_list import Option

from xentui.errors import InvalidArgument
from xentui.history import History
from xentui.model import UNKNOWN_VCPU_TIMES, Domain, DomainRates, Sample
from xentui.model.records import DeviceModel
from xentui.textsafe import printable
from xentui.ui.columns import COLUMNS
from xentui.ui.messages import SampleShown
from xentui.ui.widgets import PickList
from xentui.units import human_bytes, human_count, human_kib
from xentui.validate import parse_seconds
from xentui.xentop_columns import maxmem_text

_LEFT_ALIGNED = {"", "device", "vif", "backing", "bridge", "MAC", "backend", "key", "what it does", "vCPU", "online"}


def _size_text(kib: int) -> str:
    """'1.0G (1048576k)': for reading, and exact."""
    return f"{human_kib(kib)} ({kib}k)"


def _plain_table(*headers: str) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, expand=False, header_style="bold", padding=(0, 2, 0, 0))
    for header in headers:
        table.add_column(header, justify="left" if header in _LEFT_ALIGNED else "right")
    return table


class DetailsScreen(Screen[None]):
    """Everything known about one domain, live: config, vCPUs, vifs, vbds, and a few minutes of history."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,enter", "dismiss", "Back to the table"),
    ]

    DEFAULT_CSS = """
    DetailsScreen { background: $surface; }
    DetailsScreen #title { background: $panel; color: $foreground; text-style: bold; padding: 0 1; width: 100%; }
    DetailsScreen #gone { background: $warning 30%; color: $foreground; padding: 0 1; display: none; }
    DetailsScreen.gone #gone { display: block; }
    DetailsScreen VerticalScroll { padding: 0 1; }
    DetailsScreen .section { margin-top: 1; }
    DetailsScreen .spark-row { height: 3; }
    DetailsScreen .spark-label { width: 24; }
    DetailsScreen Sparkline { width: 1fr; height: 3; }
    """

    def __init__(self, key: str, history: History, sample: Sample | None = None,
                 rates: Mapping[str, DomainRates] | None = None) -> None:
        super().__init__()
        self.key = key
        self.history = history
        self.domain: Domain | None = None
        self._first = (sample, rates or {})
        self._device_model_seen: tuple[float, DeviceModel] | None = None  # for its CPU % since the last sample

    def on_mount(self) -> None:
        sample, rates = self._first
        if sample is not None:
            self.update_from(sample, rates)

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static("This domain is gone (destroyed, migrated or saved); the last figures stay.", id="gone")
        with VerticalScroll():
            yield Static(id="config")
            with Horizontal(classes="spark-row section"):
                yield Label("", id="cpu-label", classes="spark-label")
                yield Sparkline([], id="cpu-spark")
            with Horizontal(classes="spark-row"):
                yield Label("", id="net-label", classes="spark-label")
                yield Sparkline([], id="net-spark")
            with Horizontal(classes="spark-row"):
                yield Label("", id="disk-label", classes="spark-label")
                yield Sparkline([], id="disk-spark")
            yield Static(id="vcpus", classes="section")
            yield Static(id="vifs", classes="section")
            yield Static(id="vbds", classes="section")
        yield Footer()

    def on_sample_shown(self, message: SampleShown) -> None:
        self.update_from(message.sample, message.rates)

    def update_from(self, sample: Sample, rates: Mapping[str, DomainRates]) -> None:
        domain = sample.domain(self.key)
        if domain is None:
            self.add_class("gone")
            return
        self.remove_class("gone")
        self.domain = domain
        rate = rates.get(domain.key)
        self.query_one("#title", Static).update(
            Text(f"{printable(domain.name)}  (id {domain.id}, {domain.type.value}, {domain.state.value})")
        )
        self.query_one("#config", Static).update(self._config(domain, sample, self._device_model_text(domain, sample)))
        series = self.history.get(domain.key)
        for name, values, text in (
            ("cpu", series.cpu_pct if series else [], "CPU {}%"),
            ("net", series.net_bytes_s if series else [], "net {}B/s"),
            ("disk", series.disk_bytes_s if series else [], "disk {}B/s"),
        ):
            data = list(values)
            count = len(data)
            now = data[-1] if data else 0.0
            shown = f"{now:.1f}" if name == "cpu" else human_bytes(now)
            peak = max(data, default=0.0)
            peak_text = f"{peak:.0f}%" if name == "cpu" else human_bytes(peak) + "B/s"
            self.query_one(f"#{name}-label", Label).update(
                Text(f"{text.format(shown)}\npeak {peak_text}\nlast {count} sample{'s' if count != 1 else ''}")
            )
            # A fixed window, newest on the right: a fresh domain's short past does not fill the width.
            padding = [0.0] * (self.history.points - count)
            self.query_one(f"#{name}-spark", Sparkline).data = padding + data
        self.query_one("#vcpus", Static).update(self._vcpus(domain, rate))
        self.query_one("#vifs", Static).update(self._vifs(domain, rate))
        self.query_one("#vbds", Static).update(self._vbds(domain, rate))

    def _device_model_text(self, domain: Domain, sample: Sample) -> str | None:
        """'qemu pid N, CPU x %, RSS y' for an HVM guest whose device model the backend found (its CPU % over
        the last two samples this screen saw)."""
        model = domain.device_model
        if model is None:
            self._device_model_seen = None
            return None
        seen, self._device_model_seen = self._device_model_seen, (sample.monotonic, model)
        pct = model.cpu_pct(seen[1], sample.monotonic - seen[0]) if seen else None
        name = printable(model.program.rsplit("/", 1)[-1]) or "qemu"
        cpu = "-" if pct is None else f"{pct:.1f}"
        return f"{name} pid {model.pid}, CPU {cpu} %, RSS {human_kib(model.rss_kib)}"

    @staticmethod
    def _config(domain: Domain, sample: Sample, device_model: str | None = None) -> Table:
        table = _plain_table("", "")
        target = "-" if domain.target_kib is None else _size_text(domain.target_kib)
        rows = [
            ("name", printable(domain.name)),
            ("uuid", printable(domain.uuid)),
            ("domid / type", f"{domain.id} / {domain.type.value}"),
            ("state", f"{domain.state.value} ({domain.flags_text})"),
            ("memory", _size_text(domain.mem_kib)),
            ("target", target),
            ("maxmem", maxmem_text(domain.mem_ceiling_kib, _size_text)),
            ("vCPUs online / max", f"{domain.vcpus_online} / {domain.vcpus_total}"),
            ("scheduler weight / cap", f"{domain.sched_weight} / {domain.sched_cap}"),
            ("CPU time", f"{domain.cpu_ns / 1e9:.1f}s"),
            ("ssid", str(domain.ssid)),
            ("host", printable(sample.host.hostname)),
        ]
        if domain.pv_drivers is not None:
            rows.append(("PV drivers", "yes" if domain.pv_drivers else "no"))
        if device_model is not None:
            rows.append(("device model", device_model))
        for label, value in rows:
            table.add_row(Text(label, style="bold"), Text(value))
        return table

    @staticmethod
    def _vcpus(domain: Domain, rate: DomainRates | None) -> Table:
        table = _plain_table("vCPU", "online", "CPU%", "time (s)")
        times_known = UNKNOWN_VCPU_TIMES not in domain.unknown  # not read this time: "?", never a 0.0
        for vcpu in domain.vcpus:
            pct = rate.vcpu_pct.get(vcpu.index) if rate else None
            table.add_row(str(vcpu.index), "yes" if vcpu.online else "no",
                          "-" if pct is None else f"{pct:.1f}",
                          f"{vcpu.cpu_ns / 1e9:.1f}" if times_known else "?")
        return table

    @staticmethod
    def _vifs(domain: Domain, rate: DomainRates | None) -> Table | Text:
        if not domain.vifs:
            return Text("no network interfaces")
        table = _plain_table("vif", "bridge", "MAC", "RX B/s", "TX B/s", "RX pkt/s", "TX pkt/s", "RX bytes",
                             "TX bytes", "err rx/tx", "drop rx/tx")
        for vif in domain.vifs:
            vr = rate.vifs.get(vif.devid) if rate else None
            table.add_row(
                Text(printable(vif.ifname)), Text(printable(vif.bridge or "-")), Text(printable(vif.mac)),
                "-" if vr is None else human_bytes(vr.rx_bytes_s), "-" if vr is None else human_bytes(vr.tx_bytes_s),
                "-" if vr is None else human_count(vr.rx_packets_s),
                "-" if vr is None else human_count(vr.tx_packets_s),
                human_bytes(vif.rx_bytes), human_bytes(vif.tx_bytes),
                f"{vif.rx_errors}/{vif.tx_errors}", f"{vif.rx_drops}/{vif.tx_drops}",
            )
        return table

    @staticmethod
    def _vbds(domain: Domain, rate: DomainRates | None) -> Table | Text:
        if not domain.vbds:
            return Text("no block devices")
        table = _plain_table("device", "backend", "backing", "RD/s", "WR/s", "RD B/s", "WR B/s", "OO/s",
                             "RD total", "WR total")
        for vbd in domain.vbds:
            br = rate.vbds.get(vbd.devid) if rate else None
            table.add_row(
                Text(printable(vbd.device)), vbd.backend.value, Text(printable(vbd.path)),
                "-" if br is None else human_count(br.rd_reqs_s), "-" if br is None else human_count(br.wr_reqs_s),
                "-" if br is None else human_bytes(br.rd_bytes_s), "-" if br is None else human_bytes(br.wr_bytes_s),
                "-" if br is None else human_count(br.oo_reqs_s),
                "-" if vbd.error else str(vbd.rd_reqs), "-" if vbd.error else str(vbd.wr_reqs),
            )
        return table

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss()


class HelpScreen(ModalScreen[None]):
    """Every key, from the bindings themselves, so it cannot drift from what the keys do."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close help")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 86; max-width: 100%; height: auto; max-height: 90%;
        background: $panel; border: round $primary; padding: 0 1;
    }
    HelpScreen .group { margin-top: 1; }
    """

    def __init__(self, groups: list[tuple[str, list[tuple[str, str]]]], config: Path | None = None) -> None:
        super().__init__()
        self.groups = groups
        self.config = config

    @property
    def rows(self) -> list[tuple[str, str]]:
        """(keys, what they do) of every group."""
        return [row for _, rows in self.groups for row in rows]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("xentui keys (Escape closes)", style="bold"))
            if self.config is not None:
                yield Static(Text(f"Config file: {printable(str(self.config))}"))
            for name, rows in self.groups:
                table = _plain_table("", "")
                table.show_header = False
                table.columns[0].justify = "left"
                table.columns[0].min_width = 22  # every group's descriptions start in one column
                for key, description in rows:
                    table.add_row(Text(key, style="bold"), Text(description))
                yield Static(Text(name, style="bold underline"), classes="group")
                yield Static(table)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss()


class DelayScreen(ModalScreen[float | None]):
    """xentop's 'd': seconds between polls, fractions allowed."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    DelayScreen { align: center middle; }
    DelayScreen > Vertical {
        width: 50; height: auto; background: $panel; border: round $primary; padding: 0 1;
    }
    DelayScreen #range { color: $text-muted; }
    DelayScreen #error { color: $error; width: 100%; height: auto; }
    """

    def __init__(self, current: float) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        from xentui.validate import MAX_DELAY_S, MIN_DELAY_S

        with Vertical():
            yield Label(f"Seconds between updates (now {self.current:g}):")
            yield Label(f"{MIN_DELAY_S:g} to {MAX_DELAY_S:g}, fractions allowed", id="range")
            yield Input(value=f"{self.current:g}", id="delay")
            yield Label("", id="error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            value = parse_seconds(event.value)  # the floor and ceiling of -d, MIN_DELAY_S..MAX_DELAY_S
        except InvalidArgument as error:
            self.query_one("#error", Label).update(Text(str(error)))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SortScreen(ModalScreen[str | None]):
    """Pick any column to sort by."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    SortScreen { align: center middle; }
    SortScreen > Vertical {
        width: 60; height: auto; max-height: 90%; background: $panel; border: round $primary; padding: 0 1;
    }
    SortScreen > Vertical > Label { dock: top; }
    /* as tall as the box leaves it (the docked title apart): at 80x24 every entry scrolls into view */
    SortScreen #columns { height: auto; max-height: 100%; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        options = [Option(Text(f"{c.title:<7} {c.help}"), id=c.id) for c in COLUMNS]
        with Vertical():
            yield Label("Sort by (Enter picks, Escape cancels):")
            yield PickList(*options, id="columns")

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        option_list.highlighted = [c.id for c in COLUMNS].index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
