"""A simulated domain's state: its life-cycle status, its vifs and vbds, how its CPU time divides over its
vCPUs, and `SimDomain` itself with the tuple of fields that change only by an action."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xentui.model import LIBXL_MAXMEM_CONSTANT_KIB, DomainType, VbdBackend

if TYPE_CHECKING:
    from xentui.backends.sim.console import SimConsole
    from xentui.backends.sim.physics import LoadProfile
    from xentui.backends.sim.shell import SimShell

GIB = 1024 * 1024  # in KiB
MIB = 1024


class Status:
    """Life-cycle of a simulated domain (xl's view), separate from the scheduler's run/block bit."""

    ACTIVE = "active"
    SHUTDOWN = "shutdown"
    CRASHED = "crashed"
    DYING = "dying"


@dataclass(slots=True)
class SimVif:
    """A guest NIC. Its traffic is its rates times the domain's network integral (`SimDomain.io`):
    one figure per domain to integrate, whatever the number of vifs."""

    devid: int
    mac: str
    bridge: str
    rx_rate: float  # bytes/s received by the guest at full activity
    tx_rate: float


@dataclass(slots=True)
class SimVbd:
    """A guest disk: requests are its rates times the domain's disk integral (`SimDomain.io`)."""

    devid: int
    device: str
    backend: VbdBackend
    path: str
    rd_rate: float  # requests/s at full activity
    wr_rate: float
    sectors_per_req: int
    readonly: bool = False
    format: str = "raw"


VCPU_SKEW = 0.05  # an idle domain's vCPUs differ by up to this fraction of their time; a busy one's do not


@dataclass(frozen=True, slots=True)
class VcpuSplit:
    """How a domain's CPU time divides over its vCPUs, since it started or its online count last changed.

    Two per-domain integrals carry every vCPU: ``cpu`` (all CPU time) and ``uneven`` (CPU time weighted by
    how idle the domain was). vCPU i's time is its ``bases[i]`` plus an even part of ``cpu`` plus its skew
    times ``uneven``; the skews sum to zero, so the vCPUs always sum to the domain, and none passes one
    physical CPU (a fully busy domain's vCPUs run evenly). Offline vCPUs keep their base.
    """

    bases: tuple[float, ...]  # every vCPU's time at the split, online or not
    online: int
    cpu_at: float
    uneven_at: float
    skews: tuple[float, ...]  # per online vCPU

    @classmethod
    def at(cls, bases: list[float] | tuple[float, ...], online: int, cpu: float, uneven: float) -> VcpuSplit:
        online = min(online, len(bases))
        offsets = [(index % 3) - 1 for index in range(online)]
        mean = sum(offsets) / (online or 1)
        skews = tuple(VCPU_SKEW * (offset - mean) / online for offset in offsets)
        return cls(tuple(bases), online, cpu, uneven, skews)

    def times(self, cpu: float, uneven: float) -> list[float]:
        even = (cpu - self.cpu_at) / (self.online or 1)
        odd = uneven - self.uneven_at
        online = self.online
        return [base + even + self.skews[index] * odd if index < online else base
                for index, base in enumerate(self.bases)]


# What `SimDomain.static` holds, in order: fields that change only by an action, never with time.
_STATIC_FIELDS = ("name", "uuid", "type", "xen_maxmem_kib", "maxmem_kib", "vcpus_max", "vifs", "vbds", "weight",
                  "cap", "ssid", "target_kib", "vcpu_split", "layout")
# Setting one of these drops the tuple (xen_maxmem_kib is worked out from target_kib, maxmem_kib, limit_at_max).
_STATIC = frozenset(_STATIC_FIELDS) | {"limit_at_max"}
_STATIC_AT = {name: index for index, name in enumerate(_STATIC_FIELDS)}


@dataclass(slots=True)
class SimDomain:
    domid: int
    name: str
    uuid: str
    type: DomainType
    load: LoadProfile
    vcpus_max: int
    vcpus_online: int
    mem_kib: float
    target_kib: int
    maxmem_kib: int | None  # the configured static maximum: the ceiling of mem-set (None: no limit)
    vifs: list[SimVif]
    vbds: list[SimVbd]
    pv_drivers: bool = True
    status: str = Status.ACTIVE
    paused: bool = False
    weight: int = 256
    cap: int = 0
    ssid: int = 0
    salt: int = 0
    started_at: float = 0.0
    cpu: list[float] = field(default_factory=lambda: [0.0, 0.0])  # ns of CPU, and of CPU weighted by idleness
    # Seconds of full-activity traffic on the network and on the disks: every vif's and vbd's counters follow.
    io: list[float] = field(default_factory=lambda: [0.0, 0.0])
    vif_drops: tuple[int, ...] = ()  # per vif: packets dropped under load
    vbd_ring_full: tuple[int, ...] = ()  # per vbd: out-of-requests events (xentop's VBD_OO)
    # A new token whenever the device counters start again: `DomainColumns.layouts`.
    layout: object = field(default_factory=object)
    vcpu_split: VcpuSplit = VcpuSplit((), 0, 0.0, 0.0, ())
    kernel_log: list[str] = field(default_factory=list)
    busy: str | None = None  # "saving", "migrating": other actions wait
    limit_at_max: bool = False  # Xen's limit was last set by mem-max (to maxmem), not by creation or mem-set
    shell: SimShell | None = None
    console: SimConsole | None = None
    pending_input: bytearray = field(default_factory=bytearray)
    last_demand: float = 0.0  # CPUs wanted at the last integration step: decides 'r' or 'b'
    static: tuple | None = None  # the _STATIC_FIELDS, as one tuple a sample can hold; None once one changes

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name in _STATIC:
            object.__setattr__(self, "static", None)

    def static_fields(self) -> tuple:
        if self.static is None:
            object.__setattr__(self, "static", tuple(getattr(self, name) for name in _STATIC_FIELDS))
        return self.static  # type: ignore[return-value]

    @property
    def is_dom0(self) -> bool:
        return self.domid == 0

    @property
    def xen_maxmem_kib(self) -> int | None:
        """Xen's current limit (xentop's MAXMEM), as libxl sets it: the target + 1 MiB at creation and at
        every mem-set, maxmem + 1 MiB at mem-max. mem-set may go up to maxmem (libxl raises Xen's limit)."""
        if self.maxmem_kib is None:
            return None
        return (self.maxmem_kib if self.limit_at_max else self.target_kib) + LIBXL_MAXMEM_CONSTANT_KIB

    @property
    def active(self) -> bool:
        return self.status == Status.ACTIVE

    def vcpu_times(self) -> list[float]:
        """Each vCPU's CPU time so far (ns), online or not."""
        return self.vcpu_split.times(*self.cpu)

    def start_vcpus(self, times: list[float]) -> None:
        """A new split from these per-vCPU times: at creation, restart, restore, and when vCPUs go on or offline."""
        total = math.fsum(times)
        self.cpu = [total, 0.0]
        self.vcpu_split = VcpuSplit.at(times, self.vcpus_online, total, 0.0)

    def start_devices(self) -> None:
        """Every device counter from zero: a new domain (restart, restore)."""
        self.io = [0.0, 0.0]
        self.vif_drops = (0,) * len(self.vifs)
        self.vbd_ring_full = (0,) * len(self.vbds)
        self.layout = object()

    def uptime(self, now: float) -> float:
        return max(0.0, now - self.started_at)

    def log(self, now: float, text: str) -> str:
        line = f"[{self.uptime(now):12.6f}] {text}"
        self.kernel_log.append(line)
        del self.kernel_log[:-2000]
        return line
