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

Four modules: this one reads (statistics into the model, the host, the console), `acting` does what the
operator asks, `devices` lists, attaches and detaches a guest's disks and NICs and starts guests from their
config files, `migration` moves a domain to another host. All of it reaches dom0 through `self.host`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from operator import attrgetter
from pathlib import Path

from xentui.backends.base import (
    Action,
    Backend,
    BackendError,
    BackendUnavailable,
    Capabilities,
    ConsoleChannel,
    InvalidArgument,
    MigrateProgress,
)
from xentui.backends.devices import DiskSpec, SnapshotResult
from xentui.backends.host import HostAccess, LocalHost, NetCounters
from xentui.backends.xen_vdev import vdev_name, vdev_number
from xentui.backends.xenstat import (
    NO_LIMIT,
    XENSTAT_VBD,
    XENSTAT_VCPU,
    XenstatDomain,
    XenstatNetwork,
    XenstatNode,
    XenstatReader,
    XenstatVbd,
)
from xentui.backends.xentop_parser import XentopRow
from xentui.backends.xentop_stream import XentopStream
from xentui.backends.xl.acting import _SCHEDULERS, ActingMixin, _Known
from xentui.backends.xl.devicemodel import read_hvm_facts
from xentui.backends.xl.devices import DevicesMixin
from xentui.backends.xl.migration import (
    MigrateProgressReader,
    MigrationMixin,
    _migrate_failure,
    migrate_progress_from_line,
)
from xentui.backends.xl.snapshots import SnapshotsMixin
from xentui.backends.xl_parsers import (
    XlDomainConfig,
    XlHostInfo,
    parse_xl_info,
    parse_xl_list,
    parse_xl_list_long,
    parse_xl_sched_credit,
    xl_info_host,
)
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

__all__ = ["MigrateProgressReader", "XlBackend", "_migrate_failure", "migrate_progress_from_line"]

KIB = 1024
_HOST_INFO_EVERY = 30.0  # seconds between `xl info` re-reads (libxenstat gives free memory each time)
_RELIST_EVERY = 30.0  # seconds between `xl list` re-reads for xentop's names, when nothing says sooner
_VBD_KINDS = {"blkback": VbdBackend.BLKBACK, "blktap": VbdBackend.BLKTAP, "Tapdisk3": VbdBackend.TAPDISK3,
              "BlkBack": VbdBackend.BLKBACK, "BlkTap": VbdBackend.BLKTAP}
_DISK_BACKENDS = {"phy": VbdBackend.BLKBACK, "qdisk": VbdBackend.QDISK, "tap": VbdBackend.BLKTAP}
_XENSTAT_READ = XENSTAT_VCPU | XENSTAT_VBD  # what libxenstat is asked for at each refresh


def _flags(raw: XenstatDomain) -> DomainFlag:
    flags = DomainFlag.NONE
    for present, flag in ((raw.dying, DomainFlag.DYING), (raw.shutdown, DomainFlag.SHUTDOWN),
                          (raw.blocked, DomainFlag.BLOCKED), (raw.crashed, DomainFlag.CRASHED),
                          (raw.paused, DomainFlag.PAUSED), (raw.running, DomainFlag.RUNNING)):
        if present:
            flags |= flag
    return flags


XAPI_REASON = ("this host is managed by xapi (XCP-ng/XenServer): xl actions behind its back corrupt its view; "
               "use xe or Xen Orchestra")
_XAPI_CHECK = ("test -e /etc/xensource-inventory && echo xentui-xapi-inventory; "
               "pgrep -x xapi >/dev/null 2>&1 && echo xentui-xapi-process; true")
_XAPI_SIGNS = {"xentui-xapi-inventory", "xentui-xapi-process"}
"""One cheap look, once: xapi's inventory file (every XCP-ng/XenServer host has it), or a xapi process."""
_NOT_YET = "not yet"


class _XapiGate:
    """Part of `XlBackend`, first in its bases: on a host xapi manages, every action it does is refused before
    it reaches xl (the capabilities say the same, so the screen greys them); monitoring and the console go on."""

    _managed: str | None
    refusal: Callable[[Action], object]

    async def managed_by(self) -> str | None:  # XlBackend's
        raise NotImplementedError

    async def _gate(self, action: Action) -> None:
        if await self.managed_by() is not None:
            raise self.refusal(action)  # type: ignore[misc]

    async def mem_set(self, domain: str, kib: int) -> None:
        await self._gate(Action.MEM_SET)
        await super().mem_set(domain, kib)  # type: ignore[misc]

    async def mem_max(self, domain: str, kib: int) -> None:
        await self._gate(Action.MEM_MAX)
        await super().mem_max(domain, kib)  # type: ignore[misc]

    async def vcpu_set(self, domain: str, count: int, *, allow_overcommit: bool = False) -> None:
        await self._gate(Action.VCPU_SET)
        await super().vcpu_set(domain, count, allow_overcommit=allow_overcommit)  # type: ignore[misc]

    async def set_sched(self, domain: str, *, weight: int | None = None, cap: int | None = None) -> None:
        await self._gate(Action.SCHED)
        await super().set_sched(domain, weight=weight, cap=cap)  # type: ignore[misc]

    async def pause(self, domain: str) -> None:
        await self._gate(Action.PAUSE)
        await super().pause(domain)  # type: ignore[misc]

    async def unpause(self, domain: str) -> None:
        await self._gate(Action.UNPAUSE)
        await super().unpause(domain)  # type: ignore[misc]

    async def sysrq(self, domain: str, key: str) -> None:
        await self._gate(Action.SYSRQ)
        await super().sysrq(domain, key)  # type: ignore[misc]

    async def shutdown(self, domain: str) -> None:
        await self._gate(Action.SHUTDOWN)
        await super().shutdown(domain)  # type: ignore[misc]

    async def reboot(self, domain: str) -> None:
        await self._gate(Action.REBOOT)
        await super().reboot(domain)  # type: ignore[misc]

    async def destroy(self, domain: str) -> None:
        await self._gate(Action.DESTROY)
        await super().destroy(domain)  # type: ignore[misc]

    async def save(self, domain: str, path: Path, *, keep_running: bool = False, overwrite: bool = False) -> None:
        await self._gate(Action.SAVE)
        await super().save(domain, path, keep_running=keep_running, overwrite=overwrite)  # type: ignore[misc]

    async def restore(self, path: Path, *, paused: bool = False) -> str:
        await self._gate(Action.RESTORE)
        return await super().restore(path, paused=paused)  # type: ignore[misc]

    async def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]:
        await self._gate(Action.MIGRATE)
        # aclosing: a Stop closes this generator, and that must close the migration's own at once (it ends
        # the xl migrate on the host), not whenever the garbage collector gets to it
        async with contextlib.aclosing(super().migrate(domain, target, live=live)) as events:  # type: ignore[misc]
            async for event in events:
                yield event

    async def disk_attach(self, domain: str, spec: DiskSpec) -> None:
        await self._gate(Action.DISK_ATTACH)
        await super().disk_attach(domain, spec)  # type: ignore[misc]

    async def disk_detach(self, domain: str, vdev: str) -> None:
        await self._gate(Action.DISK_DETACH)
        await super().disk_detach(domain, vdev)  # type: ignore[misc]

    async def nic_attach(self, domain: str, bridge: str, mac: str | None = None) -> None:
        await self._gate(Action.NIC_ATTACH)
        await super().nic_attach(domain, bridge, mac)  # type: ignore[misc]

    async def nic_detach(self, domain: str, nic: str) -> None:
        await self._gate(Action.NIC_DETACH)
        await super().nic_detach(domain, nic)  # type: ignore[misc]

    async def create(self, ref: str, *, paused: bool = False) -> str:
        await self._gate(Action.CREATE)
        return await super().create(ref, paused=paused)  # type: ignore[misc]

    async def snapshot_create(self, domain: str, tag: str, *, cow_bytes: int = 1 << 30) -> SnapshotResult:
        await self._gate(Action.SNAPSHOT)
        return await super().snapshot_create(domain, tag, cow_bytes=cow_bytes)  # type: ignore[misc]

    async def snapshot_delete(self, domain: str, name: str) -> None:
        await self._gate(Action.SNAPSHOT)
        await super().snapshot_delete(domain, name)  # type: ignore[misc]


# ``xl console`` once xenconsoled has put the domain's tty in xenstore, waiting up to 20 s for it there. A guest
# that has just arrived (a migration, a create) has none until xenconsoled has seen it, and xenconsole gives up
# after a few seconds ("Could not read tty from store": seen on the lab's emulated hosts). The wait runs inside
# the console's own command, so the screen never waits for it; without xenstore-read, xl console runs at once.
CONSOLE_WHEN_TTY = """tty=$1; shift
if command -v xenstore-read >/dev/null 2>&1; then
  i=0
  while [ "$i" -lt 40 ] && [ -z "$(xenstore-read "$tty" 2>/dev/null)" ]; do sleep 0.5; i=$((i+1)); done
fi
exec "$@"
"""


class XlBackend(_XapiGate, ActingMixin, DevicesMixin, SnapshotsMixin, MigrationMixin, Backend):
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
        if host is not None and not host.local:
            if stats == "xenstat":
                raise InvalidArgument(f"libxenstat reads this machine only: {host.name} is watched through xentop")
            stats = "xentop"  # libxenstat is a local library: over ssh, one xentop stream runs there
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
        self._bridges_known: dict[tuple[int, int], str | None] = {}  # the bridge of each vif (domid, devid)
        self._bridges_read_at = -_HOST_INFO_EVERY
        self._targets: dict[int, int] = {}  # balloon targets this session set, by domid
        self._limits_seen: dict[int, int] = {}  # Xen's memory limit last compared with the static maximum
        self._domids_by_name: dict[str, int] = {}  # xentop's names as domids, from `xl list`
        self._listed_at = 0.0
        self._xentop_seen: dict[str, tuple[int, str]] = {}  # each name's CPU seconds and state, last iteration
        self._last: dict[str, _Known] = {}
        self._last_host: Host | None = None
        self._stream_sequence = -1  # the xentop iteration the last sample carried
        self._node_at: float | None = None  # when the xentop iteration arrived; None: sampled just now
        self._networks: dict[int, list[XenstatNetwork]] = {}  # the vifs of each domain, by domid, from dom0's side
        self._lock = asyncio.Lock()  # one sample at a time
        self.stats_source = "xentop" if stats == "xentop" else "xenstat"
        self._managed: str | None = _NOT_YET  # what manages the host's domains besides xl ("xapi"), once looked

    def check_environment(self) -> None:
        """What xl needs, checked before the screen opens: xl on PATH and root."""
        if not self.host.has(self.xl):
            where = "" if self.host.local else f" on {self.host.name} (or ssh cannot reach it)"
            raise BackendUnavailable(
                f"`{self.xl}` is not on PATH{where}: install Xen's tools (xen-utils), or try --demo")
        if self.host.local and os.geteuid() != 0:
            raise BackendUnavailable("the xl backend needs root (xl and libxenstat open /dev/xen/privcmd): "
                                     "run xentui with sudo")

    # --- capabilities -------------------------------------------------------------------

    async def managed_by(self) -> str | None:
        """"xapi" on an XCP-ng/XenServer host (its inventory file, or a xapi process), else None: looked at once,
        through the host, the first time it is asked (the first sample does). A look that fails says None."""
        if self._managed == _NOT_YET:
            try:
                said = (await self.host.run(["sh", "-c", _XAPI_CHECK], what="looking for xapi", limit=30.0)).stdout
            except BackendError:
                said = ""
            self._managed = "xapi" if _XAPI_SIGNS & set(said.split()) else None
        return self._managed

    @property
    def capabilities(self) -> Capabilities:
        unsupported: dict[Action, str] = {}
        if self._managed not in (None, _NOT_YET):  # a console only watches and types: xapi's view stays whole
            return Capabilities({action: XAPI_REASON for action in Action
                                 if action not in (Action.CONSOLE, Action.CONSOLE_WRITE)})
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
            # Networks from one read of dom0's interface counters, not libxenstat's (it parses /proc/net/dev
            # once per domain: two thirds of its cost in the lab); the version comes from `xl info`.
            node, counters = await asyncio.gather(
                asyncio.get_running_loop().run_in_executor(self._executor, self._reader.read, _XENSTAT_READ),
                self.host.net_counters())
            self._networks = _networks_by_domain(counters)
            return node
        assert self._stream is not None
        rows, at, self._stream_sequence = await self._stream.latest(self._stream_sequence)
        self._node_at = at
        return await self._node_from_xentop(rows, self._stream.cpu_ns)

    async def _node_from_xentop(self, rows: list[XentopRow], cpu_ns: dict[str, int]) -> XenstatNode:
        if self._names_may_point_elsewhere(rows):
            listed = {entry.name: entry.domid for entry in parse_xl_list(await self._xl("list"))}
            if listed != self._domids_by_name:
                self._config_stale = True  # a rename keeps the domid: the configs' names are old too
            self._domids_by_name = listed
            self._listed_at = time.monotonic()
        self._xentop_seen = {row.name: (row.cpu_s, row.state) for row in rows}
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
            self._networks = {}
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

    def _names_may_point_elsewhere(self, rows: list[XentopRow]) -> bool:
        """Whether xentop's names (it never prints a domid) may now be other domains than `xl list` last said.

        A guest that reboots, or crashes with on_crash=restart, comes back as a new domain under the same name:
        acting on the old domid would fail, or, once Xen hands it out again, reach another guest. Signs of that:
        a name not listed, a name that went or came back since the last iteration, CPU time that went back, a
        domain that was shut down or dying and is not now. Besides, `xl list` every _RELIST_EVERY seconds."""
        if not self._domids_by_name or time.monotonic() - self._listed_at >= _RELIST_EVERY:
            return True
        seen = self._xentop_seen
        if seen.keys() != {row.name for row in rows}:
            return True
        for row in rows:
            if row.name not in self._domids_by_name:
                return True
            cpu_s, state = seen[row.name]
            if row.cpu_s < cpu_s or (state != row.state and any(flag in state for flag in "sdc")):
                return True
        return False

    async def sample(self) -> Sample:
        async with self._lock:
            node = await self._node()
            wall, monotonic = time.time(), time.monotonic()
            if self._node_at is not None:  # the xentop iteration's own time, not when we read it
                wall, monotonic = wall - (monotonic - self._node_at), self._node_at
            domids = frozenset(raw.id for raw in node.domains)
            changed = self._config_stale or domids != self._config_domids
            if changed:
                await self._read_configs()
                self._config_domids = domids
            facts = await self._read_host()
            managed_by = await self.managed_by()
            networks = self._networks
            hvm = [raw.id for raw in node.domains
                   if (config := self._configs.get(raw.id)) is not None and config.type is DomainType.HVM]
            bridges, hvm_facts = await asyncio.gather(  # the device models beside the bridges: one round trip
                self._bridges([(raw.id, net.id) for raw in node.domains
                               for net in raw.networks or networks.get(raw.id, ())], changed=changed),
                read_hvm_facts(self.host, hvm))
            domains = [self._domain(raw, bridges) for raw in node.domains]
            hvm_facts.fill(domains)
            host = Host(
                hostname=facts["hostname"], hypervisor="Xen", version=facts["xen_version"] or node.xen_version,
                nr_cpus=node.num_cpus, cpu_mhz=node.cpu_hz // 1_000_000, total_kib=node.tot_mem // KIB,
                free_kib=node.free_mem // KIB, scheduler=facts["xen_scheduler"] or "credit",
                cpu_features=frozenset((facts["hw_caps"] or "").split(":")),
                managed_by=managed_by,
            )
            self._last = {d.name: _Known(d, self._configs.get(d.id)) for d in domains}
            self._last_host = host
            return Sample(monotonic=monotonic, wall=wall, host=host, domains=domains)

    async def _bridges(self, vifs: list[tuple[int, int]], *, changed: bool) -> dict[tuple[int, int], str | None]:
        """The bridge each of dom0's vifs is a port of (``/sys/class/net/vifD.N/master``): one batched read, done
        again only when the domains or their vifs changed (or every _HOST_INFO_EVERY seconds, for a vif moved
        by hand), so that a refresh over ssh costs one round trip, not two."""
        now = time.monotonic()
        if (not changed and set(vifs) == self._bridges_known.keys()
                and now - self._bridges_read_at < _HOST_INFO_EVERY):
            return self._bridges_known
        links = {vif: str(self._sysfs_net / f"vif{vif[0]}.{vif[1]}" / "master") for vif in vifs}
        targets = await self.host.read_links(links.values()) if links else {}
        self._bridges_known = {vif: target.rsplit("/", 1)[-1] if (target := targets.get(link)) else None
                               for vif, link in links.items()}
        self._bridges_read_at = now
        return self._bridges_known

    def _domain(self, raw: XenstatDomain, bridges: dict[tuple[int, int], str | None]) -> Domain:
        config = self._configs.get(raw.id)
        macs = {nic.devid: nic for nic in config.vifs} if config else {}
        disks = {vdev_number(disk.vdev or ""): disk for disk in config.disks} if config else {}
        vifs = []
        for net in raw.networks or self._networks.get(raw.id, ()):
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

    # --- console ------------------------------------------------------------------------

    async def open_console(self, domain: str) -> ConsoleChannel:
        known = await self._known(domain, action="console")
        domid = known.domain.id
        hvm = known.domain.type is DomainType.HVM
        console = [self.xl, "console", "-t", "serial" if hvm else "pv", str(domid)]
        if domid == 0:  # dom0's console is Xen's: no tty of xenconsoled's to wait for
            return await self.host.open_console(console)
        tty = f"/local/domain/{domid}/{'serial/0' if hvm else 'console'}/tty"
        return await self.host.open_console(["sh", "-c", CONSOLE_WHEN_TTY, "sh", tty, *console])

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await asyncio.get_running_loop().run_in_executor(self._executor, reader.close)
        self._executor.shutdown(wait=False)
        await self.host.close()


def _networks_by_domain(counters: dict[str, NetCounters]) -> dict[int, list[XenstatNetwork]]:
    """Each domain's vifs from dom0's interfaces named ``vifD.N`` (what libxenstat matches; an HVM guest's
    ``vifD.N-emu`` twin is not one), in devid order."""
    found: dict[int, list[XenstatNetwork]] = {}
    for name, each in counters.items():
        if name.startswith("vif"):
            domid, dot, devid = name[3:].partition(".")
            if dot and domid.isdigit() and devid.isdigit():
                found.setdefault(int(domid), []).append(_network_from_dom0(int(devid), each))
    for networks in found.values():
        networks.sort(key=attrgetter("id"))
    return found


def _network_from_dom0(devid: int, counters: NetCounters | None) -> XenstatNetwork:
    """A guest NIC from dom0's vif: what dom0 sent, the guest received."""
    if counters is None:
        return XenstatNetwork(devid, 0, 0, 0, 0, 0, 0, 0, 0)
    c = counters
    return XenstatNetwork(devid, c.bytes_sent, c.packets_sent, c.errout, c.dropout,
                          c.bytes_recv, c.packets_recv, c.errin, c.dropin)


