"""The Xen backend for a dom0 run with Xen's own toolstack, ``xl``.

Statistics come from libxenstat (what xentop reads) through ctypes in a thread of their own;
where the library is missing, from ONE long-running ``xentop -b`` (`XentopStream`). What the
statistics do not say (type, configured maxmem and max vCPUs, MACs, bridges, disk paths) comes
from ``xl list -l``, re-read only when the set of domains changes or an action changed it;
the host from ``xl info``; weight and cap from ``xl sched-credit`` or ``sched-credit2``,
whichever scheduler the host runs. dom0's side of each vif: counters with psutil where
xentop is the source, bridge membership from sysfs.

Actions are ``xl`` subprocesses with argument lists and the domain's id, never its name; xl's
stderr becomes the message. Checks that xl would make only after doing half the work are made
first, as the simulated host does, so bad input changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shlex
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from xentui.backends.base import (
    Action,
    Backend,
    BackendError,
    BackendUnavailable,
    Capabilities,
    ConsoleChannel,
    DomainNotFound,
    InvalidArgument,
    MigratePhase,
    MigrateProgress,
    PreflightCheck,
    Unsupported,
)
from xentui.backends.host import HostAccess, LocalHost, NetCounters
from xentui.backends.savefile import check_save_path, discard, finish, partial_path
from xentui.backends.xen_vdev import vdev_name, vdev_number
from xentui.backends.xenstat import (
    NO_LIMIT,
    XenstatDomain,
    XenstatNetwork,
    XenstatNode,
    XenstatReader,
    XenstatVbd,
)
from xentui.backends.xentop_parser import XentopRow
from xentui.backends.xentop_stream import XentopStream
from xentui.backends.xl_parsers import (
    ParseError,
    XlDomainConfig,
    XlHostInfo,
    parse_xl_info,
    parse_xl_list,
    parse_xl_list_long,
    parse_xl_sched_credit,
    xl_info_host,
)
from xentui.backends.xl_tool import error_summary
from xentui.model import (
    LIBXL_MAXMEM_CONSTANT_KIB,
    Domain,
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
from xentui.validate import (
    check_host,
    check_memory_ceiling,
    check_memory_target,
    check_sched,
    check_sysrq,
    check_vcpu_count,
)

__all__ = ["MigrateProgressReader", "XlBackend", "migrate_progress_from_line"]

KIB = 1024
_HOST_INFO_EVERY = 30.0  # seconds between `xl info` re-reads (libxenstat gives free memory each time)
_SHUTDOWN_WAIT = 120.0  # `xl shutdown -w` waits for the guest; past this we stop waiting, the guest carries on
_SAVE_LIMIT = 1800.0
_MIGRATE_SSH_TIMEOUT = 10
_VBD_KINDS = {"blkback": VbdBackend.BLKBACK, "blktap": VbdBackend.BLKTAP, "Tapdisk3": VbdBackend.TAPDISK3,
              "BlkBack": VbdBackend.BLKBACK, "BlkTap": VbdBackend.BLKTAP}
_DISK_BACKENDS = {"phy": VbdBackend.BLKBACK, "qdisk": VbdBackend.QDISK, "tap": VbdBackend.BLKTAP}
_SCHEDULERS = {"credit": "sched-credit", "credit2": "sched-credit2"}


def _flags(raw: XenstatDomain) -> DomainFlag:
    flags = DomainFlag.NONE
    for present, flag in ((raw.dying, DomainFlag.DYING), (raw.shutdown, DomainFlag.SHUTDOWN),
                          (raw.blocked, DomainFlag.BLOCKED), (raw.crashed, DomainFlag.CRASHED),
                          (raw.paused, DomainFlag.PAUSED), (raw.running, DomainFlag.RUNNING)):
        if present:
            flags |= flag
    return flags


# --- migration progress ------------------------------------------------------------------

_FRAMES = re.compile(r"Frames(?: iteration (?P<iteration>\d+))?.*?(?P<done>\d+)/(?P<total>\d+)")
_MIGRATE_STEPS: tuple[tuple[str, MigratePhase, float, str], ...] = (
    ("migration target: Ready to receive domain", MigratePhase.PREFLIGHT, 0.03, "target ready to receive"),
    ("Saving to migration stream", MigratePhase.COPYING, 0.05, "sending memory"),
    ("Domain now suspended", MigratePhase.STOP_AND_COPY, 0.85, "guest suspended, sending the last pages"),
    ("migration target: Transfer complete", MigratePhase.STOP_AND_COPY, 0.92, "transfer complete"),
    ("Giving target permission to start", MigratePhase.STOP_AND_COPY, 0.95, "starting on the target"),
    ("Target reports successful startup", MigratePhase.STOP_AND_COPY, 0.98, "running on the target"),
    ("Migration successful", MigratePhase.DONE, 1.0, "migration successful"),
)
_PAGE = 4096


def migrate_progress_from_line(line: str) -> MigrateProgress | None:
    """One line of ``xl migrate``'s stderr as progress, or None when it says nothing about progress.

    libxc reports "Frames iteration N" steps as done/total pages: the first pass sends all of
    memory, later passes what the guest dirtied meanwhile.
    """
    if match := _FRAMES.search(line):
        done, total = int(match["done"]), max(1, int(match["total"]))
        iteration = int(match["iteration"] or 0)
        share = min(1.0, done / total)
        fraction = 0.05 + 0.6 * share if iteration == 0 else min(0.84, 0.65 + 0.04 * iteration)
        phase = MigratePhase.COPYING
        what = "copying memory" if iteration == 0 else f"pre-copy round {iteration}: dirty pages"
        return MigrateProgress(phase, fraction, f"{what} ({done}/{total} pages)", done * _PAGE, total * _PAGE)
    for marker, phase, fraction, message in _MIGRATE_STEPS:
        if marker in line:
            return MigrateProgress(phase, fraction, message)
    return None


class MigrateProgressReader:
    """xl migrate's lines as progress that never goes back.

    The sender's lines and the target's (through ssh's stderr) interleave as they arrive: the
    target's "Ready to receive" can come after the sender's "Saving to migration stream". Such a
    line still says something; it keeps the furthest fraction seen.
    """

    def __init__(self) -> None:
        self.furthest = 0.0

    def feed(self, line: str) -> MigrateProgress | None:
        progress = migrate_progress_from_line(line)
        if progress is None:
            return None
        if progress.fraction < self.furthest:
            return dataclasses.replace(progress, fraction=self.furthest)
        self.furthest = progress.fraction
        return progress


# --- the backend ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Known:
    """What the last sample said of a domain, for checks before an action."""

    domain: Domain
    config: XlDomainConfig | None


class XlBackend(Backend):
    """dom0 through ``xl`` and libxenstat. `check_environment` says early and clearly what is missing."""

    name = "xl"

    def __init__(
        self,
        *,
        xl: str = "xl",
        xentop: str = "xentop",
        stats: str = "auto",
        delay: float = 3.0,
        migrate_ssh: str | None = None,
        sysfs_net: Path = Path("/sys/class/net"),
        host: HostAccess | None = None,
        reader_factory: Callable[[], XenstatReader] = XenstatReader,
    ) -> None:
        if stats not in ("auto", "xenstat", "xentop"):
            raise InvalidArgument(f"stats source must be auto, xenstat or xentop, not {stats!r}")
        if migrate_ssh is not None and ("\n" in migrate_ssh or not migrate_ssh.strip()):
            raise InvalidArgument("the migration ssh command must be one non-empty line")
        self.xl = xl
        self.migrate_ssh = migrate_ssh
        self._sysfs_net = sysfs_net
        self.host = host or LocalHost()  # where xl, xentop and the consoles run, and dom0's files are read
        self._stats_choice = stats
        self._reader_factory = reader_factory
        self._reader: XenstatReader | None = None
        self._stream: XentopStream | None = (
            XentopStream(xentop, delay, start=self.host.start) if stats == "xentop" else None)
        self._xentop = xentop
        self._delay = delay
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xenstat")
        self._configs: dict[int, XlDomainConfig] = {}
        self._config_domids: frozenset[int] | None = None
        self._config_stale = True
        self._sched: dict[int, tuple[int, int | None]] = {}
        self._host_facts: XlHostInfo | None = None
        self._host_read_at = -_HOST_INFO_EVERY
        self._targets: dict[int, int] = {}  # balloon targets this session set, by domid
        self._limits_seen: dict[int, int] = {}  # Xen's memory limit last compared with the static maximum
        self._domids_by_name: dict[str, int] = {}
        self._last: dict[str, _Known] = {}
        self._last_host: Host | None = None
        self._stream_sequence = -1  # the xentop iteration the last sample carried
        self._node_at: float | None = None  # when the xentop iteration arrived; None: sampled just now
        self._lock = asyncio.Lock()  # one sample at a time
        self.stats_source = "xentop" if stats == "xentop" else "xenstat"

    def check_environment(self) -> None:
        """What xl needs, checked before the screen opens: xl on PATH and root."""
        if not self.host.has(self.xl):
            raise BackendUnavailable(f"`{self.xl}` is not on PATH: install Xen's tools (xen-utils), or try --demo")
        if os.geteuid() != 0:
            raise BackendUnavailable("the xl backend needs root (xl and libxenstat open /dev/xen/privcmd): "
                                     "run xentui with sudo")

    # --- capabilities -------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        unsupported: dict[Action, str] = {}
        scheduler = self._host_facts["xen_scheduler"] if self._host_facts else None
        if scheduler is not None and scheduler not in _SCHEDULERS:
            unsupported[Action.SCHED] = f"the host runs the {scheduler} scheduler; only credit and credit2 have weights"
        return Capabilities(unsupported)

    async def set_poll_interval(self, seconds: float) -> None:
        self._delay = seconds
        if self._stream is not None:
            await self._stream.set_delay(seconds)

    # --- reading ------------------------------------------------------------------------

    async def _xl(self, *args: str, what: str | None = None, limit: float = 60.0, on_timeout: str | None = None) -> str:
        self.activity = f"{self.xl} {' '.join(args[:2])} (gives up after {limit:g} s)"
        try:
            return (await self.host.run([self.xl, *args], what=what or f"xl {args[0]}", limit=limit,
                                        on_timeout=on_timeout)).stdout
        finally:
            self.activity = None

    async def _read_host(self, *, force: bool = False) -> XlHostInfo:
        now = time.monotonic()
        if force or self._host_facts is None or now - self._host_read_at >= _HOST_INFO_EVERY:
            self._host_facts = xl_info_host(parse_xl_info(await self._xl("info")))
            self._host_read_at = now
        return self._host_facts

    async def _read_configs(self) -> None:
        configs = parse_xl_list_long(await self._xl("list", "-l"))
        self._configs = {config.domid: config for config in configs}
        self._sched = await self._read_sched()
        self._config_stale = False

    async def _read_sched(self) -> dict[int, tuple[int, int | None]]:
        scheduler = (await self._read_host())["xen_scheduler"]
        command = _SCHEDULERS.get(scheduler or "")
        if command is None:
            return {}
        try:
            rows = parse_xl_sched_credit(await self._xl(command))
        except BackendError:
            return {}  # weights are a nicety; the table must not fail for them
        return {row.domid: (row.weight, row.cap) for row in rows}

    async def _node(self) -> XenstatNode:
        """The statistics, from libxenstat when it loads, else from the xentop stream."""
        if self._stream is None and self._reader is None:
            try:
                self._reader = await asyncio.get_running_loop().run_in_executor(self._executor, self._reader_factory)
            except BackendUnavailable:
                if self._stats_choice == "xenstat":
                    raise
                self._stream = XentopStream(self._xentop, self._delay, start=self.host.start)
                self.stats_source = "xentop"
        if self._reader is not None:
            self._node_at = None
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._reader.read)
        assert self._stream is not None
        rows, at, self._stream_sequence = await self._stream.latest(self._stream_sequence)
        self._node_at = at
        return await self._node_from_xentop(rows, self._stream.cpu_ns)

    async def _node_from_xentop(self, rows: list[XentopRow], cpu_ns: dict[str, int]) -> XenstatNode:
        names = {row.name for row in rows}
        if not names <= self._domids_by_name.keys():
            self._domids_by_name = {entry.name: entry.domid for entry in parse_xl_list(await self._xl("list"))}
            self._config_stale = True
        host = await self._read_host()
        counters = await self.host.net_counters()
        domains = []
        for row in rows:
            domid = self._domids_by_name.get(row.name)
            if domid is None:
                continue  # gone between xentop's print and xl list
            config = self._configs.get(domid)
            nics = [nic.devid for nic in config.vifs if nic.devid is not None] if config else list(range(row.nets))
            networks = [_network_from_dom0(devid, counters.get(f"vif{domid}.{devid}")) for devid in nics]
            flags = row.state
            domains.append(XenstatDomain(
                id=domid, name=row.name, cpu_ns=cpu_ns.get(row.name, row.cpu_s * 1_000_000_000),
                cur_mem=row.mem_kib * KIB,
                max_mem=NO_LIMIT if row.maxmem_kib is None else row.maxmem_kib * KIB, ssid=row.ssid,
                dying="d" in flags, shutdown="s" in flags, blocked="b" in flags, crashed="c" in flags,
                paused="p" in flags, running="r" in flags,
                vcpus=[(i in row.vcpu_s, row.vcpu_s.get(i, 0) * 1_000_000_000) for i in range(row.vcpus)],
                networks=networks,
                vbds=[XenstatVbd(v.kind, v.devid, v.oo or 0, v.rd or 0, v.wr or 0, v.rsect or 0, v.wsect or 0,
                                 v.oo is None) for v in row.vbd_rows],
            ))
        return XenstatNode(num_cpus=host["nr_cpus"], cpu_hz=(host["cpu_mhz"] or 0) * 1_000_000,
                           tot_mem=host["total_memory_mib"] << 20, free_mem=host["free_memory_mib"] << 20,
                           xen_version=host["xen_version"] or "", domains=domains)

    async def sample(self) -> Sample:
        async with self._lock:
            node = await self._node()
            wall, monotonic = time.time(), time.monotonic()
            if self._node_at is not None:  # the xentop iteration's own time, not when we read it
                wall, monotonic = wall - (monotonic - self._node_at), self._node_at
            domids = frozenset(raw.id for raw in node.domains)
            if self._config_stale or domids != self._config_domids:
                await self._read_configs()
                self._config_domids = domids
            facts = await self._read_host()
            bridges = await self._bridges([(raw.id, net.id) for raw in node.domains for net in raw.networks])
            domains = [self._domain(raw, bridges) for raw in node.domains]
            host = Host(
                hostname=facts["hostname"], hypervisor="Xen", version=facts["xen_version"] or node.xen_version,
                nr_cpus=node.num_cpus, cpu_mhz=node.cpu_hz // 1_000_000, total_kib=node.tot_mem // KIB,
                free_kib=node.free_mem // KIB, scheduler=facts["xen_scheduler"] or "credit",
                cpu_features=frozenset((facts["hw_caps"] or "").split(":")),
            )
            self._last = {d.name: _Known(d, self._configs.get(d.id)) for d in domains}
            self._last_host = host
            return Sample(monotonic=monotonic, wall=wall, host=host, domains=domains)

    async def _bridges(self, vifs: list[tuple[int, int]]) -> dict[tuple[int, int], str | None]:
        """The bridge each of dom0's vifs is a port of (``/sys/class/net/vifD.N/master``): one batched read."""
        links = {vif: str(self._sysfs_net / f"vif{vif[0]}.{vif[1]}" / "master") for vif in vifs}
        targets = await self.host.read_links(links.values()) if links else {}
        return {vif: target.rsplit("/", 1)[-1] if (target := targets.get(link)) else None
                for vif, link in links.items()}

    def _domain(self, raw: XenstatDomain, bridges: dict[tuple[int, int], str | None]) -> Domain:
        config = self._configs.get(raw.id)
        macs = {nic.devid: nic for nic in config.vifs} if config else {}
        disks = {vdev_number(disk.vdev or ""): disk for disk in config.disks} if config else {}
        vifs = []
        for net in raw.networks:
            nic = macs.get(net.id)
            vifs.append(Vif(net.id, f"vif{raw.id}.{net.id}", (nic.mac if nic else None) or "",
                            bridges.get((raw.id, net.id)) or (nic.bridge if nic else None),
                            net.rx_bytes, net.rx_packets, net.rx_errors, net.rx_drops,
                            net.tx_bytes, net.tx_packets, net.tx_errors, net.tx_drops))
        vbds = []
        for vbd in raw.vbds:
            disk = disks.get(vbd.dev)
            kind = _VBD_KINDS.get(vbd.type, VbdBackend.UNKNOWN)
            if disk is not None and disk.backend in _DISK_BACKENDS and kind is VbdBackend.UNKNOWN:
                kind = _DISK_BACKENDS[disk.backend]
            vbds.append(Vbd(vbd.dev, disk.vdev if disk and disk.vdev else vdev_name(vbd.dev), kind,
                            (disk.target if disk else None) or "", vbd.oo_reqs, vbd.rd_reqs, vbd.wr_reqs,
                            vbd.rd_sectors, vbd.wr_sectors, vbd.error))
        weight, cap = self._sched.get(raw.id, (None, None))
        if config is not None and config.type is not None:
            kind_of_domain = config.type
        else:
            kind_of_domain = DomainType.PV if raw.id == 0 else DomainType.UNKNOWN
        target = self._targets.get(raw.id)
        if target is None and config is not None and raw.id != 0:
            target = config.target_memkb
        maxmem = None if raw.max_mem == NO_LIMIT else raw.max_mem // KIB
        static_maxmem = config.max_memkb if config is not None and config.max_memkb else None
        self._check_static_maxmem(raw.id, maxmem, static_maxmem)
        return Domain(
            id=raw.id, name=raw.name, uuid=(config.uuid if config else None) or "", type=kind_of_domain,
            flags=_flags(raw), cpu_ns=raw.cpu_ns, mem_kib=raw.cur_mem // KIB,
            maxmem_kib=maxmem, static_maxmem_kib=static_maxmem,
            vcpus=[Vcpu(index, online, ns) for index, (online, ns) in enumerate(raw.vcpus)],
            vcpus_max=(config.max_vcpus if config and config.max_vcpus else None) or len(raw.vcpus),
            vifs=vifs, vbds=vbds, sched_weight=weight, sched_cap=cap,
            ssid=raw.ssid, target_kib=target,
        )

    def _check_static_maxmem(self, domid: int, maxmem: int | None, static_maxmem: int | None) -> None:
        """libxl keeps Xen's limit at most 1 MiB above the static maximum. Above that, someone raised maxmem
        outside xentui (`xl mem-max`): `xl list -l` is read again at the next sample, once per new limit,
        so the ceiling shown and checked follows without reading it at every refresh."""
        if maxmem is None or static_maxmem is None or self._limits_seen.get(domid) == maxmem:
            return
        self._limits_seen[domid] = maxmem
        if maxmem > static_maxmem + LIBXL_MAXMEM_CONSTANT_KIB:
            self._config_stale = True

    async def host_info(self) -> Host:
        if self._last_host is None:
            await self.sample()
        assert self._last_host is not None
        return self._last_host

    # --- acting -------------------------------------------------------------------------

    async def _known(self, name: str, *, action: str, allow_dom0: bool = True, need_active: bool = True) -> _Known:
        """The domain as last sampled (sampling again if it is not there); refusals come before any xl runs."""
        known = self._last.get(name)
        if known is None:
            await self.sample()
            known = self._last.get(name)
        if known is None:
            raise DomainNotFound(f"{action}: no domain named {printable(name)!r} on this host")
        domain = known.domain
        if domain.is_dom0 and not allow_dom0:
            raise InvalidArgument(f"{action} refused: Domain-0 is the control domain; that would take the host down")
        if need_active and domain.flags & (DomainFlag.DYING | DomainFlag.SHUTDOWN | DomainFlag.CRASHED):
            raise InvalidArgument(f"{action} refused: {printable(name)} is {domain.state}, not running")
        return known

    async def _act(self, *args: str, what: str, limit: float = 60.0, on_timeout: str | None = None) -> str:
        output = await self._xl(*args, what=what, limit=limit, on_timeout=on_timeout)
        self._config_stale = True
        return output

    async def mem_set(self, domain: str, kib: int) -> None:
        known = await self._known(domain, action="mem-set")
        host = await self.host_info()
        # The configured static maximum, not Xen's current limit: libxl raises that one itself, up to this.
        check_memory_target(kib, maxmem_kib=known.domain.mem_ceiling_kib, host_total_kib=host.total_kib,
                            name=printable(known.domain.name), current_kib=known.domain.mem_kib,
                            host_free_kib=host.free_kib)
        # Always with a unit: xl's documentation and its parser disagree on what a bare number means.
        await self._act("mem-set", str(known.domain.id), f"{kib}k", what=f"mem-set {known.domain.name}")
        self._targets[known.domain.id] = kib

    async def mem_max(self, domain: str, kib: int) -> None:
        known = await self._known(domain, action="mem-max")
        host = await self.host_info()
        target = self._targets.get(known.domain.id) or known.domain.target_kib or known.domain.mem_kib
        check_memory_ceiling(kib, target_kib=target, host_total_kib=host.total_kib, name=printable(known.domain.name))
        await self._act("mem-max", str(known.domain.id), f"{kib}k", what=f"mem-max {known.domain.name}")

    async def vcpu_set(self, domain: str, count: int, *, allow_overcommit: bool = False) -> None:
        known = await self._known(domain, action="vcpu-set")
        host = await self.host_info()
        check_vcpu_count(count, max_vcpus=known.domain.vcpus_total, host_cpus=host.nr_cpus,
                         allow_overcommit=allow_overcommit, name=known.domain.name)
        flags = ["-i"] if allow_overcommit and count > host.nr_cpus else []
        await self._act("vcpu-set", *flags, str(known.domain.id), str(count), what=f"vcpu-set {known.domain.name}")

    async def set_sched(self, domain: str, *, weight: int | None = None, cap: int | None = None) -> None:
        known = await self._known(domain, action="scheduler", need_active=False)
        scheduler = (await self._read_host())["xen_scheduler"] or ""
        command = _SCHEDULERS.get(scheduler)
        if command is None:
            raise Unsupported(f"scheduler: the host runs {scheduler or 'an unknown scheduler'}; "
                              "weight and cap belong to credit and credit2")
        check_sched(weight, cap, max_vcpus=known.domain.vcpus_total)
        if weight is None and cap is None:
            raise InvalidArgument("scheduler: give a weight, a cap or both")
        args = [command, "-d", str(known.domain.id)]
        if weight is not None:
            args += ["-w", str(weight)]
        if cap is not None:
            args += ["-c", str(cap)]
        await self._act(*args, what=f"{command} {known.domain.name}")

    async def pause(self, domain: str) -> None:
        known = await self._known(domain, action="pause", allow_dom0=False)
        if DomainFlag.PAUSED in known.domain.flags:
            raise InvalidArgument(f"pause: {known.domain.name} is already paused")
        await self._act("pause", str(known.domain.id), what=f"pause {known.domain.name}")
        await self.sample()

    async def unpause(self, domain: str) -> None:
        known = await self._known(domain, action="unpause", allow_dom0=False, need_active=False)
        if DomainFlag.PAUSED not in known.domain.flags:
            raise InvalidArgument(f"unpause: {known.domain.name} is not paused")
        await self._act("unpause", str(known.domain.id), what=f"unpause {known.domain.name}")
        await self.sample()

    async def sysrq(self, domain: str, key: str) -> None:
        check_sysrq(key)
        known = await self._known(domain, action="sysrq", allow_dom0=False)
        await self._act("sysrq", str(known.domain.id), key, what=f"sysrq {known.domain.name} {key}")

    async def shutdown(self, domain: str) -> None:
        known = await self._known(domain, action="shutdown", allow_dom0=False)
        self._refuse_paused(known, "shutdown")
        fallback = ["-F"] if known.domain.type is DomainType.HVM else []
        await self._act("shutdown", "-w", *fallback, str(known.domain.id), what=f"shutdown {known.domain.name}",
                        limit=_SHUTDOWN_WAIT,
                        on_timeout=f"shutdown {known.domain.name}: asked, but still running after {_SHUTDOWN_WAIT:g} s "
                                   "(the guest may ignore the request: look at its console, or destroy it)")

    async def reboot(self, domain: str) -> None:
        known = await self._known(domain, action="reboot", allow_dom0=False)
        self._refuse_paused(known, "reboot")
        fallback = ["-F"] if known.domain.type is DomainType.HVM else []
        await self._act("reboot", *fallback, str(known.domain.id), what=f"reboot {known.domain.name}")

    @staticmethod
    def _refuse_paused(known: _Known, action: str) -> None:
        if DomainFlag.PAUSED in known.domain.flags:
            raise InvalidArgument(f"{action}: {known.domain.name} is paused and cannot react; unpause it first")

    async def destroy(self, domain: str) -> None:
        known = await self._known(domain, action="destroy", allow_dom0=False, need_active=False)
        await self._act("destroy", str(known.domain.id), what=f"destroy {known.domain.name}")
        await self.sample()

    async def save(self, domain: str, path: Path, *, keep_running: bool = False, overwrite: bool = False) -> None:
        known = await self._known(domain, action="save", allow_dom0=False)
        # absolute: never an option to xl; checked in a thread: a hung NFS directory must not stop the screen
        path = await asyncio.to_thread(check_save_path, path, overwrite=overwrite)
        partial = partial_path(path)
        flags = ["-c"] if keep_running else []
        try:
            await self._act("save", *flags, str(known.domain.id), str(partial), what=f"save {known.domain.name}",
                            limit=_SAVE_LIMIT)
            await asyncio.to_thread(finish, partial, path)
        except BaseException:  # failed, killed or cancelled: the old image (if any) stays whole
            await asyncio.shield(asyncio.to_thread(discard, partial))
            raise
        await self.sample()

    async def restore(self, path: Path, *, paused: bool = False) -> str:
        path = await asyncio.to_thread(Path(path).absolute)  # never an option to xl
        if not path.is_file():
            raise InvalidArgument(f"restore: {path} is not a file")
        head = await self.host.read_head(str(path), _SAVE_HEAD)
        if not head.startswith(b"Xen saved domain"):
            raise InvalidArgument(f"restore: {path} is not a domain saved by xl (no 'Xen saved domain' header)")
        if (saved := _saved_name(head)) is not None:
            if not self._last:
                await self.sample()
            if saved in self._last:
                raise InvalidArgument(f"restore: {printable(saved)} is already running here; restoring "
                                      f"{path.name} would start it twice (destroy or rename the running one first)")
        before = {entry.domid for entry in parse_xl_list(await self._xl("list"))}
        flags = ["-p"] if paused else []
        await self._act("restore", *flags, str(path), what=f"restore {path.name}", limit=_SAVE_LIMIT)
        after = parse_xl_list(await self._xl("list"))
        new = [entry.name for entry in after if entry.domid not in before]
        await self.sample()
        if not new:
            raise BackendError(f"restore: xl reported success but no new domain appeared from {path}")
        return new[0]

    # --- migration ----------------------------------------------------------------------

    def _ssh_argv(self, host: str) -> list[str]:
        base = shlex.split(self.migrate_ssh) if self.migrate_ssh else ["ssh"]
        return [*base, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={_MIGRATE_SSH_TIMEOUT}", "--", host]

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]:
        known = await self._known(domain, action="migrate", allow_dom0=False)
        host = check_host(target)
        checks: list[PreflightCheck] = []
        try:
            remote = xl_info_host(parse_xl_info((await self.host.run(
                [*self._ssh_argv(host), "xl", "info"], what=f"ssh {host} xl info", limit=30)).stdout))
        except (BackendError, ParseError) as error:
            return [PreflightCheck("reachable", False, f"{host}: {error}")]
        checks.append(PreflightCheck("reachable", True, f"{remote['hostname']} answers over ssh, xl runs there"))
        local = await self._read_host()
        checks.append(_version_check(local["xen_version"], remote["xen_version"]))
        need_mib = (known.domain.mem_kib + KIB - 1) // KIB
        checks.append(PreflightCheck(
            "memory", remote["free_memory_mib"] >= need_mib,
            f"{remote['free_memory_mib']} MiB free there, {known.domain.name} needs {need_mib} MiB"))
        same_cpu = remote["hw_caps"] == local["hw_caps"]
        checks.append(PreflightCheck(
            "cpu", True if same_cpu else None,
            "same CPU features" if same_cpu else "CPU features differ; Xen checks the guest's CPUID policy on arrival"))
        for disk in known.config.disks if known.config else []:
            if not disk.target:
                continue
            result = await self.host.run([*self._ssh_argv(host), "test -e " + shlex.quote(disk.target)],
                                         check=False, what=f"ssh {host} test", limit=30)
            checks.append(PreflightCheck(
                f"disk {disk.vdev}", result.returncode == 0,
                f"{disk.target} {'exists' if result.returncode == 0 else 'is missing'} on {host}"))
        return checks

    async def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]:
        known = await self._known(domain, action="migrate", allow_dom0=False)
        host = check_host(target)
        if not live:
            raise Unsupported("migrate: xl migrates live only (the guest runs until the last round)")
        argv = [self.xl, "migrate"]
        if self.migrate_ssh:
            argv += ["-s", self.migrate_ssh]
        argv += [str(known.domain.id), host]
        yield MigrateProgress(MigratePhase.PREFLIGHT, 0.0, f"starting xl migrate to {host}")
        process = await self.host.start(argv, merge_stderr=True)
        assert process.stdout is not None
        said: list[str] = []
        finished = False
        reader = MigrateProgressReader()
        try:
            buffer = b""
            while chunk := await process.stdout.read(4096):
                buffer += chunk
                *lines, buffer = re.split(rb"[\r\n]", buffer)
                for raw in lines:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line:
                        continue
                    said.append(line)
                    progress = reader.feed(line)
                    if progress is not None and progress.phase is not MigratePhase.DONE:
                        yield progress
            returncode = await process.wait()
            finished = True
        finally:
            if not finished and process.returncode is None:
                # closed early: the operator cancelled; xl resumes the guest at the sender when it can
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(process.wait(), 10)
            self._config_stale = True
        if returncode != 0 or not any("Migration successful" in line for line in said):
            raise BackendError(f"migrate {known.domain.name} to {host} failed: {_migrate_failure(said, returncode)}",
                               detail="\n".join(said))
        await self.sample()
        yield MigrateProgress(MigratePhase.DONE, 1.0, f"{known.domain.name} now runs on {host}")

    # --- console ------------------------------------------------------------------------

    async def open_console(self, domain: str) -> ConsoleChannel:
        known = await self._known(domain, action="console")
        kind = "serial" if known.domain.type is DomainType.HVM else "pv"
        return await self.host.open_console([self.xl, "console", "-t", kind, str(known.domain.id)])

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await asyncio.get_running_loop().run_in_executor(self._executor, reader.close)
        self._executor.shutdown(wait=False)


_SAVE_HEAD = 256 * 1024  # the xl header and the domain's JSON configuration come first
_SAVED_NAME = re.compile(rb'"c_info"\s*:\s*\{[^{}]*?"name"\s*:\s*"((?:[^"\\]|\\.){1,256})"')


_FAILURE_WORDS = re.compile(r"error|fail|cannot|unable|refused|denied", re.IGNORECASE)


def _migrate_failure(said: list[str], returncode: int) -> str:
    """What went wrong, from xl migrate's output: xl's verdict, then the error lines (the sender's come
    first), and what a known cause means for the operator."""
    errors = [line for line in said if _FAILURE_WORDS.search(line)]
    if errors and errors[-1].startswith("Migration failed"):  # xl's verdict, then the causes in order
        errors.insert(0, errors.pop())
    summary = error_summary("\n".join(errors or said[-8:])) or f"exit status {returncode}"
    if any("Failed to enable logdirty" in line for line in said):
        summary = ("this Xen cannot track the guest's dirty pages, so it cannot migrate it live (PV guests need "
                   "shadow paging, which this hypervisor was built without; HVM/PVH guests need HAP); "
                   f"the guest keeps running here. xl said: {summary}")
    return summary


def _saved_name(head: bytes) -> str | None:
    """The domain name in the configuration xl stores at the start of a save file, if it is there."""
    match = _SAVED_NAME.search(head)
    if match is None:
        return None
    try:
        return json.loads(b'"' + match.group(1) + b'"')
    except ValueError:
        return None


def _version_check(local: str | None, remote: str | None) -> PreflightCheck:
    def major_minor(version: str | None) -> tuple[int, ...] | None:
        match = re.match(r"(\d+)\.(\d+)", version or "")
        return (int(match[1]), int(match[2])) if match else None

    here, there = major_minor(local), major_minor(remote)
    if here is None or there is None:
        return PreflightCheck("xen version", None, f"cannot compare Xen {local} with {remote}")
    if there < here:
        return PreflightCheck("xen version", False, f"Xen {remote} there is older than {local} here: "
                                                    "migration to an older Xen is not supported")
    return PreflightCheck("xen version", True, f"Xen {remote} there, {local} here")


def _network_from_dom0(devid: int, counters: NetCounters | None) -> XenstatNetwork:
    """A guest NIC from dom0's vif: what dom0 sent, the guest received."""
    if counters is None:
        return XenstatNetwork(devid, 0, 0, 0, 0, 0, 0, 0, 0)
    c = counters
    return XenstatNetwork(devid, c.bytes_sent, c.packets_sent, c.errout, c.dropout,
                          c.bytes_recv, c.packets_recv, c.errin, c.dropin)

