from __future__ import annotations

import pytest

from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> SimBackend:
    """The default demo host (Domain-0 + 12 domUs), seed 7, on a clock that moves only when told."""
    return SimBackend(SimCluster(seed=7, domains=12, clock=clock))
