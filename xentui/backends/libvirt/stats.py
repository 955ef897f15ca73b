"""Reading a libvirt host into the model: one bulk stats call per refresh, the per-domain calls for
what it leaves out, and each domain's XML (cached) into `Sample`, `Domain` and `Host`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from xentui.backends.base import Action
from xentui.backends.libvirt.connection import (
    ConnectionMixin,
    _code,
    _Connection,
    _message,
    _unsupported_codes,
    libvirt,
)
from xentui.backends.libvirt_xml import DomainConfig, host_from, parse_domain_xml
from xentui.model import (
    UNKNOWN_CPU,
    UNKNOWN_MAXMEM,
    UNKNOWN_MEM,
    UNKNOWN_NET,
    UNKNOWN_VBD,
    UNKNOWN_VCPUS,
    Domain,
    DomainFlag,
    Host,
    Sample,
    Vbd,
    Vcpu,
    Vif,
)

log = logging.getLogger(__package__)  # the package's logger: records keep the name they had before the split
T = TypeVar("T")

# virDomainState -> xentop's flags
_STATE_FLAGS = {
    0: DomainFlag.NONE,  # NOSTATE
    1: DomainFlag.RUNNING,
    2: DomainFlag.BLOCKED,
    3: DomainFlag.PAUSED,
    4: DomainFlag.SHUTDOWN,  # being shut down
    5: DomainFlag.SHUTDOWN,  # shut off
    6: DomainFlag.SHUTDOWN | DomainFlag.CRASHED,
    7: DomainFlag.PAUSED,  # suspended to RAM by the guest
}
_PAUSED = 3
_VCPU_OFFLINE = 0


class StatsMixin(ConnectionMixin):
    """`sample` and `host_info`, and the domain models they are made of."""

    # --- reading ----------------------------------------------------------------------------------

    async def sample(self) -> Sample:
        self._loop = asyncio.get_running_loop()
        return await asyncio.to_thread(self._sample_sync)

    async def host_info(self) -> Host:
        return await self._run("host info", self._host_sync)

    def _sample_sync(self) -> Sample:
        current = self._connection()
        try:
            host = self._host_sync(current)
            records = self._stats_sync(current)
            domains = []
            for dom, stats in records:
                model = self._domain_sync(current, dom, stats)
                if model is not None:
                    domains.append(model)
            self._prune({domain.uuid for domain in domains})
        except libvirt.libvirtError as error:
            raise self._failure(current, error, f"reading domains from {self.where}") from error
        return Sample(monotonic=time.monotonic(), wall=time.time(), host=host, domains=domains)

    def _host_sync(self, current: _Connection) -> Host:
        conn = current.conn
        info = conn.getInfo()
        try:
            free = conn.getFreeMemory()
        except libvirt.libvirtError as error:
            if self._lost(current, error):
                raise
            free = None
        return host_from(hostname=current.hostname, driver=current.driver, hypervisor_version=current.hv_version,
                         info=info, free_bytes=free, caps=current.caps, scheduler=current.scheduler)

    def _stats_sync(self, current: _Connection) -> list[tuple[Any, dict[str, Any]]]:
        conn = current.conn
        if current.bulk:
            groups = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
                      | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
                      | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
            flags = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
            if current.nowait:  # a domain busy with a job (a migration) must not hold up the refresh
                flags |= libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
            try:
                return conn.getAllDomainStats(groups, flags)
            except libvirt.libvirtError as error:
                code = _code(error)
                if code in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED) and current.nowait:
                    current.nowait = False
                    return self._stats_sync(current)
                if code not in _unsupported_codes():
                    raise
                log.info("%s has no bulk stats (%s): per-domain calls from now on", self.where, _message(error))
                current.bulk = False
        return [(dom, {}) for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)]

    def _config_sync(self, current: _Connection, dom: Any, uuid: str,
                     domid: int) -> tuple[DomainConfig, int | None, int | None]:
        """The parsed XML and scheduler weight/cap, from the cache unless the domain changed."""
        with self._lock:
            cached = self._configs.get(uuid)
            if uuid in self._dirty:
                self._dirty.discard(uuid)
                cached = None
        if cached is not None and cached[0] == domid:
            return cached[1], cached[2], cached[3]
        config = parse_domain_xml(dom.XMLDesc(0))
        weight, cap = self._sched_sync(current, dom)
        with self._lock:
            self._configs[uuid] = (domid, config, weight, cap)
        return config, weight, cap

    def _sched_sync(self, current: _Connection, dom: Any) -> tuple[int | None, int | None]:
        try:
            kind = dom.schedulerType()[0]
            params = dom.schedulerParameters()
        except libvirt.libvirtError as error:
            if self._lost(current, error) or _code(error) == libvirt.VIR_ERR_NO_DOMAIN:
                raise
            self._learned.setdefault(Action.SCHED, f"no scheduler parameters from the {current.driver} driver: "
                                                   f"{_message(error)}")
            return None, None
        current.scheduler = kind
        if "weight" not in params:
            self._learned.setdefault(
                Action.SCHED,
                f"the {current.driver} driver's {kind} scheduler has no credit weight/cap "
                f"(it has {', '.join(sorted(params)) or 'no parameters'})",
            )
            return None, None
        self._learned.pop(Action.SCHED, None)
        return params.get("weight"), params.get("cap")

    def _prune(self, present: set[str]) -> None:
        with self._lock:
            for uuid in [uuid for uuid in self._configs if uuid not in present]:
                del self._configs[uuid]

    def _domain_sync(self, current: _Connection, dom: Any, stats: dict[str, Any]) -> Domain | None:
        """One domain's model from its stats record, the per-domain calls filling what it lacks."""
        try:
            return self._build_domain(current, dom, stats)
        except libvirt.libvirtError as error:
            if _code(error) == libvirt.VIR_ERR_NO_DOMAIN:
                return None  # went away between the listing and now
            raise

    def _build_domain(self, current: _Connection, dom: Any, stats: dict[str, Any]) -> Domain:
        uuid, name, domid = dom.UUIDString(), dom.name(), dom.ID()
        config, weight, cap = self._config_sync(current, dom, uuid, domid)
        unknown: set[str] = set()
        info: list[Any] | None = None

        def per_domain(call: Callable[[], T]) -> T | None:
            """A fallback call; None when the driver refuses it (not when the connection died)."""
            try:
                return call()
            except libvirt.libvirtError as error:
                if _code(error) == libvirt.VIR_ERR_NO_DOMAIN or self._lost(current, error):
                    raise
                return None

        def dom_info() -> list[Any] | None:
            nonlocal info
            if info is None:
                info = per_domain(dom.info) or []
            return info or None

        state = stats.get("state.state")
        if state is None:
            state = (dom_info() or [0])[0]
        cpu_ns = stats.get("cpu.time")
        if cpu_ns is None:
            cpu_ns = (dom_info() or [None] * 5)[4]
        if cpu_ns is None:
            unknown.add(UNKNOWN_CPU)
        mem_kib = stats.get("balloon.current")
        if mem_kib is None:
            mem_kib = (dom_info() or [None] * 3)[2]
        if mem_kib is None:
            mem_kib = config.current_memory_kib
        if mem_kib is None:
            unknown.add(UNKNOWN_MEM)
        maxmem_kib = stats.get("balloon.maximum") or config.max_memory_kib
        if maxmem_kib is None:
            maxmem_kib = (dom_info() or [None] * 2)[1]
        if maxmem_kib is None:
            unknown.add(UNKNOWN_MAXMEM)
        vcpus, vcpus_max = self._vcpus(dom, stats, config, per_domain, dom_info, unknown)
        vifs = self._vifs(dom, stats, config, per_domain, unknown)
        vbds = self._vbds(dom, stats, config, per_domain, unknown)
        return Domain(
            id=domid, name=name, uuid=uuid, type=config.type, flags=_STATE_FLAGS.get(state, DomainFlag.NONE),
            cpu_ns=int(cpu_ns or 0), mem_kib=int(mem_kib or 0), maxmem_kib=maxmem_kib, vcpus=vcpus,
            vcpus_max=vcpus_max, vifs=vifs, vbds=vbds, sched_weight=weight, sched_cap=cap,
            unknown=frozenset(unknown),
        )

    @staticmethod
    def _vcpus(dom: Any, stats: dict[str, Any], config: DomainConfig, per_domain: Callable,
               dom_info: Callable, unknown: set[str]) -> tuple[list[Vcpu], int]:
        current_count = stats.get("vcpu.current")
        maximum = stats.get("vcpu.maximum") or config.vcpus_max
        if current_count is not None:
            vcpus = []
            for index in range(max(maximum or 0, current_count)):
                state = stats.get(f"vcpu.{index}.state")
                online = state != _VCPU_OFFLINE if state is not None else index < current_count
                vcpus.append(Vcpu(index, online, int(stats.get(f"vcpu.{index}.time") or 0)))
            return vcpus, maximum or current_count
        listed = per_domain(dom.vcpus)
        if listed:
            online = {entry[0]: entry for entry in listed[0]}
            count = max(maximum or 0, max(online, default=-1) + 1)
            vcpus = [
                Vcpu(index, index in online and online[index][1] != _VCPU_OFFLINE,
                     int(online[index][2]) if index in online else 0)
                for index in range(count)
            ]
            return vcpus, count
        nr = (dom_info() or [None] * 4)[3]
        if nr is None and maximum is None:
            unknown.add(UNKNOWN_VCPUS)
            return [], 0
        online_count = nr if nr is not None else config.vcpus_current or 0
        count = max(maximum or 0, online_count)
        return [Vcpu(index, index < online_count, 0) for index in range(count)], count

    @staticmethod
    def _vifs(dom: Any, stats: dict[str, Any], config: DomainConfig, per_domain: Callable,
              unknown: set[str]) -> list[Vif]:
        vifs = []
        count = stats.get("net.count")
        by_name = {stats.get(f"net.{i}.name"): i for i in range(count or 0)}
        for nic in config.interfaces:
            counters: list[int | None]
            if count is not None:
                i = by_name.get(nic.target)
                keys = ("rx.bytes", "rx.pkts", "rx.errs", "rx.drop", "tx.bytes", "tx.pkts", "tx.errs", "tx.drop")
                counters = [stats.get(f"net.{i}.{key}") for key in keys] if i is not None else [None] * 8
            else:
                device = nic.target or nic.mac
                got = per_domain(lambda device=device: dom.interfaceStats(device)) if device else None
                counters = list(got) if got else [None] * 8
            if any(value is None or value < 0 for value in counters):
                unknown.add(UNKNOWN_NET)
            values = [int(value) if value is not None and value >= 0 else 0 for value in counters]
            vifs.append(Vif(nic.devid, nic.target or "-", nic.mac, nic.bridge, *values))
        return vifs

    @staticmethod
    def _vbds(dom: Any, stats: dict[str, Any], config: DomainConfig, per_domain: Callable,
              unknown: set[str]) -> list[Vbd]:
        vbds = []
        count = stats.get("block.count")
        by_name: dict[Any, int] = {}
        for i in range(count or 0):
            by_name.setdefault(stats.get(f"block.{i}.name"), i)  # with backing chains, the top comes first
        for disk in config.disks:
            if count is not None:
                i = by_name.get(disk.target)
                if i is None:
                    rd_reqs = rd_bytes = wr_reqs = wr_bytes = errors = None
                else:
                    rd_reqs, rd_bytes = stats.get(f"block.{i}.rd.reqs"), stats.get(f"block.{i}.rd.bytes")
                    wr_reqs, wr_bytes = stats.get(f"block.{i}.wr.reqs"), stats.get(f"block.{i}.wr.bytes")
                    errors = stats.get(f"block.{i}.errors")  # Xen only: blkback's oo_req
                path = stats.get(f"block.{i}.path") or disk.path if i is not None else disk.path
            else:
                got = per_domain(lambda target=disk.target: dom.blockStats(target)) if disk.target else None
                rd_reqs, rd_bytes, wr_reqs, wr_bytes, errors = got if got else (None,) * 5
                path = disk.path
            readable = None not in (rd_reqs, wr_reqs) and min(rd_reqs, wr_reqs) >= 0
            if not readable:
                unknown.add(UNKNOWN_VBD)
            vbds.append(Vbd(
                devid=disk.devid, device=disk.target, backend=disk.backend, path=path,
                oo_reqs=max(0, int(errors or 0)), rd_reqs=max(0, int(rd_reqs or 0)), wr_reqs=max(0, int(wr_reqs or 0)),
                rd_sectors=max(0, int(rd_bytes or 0)) // 512, wr_sectors=max(0, int(wr_bytes or 0)) // 512,
                error=not readable,
            ))
        return vbds
