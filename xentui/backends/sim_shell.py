"""The simulated guest's shell, still importable from here: it lives in the sim package now, by concern
(`xentui.backends.sim.shell`, grep's patterns in `sim.regex`, what the guest's kernel says in `sim.guest`)."""

from __future__ import annotations

from xentui.backends.sim.guest import KERNEL, KERNEL_BUILD, KERNEL_RESERVED, kernel_sysrq_lines
from xentui.backends.sim.regex import MAX_NESTING, MAX_PROGRAM, MAX_REPEAT, GrepPatternError, Pattern
from xentui.backends.sim.shell import MAX_LINE, MAX_SEQ, SimShell

__all__ = [
    "KERNEL",
    "KERNEL_BUILD",
    "KERNEL_RESERVED",
    "MAX_LINE",
    "MAX_NESTING",
    "MAX_PROGRAM",
    "MAX_REPEAT",
    "MAX_SEQ",
    "GrepPatternError",
    "Pattern",
    "SimShell",
    "kernel_sysrq_lines",
]
