"""What the domain table's lines are, apart from drawing them: a domain, a pool host, a vCPU, vif or vbd under
its domain, a repeated header; the view options that decide them; and the text of the lines that are not one
cell per column (a pool host's, a device's)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from xentui.model import Domain, DomainRates, HostStatus
from xentui.textsafe import printable
from xentui.units import human_bytes, human_count, human_kib

LineKind = Literal["domain", "vcpu", "vif", "vbd", "header", "host"]
SUBROW_INDENT = "  "


class Line(NamedTuple):
    kind: LineKind
    domain: Domain | None
    index: int = 0  # which vCPU / vif / vbd; for a host line, which of `Sample.hosts`


HOST_KEY = "\x00host:"
"""The cursor key of a pool host's line: no domain's key starts with a NUL."""


def host_key(label: str) -> str:
    return HOST_KEY + label


class DomainLines(Sequence[Line]):
    """The lines of the plain view (one per domain, no sub-rows): made when drawn, not per refresh,
    and so are the domain records a sample may make when first read."""

    __slots__ = ("_domains", "_order")

    def __init__(self, domains: Sequence[Domain], order: list[int]) -> None:
        self._domains, self._order = domains, order

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, index: int) -> Line:  # type: ignore[override]
        return Line("domain", self._domains[self._order[index]])


class GroupedLines(Sequence[Line]):
    """The lines of a pool's plain view: a host's line, then its domains. Each entry is a domain's position in
    the sample, or ``-1 - h`` for the line of host ``h``: the records are made when drawn, not per refresh."""

    __slots__ = ("_domains", "_entries")

    def __init__(self, domains: Sequence[Domain], entries: list[int]) -> None:
        self._domains, self._entries = domains, entries

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> Line:  # type: ignore[override]
        entry = self._entries[index]
        return Line("host", None, -1 - entry) if entry < 0 else Line("domain", self._domains[entry])


@dataclass
class ViewOptions:
    """What the operator toggles: xentop's n/b/v/r, cumulative figures, dom0 first, sort and filter."""

    sort_column: str = "cpu_pct"
    sort_reverse: bool = False
    filter_text: str = ""
    networks: bool = False
    vbds: bool = False
    vcpus: bool = False
    repeat_header: bool = False
    cumulative: bool = False
    dom0_first: bool = False
    hidden: set[str] = field(default_factory=set)
    order: tuple[str, ...] = ()  # the columns after NAME, by id, in this order (the rest after it); (): the default
    name_width: int | None = None  # NAME at most this wide; None: as its share of the screen allows
    grouped: bool = True  # a pool's domains under a line per host; off: one list across the pool
    folded: set[str] = field(default_factory=set)  # pool hosts whose domains are hidden under their line


def subrow_text(line: Line, rates: DomainRates | None, *, cumulative: bool) -> tuple[str, str]:
    """A vCPU's, vif's or vbd's sub-row: its label (under NAME) and the rest of the line."""
    domain = line.domain
    assert domain is not None
    if line.kind == "vcpu":
        vcpu = next(v for v in domain.vcpus if v.index == line.index)
        pct = rates.vcpu_pct.get(vcpu.index) if rates else None
        label = f"vCPU {vcpu.index}"
        text = f"{'-' if pct is None else f'{pct:5.1f}%':>7}  {vcpu.cpu_ns // 1_000_000_000}s"
    elif line.kind == "vif":
        vif = domain.vifs[line.index]
        rate = rates.vifs.get(vif.devid) if rates else None
        label = vif.ifname
        if cumulative or rate is None:
            text = (f"{vif.bridge or '-'}  {vif.mac}  RX {vif.rx_bytes}B {vif.rx_packets}pkts "
                    f"{vif.rx_errors}err {vif.rx_drops}drop  TX {vif.tx_bytes}B {vif.tx_packets}pkts "
                    f"{vif.tx_errors}err {vif.tx_drops}drop")
        else:
            text = (f"{vif.bridge or '-'}  {vif.mac}  RX {human_bytes(rate.rx_bytes_s)}B/s "
                    f"{human_count(rate.rx_packets_s)}pkt/s {vif.rx_errors}err {vif.rx_drops}drop  "
                    f"TX {human_bytes(rate.tx_bytes_s)}B/s {human_count(rate.tx_packets_s)}pkt/s "
                    f"{vif.tx_errors}err {vif.tx_drops}drop")
    else:
        vbd = domain.vbds[line.index]
        rate = rates.vbds.get(vbd.devid) if rates else None
        label = vbd.device
        where = f"{vbd.backend.value} {printable(vbd.path)}"
        if vbd.error:
            text = f"{where}  statistics unreadable"
        elif cumulative or rate is None:
            text = (f"{where}  OO {vbd.oo_reqs}  RD {vbd.rd_reqs} ({vbd.rd_sectors} sect)  "
                    f"WR {vbd.wr_reqs} ({vbd.wr_sectors} sect)")
        else:
            text = (f"{where}  OO {human_count(rate.oo_reqs_s)}/s  RD {human_count(rate.rd_reqs_s)}/s "
                    f"{human_bytes(rate.rd_bytes_s)}B/s  WR {human_count(rate.wr_reqs_s)}/s "
                    f"{human_bytes(rate.wr_bytes_s)}B/s")
    return label, text


def host_line_text(status: HostStatus) -> str:
    """What a pool host's line says after its name: its hypervisor, CPUs, memory, CPU use and domains by
    state; or, down, since when and why (its last figures stay in the table under it, said as old)."""
    clock = "%H:%M:%S"
    group = f"[{printable(status.group)}]  " if status.group else ""
    if status.error is not None:
        since = time.strftime(clock, time.localtime(status.failing_since)) if status.failing_since else "?"
        seen = (f"; last seen {time.strftime(clock, time.localtime(status.last_seen))}"
                if status.last_seen is not None else "; never seen")
        return f"{group}DOWN since {since}: {printable(status.error)}{seen}"
    host = status.host
    if host is None:
        return group + "connecting…"
    states = ", ".join(f"{count} {state.value}" for state, count in status.states.items())
    parts = [f"{printable(host.hypervisor)} {printable(host.version)}", f"{host.nr_cpus} CPUs",
             f"free {human_kib(host.free_kib)} of {human_kib(host.total_kib)}", f"CPU {status.cpu_pct:.0f}%",
             f"{status.domains} domain{'' if status.domains == 1 else 's'}" + (f" ({states})" if states else "")]
    if host.managed_by:  # as the one host's header says it: its domains are another toolstack's
        parts.insert(1, f"managed by {printable(host.managed_by)}: read-only")
    if status.slow_for:
        parts.append(f"slow: no answer for {status.slow_for:.0f} s")
    return group + "  ".join(parts)
