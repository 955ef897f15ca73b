"""The host summary above the table: what xentop prints in its first three lines, and dom0's load."""

from __future__ import annotations

import time
from collections.abc import Mapping

from rich.text import Text
from textual.widget import Widget

from xentui.model import DomainRates, DomainState, Sample
from xentui.textsafe import printable
from xentui.units import human_kib

UNKNOWN = "?"  # a host figure the backend did not report (a replayed log records no CPUs): never a made-up 0


def _cpus_text(nr_cpus: int, cpu_mhz: int) -> str:
    """``16 @ 2394MHz``; 0 is how a backend gives a figure its host did not report."""
    if nr_cpus <= 0:
        return UNKNOWN
    return f"{nr_cpus} @ {cpu_mhz}MHz" if cpu_mhz > 0 else f"{nr_cpus} @ {UNKNOWN}MHz"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


class HostHeader(Widget):
    DEFAULT_CSS = """
    HostHeader {
        height: 3;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._text = Text("xentui: waiting for the first sample…")

    def show(self, sample: Sample, rates: Mapping[str, DomainRates], *, backend: str, delay: float, view: str) -> None:
        host = sample.host
        counts = sample.state_counts()
        clock = time.strftime("%H:%M:%S", time.localtime(sample.wall))
        line1 = Text()
        line1.append("xentui", style="bold")
        line1.append(f" - {clock}   {host.hypervisor} {printable(host.version)}   ")
        line1.append(printable(host.hostname), style="bold")
        line1.append(f"   [{backend}]  every {delay:g}s  {view}")
        if host.managed_by:
            line1.append(f"  managed by {printable(host.managed_by)}: read-only", style="bold")
        states = ", ".join(f"{counts[state]} {state.value}" for state in DomainState)
        line2 = Text(f"{_count(len(sample.domains), 'domain')}: {states}")
        line3 = Text(
            f"Mem: {human_kib(host.total_kib)} total, {human_kib(host.used_kib)} used, "
            f"{human_kib(host.free_kib)} free   CPUs: {_cpus_text(host.nr_cpus, host.cpu_mhz)}"
        )
        if sample.hosts:  # a pool: how many hosts answer, and the ones that do not, by name
            down = [status.label for status in sample.hosts if status.error is not None]
            up = len(sample.hosts) - len(down)
            line3.append(f"   hosts: {up} up")  # "0 down" said nothing, and cut this line at 80 columns
            if down:
                line3.append(f", {len(down)} down ({printable(', '.join(down))})", style="bold")
            self._text = Text("\n").join([line1, line2, line3])
            self.refresh()
            return
        ids = sample.ids()
        dom0 = sample.domains[ids.index(0)] if 0 in ids else None
        if dom0 is not None:
            rate = rates.get(dom0.key)
            cpu = "-" if rate is None else f"{rate.cpu_pct:.1f}%"
            line3.append(f"   dom0: {cpu} CPU, {human_kib(dom0.mem_kib)}, {_count(dom0.vcpus_online, 'vCPU')}")
        self._text = Text("\n").join([line1, line2, line3])
        self.refresh()

    def render(self) -> Text:
        return self._text
