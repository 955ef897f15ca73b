"""Read `xentop -b` output back: the current 19-column and the old 17-column layouts, with or without
-f (full names), -r (repeated headers) and the -n / -x / -v sub-rows.

Names are right-aligned and may hold spaces, so a domain row is matched from the right, where the
fields are fixed. A line that is none of the known kinds (a truncated last line, noise) is skipped
and counted, never fatal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xentui.xentop_columns import (
    NO_LIMIT,
    NOT_APPLICABLE,
    OLD_XENTOP_COLUMNS,
    XENTOP_BY_ID,
    XENTOP_COLUMNS,
)

HEADER_RE = re.compile(r"^\s*" + r"\s+".join(re.escape(column.header) for column in XENTOP_COLUMNS[:4]))
_NUM = r"(\d+)"
_DASH_OR_NUM = r"(\d+|-)"
ROW_RE = re.compile(
    r"^(?P<name>.*?)\s+(?P<state>[d-][s-][b-][c-][p-][r-])\s+"
    rf"{_NUM}\s+(\d+\.\d)\s+{_NUM}\s+(\d+\.\d)\s+(\d+|{re.escape(NO_LIMIT)})\s+(\d+\.\d|{re.escape(NOT_APPLICABLE)})\s+"
    rf"{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_DASH_OR_NUM}\s+{_DASH_OR_NUM}\s+{_DASH_OR_NUM}"
    rf"(?:\s+{_DASH_OR_NUM}\s+{_DASH_OR_NUM})?\s+{_NUM}\s*$"
)
VCPU_START = "VCPUs(sec):"
VCPU_PAIR_RE = re.compile(r"(\d+):\s+(\d+)s")
VCPU_CONTINUATION_RE = re.compile(r"^\s+\d+:\s+\d+s")
NET_RE = re.compile(
    r"^Net(\d+) RX:\s*(\d+)bytes\s+(\d+)pkts\s+(\d+)err\s+(\d+)drop\s+TX:\s*(\d+)bytes\s+(\d+)pkts\s+(\d+)err\s+"
    r"(\d+)drop\s*$"
)
VBD_RE = re.compile(
    r"^VBD (\S+)\s+(\d+)\s+(?:\[\s*[0-9a-f]+:\s*[0-9a-f]+\]\s+)?OO:\s+(\d+|-)\s+RD:\s+(\d+|-)\s+WR:\s+(\d+|-)"
    r"(?:\s+RSECT:\s+(\d+|-)\s+WSECT:\s+(\d+|-))?\s*$"  # the old layout has no sector counts
)


@dataclass
class XentopVif:
    index: int
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_drops: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_drops: int


@dataclass
class XentopVbd:
    kind: str  # BlkBack, BlkTap, Tapdisk3, Unidentified
    devid: int
    oo: int | None  # None: xentop printed '-' (statistics unreadable)
    rd: int | None
    wr: int | None
    rsect: int | None  # None also when the old layout has no RSECT/WSECT
    wsect: int | None


@dataclass
class XentopRow:
    name: str
    state: str
    cpu_s: int
    cpu_pct: float
    mem_kib: int
    mem_pct: float
    maxmem_kib: int | None  # None: NO_LIMIT
    maxmem_pct: float | None
    vcpus: int
    nets: int
    net_tx_kib: int
    net_rx_kib: int
    vbds: int
    vbd_oo: int | None
    vbd_rd: int | None
    vbd_wr: int | None
    vbd_rsect: int | None  # None also when the old 17-column layout has no such column
    vbd_wsect: int | None
    ssid: int
    vcpu_s: dict[int, int] = field(default_factory=dict)  # online vCPU index -> seconds (with -v)
    vifs: list[XentopVif] = field(default_factory=list)  # with -n
    vbd_rows: list[XentopVbd] = field(default_factory=list)  # with -x


@dataclass
class XentopLog:
    iterations: list[list[XentopRow]]
    columns: int  # 19, or 17 for the old layout
    skipped: list[tuple[int, str]]  # (line number, line) that matched nothing
    full_names: bool = False  # some name was wider than 10 characters: recorded with -f
    repeat_header: bool = False
    networks: bool = False
    vbds: bool = False
    vcpus: bool = False


def _opt(text: str | None) -> int | None:
    return None if text is None or text == "-" else int(text)


def parse_row(line: str) -> XentopRow | None:
    match = ROW_RE.match(line)
    if match is None:
        return None
    g = match.groups()
    name = g[0].strip()
    (state, cpu_s, cpu_pct, mem, mem_pct, maxmem, maxmem_pct, vcpus, nets, tx, rx, vbds, oo, rd, wr, rsect,
     wsect, ssid) = g[1:]
    return XentopRow(
        name=name, state=state, cpu_s=int(cpu_s), cpu_pct=float(cpu_pct), mem_kib=int(mem),
        mem_pct=float(mem_pct), maxmem_kib=None if maxmem == NO_LIMIT else int(maxmem),
        maxmem_pct=None if maxmem_pct == NOT_APPLICABLE else float(maxmem_pct), vcpus=int(vcpus), nets=int(nets),
        net_tx_kib=int(tx), net_rx_kib=int(rx), vbds=int(vbds), vbd_oo=_opt(oo), vbd_rd=_opt(rd),
        vbd_wr=_opt(wr), vbd_rsect=_opt(rsect), vbd_wsect=_opt(wsect), ssid=int(ssid),
    )


def parse_xentop_log(text: str) -> XentopLog:
    """Every iteration of a `xentop -b` log. A new iteration starts when a domain comes back."""
    log = XentopLog(iterations=[], columns=len(XENTOP_COLUMNS), skipped=[])
    current: list[XentopRow] = []
    seen: set[str] = set()
    headers_in_iteration = 0
    last: XentopRow | None = None
    in_vcpus = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if HEADER_RE.match(line):
            headers_in_iteration += 1
            if headers_in_iteration > 1 and current:
                log.repeat_header = True
            if XENTOP_BY_ID["vbd_rsect"].header not in line:
                log.columns = len(OLD_XENTOP_COLUMNS)
            in_vcpus = False
            continue
        if line.startswith(VCPU_START) and last is not None:
            log.vcpus = in_vcpus = True
            last.vcpu_s.update({int(i): int(s) for i, s in VCPU_PAIR_RE.findall(line[len(VCPU_START):])})
            continue
        if in_vcpus and last is not None and VCPU_CONTINUATION_RE.match(line):
            last.vcpu_s.update({int(i): int(s) for i, s in VCPU_PAIR_RE.findall(line)})
            continue
        in_vcpus = False
        if (net := NET_RE.match(line)) and last is not None:
            log.networks = True
            last.vifs.append(XentopVif(*map(int, net.groups())))
            continue
        if (vbd := VBD_RE.match(line)) and last is not None:
            log.vbds = True
            kind, devid, *counts = vbd.groups()
            last.vbd_rows.append(XentopVbd(kind, int(devid), *map(_opt, counts)))
            continue
        row = parse_row(line)
        if row is None:
            log.skipped.append((number, line))
            continue
        if row.name in seen:  # the same domain again: the next iteration began
            log.iterations.append(current)
            current, seen = [], set()
            headers_in_iteration = 1
        seen.add(row.name)
        current.append(row)
        last = row
        if len(row.name) > XENTOP_BY_ID["name"].width:
            log.full_names = True
    if current:
        log.iterations.append(current)
    return log


NS = 1_000_000_000


def rebuild_cpu_ns(row: XentopRow, previous: int | None, interval: float) -> int:
    """A nanosecond CPU counter for a row that printed whole seconds and a CPU %.

    It stays inside the printed whole second and moves by exactly the printed CPU % over
    ``interval`` seconds, so rates computed from it give xentop's figures back.
    """
    floor = row.cpu_s * NS
    if previous is None:
        return floor + NS // 2
    wanted = previous + round(row.cpu_pct * interval * 1e7)
    return min(max(wanted, floor), floor + NS - 1)
