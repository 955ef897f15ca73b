"""A few minutes of per-domain history for sparklines, kept for every domain so details open with a past."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from xentui.model import Rates

DEFAULT_POINTS = 300


@dataclass(slots=True)
class Series:
    cpu_pct: deque[float]
    net_bytes_s: deque[float]
    disk_bytes_s: deque[float]


class History:
    def __init__(self, points: int = DEFAULT_POINTS) -> None:
        self.points = points
        self._series: dict[str, Series] = {}

    def record(self, rates: Rates) -> None:
        """Append one point per domain with rates; forget domains that are gone."""
        series = self._series
        for key in series.keys() - set(rates):
            del series[key]
        points = self.points
        for key, cpu, net, disk in rates.points():
            entry = series.get(key)
            if entry is None:
                entry = series[key] = Series(deque(maxlen=points), deque(maxlen=points), deque(maxlen=points))
            entry.cpu_pct.append(cpu)
            entry.net_bytes_s.append(net)
            entry.disk_bytes_s.append(disk)

    def get(self, key: str) -> Series | None:
        return self._series.get(key)

    def __len__(self) -> int:
        return len(self._series)
