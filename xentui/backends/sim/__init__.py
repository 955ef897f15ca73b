"""A simulated Xen pool: the embedded default backend (``xentui --demo``) and the test bed.

Three hosts share one clock. ``sim-host-1`` carries Domain-0 and the domains the operator
practises on; ``sim-host-2`` is a good migration target; ``sim-host-3`` is the classic
mistake (older Xen, fewer CPU features, little free memory, no shared storage).

Actions follow ``xl``'s semantics on a real host: they refuse what xl refuses, with the
reason, and take simulated time where the real thing takes time (save, restore, migrate).
Counters are integrated lazily from the clock at each call, so a frozen `ManualClock`
makes every figure exact and repeatable for a given seed.

The package, by concern:

- `domain`: a simulated domain's state (`SimDomain`, its vifs, vbds and vCPU split, `Status`);
- `physics`: how load evolves (`LoadProfile`, the credit scheduler's share, `integrate`);
- `cluster`: the hosts, their shared clock, and `SimCluster`, which builds the domains from the seed;
- `records`: the model's `Domain` records and `DomainColumns` of a sample, made lazily;
- `backend`: `SimBackend`, the `Backend` interface with xl's semantics;
- `migration`: migrate and its preflight checks (a part of `SimBackend`);
- `console`: the guest's serial console (`SimConsole`);
- `shell`: what the guest says on that console, a small shell with pipes and filters (`SimShell`);
- `regex`: grep's patterns for that shell, a small regular-expression engine that never backtracks;
- `guest`: what the guest's kernel says (boot log, memory figures, SysRq answers).

Everything the rest of xentui, the tests and the benches import is re-exported here (and the shell, for older
imports, from `xentui.backends.sim_shell`); `_FEATURED` is read from this package when a cluster is built, so
replacing it here takes effect.
"""

from __future__ import annotations

from xentui.backends.sim.backend import SAVE_BANDWIDTH_KIB_S, SAVE_MAGIC, SimBackend
from xentui.backends.sim.cluster import _FEATURED, MAX_DOMAINS, MAX_HOSTS, SimCluster, SimHost
from xentui.backends.sim.console import SimConsole
from xentui.backends.sim.domain import GIB, MIB, VCPU_SKEW, SimDomain, SimVbd, SimVif, Status, VcpuSplit
from xentui.backends.sim.migration import MIGRATE_BANDWIDTH_KIB_S
from xentui.backends.sim.physics import BALLOON_TAU_S, STEP_S, LoadProfile
from xentui.backends.sim.records import SampledDomains, VbdRecords, VcpuTimes, VifRecords, _Records, _SampledState
from xentui.backends.sim.shell import SimShell

__all__ = [
    "BALLOON_TAU_S",
    "GIB",
    "MAX_DOMAINS",
    "MAX_HOSTS",
    "MIB",
    "MIGRATE_BANDWIDTH_KIB_S",
    "SAVE_BANDWIDTH_KIB_S",
    "SAVE_MAGIC",
    "STEP_S",
    "VCPU_SKEW",
    "_FEATURED",
    "LoadProfile",
    "SampledDomains",
    "SimBackend",
    "SimCluster",
    "SimConsole",
    "SimDomain",
    "SimHost",
    "SimShell",
    "SimVbd",
    "SimVif",
    "Status",
    "VbdRecords",
    "VcpuSplit",
    "VcpuTimes",
    "VifRecords",
    "_Records",
    "_SampledState",
]
