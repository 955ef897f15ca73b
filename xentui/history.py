"""A few minutes of per-domain history for sparklines, kept for every domain so details open with a past.

Kept as one frame per refresh (every domain's figures as three C arrays, beside that refresh's keys), not as
three deques per domain: recording a refresh of ten thousand domains is three C-level copies, not thirty
thousand appends, and a point costs 8 bytes, not a float object. A domain's `Series` is read from the frames
when asked for (the details screen: one domain)."""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from operator import ne

from xentui.model import Rates

DEFAULT_POINTS = 300


@dataclass(slots=True)
class Series:
    cpu_pct: deque[float]
    net_bytes_s: deque[float]
    disk_bytes_s: deque[float]


class _Keys:
    """One refresh's keys (shared by the frames that follow while the domains stay the same) and, once a series
    is read, where each key is."""

    __slots__ = ("_where", "keys")

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = keys
        self._where: dict[str, int] | None = None

    def position(self, key: str, hint: int) -> int | None:
        keys = self.keys
        if 0 <= hint < len(keys) and keys[hint] == key:
            return hint
        if self._where is None:
            self._where = {k: i for i, k in enumerate(keys)}
        return self._where.get(key)


@dataclass(slots=True)
class _Frame:
    keys: _Keys
    cpu_pct: array
    net_bytes_s: array
    disk_bytes_s: array


def _point_columns(rates: Rates) -> tuple[Sequence[str], Sequence[float], Sequence[float], Sequence[float]]:
    """Every domain's (key, CPU %, network bytes/s, disk bytes/s) as four columns: `Rates.point_columns`
    where it is (no tuple per domain), else made from `Rates.points`."""
    columns = getattr(rates, "point_columns", None)
    if columns is not None:
        return columns()
    points = list(rates.points())
    if not points:
        return [], [], [], []
    keys, cpu, net, disk = zip(*points, strict=True)
    return keys, cpu, net, disk


class History:
    def __init__(self, points: int = DEFAULT_POINTS) -> None:
        self.points = points
        self._frames: deque[_Frame] = deque(maxlen=points)

    def record(self, rates: Rates) -> None:
        """Append one point per domain with rates; a domain's series is its points in the unbroken run of
        frames up to the newest (a domain that was gone starts again)."""
        keys, cpu, net, disk = _point_columns(rates)
        frames = self._frames
        shared = frames[-1].keys if frames else None
        if shared is None or not (shared.keys is keys or _same(shared.keys, keys)):
            shared = _Keys(keys if isinstance(keys, list) else list(keys))
        frames.append(_Frame(shared, array("d", cpu), array("d", net), array("d", disk)))

    def get(self, key: str) -> Series | None:
        frames = self._frames
        if not frames:
            return None
        hint = -1
        found: list[tuple[_Frame, int]] = []
        for frame in reversed(frames):
            position = frame.keys.position(key, hint)
            if position is None:
                break
            found.append((frame, position))
            hint = position
        if not found:
            return None
        found.reverse()
        points = self.points
        return Series(deque((frame.cpu_pct[i] for frame, i in found), maxlen=points),
                      deque((frame.net_bytes_s[i] for frame, i in found), maxlen=points),
                      deque((frame.disk_bytes_s[i] for frame, i in found), maxlen=points))

    def __len__(self) -> int:
        return len(self._frames[-1].cpu_pct) if self._frames else 0


def _same(before: Sequence[str], after: Sequence[str]) -> bool:
    """The same keys in the same order (a C-level pass: the key strings are mostly the same objects)."""
    return len(before) == len(after) and not any(map(ne, before, after))

