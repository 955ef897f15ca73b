"""The simulated guest's shell: pipes and the filters an operator types at a Linux prompt.

Before, `dmesg | tail` printed nothing at all: the demo taught that the console ignores what a real one does.
"""

from __future__ import annotations

import pytest

from xentui.backends.sim import SimBackend, SimCluster
from xentui.backends.sim_shell import SimShell
from xentui.clock import ManualClock


@pytest.fixture
def shell() -> SimShell:
    backend = SimBackend(SimCluster(seed=7, domains=12, clock=ManualClock()))
    return SimShell(backend.host.domains["mail-relay"], backend.clock)


def run(shell: SimShell, line: str) -> list[str]:
    return shell.run(line).decode().splitlines()


def test_dmesg_through_tail_head_wc_and_grep(shell):
    everything = run(shell, "dmesg")
    assert len(everything) > 5
    assert run(shell, "dmesg | tail -n 3") == everything[-3:]
    assert run(shell, "dmesg | tail -3") == everything[-3:]
    assert run(shell, "dmesg | head -2") == everything[:2]
    assert run(shell, "dmesg | wc -l") == [str(len(everything))]
    xen = [line for line in everything if "xen" in line.lower()]
    assert xen and run(shell, "dmesg | grep -i xen") == xen
    assert run(shell, "dmesg | grep -i xen | wc -l") == [str(len(xen))]
    assert run(shell, "dmesg | grep -c -i xen") == [str(len(xen))]
    assert run(shell, "dmesg | grep -E 'Xen|Memory' | head -1") == [
        next(line for line in everything if "Xen" in line or "Memory" in line)]


def test_pipes_chain_and_files_read_like_stdin(shell):
    assert run(shell, "seq 1 10 | head -3") == ["1", "2", "3"]
    assert run(shell, "seq 5 | tail -2 | wc -l") == ["2"]
    assert run(shell, "cat /proc/meminfo | head -1")[0].startswith("MemTotal:")
    assert run(shell, "free -m | grep Mem")[0].startswith("Mem:")


def test_mistakes_get_the_shells_own_words(shell):
    assert run(shell, "nosuch | tail") == ["-bash: nosuch: command not found"]
    assert run(shell, "dmesg | tail -x")[0] == "tail: invalid option -- 'x'"
    assert "syntax error" in run(shell, "dmesg |")[0]
    assert run(shell, "dmesg | grep '['")[0].startswith("grep: Unmatched [")
