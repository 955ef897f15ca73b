"""`SimBackend`: one simulated host seen through the `Backend` interface, its actions with xl's semantics
(they refuse what xl refuses, with the reason, and take simulated time where xl takes time)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from xentui.backends.base import (
    Backend,
    BackendError,
    Capabilities,
    ConsoleBusy,
    ConsoleChannel,
    DomainNotFound,
    InvalidArgument,
)
from xentui.backends.savefile import check_save_path, discard, finish, partial_path
from xentui.backends.sim.cluster import SimCluster
from xentui.backends.sim.console import SimConsole
from xentui.backends.sim.devices import SimDevices
from xentui.backends.sim.domain import MIB, SimDomain, SimVbd, SimVif, Status, VcpuSplit
from xentui.backends.sim.guest import kernel_sysrq_lines
from xentui.backends.sim.migration import SimMigration
from xentui.backends.sim.physics import LoadProfile
from xentui.backends.sim.shell import SimShell
from xentui.clock import Clock
from xentui.model import DomainType, Host, Sample, VbdBackend
from xentui.textsafe import printable
from xentui.validate import (
    check_memory_ceiling,
    check_memory_target,
    check_sched,
    check_sysrq,
    check_vcpu_count,
    format_kib,
)

SAVE_MAGIC = b"xentui-sim saved domain v1\n"
SAVE_BANDWIDTH_KIB_S = 512 * MIB


class SimBackend(SimMigration, SimDevices, Backend):
    """One host of a `SimCluster`, seen through the backend interface (migration: `SimMigration`)."""

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
    def seeded(cls, *, seed: int = 0, domains: int = 12, clock: Clock | None = None) -> SimBackend:
        return cls(SimCluster(seed=seed, domains=domains, clock=clock))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    @property
    def clock(self) -> Clock:
        return self.cluster.clock

    # reading ----------------------------------------------------------------------------

    async def sample(self) -> Sample:
        now = self.cluster.advance(self.host)
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
                          "rd_rate": v.rd_rate, "wr_rate": v.wr_rate, "sectors_per_req": v.sectors_per_req,
                          "readonly": v.readonly, "format": v.format}
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
