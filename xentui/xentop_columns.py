"""xentop's table, known in one place: its columns in order (header, default width, the unknown figure that
blanks a cell) and how it writes the memory ceiling and the percentages.

Batch output prints this layout byte for byte, the parser of recorded logs reads it back, and the screen
shows its headers in cumulative mode; they all take it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xentui.model import (
    UNKNOWN_CPU,
    UNKNOWN_MAXMEM,
    UNKNOWN_MEM,
    UNKNOWN_NET,
    UNKNOWN_VBD_SECTORS,
    UNKNOWN_VCPUS,
)

NO_LIMIT = "no limit"
"""xentop's MAXMEM(k) for a domain without a memory ceiling; xentui says the same wherever it shows one."""

NOT_APPLICABLE = "n/a"
"""xentop's MAXMEM(%) for such a domain."""


@dataclass(frozen=True, slots=True)
class XentopColumn:
    id: str  # the screen's column id too (`xentui.ui.columns`)
    header: str  # as `xentop -b` prints it
    width: int  # xentop's default; it widens the growing counters to fit their values
    unknown: str | None = None  # the `Domain.unknown` name that makes this cell unreadable: '-' in xentop's layout


XENTOP_COLUMNS: tuple[XentopColumn, ...] = (
    XentopColumn("name", "NAME", 10),
    XentopColumn("state", "STATE", 6),
    XentopColumn("cpu_s", "CPU(sec)", 10, UNKNOWN_CPU),
    XentopColumn("cpu_pct", "CPU(%)", 6, UNKNOWN_CPU),
    XentopColumn("mem", "MEM(k)", 10, UNKNOWN_MEM),
    XentopColumn("mem_pct", "MEM(%)", 6, UNKNOWN_MEM),
    XentopColumn("maxmem", "MAXMEM(k)", 10, UNKNOWN_MAXMEM),
    XentopColumn("maxmem_pct", "MAXMEM(%)", 9, UNKNOWN_MAXMEM),
    XentopColumn("vcpus", "VCPUS", 5, UNKNOWN_VCPUS),
    XentopColumn("nets", "NETS", 4),
    XentopColumn("nettx", "NETTX(k)", 8, UNKNOWN_NET),
    XentopColumn("netrx", "NETRX(k)", 8, UNKNOWN_NET),
    XentopColumn("vbds", "VBDS", 4),
    XentopColumn("vbd_oo", "VBD_OO", 8),
    XentopColumn("vbd_rd", "VBD_RD", 8),
    XentopColumn("vbd_wr", "VBD_WR", 8),
    XentopColumn("vbd_rsect", "VBD_RSECT", 10, UNKNOWN_VBD_SECTORS),
    XentopColumn("vbd_wsect", "VBD_WSECT", 10, UNKNOWN_VBD_SECTORS),
    XentopColumn("ssid", "SSID", 4),
)
"""In the order of `xentop -b` (Xen's tools/xentop/xentop.c)."""

XENTOP_BY_ID: dict[str, XentopColumn] = {column.id: column for column in XENTOP_COLUMNS}

OLD_XENTOP_COLUMNS: tuple[XentopColumn, ...] = tuple(
    column for column in XENTOP_COLUMNS if column.id not in ("vbd_rsect", "vbd_wsect")
)
"""The old 17-column layout, without the sector counts: a recorded log may be in it."""


def percent_of(part: int, whole: int) -> float:
    """``part`` as a % of ``whole``; 0.0 when there is no whole (a host that reported no memory)."""
    return part / whole * 100 if whole > 0 else 0.0


def percent_text(part: int, whole: int) -> str:
    """A share as xentop prints MEM(%) and MAXMEM(%): one decimal."""
    return f"{percent_of(part, whole):.1f}"


def maxmem_text(ceiling_kib: int | None, form: Callable[[int], str] = str) -> str:
    """A memory ceiling written by ``form`` (by default as xentop's MAXMEM(k): the KiB), or `NO_LIMIT`."""
    return NO_LIMIT if ceiling_kib is None else form(ceiling_kib)


def maxmem_pct_text(ceiling_kib: int | None, host_total_kib: int) -> str:
    """xentop's MAXMEM(%): the ceiling as a share of the host's memory, or `NOT_APPLICABLE`."""
    return NOT_APPLICABLE if ceiling_kib is None else percent_text(ceiling_kib, host_total_kib)
