"""Non-interactive output for scripts and logs, like ``xentop -b``.

Three formats, one call to a formatter per sample:

``xentop``
    Byte for byte the layout of ``xentop -b`` (Xen's tools/xentop/xentop.c), with its
    options -n, -x, -v, -f, -r and -z, so that existing parsers keep working.

``csv``
    One row per domain, the header row only in the first call's output. Columns are
    `CSV_COLUMNS`; an empty cell is a null (see JSON). -n, -x and -v add nothing.

``json``
    One object per sample, on one line (JSON Lines)::

        {"time": "2024-05-01T12:00:00.000Z",
         "host": {hostname, hypervisor, version, nr_cpus, cpu_mhz, total_kib, free_kib,
                  used_kib, scheduler, domains_by_state: {running: n, blocked: n, ...}},
         "domains": [{id, name, uuid, type, state, flags, cpu_s, cpu_pct, mem_kib, maxmem_kib,
                      xen_maxmem_kib, mem_pct, maxmem_pct, vcpus, vcpus_max, nets, net_tx_kib, net_rx_kib,
                      net_tx_bps, net_rx_bps, vbds, vbd_oo, vbd_rd, vbd_wr, vbd_rsect,
                      vbd_wsect, vbd_rd_bps, vbd_wr_bps, sched_weight, sched_cap, ssid,
                      vifs (with -n), vbd_devices (with -x), vcpu_s (with -v)}, ...]}

    Domains come in the xentop order. ``vcpus`` counts online vCPUs, ``vcpus_max`` all of
    them. ``*_kib`` and the vbd counts are cumulative, as xentop prints them; ``*_pct`` and
    ``*_bps`` (bytes per second) are rates over the last interval and null in the first
    sample or for a domain new since the previous one. ``maxmem_kib``/``maxmem_pct`` are the
    ceiling mem-set may reach (the configured static maximum where the backend knows it: libxl raises
    Xen's limit up to it on each mem-set), null for no limit; ``xen_maxmem_kib`` is Xen's limit of the
    moment, what xentop prints as MAXMEM(k) (after a mem-set down, the target + 1 MiB); the vbd
    counts are null where xentop prints '-' (every vbd unreadable).
    Names are carried exactly; non-ASCII and control characters are \\u-escaped by JSON.
    ``vifs``: [{devid, ifname, mac, bridge, rx_bytes, rx_packets, rx_errors, rx_drops,
    tx_bytes, tx_packets, tx_errors, tx_drops, rx_bps, tx_bps}];
    ``vbd_devices``: [{devid, device, backend, path, oo, rd, wr, rsect, wsect, rd_bps,
    wr_bps}] (counts null when that vbd errored); ``vcpu_s``: [{index, online, cpu_s, cpu_pct}].
    A figure the backend could not read (libvirt leaves out what a driver lacks) is null, and the
    domain then has ``unknown``: the `Domain.unknown` names (cpu_ns, mem_kib, maxmem_kib, vcpus, net);
    the xentop layout prints '-' in its cells, as xentop does for an unreadable vbd. A recording in
    the old 17-column layout has no sector counts: ``vbd_rsect``, ``vbd_wsect``, the ``*_bps`` made
    from them and each vbd's ``rsect``/``wsect`` are null (``unknown`` names vbd_sectors).
    ``nr_cpus`` and ``cpu_mhz`` are null where the host did not report them (a replayed log).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import string
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

from xentui.backends.base import Backend
from xentui.model import (
    KIB,
    UNKNOWN_CPU,
    UNKNOWN_MAXMEM,
    UNKNOWN_MEM,
    UNKNOWN_NET,
    UNKNOWN_VBD_SECTORS,
    UNKNOWN_VCPUS,
    Domain,
    DomainRates,
    Host,
    HostStatus,
    Sample,
    VbdBackend,
    VbdTotals,
    compute_rates,
    flags_string,
)
from xentui.textsafe import printable
from xentui.xentop_columns import XENTOP_BY_ID, XENTOP_COLUMNS, maxmem_pct_text, maxmem_text, percent_of, percent_text

__all__ = [
    "CSV_COLUMNS",
    "BatchFormat",
    "BatchOptions",
    "CsvFormatter",
    "JsonFormatter",
    "XentopFormatter",
    "make_formatter",
    "run_batch",
    "sort_domains",
]


class BatchFormat(StrEnum):
    XENTOP = "xentop"
    CSV = "csv"
    JSON = "json"
    OPENMETRICS = "openmetrics"
    PROMETHEUS = "prometheus"  # the classic text format: node_exporter's textfile collector reads this one


@dataclass
class BatchOptions:
    format: BatchFormat = BatchFormat.XENTOP
    iterations: int | None = None  # None = forever
    delay: float = 3.0
    networks: bool = False  # -n
    vbds: bool = False  # -x
    vcpus: bool = False  # -v
    full_name: bool = False  # -f
    repeat_header: bool = False  # -r
    dom0_first: bool = False  # -z


# --- ordering ------------------------------------------------------------------------------

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _is_dom0(domain: Domain) -> bool:
    return domain.is_dom0 or domain.name == "Domain-0"


def sort_domains(domains: Iterable[Domain], *, dom0_first: bool) -> list[Domain]:
    """xentop's order: by name as strcasecmp compares (ASCII case folded only); -z puts dom0 first.

    Code point order equals the UTF-8 byte order strcasecmp sees. Ties (names equal but
    for case) are broken by the exact name, then the domid, so the output is stable.
    """

    def key(domain: Domain) -> tuple[bool, str, str, int]:
        return (
            dom0_first and not _is_dom0(domain),
            domain.name.translate(_ASCII_LOWER),
            domain.name,
            domain.id,
        )

    return sorted(domains, key=key)


# --- values shared by the formats ------------------------------------------------------------


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _time_text(wall: float) -> str:
    return datetime.fromtimestamp(wall, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _digits(value: int) -> int:
    """floor(log10(value)) + 1 for a positive integer, exactly (no float rounding)."""
    return len(str(value))


# --- xentop ------------------------------------------------------------------------------------

# The columns, their headers and default widths: `xentui.xentop_columns`.
_NAME_WIDTH = XENTOP_BY_ID["name"].width

_VBD_TYPE_NAMES = {
    VbdBackend.BLKBACK: "BlkBack",
    VbdBackend.BLKTAP: "BlkTap",
    VbdBackend.TAPDISK3: "Tapdisk3",
}


def _vbd_growing_values(totals: VbdTotals | None) -> dict[str, int]:
    if totals is None:
        return {}
    return {
        "vbd_rd": totals.rd_reqs,
        "vbd_wr": totals.wr_reqs,
        "vbd_rsect": totals.rd_sectors,
        "vbd_wsect": totals.wr_sectors,
    }


class XentopFormatter:
    """The ``xentop -b`` layout. Keeps the -f NAME width, which only grows, across calls."""

    def __init__(self, options: BatchOptions) -> None:
        self.options = options
        self.name_width = _NAME_WIDTH

    def format(self, sample: Sample, rates: Mapping[str, DomainRates]) -> str:
        if not sample.hosts:
            return self._block(list(sample.domains), sample, rates)
        # a pool: one block per host, under a line naming it (and saying why, when it is down)
        parts: list[str] = []
        for status in sample.hosts:
            if status.error is not None:
                parts.append(f"HOST {printable(status.label)} DOWN: {printable(status.error)}\n")
                continue
            host = status.host
            version = f" {printable(host.hypervisor)} {printable(host.version)}" if host is not None else ""
            parts.append(f"HOST {printable(status.label)}{version}\n")
            parts.append(self._block([d for d in sample.domains if d.host == status.label], sample, rates))
        return "".join(parts)

    def _block(self, domains: list[Domain], sample: Sample, rates: Mapping[str, DomainRates]) -> str:
        """xentop's header and its rows for these domains (one host's)."""
        options = self.options
        domains = sort_domains(domains, dom0_first=options.dom0_first)
        if not domains:
            return ""
        names = {id(domain): printable(domain.name) for domain in domains}
        totals = {id(domain): domain.vbd_totals() for domain in domains}

        # Like xentop, the counter columns start from their defaults every iteration and widen
        # to fit; the -f NAME width is kept from one iteration to the next.
        widths = {column.id: column.width for column in XENTOP_COLUMNS}
        if options.full_name:
            self.name_width = max([self.name_width, *(len(name) for name in names.values())])
            widths["name"] = self.name_width
        for domain in domains:
            values = {
                "nettx": domain.net_rx_bytes // KIB,  # xentop's: counted at dom0's end of the vif
                "netrx": domain.net_tx_bytes // KIB,
                **_vbd_growing_values(totals[id(domain)]),
            }
            for column, value in values.items():
                # xentop: floor(log10(value + 1)) + 1
                widths[column] = max(widths[column], _digits(value + 1))

        header = " ".join(column.header.rjust(widths[column.id]) for column in XENTOP_COLUMNS) + "\n"
        parts: list[str] = []
        for position, domain in enumerate(domains):
            if position == 0 or options.repeat_header:
                parts.append(header)
            parts.append(self._row(domain, names[id(domain)], totals[id(domain)], sample.host_of(domain), rates,
                                   widths))
            if options.vcpus:
                parts.append(_vcpu_row(domain))
            if options.networks:
                parts.extend(_net_rows(domain))
            if options.vbds:
                parts.extend(_vbd_rows(domain))
        return "".join(parts)

    def _row(
        self,
        domain: Domain,
        name: str,
        totals: VbdTotals | None,
        host: Host,
        rates: Mapping[str, DomainRates],
        widths: dict[str, int],
    ) -> str:
        rate = rates.get(domain.key)
        cpu_pct = rate.cpu_pct if rate is not None else 0.0

        def vbd_total(field: str) -> str:
            return str(getattr(totals, field)) if totals is not None else "-"

        texts = {  # by column id; right-aligned to the widths below
            "name": name if self.options.full_name else name[:_NAME_WIDTH],
            "state": flags_string(domain.flags),
            "cpu_s": str(domain.cpu_ns // 1_000_000_000),
            "cpu_pct": f"{cpu_pct:.1f}",
            "mem": str(domain.mem_kib),
            "mem_pct": percent_text(domain.mem_kib, host.total_kib),
            "maxmem": maxmem_text(domain.maxmem_kib),  # Xen's limit of the moment, as xentop prints it
            "maxmem_pct": maxmem_pct_text(domain.maxmem_kib, host.total_kib),
            "vcpus": str(domain.vcpus_total),
            "nets": str(len(domain.vifs)),
            "nettx": str(domain.net_rx_bytes // KIB),  # xentop's, as above
            "netrx": str(domain.net_tx_bytes // KIB),
            "vbds": str(len(domain.vbds)),
            "vbd_oo": vbd_total("oo_reqs"),
            "vbd_rd": vbd_total("rd_reqs"),
            "vbd_wr": vbd_total("wr_reqs"),
            "vbd_rsect": vbd_total("rd_sectors"),
            "vbd_wsect": vbd_total("wr_sectors"),
            "ssid": str(domain.ssid),
        }
        cells = []
        for column in XENTOP_COLUMNS:
            cell = texts[column.id].rjust(widths[column.id])
            if column.unknown in domain.unknown:  # blanked as xentop does for unreadable vbds
                cell = "-".rjust(len(cell))
            cells.append(cell)
        return " ".join(cells) + "\n"


def _vcpu_row(domain: Domain) -> str:
    parts = ["VCPUs(sec): "]
    for vcpu in domain.vcpus:
        if not vcpu.online:
            continue
        if vcpu.index != 0 and vcpu.index % 5 == 0:
            parts.append("\n        ")
        parts.append(f" {vcpu.index:2d}: {vcpu.cpu_ns // 1_000_000_000:10d}s")
    parts.append("\n")
    return "".join(parts)


def _net_rows(domain: Domain) -> list[str]:
    return [
        # xentop's RX and TX are dom0's end of the vif: RX what the guest sent (`Vif` counts from the guest's side)
        f"Net{position} RX: {vif.tx_bytes:8d}bytes {vif.tx_packets:8d}pkts {vif.tx_errors:8d}err "
        f"{vif.tx_drops:8d}drop  TX: {vif.rx_bytes:8d}bytes {vif.rx_packets:8d}pkts "
        f"{vif.rx_errors:8d}err {vif.rx_drops:8d}drop\n"
        for position, vif in enumerate(domain.vifs)
    ]


def _vbd_rows(domain: Domain) -> list[str]:
    rows = []
    sectors_known = UNKNOWN_VBD_SECTORS not in domain.unknown
    for vbd in domain.vbds:
        type_name = _VBD_TYPE_NAMES.get(vbd.backend, "Unidentified")
        details = f"[{vbd.devid >> 8:2x}:{vbd.devid & 0xFF:2x}] "
        if vbd.error:
            counts: tuple[object, ...] = ("-",) * 5
        elif sectors_known:
            counts = (vbd.oo_reqs, vbd.rd_reqs, vbd.wr_reqs, vbd.rd_sectors, vbd.wr_sectors)
        else:
            counts = (vbd.oo_reqs, vbd.rd_reqs, vbd.wr_reqs, "-", "-")
        oo, rd, wr, rsect, wsect = counts
        rows.append(
            f"VBD {type_name} {vbd.devid:4d} {details} OO: {oo:>8}   RD: {rd:>8}   WR: {wr:>8}   "
            f"RSECT: {rsect:>10}   WSECT: {wsect:>10}\n"
        )
    return rows


# --- records for CSV and JSON --------------------------------------------------------------------


def _host_record(sample: Sample) -> dict[str, Any]:
    host = sample.host
    return {
        "hostname": host.hostname,
        "hypervisor": host.hypervisor,
        "version": host.version,
        "nr_cpus": host.nr_cpus or None,  # 0: not reported (a replayed log records neither)
        "cpu_mhz": host.cpu_mhz or None,
        "total_kib": host.total_kib,
        "free_kib": host.free_kib,
        "used_kib": host.used_kib,
        "scheduler": host.scheduler,
        "domains_by_state": {state.value: count for state, count in sample.state_counts().items()},
    }


def _pool_host_record(status: HostStatus) -> dict[str, Any]:
    """A pool host as JSON carries it: whether it answers, why not, and what it is."""
    host = status.host
    return {
        "name": status.label,
        "backend": status.backend,
        "group": status.group or None,
        "up": status.error is None,
        "error": status.error,
        "failing_since": None if status.failing_since is None else _time_text(status.failing_since),
        "last_seen": None if status.last_seen is None else _time_text(status.last_seen),
        "hostname": None if host is None else host.hostname,
        "version": None if host is None else f"{host.hypervisor} {host.version}",
        "nr_cpus": None if host is None else host.nr_cpus or None,
        "total_kib": None if host is None else host.total_kib,
        "free_kib": None if host is None else host.free_kib,
        "domains": status.domains,
        "domains_by_state": {state.value: count for state, count in status.states.items()},
    }


def _domain_record(domain: Domain, host: Host, rate: DomainRates | None) -> dict[str, Any]:
    """One domain's fields as JSON carries them (the CSV row is a subset)."""
    totals = domain.vbd_totals()

    def total(field: str) -> int | None:
        return None if totals is None else int(getattr(totals, field))

    def rate_of(field: str, digits: int = 1) -> float | None:
        return None if rate is None else round(float(getattr(rate, field)), digits)

    ceiling = domain.mem_ceiling_kib
    record = {
        "id": domain.id,
        "name": domain.name,
        "uuid": domain.uuid,
        "type": domain.type.value,
        "state": domain.state.value,
        "flags": flags_string(domain.flags),
        "cpu_s": round(domain.cpu_ns / 1e9, 3),
        "cpu_pct": rate_of("cpu_pct"),
        "mem_kib": domain.mem_kib,
        "maxmem_kib": ceiling,
        "xen_maxmem_kib": domain.maxmem_kib,
        "mem_pct": round(percent_of(domain.mem_kib, host.total_kib), 1),
        "maxmem_pct": None if ceiling is None else round(percent_of(ceiling, host.total_kib), 1),
        "vcpus": domain.vcpus_online,
        "vcpus_max": domain.vcpus_total,
        "nets": len(domain.vifs),
        "net_tx_kib": domain.net_tx_bytes // KIB,
        "net_rx_kib": domain.net_rx_bytes // KIB,
        "net_tx_bps": rate_of("net_tx_bytes_s"),
        "net_rx_bps": rate_of("net_rx_bytes_s"),
        "vbds": len(domain.vbds),
        "vbd_oo": total("oo_reqs"),
        "vbd_rd": total("rd_reqs"),
        "vbd_wr": total("wr_reqs"),
        "vbd_rsect": total("rd_sectors"),
        "vbd_wsect": total("wr_sectors"),
        "vbd_rd_bps": rate_of("vbd_rd_bytes_s"),
        "vbd_wr_bps": rate_of("vbd_wr_bytes_s"),
        "sched_weight": domain.sched_weight,
        "sched_cap": domain.sched_cap,
        "ssid": domain.ssid,
    }
    if domain.unknown:  # what the backend could not read is null, and named, never a made-up 0
        for name in domain.unknown:
            for key in _UNKNOWN_FIELDS.get(name, ()):
                record[key] = None
        record["unknown"] = sorted(domain.unknown)
    return record


# Domain.unknown names -> the record fields they null.
_UNKNOWN_FIELDS: dict[str, tuple[str, ...]] = {
    UNKNOWN_CPU: ("cpu_s", "cpu_pct"),
    UNKNOWN_MEM: ("mem_kib", "mem_pct"),
    UNKNOWN_MAXMEM: ("maxmem_kib", "xen_maxmem_kib", "maxmem_pct"),
    UNKNOWN_VCPUS: ("vcpus", "vcpus_max"),
    UNKNOWN_NET: ("net_tx_kib", "net_rx_kib", "net_tx_bps", "net_rx_bps"),
    UNKNOWN_VBD_SECTORS: ("vbd_rsect", "vbd_wsect", "vbd_rd_bps", "vbd_wr_bps"),
}


def _vif_records(domain: Domain, rate: DomainRates | None) -> list[dict[str, Any]]:
    records = []
    for vif in domain.vifs:
        vif_rate = rate.vifs.get(vif.devid) if rate is not None else None
        records.append(
            {
                "devid": vif.devid,
                "ifname": vif.ifname,
                "mac": vif.mac,
                "bridge": vif.bridge,
                "rx_bytes": vif.rx_bytes,
                "rx_packets": vif.rx_packets,
                "rx_errors": vif.rx_errors,
                "rx_drops": vif.rx_drops,
                "tx_bytes": vif.tx_bytes,
                "tx_packets": vif.tx_packets,
                "tx_errors": vif.tx_errors,
                "tx_drops": vif.tx_drops,
                "rx_bps": None if vif_rate is None else round(vif_rate.rx_bytes_s, 1),
                "tx_bps": None if vif_rate is None else round(vif_rate.tx_bytes_s, 1),
            }
        )
    return records


def _vbd_records(domain: Domain, rate: DomainRates | None) -> list[dict[str, Any]]:
    records = []
    sectors_known = UNKNOWN_VBD_SECTORS not in domain.unknown
    for vbd in domain.vbds:
        vbd_rate = rate.vbds.get(vbd.devid) if rate is not None else None
        readable = not vbd.error
        sectors = readable and sectors_known
        records.append(
            {
                "devid": vbd.devid,
                "device": vbd.device,
                "backend": vbd.backend.value,
                "path": vbd.path,
                "oo": vbd.oo_reqs if readable else None,
                "rd": vbd.rd_reqs if readable else None,
                "wr": vbd.wr_reqs if readable else None,
                "rsect": vbd.rd_sectors if sectors else None,
                "wsect": vbd.wr_sectors if sectors else None,
                "rd_bps": None if vbd_rate is None or not sectors else round(vbd_rate.rd_bytes_s, 1),
                "wr_bps": None if vbd_rate is None or not sectors else round(vbd_rate.wr_bytes_s, 1),
            }
        )
    return records


def _vcpu_records(domain: Domain, rate: DomainRates | None) -> list[dict[str, Any]]:
    return [
        {
            "index": vcpu.index,
            "online": vcpu.online,
            "cpu_s": round(vcpu.cpu_ns / 1e9, 3),
            "cpu_pct": _round(rate.vcpu_pct.get(vcpu.index) if rate is not None else None, 1),
        }
        for vcpu in domain.vcpus
    ]


class JsonFormatter:
    """One JSON object per sample, on one line."""

    def __init__(self, options: BatchOptions) -> None:
        self.options = options

    def format(self, sample: Sample, rates: Mapping[str, DomainRates]) -> str:
        options = self.options
        domains = []
        for domain in sort_domains(sample.domains, dom0_first=options.dom0_first):
            rate = rates.get(domain.key)
            record = _domain_record(domain, sample.host_of(domain), rate)
            if sample.hosts:
                record["host"] = domain.host
            if options.networks:
                record["vifs"] = _vif_records(domain, rate)
            if options.vbds:
                record["vbd_devices"] = _vbd_records(domain, rate)
            if options.vcpus:
                record["vcpu_s"] = _vcpu_records(domain, rate)
            domains.append(record)
        document = {"time": _time_text(sample.wall), "host": _host_record(sample), "domains": domains}
        if sample.hosts:
            document["hosts"] = [_pool_host_record(status) for status in sample.hosts]
        # ensure_ascii: an ESC or a bidi control in a name reaches the terminal as \u001b, \u202e.
        return json.dumps(document, ensure_ascii=True, separators=(",", ":")) + "\n"


CSV_COLUMNS: tuple[str, ...] = (
    "time",
    "id",
    "name",
    "uuid",
    "type",
    "state",
    "flags",
    "cpu_s",
    "cpu_pct",
    "mem_kib",
    "maxmem_kib",
    "vcpus",
    "vcpus_max",
    "nets",
    "net_tx_kib",
    "net_rx_kib",
    "net_tx_bps",
    "net_rx_bps",
    "vbds",
    "vbd_oo",
    "vbd_rd",
    "vbd_wr",
    "vbd_rsect",
    "vbd_wsect",
    "ssid",
    "xen_maxmem_kib",
)


class CsvFormatter:
    """One row per domain; the header row only in the first call's output."""

    def __init__(self, options: BatchOptions) -> None:
        self.options = options
        self._header_done = False

    def format(self, sample: Sample, rates: Mapping[str, DomainRates]) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        time_text = _time_text(sample.wall)
        columns = ("host", *CSV_COLUMNS) if sample.hosts else CSV_COLUMNS
        if not self._header_done:
            writer.writerow(columns)
            self._header_done = True
        for domain in sort_domains(sample.domains, dom0_first=self.options.dom0_first):
            record = _domain_record(domain, sample.host_of(domain), rates.get(domain.key))
            # Unlike JSON, a CSV cell reaches the terminal as it is.
            record.update(time=time_text, name=printable(domain.name), uuid=printable(domain.uuid),
                          host=printable(domain.host))
            writer.writerow(["" if record[column] is None else record[column] for column in columns])
        return buffer.getvalue()


class OpenMetricsFormatter:
    """Each iteration: the whole exposition, ending with ``# EOF`` (`xentui.metrics`). Counters, not rates: a
    scraper makes its own rates."""

    def __init__(self, options: BatchOptions) -> None:
        self.options = options

    def format(self, sample: Sample, rates: Mapping[str, DomainRates]) -> str:
        from xentui.metrics import exposition  # prometheus_client loads only for this format

        return exposition(sample, openmetrics=self.options.format == BatchFormat.OPENMETRICS)


Formatter = XentopFormatter | CsvFormatter | JsonFormatter | OpenMetricsFormatter


def make_formatter(options: BatchOptions) -> Formatter:
    formatters: dict[BatchFormat, type[Formatter]] = {
        BatchFormat.XENTOP: XentopFormatter,
        BatchFormat.CSV: CsvFormatter,
        BatchFormat.JSON: JsonFormatter,
        BatchFormat.OPENMETRICS: OpenMetricsFormatter,
        BatchFormat.PROMETHEUS: OpenMetricsFormatter,
    }
    return formatters[BatchFormat(options.format)](options)


async def run_batch(
    backend: Backend,
    options: BatchOptions,
    out: TextIO,
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Sample, format and write until ``options.iterations`` samples were written (forever if None).

    A reader that went away (``xentop -b | head``) ends the loop quietly: the caller decides
    what to do with the broken stdout. So does a backend with nothing more to give (`Backend.finished`:
    a replay asked for more iterations than it recorded), without printing its last sample again.
    A `BackendError` from sampling propagates.
    """
    formatter = make_formatter(options)
    previous: Sample | None = None
    done = 0
    while options.iterations is None or done < options.iterations:
        if done:
            await sleep(options.delay)
        sample = await backend.sample()
        if getattr(backend, "finished", None) is not None:
            return
        text = formatter.format(sample, compute_rates(previous, sample))
        try:
            out.write(text)
            out.flush()
        except BrokenPipeError:
            return
        previous = sample
        done += 1
