"""A simulated Xen pool: the embedded default backend (``xentui --demo``) and the test bed.

Three hosts share one clock. ``sim-host-1`` carries Domain-0 and the domains the operator
practises on; ``sim-host-2`` is a good migration target; ``sim-host-3`` is the classic
mistake (older Xen, fewer CPU features, little free memory, no shared storage).

Actions follow ``xl``'s semantics on a real host: they refuse what xl refuses, with the
reason, and take simulated time where the real thing takes time (save, restore, migrate).
Counters are integrated lazily from the clock at each call, so a frozen `ManualClock`
makes every figure exact and repeatable for a given seed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import math
import random
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from operator import attrgetter, ge, is_, itemgetter, mul, not_, or_, sub
from pathlib import Path
from typing import TypeVar, overload

from xentui.backends.base import (
    Backend,
    BackendError,
    Capabilities,
    ConsoleBusy,
    ConsoleChannel,
    DomainNotFound,
    InvalidArgument,
    MigratePhase,
    MigrateProgress,
    PreflightCheck,
)
from xentui.backends.savefile import check_save_path, discard, finish, partial_path
from xentui.backends.sim_shell import SimShell, kernel_sysrq_lines
from xentui.clock import Clock, RealClock
from xentui.model import (
    LIBXL_MAXMEM_CONSTANT_KIB,
    Domain,
    DomainColumns,
    DomainFlag,
    DomainType,
    Host,
    Sample,
    Vbd,
    VbdBackend,
    Vcpu,
    Vif,
)
from xentui.textsafe import printable
from xentui.units import human_kib
from xentui.validate import (
    check_host,
    check_memory_ceiling,
    check_memory_target,
    check_sched,
    check_sysrq,
    check_vcpu_count,
    format_kib,
)

GIB = 1024 * 1024  # in KiB
MIB = 1024
MAX_DOMAINS = 5000
SAVE_MAGIC = b"xentui-sim saved domain v1\n"
SAVE_BANDWIDTH_KIB_S = 512 * MIB
MIGRATE_BANDWIDTH_KIB_S = 1 * GIB
BALLOON_TAU_S = 0.6  # the balloon closes ~80% of the gap to its target each second
STEP_S = 1.0  # counters are integrated in steps of about this (at most 1.5 times it)


class Status:
    """Life-cycle of a simulated domain (xl's view), separate from the scheduler's run/block bit."""

    ACTIVE = "active"
    SHUTDOWN = "shutdown"
    CRASHED = "crashed"
    DYING = "dying"


@dataclass(slots=True)
class LoadProfile:
    """CPU demand per vCPU, as a fraction of one physical CPU, as a function of time."""

    base: float
    swing: float = 0.0
    period_s: float = 60.0
    phase: float = 0.0
    noise: float = 0.02
    sawtooth: bool = False  # builds: ramp up, drop, repeat

    def at(self, t: float, salt: int) -> float:
        # SimCluster._integrate computes the same inline, for every domain at every step
        cycle = (t / self.period_s + self.phase) % 1.0
        wave = (2 * cycle - 1) if self.sawtooth else math.sin(TWO_PI * cycle)
        jitter = _JITTER[(salt ^ (int(t) * _TICK_MIX)) & _JITTER_MASK] * self.noise
        return min(1.0, max(0.0, self.base + self.swing * wave + jitter))


def _hash_unit(salt: int, tick: int) -> float:
    """A repeatable pseudo-random number in [0, 1) for (salt, tick); no RNG state to keep in step.

    An integer mix (murmur3's finaliser), cheap enough to call for every domain every second.
    """
    x = (salt * 0x9E3779B1 + tick * 0x85EBCA77) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    x ^= x >> 16
    return x / 4294967296.0


TWO_PI = 2 * math.pi


def _jitter_source(count: int) -> list[float]:
    draw = random.Random(0x5EED).random
    return [draw() for _ in range(count)]


# Load jitter, in [-1, 1): a table indexed by (salt, second) rather than a hash per domain per step.
_JITTER_MASK = 4095
_JITTER = tuple(value * 2 - 1 for value in _jitter_source(_JITTER_MASK + 1))
_TICK_MIX = 0x9E3779B1
# A quiet guest's I/O comes in bursts, as on a real host: its disks every DISK_BURST_S seconds
# (ext4 commits every 5 s), its network every NET_BURST_S; a busy guest's every second.
QUIET_DISK_BELOW = 0.5  # activity (CPU per vCPU) under which a guest's disks are quiet
QUIET_NET_BELOW = 0.15
DISK_BURST_S = 5
NET_BURST_S = 3


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


R = TypeVar("R")


class _Records(Sequence[R]):
    """A sampled domain's records of one kind, made when first read (details, sub-rows, batch output):
    a refresh of a thousand domains reads only `Sample.columns`."""

    # None until first read; each subclass's __init__ sets it, and its __len__ (no super() call, for speed)
    __slots__ = ("_records",)
    _records: list[R] | None

    def _make(self) -> list[R]:
        raise NotImplementedError

    def _made(self) -> list[R]:
        if self._records is None:
            self._records = self._make()
        return self._records

    @overload
    def __getitem__(self, index: int) -> R: ...
    @overload
    def __getitem__(self, index: slice) -> list[R]: ...
    def __getitem__(self, index: int | slice) -> R | list[R]:
        return self._made()[index]

    def __iter__(self) -> Iterator[R]:
        return iter(self._made())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, _Records)) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(self._made())


class VcpuTimes(_Records[Vcpu]):
    __slots__ = ("_cpu", "_split", "_uneven")

    def __init__(self, split: VcpuSplit, cpu: float, uneven: float) -> None:
        self._split, self._cpu, self._uneven, self._records = split, cpu, uneven, None

    def _make(self) -> list[Vcpu]:
        online = self._split.online
        return [Vcpu(index, index < online, int(ns))
                for index, ns in enumerate(self._split.times(self._cpu, self._uneven))]

    def __len__(self) -> int:
        return len(self._split.bases)


def _net_counters(vif: SimVif, net: float) -> tuple[int, int, int, int]:
    """rx bytes, rx packets, tx bytes, tx packets after ``net`` seconds of full activity."""
    rx, tx = vif.rx_rate * net, vif.tx_rate * net
    return int(rx), int(rx / 900), int(tx), int(tx / 700)


def _disk_counters(vbd: SimVbd, disk: float) -> tuple[int, int, int, int]:
    """read and write requests, read and write sectors after ``disk`` seconds of full activity."""
    rd, wr = vbd.rd_rate * disk, vbd.wr_rate * disk
    return int(rd), int(wr), int(rd * vbd.sectors_per_req), int(wr * vbd.sectors_per_req)


class VifRecords(_Records[Vif]):
    __slots__ = ("_domid", "_drops", "_net", "_vifs")

    def __init__(self, vifs: list[SimVif], domid: int, net: float, drops: tuple[int, ...]) -> None:
        self._vifs, self._domid, self._net, self._drops, self._records = vifs, domid, net, drops, None

    def _make(self) -> list[Vif]:
        records = []
        for vif, drops in zip(self._vifs, self._drops, strict=True):
            rx, rx_packets, tx, tx_packets = _net_counters(vif, self._net)
            records.append(Vif(vif.devid, f"vif{self._domid}.{vif.devid}", vif.mac, vif.bridge, rx, rx_packets, 0,
                               drops, tx, tx_packets, 0, 0))
        return records

    def __len__(self) -> int:  # NETS, without making the records
        return len(self._vifs)


class VbdRecords(_Records[Vbd]):
    __slots__ = ("_disk", "_full", "_vbds")

    def __init__(self, vbds: list[SimVbd], disk: float, ring_full: tuple[int, ...]) -> None:
        self._vbds, self._disk, self._full, self._records = vbds, disk, ring_full, None

    def _make(self) -> list[Vbd]:
        return [Vbd(vbd.devid, vbd.device, vbd.backend, vbd.path, full, *_disk_counters(vbd, self._disk))
                for vbd, full in zip(self._vbds, self._full, strict=True)]

    def __len__(self) -> int:  # VBDS, without making the records
        return len(self._vbds)


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


@dataclass
class SimHost:
    hostname: str
    version: str
    nr_cpus: int
    cpu_mhz: int
    total_kib: int
    cpu_vendor: str
    cpu_features: frozenset[str]
    shared_storage: tuple[str, ...]  # path prefixes this host can see
    domains: dict[str, SimDomain] = field(default_factory=dict)
    next_domid: int = 1
    last_t: float = 0.0
    timers: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    hypervisor_overhead_kib: int = 0
    devices: _Devices | None = None  # of the domains as last sampled

    @property
    def free_kib(self) -> int:
        used = sum(d.mem_kib for d in self.domains.values()) + self.hypervisor_overhead_kib
        return max(0, int(self.total_kib - used))

    def devices_of(self, domains: list[SimDomain]) -> _Devices:
        """The flattened devices of these domains, made again only when the domains (or their order) change;
        a domain's devices never change while it lives."""
        devices = self.devices
        if devices is None or len(devices.domains) != len(domains) or not all(map(is_, devices.domains, domains)):
            devices = self.devices = _Devices.of(domains)
        return devices

    def allocate_domid(self) -> int:
        domid = self.next_domid
        self.next_domid += 1
        return domid

    def sees(self, path: str) -> bool:
        return any(path.startswith(prefix) for prefix in self.shared_storage) or not path.startswith("/")


# --- the pool --------------------------------------------------------------------------

_FLAGS = {}  # filled below, once Status exists: (status, paused, on a CPU) -> xentop's flags

_FEATURES = frozenset(
    (
        "fpu", "sse", "sse2", "ssse3", "sse4_1", "sse4_2", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand",
        "avx2", "bmi1", "bmi2", "erms", "avx512f", "avx512dq", "avx512bw", "avx512vl",
    )
)

# (name, type, vcpus online/max, mem/maxmem GiB (None = no limit), load, disks, state, pv drivers)
_FEATURED: tuple[tuple, ...] = (
    ("web-frontend-01", DomainType.PVH, (2, 4), (2, 4), LoadProfile(0.25, 0.15, 90), "local", "run", True),
    ("db-primary", DomainType.HVM, (4, 8), (8, 12), LoadProfile(0.55, 0.1, 45), "shared", "run", True),
    ("batch-cruncher", DomainType.PV, (4, 4), (4, 4), LoadProfile(1.0, 0.0, 60, noise=0.0), "shared", "run", True),
    ("build runner 7", DomainType.PVH, (2, 2), (3, 4), LoadProfile(0.5, 0.45, 40, sawtooth=True), "shared", "run",
     True),
    ("[staging] api", DomainType.PV, (1, 2), (1, 2), LoadProfile(0.08, 0.05, 30), "shared", "run", True),
    ("mail-relay", DomainType.PV, (1, 1), (0.5, 1), LoadProfile(0.01, 0.005, 20), "shared", "run", True),
    ("analytics-warehouse-reporting-cluster-node-03", DomainType.HVM, (2, 4), (4, 8), LoadProfile(0.3, 0.2, 120),
     "shared", "run", True),
    ("win2019-legacy", DomainType.HVM, (2, 2), (4, 4), LoadProfile(0.04, 0.02, 50), "qdisk", "run", False),
    ("backup-old", DomainType.PV, (1, 2), (1, 2), LoadProfile(0.02), "local", "paused", True),
    # These three no longer run (no CPU demand when not active); their load gave them their history.
    ("test-poweroff", DomainType.PV, (1, 1), (0.5, 0.5), LoadProfile(0.02), "shared", "shutdown", True),
    ("kernel-dev", DomainType.PVH, (2, 2), (1, 2), LoadProfile(0.15), "shared", "crashed", True),
    ("zombie-7", DomainType.PV, (1, 1), (0.25, 0.5), LoadProfile(0.01), "local", "dying", True),
)

_ROLES = ("web", "app", "db", "cache", "worker", "ci", "vpn", "dns", "log", "mq", "search", "proxy")


class _NewSimDomain(SimDomain):
    """A SimDomain while `SimCluster._new_domain` fills it in: nothing was sampled yet, so no
    static tuple to drop at field sets (a Python-level call each, thirty per domain at start-up)."""

    __slots__ = ()
    __setattr__ = object.__setattr__


class SimCluster:
    """Every simulated host, their shared clock and the seed everything random derives from."""

    def __init__(self, *, seed: int = 0, domains: int = 12, clock: Clock | None = None) -> None:
        if not 0 <= domains <= MAX_DOMAINS:
            raise InvalidArgument(f"the simulation holds 0..{MAX_DOMAINS} domains, not {domains}")
        self.seed = seed
        self.clock = clock or RealClock()
        self.rng = random.Random(seed)
        self._timer_order = itertools.count()
        now = self.clock.monotonic()
        big = domains > 40
        self.hosts: dict[str, SimHost] = {
            "sim-host-1": SimHost(
                "sim-host-1", "4.17.3", max(16, 1 << math.ceil(math.log2(max(1, domains)))) if big else 16,
                2394, 0, "GenuineIntel", _FEATURES, ("/srv/shared/",),
            ),
            "sim-host-2": SimHost("sim-host-2", "4.17.3", 16, 2394, 96 * GIB, "GenuineIntel", _FEATURES,
                                  ("/srv/shared/",)),
            "sim-host-3": SimHost("sim-host-3", "4.16.5", 8, 2100, 12 * GIB, "GenuineIntel",
                                  _FEATURES - {"avx512f", "avx512dq", "avx512bw", "avx512vl"}, ()),
        }
        for host in self.hosts.values():
            host.last_t = now
        self._populate(self.hosts["sim-host-1"], domains, now)
        self._populate_peer(self.hosts["sim-host-2"], ("ldap-01", "monitoring"), now)
        self._populate_peer(self.hosts["sim-host-3"], ("legacy-erp", "fileserver", "jumphost", "print-01"), now)

    # construction ---------------------------------------------------------------------

    def _uuid(self) -> str:
        """A random (version 4) UUID, as uuid.UUID(int=..., version=4) spells it, without the object."""
        bits = self.rng.getrandbits(128) & ~(0xC000 << 48 | 0xF000 << 64) | 0x8000 << 48 | 4 << 76
        text = f"{bits:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def _mac(self) -> str:
        draw = self.rng.randrange
        first, second, third = draw(256), draw(256), draw(256)
        return f"00:16:3e:{first:02x}:{second:02x}:{third:02x}"

    def _new_domain(
        self, host: SimHost, name: str, dtype: DomainType, vcpus: tuple[int, int], mem_gib: tuple[float, float],
        load: LoadProfile, disks: str, pv_drivers: bool, now: float, *, domid: int | None = None,
    ) -> SimDomain:
        rng = self.rng
        load.phase = rng.random()
        online, vmax = vcpus
        mem = int(mem_gib[0] * GIB)
        maxmem = None if mem_gib[1] is None else int(mem_gib[1] * GIB)
        domid = host.allocate_domid() if domid is None else domid
        uptime = rng.uniform(3_600, 40 * 86_400)
        vifs = []
        if domid != 0:
            for devid in range(2 if name.startswith("db-") else 1):
                scale = rng.uniform(0.2, 3.0) * (1 + 10 * load.base)
                vifs.append(SimVif(devid, self._mac(), "xenbr0" if devid == 0 else "xenbr1",
                                   rx_rate=40_000 * scale, tx_rate=25_000 * scale))
        vbds = []
        if domid != 0:
            prefix = {"local": "/dev/vg0/", "shared": "/srv/shared/images/", "qdisk": "/srv/shared/images/"}[disks]
            backend = VbdBackend.QDISK if disks == "qdisk" else VbdBackend.BLKBACK
            count = 2 if name.startswith("db-") or dtype is DomainType.HVM else 1
            for index in range(count):
                letter = "abcdefgh"[index]
                if dtype is DomainType.HVM and not pv_drivers:
                    device, devid = f"hd{letter}", (768, 832)[index]
                else:
                    device, devid = f"xvd{letter}", 51712 + 16 * index
                suffix = ".qcow2" if backend is VbdBackend.QDISK else ("" if disks == "local" else ".img")
                heavy = 8.0 if name.startswith("db-") else 1.0
                vbds.append(SimVbd(devid, device, backend, f"{prefix}{name.replace(' ', '_')}-{device}{suffix}",
                                   rd_rate=rng.uniform(5, 60) * heavy, wr_rate=rng.uniform(5, 40) * heavy,
                                   sectors_per_req=rng.choice((8, 16, 32, 64))))
        dom = _NewSimDomain(
            domid=domid, name=name, uuid="00000000-0000-0000-0000-000000000000" if domid == 0 else self._uuid(),
            type=dtype, load=load, vcpus_max=vmax, vcpus_online=online, mem_kib=float(mem), target_kib=mem,
            maxmem_kib=maxmem, vifs=vifs, vbds=vbds, pv_drivers=pv_drivers, salt=rng.getrandbits(32),
            started_at=now - uptime,
        )
        # Counters as after `uptime` seconds at about the average load.
        average = load.base * online
        dom.start_vcpus([
            uptime * 1e9 * average / max(1, online) * (rng.uniform(0.85, 1.15) if i < online else 0.3)
            for i in range(vmax)
        ])
        dom.io = [uptime * (0.3 + load.base), uptime * (0.2 + load.base)]
        dom.vif_drops = tuple(rng.randrange(0, 40) for _ in dom.vifs)
        dom.vbd_ring_full = tuple(rng.randrange(0, 5) for _ in dom.vbds)
        dom.__class__ = SimDomain  # from now on, a change to a static field drops the static tuple
        return dom

    def _populate(self, host: SimHost, count: int, now: float) -> None:
        dom0 = self._new_domain(host, "Domain-0", DomainType.PV, (4, 4), (4, None), LoadProfile(0.06, 0.03, 15),
                                "local", True, now, domid=0)
        host.domains[dom0.name] = dom0
        for spec in _FEATURED[:count]:
            name, dtype, vcpus, mem, load, disks, state, pv = spec
            dom = self._new_domain(host, name, dtype, vcpus, mem, dataclasses.replace(load), disks, pv, now)
            self._apply_initial_state(dom, state, now)
            host.domains[name] = dom
        rng = self.rng
        for index in range(len(_FEATURED), count):
            role = rng.choice(_ROLES)
            dtype = rng.choice((DomainType.PV, DomainType.PVH, DomainType.PVH, DomainType.HVM))
            vmax = rng.choice((1, 2, 2, 4, 8))
            online = rng.randint(1, vmax)
            mem = rng.choice((0.5, 1, 1, 2, 2, 4, 8))
            load = LoadProfile(rng.choice((0.01, 0.03, 0.1, 0.2, 0.4, 0.7)), rng.uniform(0, 0.2),
                               rng.uniform(20, 180))
            dom = self._new_domain(host, f"{role}-{index:04d}", dtype, (online, vmax), (mem, mem * 2), load,
                                   rng.choice(("local", "shared", "shared")), True, now)
            if rng.random() < 0.02:
                dom.paused = True
            host.domains[dom.name] = dom
        committed = sum((d.maxmem_kib or d.mem_kib) for d in host.domains.values())
        host.total_kib = max(64 * GIB, math.ceil(committed * 1.15 / GIB) * GIB)
        host.hypervisor_overhead_kib = host.total_kib // 100

    def _populate_peer(self, host: SimHost, names: tuple[str, ...], now: float) -> None:
        dom0 = self._new_domain(host, "Domain-0", DomainType.PV, (2, 2), (2, None), LoadProfile(0.04), "local",
                                True, now, domid=0)
        host.domains[dom0.name] = dom0
        for name in names:
            host.domains[name] = self._new_domain(host, name, DomainType.PVH, (1, 2), (2, 4), LoadProfile(0.05),
                                                  "local", True, now)
        host.hypervisor_overhead_kib = host.total_kib // 100

    @staticmethod
    def _apply_initial_state(dom: SimDomain, state: str, now: float) -> None:
        if state == "paused":
            dom.paused = True
        elif state == "shutdown":
            dom.status = Status.SHUTDOWN
            dom.log(now, "reboot: Power down")
        elif state == "crashed":
            dom.status = Status.CRASHED
            dom.log(now, "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(202,1)")
        elif state == "dying":
            dom.status = Status.DYING  # a zombie: a backend still holds its pages

    # time -----------------------------------------------------------------------------

    def advance(self) -> float:
        """Bring every host up to the clock: integrate counters, move balloons, fire timers."""
        now = self.clock.monotonic()
        for host in self.hosts.values():
            self._advance_host(host, now)
        return now

    def _advance_host(self, host: SimHost, now: float) -> None:
        while host.timers and host.timers[0][0] <= now:
            due, _, action = host.timers.pop(0)
            self._integrate(host, host.last_t, due)
            host.last_t = max(host.last_t, due)
            action()
        self._integrate(host, host.last_t, now)
        host.last_t = max(host.last_t, now)

    def _integrate(self, host: SimHost, start: float, end: float) -> None:
        span = end - start
        if span <= 0:
            return
        # Rounded, not ceiled: a screen polling every second sees spans of 1.0x s, which must
        # stay one step, not two (half the simulation's cost at a thousand domains).
        steps = max(1, round(span / STEP_S))
        dt = span / steps
        domains = list(host.domains.values())
        weights = [d.weight for d in domains]
        balloon_factor = 1 - math.exp(-dt / BALLOON_TAU_S)
        active = Status.ACTIVE
        set_field = object.__setattr__  # a plain set: not a static field
        sin = math.sin
        jitter = _JITTER
        # Written out flat, with no call per domain: this runs for every domain at every step.
        for step in range(steps):
            t = start + dt * (step + 0.5)
            tick = int(t)
            tick_mix = tick * _TICK_MIX
            # CPUs each domain wants right now, after its cap (LoadProfile.at, inline)
            demands = []
            for d in domains:
                if d.status != active or d.paused:
                    demands.append(0.0)
                    continue
                load = d.load
                cycle = (t / load.period_s + load.phase) % 1.0
                wave = (2 * cycle - 1) if load.sawtooth else sin(TWO_PI * cycle)
                level = load.base + load.swing * wave + jitter[(d.salt ^ tick_mix) & _JITTER_MASK] * load.noise
                wanted = (1.0 if level > 1.0 else 0.0 if level < 0.0 else level) * d.vcpus_online
                demands.append(min(wanted, d.cap / 100) if d.cap else wanted)
            granted = _credit_share(demands, weights, host.nr_cpus)
            free = host.free_kib
            for dom, wanted, cpus in zip(domains, demands, granted, strict=True):
                set_field(dom, "last_demand", wanted)
                if dom.status != active or dom.paused:
                    continue
                ns = cpus * dt * 1e9
                activity = cpus / (dom.vcpus_online or 1)
                cpu = dom.cpu  # the per-vCPU times follow from these two (VcpuSplit)
                cpu[0] += ns
                if activity < 1.0:
                    cpu[1] += ns * (1.0 - activity)
                # The balloon moves toward its target, limited by what the host has free.
                gap = dom.target_kib - dom.mem_kib
                if gap:
                    moved = gap if abs(gap) < MIB / balloon_factor else gap * balloon_factor
                    if moved > 0:
                        moved = min(moved, free)
                    free -= moved
                    dom.mem_kib += moved
                salt = dom.salt
                io = dom.io  # every device's counters follow from these two
                if dom.vifs and (activity >= QUIET_NET_BELOW or (tick + salt) % NET_BURST_S == 0):
                    io[0] += (0.2 + activity) * dt * (1 if activity >= QUIET_NET_BELOW else NET_BURST_S)
                    if activity > 0.9:
                        for index, vif in enumerate(dom.vifs):
                            if _hash_unit(salt + vif.devid, tick) < 0.1:  # drops under load
                                dom.vif_drops = _bumped(dom.vif_drops, index)
                if dom.vbds and (activity >= QUIET_DISK_BELOW or (tick + salt) % DISK_BURST_S == 0):
                    io[1] += (0.1 + activity) * dt * (1 if activity >= QUIET_DISK_BELOW else DISK_BURST_S)
                    if activity > 0.5:
                        for index, vbd in enumerate(dom.vbds):
                            if _hash_unit(salt + vbd.devid, tick) < 0.05:  # out-of-requests: the ring was full
                                dom.vbd_ring_full = _bumped(dom.vbd_ring_full, index)

    def schedule(self, host: SimHost, delay: float, action: Callable[[], None]) -> None:
        due = host.last_t + delay  # from inside a timer, "now" is that timer's moment
        host.timers.append((due, next(self._timer_order), action))
        host.timers.sort(key=lambda item: (item[0], item[1]))

    # samples ----------------------------------------------------------------------------

    @staticmethod
    def host_model(host: SimHost) -> Host:
        return Host(
            hostname=host.hostname, hypervisor="Xen", version=host.version, nr_cpus=host.nr_cpus,
            cpu_mhz=host.cpu_mhz, total_kib=host.total_kib, free_kib=host.free_kib, scheduler="credit",
            cpu_vendor=host.cpu_vendor, cpu_features=host.cpu_features,
        )

    @staticmethod
    def sample_host(host: SimHost) -> tuple[SampledDomains, DomainColumns]:
        """Every domain of the host as columns, copied in C-level passes (no Python call per domain), and
        its records, each made from those columns when first read."""
        doms = list(host.domains.values())
        devices = host.devices_of(doms)
        ids = list(map(attrgetter("domid"), doms))
        statics = [dom.static or dom.static_fields() for dom in doms]
        demands = map(attrgetter("last_demand"), doms)
        # dom0 runs xentui itself; a guest is on a CPU when it wants at least half of its vCPUs
        halves = map(mul, repeat(0.5), map(max, repeat(1), map(attrgetter("vcpus_online"), doms)))
        on_cpu = map(or_, map(not_, ids), map(ge, demands, halves))
        flags = list(map(_FLAGS.__getitem__, zip(map(attrgetter("status"), doms), map(attrgetter("paused"), doms),
                                                  on_cpu, strict=True)))
        cpus = list(map(attrgetter("cpu"), doms))
        cpu = list(map(itemgetter(0), cpus))
        cpu_ns = list(map(int, cpu))
        ios = list(map(attrgetter("io"), doms))
        net, disk = list(map(itemgetter(0), ios)), list(map(itemgetter(1), ios))
        ring_full = list(map(attrgetter("vbd_ring_full"), doms))
        # The totals of what VifRecords and VbdRecords give (_net_counters, _disk_counters): device by
        # device, then summed per domain.
        vif_net = list(map(net.__getitem__, devices.vif_owner))
        vbd_disk = list(map(disk.__getitem__, devices.vbd_owner))
        reads = list(map(mul, devices.rd_rate, vbd_disk))
        writes = list(map(mul, devices.wr_rate, vbd_disk))
        columns = DomainColumns(
            keys=list(map(itemgetter(_STATIC_AT["uuid"]), statics)),  # a simulated domain always has a uuid
            names=list(map(itemgetter(_STATIC_AT["name"]), statics)), ids=ids, flags=flags,
            cpu_ns=cpu_ns,
            net_rx_bytes=devices.vif_sums(map(int, map(mul, devices.rx_rate, vif_net))),
            net_tx_bytes=devices.vif_sums(map(int, map(mul, devices.tx_rate, vif_net))),
            vbd_rd_reqs=devices.vbd_sums(map(int, reads)),
            vbd_wr_reqs=devices.vbd_sums(map(int, writes)),
            vbd_oo_reqs=list(map(sum, ring_full)),
            vbd_rd_sectors=devices.vbd_sums(map(int, map(mul, reads, devices.sectors_per_req))),
            vbd_wr_sectors=devices.vbd_sums(map(int, map(mul, writes, devices.sectors_per_req))),
            layouts=list(map(itemgetter(_STATIC_AT["layout"]), statics)),
        )
        state = _SampledState(statics, ids, flags, cpu_ns, list(map(int, map(attrgetter("mem_kib"), doms))), cpu,
                              list(map(itemgetter(1), cpus)), net, list(map(attrgetter("vif_drops"), doms)), disk,
                              ring_full)
        return SampledDomains(state), columns


@dataclass(slots=True, frozen=True)
class _SampledState:
    """A host's domains as one sample saw them, column by column (each in the host's domain order)."""

    statics: list[tuple]  # SimDomain.static_fields()
    ids: list[int]
    flags: list[DomainFlag]
    cpu_ns: list[int]
    mem_kib: list[int]
    cpu: list[float]
    uneven: list[float]
    net: list[float]
    drops: list[tuple[int, ...]]
    disk: list[float]
    ring_full: list[tuple[int, ...]]

    def record(self, i: int) -> Domain:
        (name, uuid, dtype, xen_maxmem_kib, maxmem_kib, vcpus_max, vifs, vbds, weight, cap, ssid, target_kib, split,
         _) = self.statics[i]
        domid = self.ids[i]
        return Domain(domid, name, uuid, dtype, self.flags[i], self.cpu_ns[i], self.mem_kib[i], xen_maxmem_kib,
                      VcpuTimes(split, self.cpu[i], self.uneven[i]), vcpus_max,
                      VifRecords(vifs, domid, self.net[i], self.drops[i]),
                      VbdRecords(vbds, self.disk[i], self.ring_full[i]), weight, cap, ssid, target_kib, maxmem_kib)


@dataclass(slots=True)
class _Devices:
    """Every vif and vbd of a host's domains, flattened in domain order, with the rates that do not change:
    a sample works out every domain's device totals in C-level passes over these."""

    domains: list[SimDomain]  # the domains, in the order these were made for
    vif_owner: list[int]  # each vif's domain, as a position in ``domains``
    rx_rate: list[float]
    tx_rate: list[float]
    vif_bounds: tuple[list[int], list[int]]  # each domain's first vif and one past its last
    vbd_owner: list[int]
    rd_rate: list[float]
    wr_rate: list[float]
    sectors_per_req: list[int]
    vbd_bounds: tuple[list[int], list[int]]

    @classmethod
    def of(cls, domains: list[SimDomain]) -> _Devices:
        vifs = [(position, vif) for position, dom in enumerate(domains) for vif in dom.vifs]
        vbds = [(position, vbd) for position, dom in enumerate(domains) for vbd in dom.vbds]
        return cls(
            domains, [position for position, _ in vifs], [vif.rx_rate for _, vif in vifs],
            [vif.tx_rate for _, vif in vifs], _bounds([len(dom.vifs) for dom in domains]),
            [position for position, _ in vbds], [vbd.rd_rate for _, vbd in vbds], [vbd.wr_rate for _, vbd in vbds],
            [vbd.sectors_per_req for _, vbd in vbds], _bounds([len(dom.vbds) for dom in domains]),
        )

    def vif_sums(self, values: Iterable[int]) -> list[int]:
        return _sums(values, self.vif_bounds)

    def vbd_sums(self, values: Iterable[int]) -> list[int]:
        return _sums(values, self.vbd_bounds)


def _bounds(counts: list[int]) -> tuple[list[int], list[int]]:
    ends = list(accumulate(counts))
    return [end - count for end, count in zip(ends, counts, strict=True)], ends


def _sums(values: Iterable[int], bounds: tuple[list[int], list[int]]) -> list[int]:
    """Per-domain sums of per-device values, by differences of running totals (all C-level)."""
    running = list(accumulate(values, initial=0))
    starts, ends = bounds
    return list(map(sub, map(running.__getitem__, ends), map(running.__getitem__, starts)))


class SampledDomains(Sequence[Domain]):
    """A sample's domains, each record made when first read (the rows drawn, details, batch output):
    a refresh of a thousand domains reads `Sample.columns`."""

    __slots__ = ("_made", "_state")

    def __init__(self, state: _SampledState) -> None:
        self._state = state
        self._made: list[Domain | None] = [None] * len(state.ids)

    def __len__(self) -> int:
        return len(self._made)

    @overload
    def __getitem__(self, index: int) -> Domain: ...
    @overload
    def __getitem__(self, index: slice) -> list[Domain]: ...
    def __getitem__(self, index: int | slice) -> Domain | list[Domain]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._made))[index]]
        made = self._made[index]
        if made is None:
            made = self._made[index] = self._state.record(index % len(self._made))
        return made

    def __iter__(self) -> Iterator[Domain]:
        return map(self.__getitem__, range(len(self._made)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, SampledDomains)) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(list(self))


def _bumped(counts: tuple[int, ...], index: int) -> tuple[int, ...]:
    return (*counts[:index], counts[index] + 1, *counts[index + 1:])


# --- console ---------------------------------------------------------------------------


class SimConsole(ConsoleChannel):
    """The guest's serial line: bytes typed go to its shell, its output comes back."""

    def __init__(self, backend: SimBackend, dom: SimDomain) -> None:
        self._backend = backend
        self._dom = dom
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.size = (80, 24)
        self.closed = False

    def emit(self, data: bytes) -> None:
        if data and not self.closed:  # an empty chunk is end-of-file (hang_up), never output
            self._queue.put_nowait(data)

    def hang_up(self) -> None:
        """The domain went away: readers get EOF."""
        self._queue.put_nowait(b"")

    async def read(self) -> bytes:
        if self.closed:
            return b""
        chunks = [await self._queue.get()]
        while not self._queue.empty() and chunks[-1]:
            chunks.append(self._queue.get_nowait())
        if not chunks[-1]:
            self.closed = True
        return b"".join(chunks)

    async def write(self, data: bytes) -> None:
        if self.closed or self._dom.console is not self:
            raise DomainNotFound(f"{self._dom.name}'s console is closed")
        self._backend.cluster.advance()
        if not self._dom.active:
            return  # a dead guest reads nothing
        if self._dom.paused:
            self._dom.pending_input += data  # typed ahead; the guest reads it when unpaused
            return
        assert self._dom.shell is not None
        self.emit(self._dom.shell.feed(data))

    async def resize(self, columns: int, rows: int) -> None:
        self.size = (columns, rows)

    async def close(self) -> None:
        self.closed = True
        if self._dom.console is self:
            self._dom.console = None
        self._queue.put_nowait(b"")


# --- the backend -----------------------------------------------------------------------


class SimBackend(Backend):
    """One host of a `SimCluster`, seen through the backend interface."""

    name = "sim"

    def __init__(
        self, cluster: SimCluster | None = None, host: str = "sim-host-1", *, save_dir: Path | None = None
    ) -> None:
        self.cluster = cluster or SimCluster()
        if host not in self.cluster.hosts:
            raise InvalidArgument(f"no simulated host named {host!r}")
        self.host = self.cluster.hosts[host]
        self.save_dir = save_dir

    @classmethod
    def create(cls, *, seed: int = 0, domains: int = 12, clock: Clock | None = None) -> SimBackend:
        return cls(SimCluster(seed=seed, domains=domains, clock=clock))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    @property
    def clock(self) -> Clock:
        return self.cluster.clock

    # reading ----------------------------------------------------------------------------

    async def sample(self) -> Sample:
        now = self.cluster.advance()
        domains, columns = self.cluster.sample_host(self.host)
        return Sample(monotonic=now, wall=self.clock.wall(), host=self.cluster.host_model(self.host),
                      domains=domains, columns=columns)

    async def host_info(self) -> Host:
        self.cluster.advance()
        return self.cluster.host_model(self.host)

    def _domain(self, name: str, *, action: str, allow_dom0: bool = True, need_active: bool = True) -> SimDomain:
        self.cluster.advance()
        dom = self.host.domains.get(name)
        if dom is None:
            raise DomainNotFound(f"{action}: no domain named {name!r} on {self.host.hostname}")
        if dom.is_dom0 and not allow_dom0:
            raise InvalidArgument(f"{action} refused: Domain-0 is the control domain; that would take the host down")
        if dom.busy:
            raise BackendError(f"{action} refused: {name} is busy {dom.busy}; wait for it to finish")
        if need_active and not dom.active:
            raise InvalidArgument(f"{action} refused: {name} is {dom.status}, not running")
        return dom

    # memory, vCPUs, scheduler ---------------------------------------------------------------

    async def mem_set(self, domain: str, kib: int) -> None:
        dom = self._domain(domain, action="mem-set")
        check_memory_target(kib, maxmem_kib=dom.maxmem_kib, host_total_kib=self.host.total_kib, name=dom.name,
                            current_kib=dom.mem_kib, host_free_kib=self.host.free_kib)
        dom.target_kib = kib
        dom.limit_at_max = False

    async def mem_max(self, domain: str, kib: int) -> None:
        dom = self._domain(domain, action="mem-max")
        check_memory_ceiling(kib, target_kib=dom.target_kib, host_total_kib=self.host.total_kib, name=dom.name)
        dom.maxmem_kib = kib
        dom.limit_at_max = True

    async def vcpu_set(self, domain: str, count: int, *, allow_overcommit: bool = False) -> None:
        dom = self._domain(domain, action="vcpu-set")
        check_vcpu_count(count, max_vcpus=dom.vcpus_max, host_cpus=self.host.nr_cpus,
                         allow_overcommit=allow_overcommit, name=dom.name)
        now = self.clock.monotonic()
        for index in range(dom.vcpus_online, count):
            self._kernel(dom, now, f"smpboot: Booting Node 0 Processor {index} APIC 0x{index:x}")
        for index in range(count, dom.vcpus_online):
            self._kernel(dom, now, f"smpboot: CPU {index} is now offline")
        times = dom.vcpu_times()  # up to now (_domain brought the counters up to the clock)
        dom.vcpus_online = count
        dom.vcpu_split = VcpuSplit.at(times, count, *dom.cpu)

    async def set_sched(self, domain: str, *, weight: int | None = None, cap: int | None = None) -> None:
        dom = self._domain(domain, action="sched-credit", need_active=False)
        check_sched(weight, cap, max_vcpus=dom.vcpus_max)
        if weight is not None:
            dom.weight = weight
        if cap is not None:
            dom.cap = cap

    # pause, life-cycle ------------------------------------------------------------------

    async def pause(self, domain: str) -> None:
        dom = self._domain(domain, action="pause", allow_dom0=False)
        if dom.paused:
            raise InvalidArgument(f"pause: {dom.name} is already paused")
        dom.paused = True

    async def unpause(self, domain: str) -> None:
        dom = self._domain(domain, action="unpause", allow_dom0=False)
        if not dom.paused:
            raise InvalidArgument(f"unpause: {dom.name} is not paused")
        dom.paused = False
        if dom.pending_input and dom.console and dom.shell:
            typed, dom.pending_input = bytes(dom.pending_input), bytearray()
            dom.console.emit(dom.shell.feed(typed))

    def _graceful(self, domain: str, action: str) -> SimDomain:
        """A shutdown or reboot request goes through the guest's PV drivers, and only a running guest reacts."""
        dom = self._domain(domain, action=action, allow_dom0=False)
        if not dom.pv_drivers:
            raise BackendError(
                f"{action}: PV control interface not available in {dom.name}: an external graceful {action} "
                "is not possible (no PV drivers); do it from inside the guest, or destroy it"
            )
        if dom.paused:
            raise InvalidArgument(f"{action}: {dom.name} is paused and cannot react; unpause it first")
        self._kernel(dom, self.clock.monotonic(), "systemd-shutdown[1]: Syncing filesystems and block devices.")
        return dom

    async def shutdown(self, domain: str) -> None:
        dom = self._graceful(domain, "shutdown")
        self.cluster.schedule(self.host, 1.5, lambda: self._power_off(dom, "reboot: Power down"))

    async def reboot(self, domain: str) -> None:
        dom = self._graceful(domain, "reboot")
        self.cluster.schedule(self.host, 1.5, lambda: self._restart(dom))

    async def destroy(self, domain: str) -> None:
        dom = self._domain(domain, action="destroy", allow_dom0=False, need_active=False)
        if dom.status == Status.DYING:
            raise BackendError(
                f"destroy: {dom.name} is already dying; a backend still holds its memory "
                "(look for a stuck blkback or qemu in dom0)"
            )
        self._remove(dom)

    def _power_off(self, dom: SimDomain, message: str) -> None:
        if self.host.domains.get(dom.name) is not dom:
            return
        self._kernel(dom, self.host.last_t, message)
        dom.status = Status.SHUTDOWN
        # on_poweroff=destroy, xl's default: a moment in shutdown, then gone.
        self.cluster.schedule(self.host, 0.5, lambda: self._remove(dom))

    def _restart(self, dom: SimDomain) -> None:
        """on_reboot=restart: the old domain goes, a new one with a new domid takes its name."""
        if self.host.domains.get(dom.name) is not dom:
            return
        self._kernel(dom, self.host.last_t, "reboot: Restarting system")
        self._remove(dom)
        dom.domid = self.host.allocate_domid()
        dom.status, dom.paused = Status.ACTIVE, False
        dom.started_at = self.host.last_t
        dom.start_vcpus([0.0] * dom.vcpus_max)
        dom.mem_kib = float(dom.target_kib)
        dom.start_devices()
        dom.kernel_log = []
        dom.log(dom.started_at, f"Linux version 6.1.0-27-amd64 ({dom.name}) #1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1")
        self.host.domains[dom.name] = dom

    def _remove(self, dom: SimDomain) -> None:
        if self.host.domains.get(dom.name) is dom:
            del self.host.domains[dom.name]
        if dom.console is not None:
            dom.console.hang_up()
            dom.console = None

    def _kernel(self, dom: SimDomain, now: float, text: str) -> None:
        line = dom.log(now, text)
        if dom.console is not None:
            dom.console.emit(f"\r\n{line}".encode())  # as printk: from the start of a fresh line

    # sysrq --------------------------------------------------------------------------------

    async def sysrq(self, domain: str, key: str) -> None:
        check_sysrq(key)
        dom = self._domain(domain, action="sysrq", allow_dom0=False)
        if not dom.pv_drivers:
            raise BackendError(
                f"sysrq: {dom.name} has no PV drivers, so it does not read sysrq requests from xenstore"
            )
        now = self.clock.monotonic()
        for line in kernel_sysrq_lines(key, dom):
            self._kernel(dom, now, line)
        if key == "c":
            dom.status = Status.CRASHED  # on_crash=preserve here, so the operator can look at it
            if dom.console is not None:
                dom.console.hang_up()
                dom.console = None
        elif key == "b":
            self.cluster.schedule(self.host, 0.2, lambda: self._restart(dom))
        elif key == "o":
            self.cluster.schedule(self.host, 0.2, lambda: self._power_off(dom, "reboot: Power down"))

    # save / restore ---------------------------------------------------------------------

    async def save(
        self, domain: str, path: Path, *, keep_running: bool = False, overwrite: bool = False
    ) -> None:
        dom = self._domain(domain, action="save", allow_dom0=False)
        path = check_save_path(path, overwrite=overwrite)
        was_paused = dom.paused
        dom.busy, dom.paused = "saving", True
        try:
            await self.clock.sleep(dom.mem_kib / SAVE_BANDWIDTH_KIB_S + 0.2)
            self.cluster.advance()
            payload = {
                "name": dom.name, "uuid": dom.uuid, "type": dom.type.value, "vcpus_max": dom.vcpus_max,
                "vcpus_online": dom.vcpus_online, "mem_kib": int(dom.mem_kib), "target_kib": dom.target_kib,
                "maxmem_kib": dom.maxmem_kib, "weight": dom.weight, "cap": dom.cap, "was_paused": was_paused,
                "pv_drivers": dom.pv_drivers, "load": dataclasses.asdict(dom.load), "salt": dom.salt,
                "vifs": [{"devid": v.devid, "mac": v.mac, "bridge": v.bridge, "rx_rate": v.rx_rate,
                          "tx_rate": v.tx_rate} for v in dom.vifs],
                "vbds": [{"devid": v.devid, "device": v.device, "backend": v.backend.value, "path": v.path,
                          "rd_rate": v.rd_rate, "wr_rate": v.wr_rate, "sectors_per_req": v.sectors_per_req}
                         for v in dom.vbds],
                "from_host": self.host.hostname,
            }
            partial = partial_path(path)
            try:
                partial.write_bytes(SAVE_MAGIC + json.dumps(payload, indent=1).encode())
                finish(partial, path)
            except OSError as error:
                discard(partial)
                raise BackendError(f"save: cannot write {printable(str(path))}: {error.strerror}; "
                                   "an earlier image there is untouched") from error
        finally:
            dom.busy = None
            dom.paused = was_paused
        if not keep_running:
            self._remove(dom)

    async def restore(self, path: Path, *, paused: bool = False) -> str:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise InvalidArgument(f"restore: cannot read {path}: {error.strerror}") from error
        if not raw.startswith(SAVE_MAGIC):
            raise InvalidArgument(f"restore: {path} is not a saved domain image")
        try:
            saved = json.loads(raw[len(SAVE_MAGIC):])
            name = saved["name"]
        except (ValueError, KeyError) as error:
            raise InvalidArgument(f"restore: {path} is damaged ({error})") from error
        self.cluster.advance()
        if name in self.host.domains:
            raise InvalidArgument(
                f"restore: a domain named {name!r} is already running here (saved with keep-running?); "
                "destroy it first or restore elsewhere"
            )
        if any(d.uuid == saved["uuid"] for d in self.host.domains.values()):
            raise InvalidArgument(f"restore: a domain with uuid {saved['uuid']} is already running here")
        if saved["mem_kib"] > self.host.free_kib:
            raise BackendError(
                f"restore: {name} needs {format_kib(saved['mem_kib'])} but the host has only "
                f"{format_kib(self.host.free_kib)} free"
            )
        await self.clock.sleep(saved["mem_kib"] / SAVE_BANDWIDTH_KIB_S + 0.2)
        self.cluster.advance()
        dom = SimDomain(
            domid=self.host.allocate_domid(), name=name, uuid=saved["uuid"], type=DomainType(saved["type"]),
            load=LoadProfile(**saved["load"]), vcpus_max=saved["vcpus_max"], vcpus_online=saved["vcpus_online"],
            mem_kib=float(saved["mem_kib"]), target_kib=saved["target_kib"], maxmem_kib=saved["maxmem_kib"],
            vifs=[SimVif(**v) for v in saved["vifs"]],
            vbds=[SimVbd(**{**v, "backend": VbdBackend(v["backend"])}) for v in saved["vbds"]],
            pv_drivers=saved["pv_drivers"], paused=paused or saved["was_paused"], weight=saved["weight"],
            cap=saved["cap"], salt=saved["salt"], started_at=self.clock.monotonic(),
        )
        dom.start_vcpus([0.0] * dom.vcpus_max)
        dom.start_devices()
        dom.log(dom.started_at, "PM: restore of devices complete")
        self.host.domains[name] = dom
        return name

    # migration ----------------------------------------------------------------------------

    def _target(self, target: str) -> SimHost:
        host = check_host(target)
        if host == self.host.hostname:
            raise InvalidArgument(f"migrate: {host} is this host")
        peer = self.cluster.hosts.get(host)
        if peer is None:
            peers = ", ".join(h for h in self.cluster.hosts if h != self.host.hostname)
            raise BackendError(f"migrate: cannot reach {host}: no such host in the simulated pool (try {peers})")
        return peer

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]:
        dom = self._domain(domain, action="migrate", allow_dom0=False)
        peer = self._target(target)
        return self._checks(dom, peer)

    def _checks(self, dom: SimDomain, peer: SimHost) -> list[PreflightCheck]:
        mine = _version_tuple(self.host.version)
        theirs = _version_tuple(peer.version)
        missing = sorted(self.host.cpu_features - peer.cpu_features)
        unseen = [vbd.path for vbd in dom.vbds if not peer.sees(vbd.path)]
        return [
            PreflightCheck("reachable", True, f"{peer.hostname} answers"),
            PreflightCheck(
                "hypervisor version", theirs >= mine,
                f"Xen {peer.version} there, {self.host.version} here"
                + ("" if theirs >= mine else ": a domain cannot move to an older Xen"),
            ),
            PreflightCheck(
                "CPU", peer.cpu_vendor == self.host.cpu_vendor and not missing,
                f"{peer.cpu_vendor}, same features" if not missing
                else f"{peer.cpu_vendor}, lacks {' '.join(missing)} that the guest may use",
            ),
            PreflightCheck(
                "free memory", peer.free_kib >= dom.mem_kib,
                f"{human_kib(peer.free_kib)} free there, {dom.name} needs {human_kib(int(dom.mem_kib))}",
            ),
            PreflightCheck(
                "storage", not unseen,
                "every disk is on shared storage" if not unseen else f"not visible there: {', '.join(unseen)}",
            ),
        ]

    async def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]:
        dom = self._domain(domain, action="migrate", allow_dom0=False)
        peer = self._target(target)
        checks = self._checks(dom, peer)
        yield MigrateProgress(MigratePhase.PREFLIGHT, 0.0, f"migrating {dom.name} to {peer.hostname}")
        failed = {check.name: check for check in checks if check.ok is False}
        if "hypervisor version" in failed:
            raise BackendError(
                f"migrate: {peer.hostname} rejected the stream (Xen {peer.version} cannot restore a domain from "
                f"Xen {self.host.version}); {dom.name} keeps running here"
            )
        if "free memory" in failed:
            raise BackendError(f"migrate: {peer.hostname} could not allocate {dom.name}'s memory "
                               f"({failed['free memory'].detail}); {dom.name} keeps running here")
        was_paused = dom.paused
        dom.busy = "migrating"
        done = False
        total = int(dom.mem_kib)
        sent = 0
        try:
            if not live:
                dom.paused = True
            to_send = total
            for round_no in range(1, 6):
                chunk = max(64 * MIB, total // 8)
                remaining = to_send
                while remaining > 0:
                    piece = min(chunk, remaining)
                    await self.clock.sleep(piece / MIGRATE_BANDWIDTH_KIB_S)
                    remaining -= piece
                    sent += piece
                    fraction = min(0.95, sent / (total * 1.3))
                    yield MigrateProgress(MigratePhase.COPYING, fraction,
                                          f"round {round_no}: {format_kib(sent // MIB * MIB)} sent",
                                          sent * 1024, total * 1024)
                dirty_share = 0.0 if dom.paused else 0.05 + 0.3 * dom.load.at(self.clock.monotonic(), dom.salt)
                to_send = int(to_send * dirty_share)
                if to_send < 32 * MIB:
                    break
            dom.paused = True
            yield MigrateProgress(MigratePhase.STOP_AND_COPY, 0.97,
                                  f"{dom.name} paused; copying the last {format_kib(max(to_send, MIB) // MIB * MIB)}",
                                  sent * 1024, total * 1024)
            await self.clock.sleep(max(to_send, MIB) / MIGRATE_BANDWIDTH_KIB_S + 0.05)
            if "storage" in failed:
                raise BackendError(f"migrate: {peer.hostname} could not attach {dom.name}'s disks "
                                   f"({failed['storage'].detail}); {dom.name} resumed here")
            if "CPU" in failed:
                raise BackendError(f"migrate: {peer.hostname} refused {dom.name}: its CPU "
                                   f"{failed['CPU'].detail}; {dom.name} resumed here")
            self.cluster.advance()
            self._remove(dom)
            dom.domid = peer.allocate_domid()
            dom.busy, dom.paused = None, was_paused
            dom.started_at = self.clock.monotonic() - dom.uptime(self.clock.monotonic())
            peer.domains[dom.name] = dom
            done = True
            yield MigrateProgress(MigratePhase.DONE, 1.0, f"{dom.name} now runs on {peer.hostname}",
                                  sent * 1024, total * 1024)
        finally:
            if not done:  # failed or cancelled: the domain carries on here as before
                dom.busy, dom.paused = None, was_paused

    # console ------------------------------------------------------------------------------

    async def open_console(self, domain: str) -> ConsoleChannel:
        dom = self._domain(domain, action="console", need_active=False)
        if dom.status in (Status.DYING,) or dom.status == Status.SHUTDOWN:
            raise InvalidArgument(f"console: {dom.name} is {dom.status}; there is no console to attach to")
        if dom.console is not None and not dom.console.closed:
            raise ConsoleBusy(
                f"console: {dom.name}'s console is already in use (another xentui or xl console holds it)"
            )
        if dom.shell is None:  # made on first use: most simulated guests never get a console
            dom.shell = SimShell(dom, self.clock)
        dom.console = SimConsole(self, dom)
        return dom.console


def _flag_table() -> dict[tuple[str, bool, bool], DomainFlag]:
    life = {
        Status.ACTIVE: DomainFlag.NONE,
        Status.SHUTDOWN: DomainFlag.SHUTDOWN,
        Status.CRASHED: DomainFlag.SHUTDOWN | DomainFlag.CRASHED,
        Status.DYING: DomainFlag.DYING,
    }
    table = {}
    for status, base in life.items():
        for paused in (False, True):
            for on_cpu in (False, True):
                flags = base
                if paused:
                    flags |= DomainFlag.PAUSED
                elif status == Status.ACTIVE:
                    flags |= DomainFlag.RUNNING if on_cpu else DomainFlag.BLOCKED
                table[(status, paused, on_cpu)] = flags
    return table


def _credit_share(demands: list[float], weights: list[int], cpus: float) -> list[float]:
    """CPU each domain gets when they compete: shares by weight, never more than asked (water-filling).

    With enough CPUs for everyone, everyone gets what it asks; otherwise the credit scheduler
    gives each busy domain CPU in proportion to its weight.
    """
    if sum(demands) <= cpus:
        return demands
    granted = [0.0] * len(demands)
    hungry = [i for i, wanted in enumerate(demands) if wanted > 0]
    left = float(cpus)
    while hungry and left > 1e-9:
        total_weight = sum(weights[i] for i in hungry)
        fair = {i: left * weights[i] / total_weight for i in hungry}
        satisfied = [i for i in hungry if demands[i] - granted[i] <= fair[i]]
        if not satisfied:
            for i in hungry:
                granted[i] += fair[i]
            break
        for i in satisfied:
            left -= demands[i] - granted[i]
            granted[i] = demands[i]
        done = set(satisfied)
        hungry = [i for i in hungry if i not in done]
    return granted


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


_FLAGS.update(_flag_table())
