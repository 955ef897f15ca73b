"""Short human figures for narrow columns: sizes, rates, counts. Always at most 6 characters."""

from __future__ import annotations

_STEPS = ("", "K", "M", "G", "T", "P", "E")


def _scaled(value: float, base: int) -> str:
    """Divide by ``base`` until under 1000, then one decimal below 10: '1.5K', '10M', '340K'."""
    step = 0
    while value >= 1000 and step < len(_STEPS) - 1:
        value /= base
        step += 1
    if step == 0:
        return f"{value:.0f}"
    return f"{value:.1f}{_STEPS[step]}" if value < 10 else f"{value:.0f}{_STEPS[step]}"


def human_bytes(value: float) -> str:
    """1536 -> '1.5K', 10_485_760 -> '10M', 0 -> '0'. Binary steps."""
    return _scaled(max(0.0, value), 1024)


def human_kib(kib: int, *, exact: bool = False) -> str:
    """A size in KiB, for reading: 1572864 -> '1.5G'. With ``exact``, for a value the operator typed or will
    type, the shortest form that is exactly it, with its unit: 524288 -> '512M', 1536000 -> '1500M', 1000 ->
    '1000K' (it reads back through `validate.parse_memory` to the same number)."""
    if not exact:
        return human_bytes(kib * 1024)
    for unit, size in (("T", 1024**3), ("G", 1024**2), ("M", 1024)):
        if kib >= size and kib % size == 0:
            return f"{kib // size}{unit}"
    return f"{kib}K"


def human_count(value: float) -> str:
    """Requests or packets per second: '0', '0.4', '12', '1.2K', '340K'."""
    value = max(0.0, value)
    if value < 10:
        return "0" if value == 0 else f"{value:.1f}"
    return _scaled(value, 1000)


def human_seconds(seconds: float) -> str:
    """CPU time: '59', '12m', '3.2h', '41d'."""
    if seconds < 60:
        return f"{seconds:.0f}"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86_400:
        hours = seconds / 3600
        return f"{hours:.1f}h" if hours < 10 else f"{hours:.0f}h"
    return f"{seconds / 86_400:.0f}d"
