"""xentui on a simulated host whose counters never move: the screen's own cost, without the backend's.

Used by bench_tui.py to split a refresh cycle into what the backend costs and what drawing costs.
The first sample is taken for real; every later one is the same snapshot with a new timestamp.
"""

from __future__ import annotations

import dataclasses
import sys

from xentui.backends.sim import SimBackend
from xentui.cli import main
from xentui.model import Sample

_real_sample = SimBackend.sample
_first: dict[int, Sample] = {}


async def _frozen_sample(self: SimBackend) -> Sample:
    if id(self) not in _first:
        _first[id(self)] = await _real_sample(self)
    return dataclasses.replace(_first[id(self)], monotonic=self.clock.monotonic(), wall=self.clock.wall())


SimBackend.sample = _frozen_sample  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
