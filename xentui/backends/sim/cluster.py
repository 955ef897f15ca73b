"""The simulated pool: its hosts (`SimHost`), the clock they share, and `SimCluster`, which builds every domain
from one seed and brings the hosts up to the clock (counters, balloons, timers)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import is_

from xentui.backends.base import InvalidArgument
from xentui.backends.sim.domain import GIB, SimDomain, SimVbd, SimVif, Status
from xentui.backends.sim.physics import LoadProfile, integrate
from xentui.backends.sim.records import _Devices, sample_host
from xentui.clock import Clock, RealClock
from xentui.model import DomainType, Host, VbdBackend

MAX_DOMAINS = 5000
MAX_HOSTS = 64


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

    def __init__(self, *, seed: int = 0, domains: int = 12, clock: Clock | None = None,
                 hosts: int | None = None) -> None:
        """``hosts``: None for the demo's three hosts (two small peers beside the first, which has ``domains``
        domUs); a number for that many hosts of ``domains`` domUs each (a pool at scale)."""
        if not 0 <= domains <= MAX_DOMAINS:
            raise InvalidArgument(f"the simulation holds 0..{MAX_DOMAINS} domains, not {domains}")
        if hosts is not None and not 1 <= hosts <= MAX_HOSTS:
            raise InvalidArgument(f"the simulation holds 1..{MAX_HOSTS} hosts, not {hosts}")
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
        if hosts is not None:
            self._scale_to(hosts, domains, now)

    def _scale_to(self, count: int, domains: int, now: float) -> None:
        """Every host but the first gets ``domains`` domUs of its own (names that say their host), more
        hosts like sim-host-2 are added, and hosts past ``count`` go."""
        for name in list(self.hosts)[count:]:
            del self.hosts[name]
        for number in range(2, count + 1):
            name = f"sim-host-{number}"
            host = self.hosts.get(name)
            if host is None:
                host = self.hosts[name] = SimHost(name, "4.17.3", 16, 2394, 96 * GIB, "GenuineIntel", _FEATURES,
                                                  ("/srv/shared/",))
                host.last_t = now
                self._populate_peer(host, (), now)
            self._add_random(host, domains, f"h{number}-", now)
            committed = sum((d.maxmem_kib or d.mem_kib) for d in host.domains.values())
            host.total_kib = max(host.total_kib, math.ceil(committed * 1.15 / GIB) * GIB)
            host.hypervisor_overhead_kib = host.total_kib // 100

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
        from xentui.backends import sim as package

        dom0 = self._new_domain(host, "Domain-0", DomainType.PV, (4, 4), (4, None), LoadProfile(0.06, 0.03, 15),
                                "local", True, now, domid=0)
        host.domains[dom0.name] = dom0
        # Read from the package, not this module: a test may replace `xentui.backends.sim._FEATURED`.
        featured = package._FEATURED
        for spec in featured[:count]:
            name, dtype, vcpus, mem, load, disks, state, pv = spec
            dom = self._new_domain(host, name, dtype, vcpus, mem, dataclasses.replace(load), disks, pv, now)
            self._apply_initial_state(dom, state, now)
            host.domains[name] = dom
        self._add_random(host, count - len(featured), "", now, first=len(featured))
        committed = sum((d.maxmem_kib or d.mem_kib) for d in host.domains.values())
        host.total_kib = max(64 * GIB, math.ceil(committed * 1.15 / GIB) * GIB)
        host.hypervisor_overhead_kib = host.total_kib // 100

    def _add_random(self, host: SimHost, count: int, tag: str, now: float, *, first: int = 0) -> None:
        """``count`` domUs of random roles, sizes and loads, named role-<tag><number>."""
        rng = self.rng
        for index in range(first, first + count):
            role = rng.choice(_ROLES)
            dtype = rng.choice((DomainType.PV, DomainType.PVH, DomainType.PVH, DomainType.HVM))
            vmax = rng.choice((1, 2, 2, 4, 8))
            online = rng.randint(1, vmax)
            mem = rng.choice((0.5, 1, 1, 2, 2, 4, 8))
            load = LoadProfile(rng.choice((0.01, 0.03, 0.1, 0.2, 0.4, 0.7)), rng.uniform(0, 0.2),
                               rng.uniform(20, 180))
            dom = self._new_domain(host, f"{role}-{tag}{index:04d}", dtype, (online, vmax), (mem, mem * 2), load,
                                   rng.choice(("local", "shared", "shared")), True, now)
            if rng.random() < 0.02:
                dom.paused = True
            host.domains[dom.name] = dom

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

    def advance(self, sampled: SimHost | None = None) -> float:
        """Bring the hosts up to the clock: integrate counters, move balloons, fire timers.

        ``sampled``: only that host, and the others whose timers are due (a migration arriving), are brought up
        now; the rest catch up, exactly, when next advanced. A pool samples each host in turn: bringing every
        host up at each one's sample cost hosts x hosts integrations per refresh."""
        now = self.clock.monotonic()
        for host in self.hosts.values():
            if sampled is None or host is sampled or (host.timers and host.timers[0][0] <= now):
                self._advance_host(host, now)
        return now

    def _advance_host(self, host: SimHost, now: float) -> None:
        while host.timers and host.timers[0][0] <= now:
            due, _, action = host.timers.pop(0)
            integrate(host, host.last_t, due)
            host.last_t = max(host.last_t, due)
            action()
        integrate(host, host.last_t, now)
        host.last_t = max(host.last_t, now)

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

    # Every domain of a host as columns, and its records made when first read (records.py).
    sample_host = staticmethod(sample_host)
