"""A few minutes of per-domain history for sparklines, kept for every domain so details open with a past."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from xentui.model import DomainRates

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

    def record(self, rates: dict[str, DomainRates]) -> None:
        """Append one point per domain with rates; forget domains that are gone."""
        series = self._series
        for key in [key for key in series if key not in rates]:
            del series[key]
        points = self.points
        for key, rate in rates.items():
            entry = series.get(key)
            if entry is None:
                entry = series[key] = Series(deque(maxlen=points), deque(maxlen=points), deque(maxlen=points))
            entry.cpu_pct.append(rate.cpu_pct)
            entry.net_bytes_s.append(rate.net_rx_bytes_s + rate.net_tx_bytes_s)
            entry.disk_bytes_s.append(rate.vbd_rd_bytes_s + rate.vbd_wr_bytes_s)

    def get(self, key: str) -> Series | None:
        return self._series.get(key)

    def __len__(self) -> int:
        return len(self._series)
