"""The domain table's columns: xentop's, plus TYPE; each shows a rate or xentop's cumulative figure.
xentop's headers and widths, which the cumulative mode shows, are `xentui.xentop_columns`.

The order puts what matters at 3 a.m. (state, CPU, memory) within an 80-column screen; the
rest scrolls sideways behind the pinned NAME column.

A column turns (domain, rates, host) into the text of one cell and into a sort key. Both
are only ever asked for what is needed: text for the visible rows, keys when sorting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xentui.model import (
    UNKNOWN_CPU,
    UNKNOWN_MAXMEM,
    UNKNOWN_MEM,
    UNKNOWN_NET,
    UNKNOWN_VCPUS,
    Domain,
    DomainRates,
    Host,
)
from xentui.textsafe import printable
from xentui.units import human_bytes, human_count, human_kib
from xentui.xentop_columns import XENTOP_BY_ID, maxmem_pct_text, maxmem_text, percent_text

Text = Callable[[Domain, DomainRates | None, Host], str]
Key = Callable[[Domain, DomainRates | None, Host], float | str]


@dataclass(frozen=True, slots=True)
class Column:
    id: str
    title: str  # rate mode (the default)
    xentop_title: str  # cumulative mode, xentop's own header
    width: int
    xentop_width: int
    text: Text
    xentop_text: Text
    key: Key
    xentop_key: Key
    descending: bool = True  # numbers sort biggest first, as xentop does
    help: str = ""


def _rate(attr: str, shown_digits: int | None = None) -> Key:
    """A key by a rate; ``shown_digits``: the decimals the column shows, which the table sorts by (rows that show
    the same figure keep their name order, not the order of the noise beyond what is shown)."""
    def key(domain: Domain, rates: DomainRates | None, host: Host) -> float:
        if rates is None:
            return -1.0
        value = getattr(rates, attr)
        return value if shown_digits is None else round(value, shown_digits)

    key.rate_attr = attr  # type: ignore[attr-defined]  # the table sorts by the rates column itself (rounded so)
    key.shown_digits = shown_digits  # type: ignore[attr-defined]
    return key


def _rate_text(attr: str, fmt: Callable[[float], str]) -> Text:
    def text(domain: Domain, rates: DomainRates | None, host: Host) -> str:
        return fmt(getattr(rates, attr)) if rates is not None else "-"

    return text


def _figure(attr: str) -> Key:
    """A key that is a figure of the record which `DomainColumns` also carries: the table sorts by that column
    where the sample has one, and makes no record for it."""
    def key(domain: Domain, rates: DomainRates | None, host: Host) -> float:
        return getattr(domain, attr)

    key.column_attr = attr  # type: ignore[attr-defined]
    return key


def _vbd_total(attr: str) -> Key:
    def key(domain: Domain, rates: DomainRates | None, host: Host) -> float:
        totals = domain.vbd_totals()
        return getattr(totals, attr) if totals is not None else -1.0

    return key


def _vbd_total_text(attr: str) -> Text:
    def text(domain: Domain, rates: DomainRates | None, host: Host) -> str:
        totals = domain.vbd_totals()
        return str(getattr(totals, attr)) if totals is not None else "-"

    return text


def _fitted(text: str, width: int) -> str:
    """Printable, and cut to the width with an ellipsis: the row's cells stay in their columns."""
    shown = printable(text)
    return shown if len(shown) <= width else shown[:width - 1] + "…"


UNKNOWN_TEXT = "?"  # a figure the backend could not read (libvirt omits what a driver lacks): never a made-up 0


def _or_unknown(field: str, text: Text) -> Text:
    """``text``, or '?' when the backend marked ``field`` unknown for this domain."""

    def cell(domain: Domain, rates: DomainRates | None, host: Host) -> str:
        if domain.unknown and field in domain.unknown:
            return UNKNOWN_TEXT
        return text(domain, rates, host)

    return cell


def _same(text: Text, key: Key, **rest) -> dict:
    return {"text": text, "xentop_text": text, "key": key, "xentop_key": key, **rest}


def _name_key(domain: Domain, rates: DomainRates | None, host: Host) -> str:
    return domain.name.casefold()


def _state_key(domain: Domain, rates: DomainRates | None, host: Host) -> str:
    return domain.flags_text


# MAXMEM is the ceiling mem-set may reach (the configured static maximum), not Xen's current limit, which
# libxl lowers to the target + 1 MiB at each mem-set: batch output prints that one, as xentop does.
def _maxmem_text(domain: Domain, rates: DomainRates | None, host: Host) -> str:
    return maxmem_text(domain.mem_ceiling_kib, human_kib)


def _maxmem_xentop_text(domain: Domain, rates: DomainRates | None, host: Host) -> str:
    return maxmem_text(domain.mem_ceiling_kib)


def _maxmem_pct_text(domain: Domain, rates: DomainRates | None, host: Host) -> str:
    return maxmem_pct_text(domain.mem_ceiling_kib, host.total_kib)


def _maxmem_key(domain: Domain, rates: DomainRates | None, host: Host) -> float:
    ceiling = domain.mem_ceiling_kib
    return float("inf") if ceiling is None else ceiling


def _xentop(column_id: str, title: str, width: int, *, xentop_width: int | None = None, **rest: Any) -> Column:
    """One of xentop's columns: in cumulative mode, its header and its width unless ``xentop_width`` is given.

    The screen does not widen a column to its values as xentop does, so the counters that grow get a wider one.
    """
    xentop = XENTOP_BY_ID[column_id]
    return Column(column_id, title, xentop.header, width, xentop_width or xentop.width, **rest)


COLUMNS: tuple[Column, ...] = (
    _xentop("name", "NAME", 10, **_same(lambda d, r, h: d.name, _name_key, descending=False),
            help="domain name, in full"),
    _xentop("state", "STATE", 6, **_same(lambda d, r, h: d.flags_text, _state_key, descending=False),
            help="xentop's flags: d dying, s shutdown, b blocked, c crashed, p paused, r running"),
    _xentop("cpu_pct", "CPU%", 6,
            **_same(_or_unknown(UNKNOWN_CPU, _rate_text("cpu_pct", lambda v: f"{v:.1f}")), _rate("cpu_pct", 1)),
            help="% of one physical CPU over the last interval (400 = four CPUs busy)"),
    _xentop("cpu_s", "CPU(s)", 8,
            **_same(_or_unknown(UNKNOWN_CPU, lambda d, r, h: str(d.cpu_ns // 1_000_000_000)), _figure("cpu_ns")),
            help="CPU seconds used since the domain started"),
    _xentop("mem", "MEM", 6, text=_or_unknown(UNKNOWN_MEM, lambda d, r, h: human_kib(d.mem_kib)),
            xentop_text=_or_unknown(UNKNOWN_MEM, lambda d, r, h: str(d.mem_kib)), key=_figure("mem_kib"),
            xentop_key=_figure("mem_kib"), help="current memory"),
    _xentop("mem_pct", "MEM%", 5,
            **_same(_or_unknown(UNKNOWN_MEM, lambda d, r, h: percent_text(d.mem_kib, h.total_kib)),
                    _figure("mem_kib")),
            help="of host memory"),
    _xentop("maxmem", "MAXMEM", 8, text=_or_unknown(UNKNOWN_MAXMEM, _maxmem_text),
            xentop_text=_or_unknown(UNKNOWN_MAXMEM, _maxmem_xentop_text),
            key=_maxmem_key, xentop_key=_maxmem_key, help="the ceiling mem-set may reach (the configured maxmem)"),
    _xentop("maxmem_pct", "MAX%", 5,
            **_same(_or_unknown(UNKNOWN_MAXMEM, _maxmem_pct_text), _maxmem_key), help="maxmem, of host memory"),
    _xentop("vcpus", "VCPU", 5,
            text=_or_unknown(UNKNOWN_VCPUS, lambda d, r, h: f"{d.vcpus_online}/{d.vcpus_total}"),
            xentop_text=_or_unknown(UNKNOWN_VCPUS, lambda d, r, h: str(d.vcpus_total)),
            key=lambda d, r, h: d.vcpus_online,
            xentop_key=lambda d, r, h: d.vcpus_total, help="online / all vCPUs"),
    _xentop("nets", "NETS", 4, **_same(lambda d, r, h: str(len(d.vifs)), lambda d, r, h: len(d.vifs)),
            help="network interfaces"),
    _xentop("nettx", "TX/s", 6, xentop_width=10,
            text=_or_unknown(UNKNOWN_NET, _rate_text("net_tx_bytes_s", human_bytes)),
            xentop_text=_or_unknown(UNKNOWN_NET, lambda d, r, h: str(d.net_rx_bytes // 1024)),
            key=_rate("net_tx_bytes_s"),
            xentop_key=lambda d, r, h: d.net_rx_bytes,
            help="bytes/s sent by the guest (cumulative: xentop's NETTX, KiB dom0 sent to the guest)"),
    _xentop("netrx", "RX/s", 6, xentop_width=10,
            text=_or_unknown(UNKNOWN_NET, _rate_text("net_rx_bytes_s", human_bytes)),
            xentop_text=_or_unknown(UNKNOWN_NET, lambda d, r, h: str(d.net_tx_bytes // 1024)),
            key=_rate("net_rx_bytes_s"),
            xentop_key=lambda d, r, h: d.net_tx_bytes,
            help="bytes/s received by the guest (cumulative: xentop's NETRX, KiB dom0 received from it)"),
    _xentop("vbds", "VBDS", 4, **_same(lambda d, r, h: str(len(d.vbds)), lambda d, r, h: len(d.vbds)),
            help="virtual block devices"),
    _xentop("vbd_oo", "OO/s", 5, text=_rate_text("vbd_oo_reqs_s", human_count),
            xentop_text=_vbd_total_text("oo_reqs"), key=_rate("vbd_oo_reqs_s"), xentop_key=_vbd_total("oo_reqs"),
            help="requests that found the ring full (out of requests)"),
    _xentop("vbd_rd", "RD/s", 5, xentop_width=10, text=_rate_text("vbd_rd_reqs_s", human_count),
            xentop_text=_vbd_total_text("rd_reqs"), key=_rate("vbd_rd_reqs_s"), xentop_key=_vbd_total("rd_reqs"),
            help="read requests/s"),
    _xentop("vbd_wr", "WR/s", 5, xentop_width=10, text=_rate_text("vbd_wr_reqs_s", human_count),
            xentop_text=_vbd_total_text("wr_reqs"), key=_rate("vbd_wr_reqs_s"), xentop_key=_vbd_total("wr_reqs"),
            help="write requests/s"),
    _xentop("vbd_rsect", "RDB/s", 6, xentop_width=12, text=_rate_text("vbd_rd_bytes_s", human_bytes),
            xentop_text=_vbd_total_text("rd_sectors"), key=_rate("vbd_rd_bytes_s"),
            xentop_key=_vbd_total("rd_sectors"), help="bytes/s read (cumulative: sectors)"),
    _xentop("vbd_wsect", "WRB/s", 6, xentop_width=12, text=_rate_text("vbd_wr_bytes_s", human_bytes),
            xentop_text=_vbd_total_text("wr_sectors"), key=_rate("vbd_wr_bytes_s"),
            xentop_key=_vbd_total("wr_sectors"), help="bytes/s written"),
    _xentop("ssid", "SSID", 4, **_same(lambda d, r, h: str(d.ssid), lambda d, r, h: d.ssid),
            help="security id"),
    # not xentop's: the same in both modes
    Column("type", "TYPE", "TYPE", 4, 4,
           **_same(lambda d, r, h: d.type.value, lambda d, r, h: d.type.value, descending=False),
           help="pv, hvm or pvh"),
)

HOST_WIDTH = 14

# A pool's list across its hosts (not grouped under a line per host): the host of each domain, first after NAME.
# Not in COLUMNS: a single host's table has no such column, and `s` does not step onto it.
HOST_COLUMN = Column("host", "HOST", "HOST", HOST_WIDTH, HOST_WIDTH,
                     **_same(lambda d, r, h: _fitted(d.host, HOST_WIDTH), lambda d, r, h: d.host.casefold(),
                             descending=False),
                     help="the pool host the domain is on")

COLUMN_IDS = tuple(column.id for column in COLUMNS)
BY_ID = {column.id: column for column in (*COLUMNS, HOST_COLUMN)}
