from __future__ import annotations

import os

import pytest

from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock

# The operator's own config file is never read by the tests, and its path (the help screen shows it) is the same
# on every machine. A test of the config file sets XDG_CONFIG_HOME itself.
os.environ["XDG_CONFIG_HOME"] = "/nonexistent/xentui-tests/config"
# Unicode drawing whatever the machine's locale (CI may run with none): the ASCII test unsets it itself.
os.environ["XENTUI_ASCII"] = "0"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> SimBackend:
    """The default demo host (Domain-0 + 12 domUs), seed 7, on a clock that moves only when told."""
    return SimBackend(SimCluster(seed=7, domains=12, clock=clock))
