"""Reading a libvirt host into the model: one bulk stats call per refresh, the per-domain calls for
what it leaves out, and each domain's XML (cached) into `Sample`, `Domain` and `Host`."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, itemgetter
from time import monotonic
from types import MappingProxyType
from typing import Any, NamedTuple

from xentui.backends.base import Action
from xentui.backends.libvirt.connection import (
    ConnectionMixin,
    _code,
    _Connection,
    _message,
    _unsupported_codes,
    libvirt,
)
from xentui.backends.libvirt_xml import DomainConfig, host_from, parse_domain_xml, parse_domain_xmls
from xentui.model import (
    SECTOR_BYTES,
    UNKNOWN_CPU,
    UNKNOWN_MAXMEM,
    UNKNOWN_MEM,
    UNKNOWN_NET,
    UNKNOWN_VBD,
    UNKNOWN_VCPU_TIMES,
    UNKNOWN_VCPUS,
    Domain,
    DomainColumns,
    DomainFlag,
    Host,
    LazyDomains,
    Sample,
    Vbd,
    Vcpu,
    Vif,
)

log = logging.getLogger(__package__)  # the package's logger: records keep the name they had before the split

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
_NO_FLAG = DomainFlag.NONE
_NO_RECORD: Mapping[str, Any] = MappingProxyType({})  # a listed domain's record: none, shared, never changed
_STATE_GROUP_KEYS = 2  # state.state, state.reason: a record with no more has nothing of the other groups
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

    def focus(self, keys: Collection[str] | None, vcpu_keys: Collection[str] | None = None) -> None:
        """Per-device calls (interfaceStats, blockStats: for what the bulk records lack) for these domains only,
        and ``vcpus()`` for those of ``vcpu_keys`` (None: the same domains); a domain out of focus has those
        figures unknown (never zeros in a rate). Its state, CPU time, memory and vCPU count are always read."""
        focus = None if keys is None else frozenset(keys)
        self._foci = (focus, focus if vcpu_keys is None else frozenset(vcpu_keys))  # one assignment: a refresh
        # in its thread never reads one set of one call and the other of the next

    def _sample_sync(self) -> Sample:
        current = self._connection()
        try:
            host = self._host_sync(current)
            records = self._stats_sync(current)
            reads = self._read_all(current, records)
        except libvirt.libvirtError as error:
            raise self._failure(current, error, f"reading domains from {self.where}") from error
        columns = _columns(reads)
        timed = columns.read_at is not None  # every domain's counters read by calls of its own, or the times unused
        return Sample(monotonic=time.monotonic(), wall=time.time(), host=host,
                      domains=LazyDomains(len(reads), lambda i: _record(reads[i], timed)), columns=columns)

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

    THIN_RECORDS_TO_LIST = 3
    """Refreshes in a row whose bulk records carry the state group only (for every domain) before the domains
    are listed instead: a driver without the other groups (libvirt's test driver) then costs the listing, not
    typed parameters per domain, with the same per-domain calls after it."""
    LIST_BEFORE_ASKING_AGAIN = 60
    """Refreshes listed before the bulk call is tried again: the records may have been thin for a while only
    (every domain busy with a job, a migration, under NOWAIT); the figures are the same either way, the
    per-domain calls cost more where the records would have carried them."""

    def _stats_sync(self, current: _Connection) -> list[tuple]:
        conn = current.conn
        if current.listing_for > 0:
            current.listing_for -= 1
        elif current.bulk:
            groups = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
                      | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
                      | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
            flags = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
            if current.nowait:  # a domain busy with a job (a migration) must not hold up the refresh
                flags |= libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
            try:
                records = conn.getAllDomainStats(groups, flags)
            except libvirt.libvirtError as error:
                code = _code(error)
                if code in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED) and current.nowait:
                    current.nowait = False
                    return self._stats_sync(current)
                if code not in _unsupported_codes():
                    raise
                log.info("%s has no bulk stats (%s): per-domain calls from now on", self.where, _message(error))
                current.bulk = False
            else:
                if not records or any(len(stats) > _STATE_GROUP_KEYS for _dom, stats in records):
                    current.thin_records = 0
                    return records
                current.thin_records += 1
                if current.thin_records < self.THIN_RECORDS_TO_LIST:
                    return records
                current.thin_records = self.THIN_RECORDS_TO_LIST - 1  # when asked again, one thin answer will do
                current.listing_for = self.LIST_BEFORE_ASKING_AGAIN
                if not current.listings:  # said once per connection: it comes back every minute on such a driver
                    log.info("%s: the bulk records carry the domains' state only: listing them instead, and "
                             "asking again every %d refreshes", self.where, self.LIST_BEFORE_ASKING_AGAIN)
                current.listings += 1
                return records
        return self._listed(current)

    @staticmethod
    def _listed(current: _Connection) -> list[tuple[Any, Mapping[str, Any], int]]:
        """The running domains, by the ids libvirt lists, each as the domain object kept from the refresh before
        (looked up by its id when new): no object made and freed per domain at each refresh. Domids are not
        handed out again at once (as `_read` assumes), so an id still listed is still that domain; one whose
        domain went away meanwhile answers its next call with VIR_ERR_NO_DOMAIN."""
        conn = current.conn
        kept, listed = current.listed, {}
        for domid in conn.listDomainsID():
            dom = kept.get(domid)
            if dom is None:
                try:
                    dom = conn.lookupByID(domid)
                except libvirt.libvirtError as error:
                    if _code(error) != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
                    continue  # gone since the listing
            listed[domid] = dom
        current.listed = listed
        return list(zip(listed.values(), repeat(_NO_RECORD), listed))

    def _read_all(self, current: _Connection, records: list[tuple]) -> list[ReadTuple]:
        """Each domain's figures from its stats record, the per-domain calls filling what it lacks. ``records``:
        (domain, its stats record) from the bulk call, or (domain, no record, its domid) from the listing."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            for uuid in dirty:
                self._configs.pop(uuid, None)
        # the first refresh of a connection: every domain new to it
        self._parsed_ahead = self._parse_ahead(records) if not current.running and len(records) > 1 else {}
        reads: list[ReadTuple] = []
        running: dict[int, KnownDomain] = {}
        read_one = self._read
        for record in records:
            try:
                read = read_one(current, *record)
            except libvirt.libvirtError as error:
                if _code(error) != libvirt.VIR_ERR_NO_DOMAIN:
                    raise  # else it went away between the listing and now
                if len(record) == 3:  # listed: its kept object must not stand for a domain that gets its id later
                    current.listed.pop(record[2], None)
                continue
            reads.append(read)
            known = read[_KNOWN]
            running[known.domid] = known
        self._parsed_ahead = {}
        current.running = running
        present = {known.uuid for known in running.values()}
        with self._lock:
            for uuid in self._configs.keys() - present:  # the ones gone, found in one pass in C
                del self._configs[uuid]
        return reads

    def _parse_ahead(self, records: list[tuple]) -> dict[str, DomainConfig]:
        """The configurations of the domains not known yet, by uuid, their XML parsed in one pass: one parser for
        them all costs a fifth of one each, at the refresh the screen's first frame waits for. A domain that went
        away meanwhile, or whose XML does not parse, is left to `_known` (which says so as it would have)."""
        wanted: list[tuple[str, str]] = []
        for record in records:
            dom = record[0]
            try:
                uuid = dom.UUIDString()
                if uuid not in self._configs:
                    wanted.append((uuid, dom.XMLDesc(0)))
            except libvirt.libvirtError as error:
                if _code(error) != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
        configs = parse_domain_xmls([xml for _uuid, xml in wanted])
        return {uuid: config for (uuid, _xml), config in zip(wanted, configs, strict=True)
                if isinstance(config, DomainConfig)}

    def _known(self, current: _Connection, dom: Any, domid: int) -> KnownDomain:
        """What is kept of a running domain: its identity, parsed XML and scheduler weight/cap, worked out
        again when the domain changed (an event, an action, a new domid)."""
        uuid = dom.UUIDString()
        known = self._configs.get(uuid)
        if known is not None and known.domid == domid:
            return known
        name = dom.name()
        config = self._parsed_ahead.pop(uuid, None) or parse_domain_xml(dom.XMLDesc(0))
        weight, cap = self._sched_sync(current, dom)
        known = self._configs[uuid] = KnownDomain(uuid, name, domid, config, weight, cap)
        return known

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

    def _refused(self, current: _Connection, error: libvirt.libvirtError) -> None:
        """A call for what the stats record lacks failed: the figure is then unknown, unless the connection
        died or the domain went away (raised again)."""
        if _code(error) == libvirt.VIR_ERR_NO_DOMAIN or self._lost(current, error):
            raise error

    def _read(self, current: _Connection, dom: Any, stats: Mapping[str, Any], domid: int | None = None) -> ReadTuple:
        """One domain's figures, worked out once here for both the columns and its record.

        Runs for every domain at every refresh: a domain is told apart by its domid alone (one call, none when
        the listing gave it), as a running domain keeps its uuid and name while its domid stays, and domids are
        not handed out again at once; an event about a domain forgets what is known of it."""
        if domid is None:  # from a bulk record: asked (the listing gives it)
            domid = dom.ID()
        known = current.running.get(domid)
        if known is None or self._configs.get(known.uuid) is not known:
            known = self._known(current, dom, domid)
        config = known.config
        focus, vcpu_focus = self._foci
        looked_at = focus is None or known.uuid in focus
        info = read_at = None
        if not stats and not looked_at and vcpu_focus is not None and known.uuid not in vcpu_focus:
            # listed (no record) and out of focus, the most of a big host's domains on such a driver: info() only
            read_at = monotonic()  # before the call: the driver reads the counters at once, a GIL wait comes after
            try:
                info = dom.info()
            except libvirt.libvirtError as error:
                self._refused(current, error)
                info = ()  # refused: not asked again below, which says what is unknown
            if info:
                maxmem_kib = config.max_memory_kib
                if maxmem_kib is None:
                    maxmem_kib = info[1]
                vif_flags, readable_flags = known.unread_flags
                layout = known.layout
                if layout[2] != readable_flags or layout[3] != vif_flags:
                    layout = known.layout = (config.interfaces, config.disks, readable_flags, vif_flags)
                return (known, _STATE_FLAGS.get(info[0], _NO_FLAG), int(info[4]), int(info[2]), maxmem_kib,
                        0, 0, 0, 0, 0, 0, 0, layout, stats, None, info[3], known.unread_vifs, known.unread_vbds,
                        known.unread_unknown, read_at)
        get = stats.get
        if stats:
            state, cpu_ns = get("state.state"), get("cpu.time")
            mem_kib, maxmem_kib = get("balloon.current"), get("balloon.maximum") or config.max_memory_kib
            vcpus_in_record = get("vcpu.current") is not None
            vifs_in_record, vbds_in_record = get("net.count") is not None, get("block.count") is not None
        else:  # listed: no record
            state = cpu_ns = mem_kib = None
            maxmem_kib = config.max_memory_kib
            vcpus_in_record = vifs_in_record = vbds_in_record = False
        listed = info_vcpus = None
        need_info = info is None and (state is None or cpu_ns is None or mem_kib is None or maxmem_kib is None)
        if not vcpus_in_record:
            if current.vcpus_call and (vcpu_focus is None or known.uuid in vcpu_focus):
                try:
                    answer = dom.vcpus()
                    # each vCPU's (number, state, cpu time, cpu): its pinning map (a flag per host CPU) is not kept
                    listed = answer[0] if answer else None
                except libvirt.libvirtError as error:
                    self._refused(current, error)
                    if _code(error) in _unsupported_codes():  # e.g. the libxl driver: no virNodeGetCPUMap
                        current.vcpus_call = False
            need_info = need_info or (listed is None and info is None)
        if need_info:
            if cpu_ns is None:  # its counters read now, by calls of its own: its rates are over its own interval
                read_at = monotonic()
            try:
                info = dom.info() or None
            except libvirt.libvirtError as error:
                self._refused(current, error)
        unknown: tuple[str, ...] = ()  # the markers: mostly none, so no set is made per domain
        if info:
            if state is None:
                state = info[0]
            if cpu_ns is None:
                cpu_ns = info[4]
            if mem_kib is None:
                mem_kib = info[2]
            if maxmem_kib is None:
                maxmem_kib = info[1]
            info_vcpus = info[3]  # all its record needs of info() (the list itself is not kept)
        if cpu_ns is None:
            unknown += (UNKNOWN_CPU,)
        if mem_kib is None:
            mem_kib = config.current_memory_kib
            if mem_kib is None:
                unknown += (UNKNOWN_MEM,)
        if maxmem_kib is None:
            unknown += (UNKNOWN_MAXMEM,)
        # the per-device figures: from the record, else by a call per device for a domain looked at, else unread
        # (the calls in a loop here, each in its try: a wrapper call per device cost more than the loop)
        if vifs_in_record:
            vifs = _from_record(stats, "net", known, _NET_COUNTERS, known.nic_targets)
        elif looked_at:
            vifs = []
            for device in known.nic_devices:
                counters = None
                if device:
                    try:
                        counters = dom.interfaceStats(device)
                    except libvirt.libvirtError as error:
                        self._refused(current, error)
                vifs.append(counters)
        else:
            vifs = None
        if vifs is None:
            vifs, vif_flags, rx, tx = known.unread_vifs, known.unread_flags[0], 0, 0
            if vifs:
                unknown += (UNKNOWN_NET,)
        else:
            vif_flags, rx, tx = _vif_figures(vifs, known.all_vifs_read)
            if vif_flags is not known.all_vifs_read:
                unknown += (UNKNOWN_NET,)
        if vbds_in_record:
            vbds = _from_record(stats, "block", known, _BLOCK_COUNTERS, known.disk_targets)
        elif looked_at:
            vbds = []
            for device in known.disk_targets:
                counters = None
                if device:
                    try:
                        counters = dom.blockStats(device)
                    except libvirt.libvirtError as error:
                        self._refused(current, error)
                vbds.append(counters)
        else:
            vbds = None
        if vbds is None:
            vbds, readable_flags, (oo, rd, wr, rsect, wsect) = known.unread_vbds, known.unread_flags[1], _NO_TOTALS
            if vbds:
                unknown += (UNKNOWN_VBD,)
        else:
            readable_flags, (oo, rd, wr, rsect, wsect) = _vbd_figures(vbds, known.all_vbds_read)
            if readable_flags is not known.all_vbds_read:
                unknown += (UNKNOWN_VBD,)
        layout = known.layout
        if layout[2] != readable_flags or layout[3] != vif_flags:  # the same object while nothing changes
            layout = known.layout = (config.interfaces, config.disks, readable_flags, vif_flags)
        return (known, _STATE_FLAGS.get(state, _NO_FLAG), int(cpu_ns or 0), int(mem_kib or 0), maxmem_kib,
                rx, tx, rd, wr, oo, rsect, wsect, layout, stats, listed, info_vcpus, vifs, vbds, unknown, read_at)


_NET_COUNTERS = ("rx.bytes", "rx.pkts", "rx.errs", "rx.drop", "tx.bytes", "tx.pkts", "tx.errs", "tx.drop")
_NO_TOTALS = (0, 0, 0, 0, 0)
_UNREAD_VBD = (_NO_TOTALS, True, None)  # a vbd with no counters: zeros, unreadable, no path from the record


def _vif_figures(vifs: list, all_read: list[bool]) -> tuple[list[bool], int, int]:
    """Which vifs are readable, and the readable ones' received and sent bytes, from each vif's eight counters
    (None: none read); an unreadable vif's counters are made zeros where not read, in ``vifs`` itself. The flags
    are ``all_read`` itself while every vif is readable (no list per domain), else a copy with those False.

    Readable: ``None not in counters and min(counters) >= 0``, with the scan for None (slow: ints compared with
    None) made only where min() meets one."""
    rx = tx = 0
    flags = all_read
    for index, counters in enumerate(vifs):
        if counters is not None:
            try:
                if min(counters) >= 0:
                    rx += counters[0]
                    tx += counters[4]
                    continue
            except TypeError:
                if None not in counters:
                    raise
        if flags is all_read:
            flags = all_read.copy()
        flags[index] = False
        vifs[index] = [value if value is not None and value >= 0 else 0 for value in counters or (None,) * 8]
    return flags, rx, tx


def _vbd_figures(vbds: list, all_read: list[bool]) -> tuple[list[bool], tuple[int, int, int, int, int]]:
    """Which vbds are readable (``all_read`` itself while every one is, as for the vifs) and the readable ones'
    (oo, rd, wr, rd sectors, wr sectors) totals, from each vbd's counters (as `_vbd_entry` takes them)."""
    oo = rd = wr = rsect = wsect = 0
    flags = all_read
    for index, counters in enumerate(vbds):
        if counters:
            five = counters[:5]  # blockStats' own tuple: no copy
            try:
                every_one = min(five) >= 0  # the usual case, where `_vbd_entry`'s max(0, x or 0) is x
            except TypeError:  # one left out (None): as `_vbd_entry` says
                every_one = False
            if every_one:
                rd_reqs, rd_bytes, wr_reqs, wr_bytes, errors = five
                oo += errors
                rd += rd_reqs
                wr += wr_reqs
                rsect += rd_bytes // SECTOR_BYTES
                wsect += wr_bytes // SECTOR_BYTES
                continue
            figures, unreadable, _path = _vbd_entry(counters)
            if not unreadable:
                oo += figures[0]
                rd += figures[1]
                wr += figures[2]
                rsect += figures[3]
                wsect += figures[4]
                continue
        if flags is all_read:
            flags = all_read.copy()
        flags[index] = False
    return flags, (oo, rd, wr, rsect, wsect)


def _vbd_entry(counters: tuple | None) -> tuple[tuple[int, int, int, int, int], bool, str | None]:
    """A vbd's (oo, rd, wr, rd sectors, wr sectors), whether unreadable, and its path in the record, from its
    counters in blockStats' order, then the record's path if any (None: no counters)."""
    if not counters:
        return _UNREAD_VBD
    rd_reqs, rd_bytes, wr_reqs, wr_bytes, errors = counters[:5]
    figures = (max(0, errors or 0), max(0, rd_reqs or 0), max(0, wr_reqs or 0),
               max(0, rd_bytes or 0) // SECTOR_BYTES, max(0, wr_bytes or 0) // SECTOR_BYTES)
    readable = rd_reqs is not None and wr_reqs is not None and rd_reqs >= 0 and wr_reqs >= 0
    return figures, not readable, counters[5] if len(counters) > 5 else None


# blockStats' order (rd_req, rd_bytes, wr_req, wr_bytes, errs), then the path the record may give
_BLOCK_COUNTERS = ("rd.reqs", "rd.bytes", "wr.reqs", "wr.bytes", "errors", "path")


@functools.cache
def _keys(kind: str, index: int, names: tuple[str, ...]) -> tuple[str, ...]:
    """The stats keys of one device's figures, e.g. ``net.0.rx.bytes``; with no names, the ``name`` keys of
    the first ``index`` devices. Made once, not at every refresh."""
    if not names:
        return tuple(f"{kind}.{i}.name" for i in range(index))
    return tuple(f"{kind}.{index}.{name}" for name in names)


def _from_record(stats: dict[str, Any], kind: str, known: KnownDomain, counters: tuple[str, ...],
                 targets: list[str]) -> list[tuple | None]:
    """Each configured device's counters from the stats record (None: the record has no such device),
    found by target name; where the names sit is worked out again only when they change."""
    count = stats[f"{kind}.count"]
    names = tuple(map(stats.get, _keys(kind, count, ())))
    slots = known.slots.get(kind)
    if slots is None or slots[0] != names:
        where: dict[Any, int] = {}
        for i, name in enumerate(names):
            where.setdefault(name, i)  # with backing chains, a disk's top image comes first
        slots = known.slots[kind] = (names, [where.get(target) for target in targets])
    return [None if i is None else tuple(map(stats.get, _keys(kind, i, counters))) for i in slots[1]]


@dataclass(slots=True)
class KnownDomain:
    """What is kept of a running domain between refreshes while its domid stays: its identity, the parsed
    XML, the scheduler's weight and cap, where its devices sit in the stats records, its device layout."""

    uuid: str
    name: str
    domid: int
    config: DomainConfig
    weight: int | None
    cap: int | None
    slots: dict[str, tuple[tuple, list[int | None]]] = field(default_factory=dict)
    layout: tuple = ((), (), None, None)  # <interface>s, <disk>s, which vbds and which vifs could be read
    nic_targets: list[str] = field(init=False)
    nic_devices: list[str] = field(init=False)  # what interfaceStats is asked for: the target, else the MAC
    disk_targets: list[str] = field(init=False)

    # the figures of a domain whose devices were not read (out of focus), and the flags of a refresh that read
    # every device: made once, shared, never changed
    unread_vifs: list = field(init=False)
    unread_vbds: list = field(init=False)
    unread_flags: tuple[list[bool], list[bool]] = field(init=False)
    unread_unknown: tuple[str, ...] = field(init=False)  # what is unknown of it then (its devices' figures)
    all_vifs_read: list[bool] = field(init=False)
    all_vbds_read: list[bool] = field(init=False)

    def __post_init__(self) -> None:
        self.nic_targets = [nic.target for nic in self.config.interfaces]
        self.nic_devices = [nic.target or nic.mac for nic in self.config.interfaces]
        self.disk_targets = [disk.target for disk in self.config.disks]
        self.unread_vifs = [(0,) * 8] * len(self.nic_targets)
        self.unread_vbds = [None] * len(self.disk_targets)
        self.unread_flags = ([False] * len(self.nic_targets), [False] * len(self.disk_targets))
        self.unread_unknown = (UNKNOWN_NET,) * bool(self.nic_targets) + (UNKNOWN_VBD,) * bool(self.disk_targets)
        self.all_vifs_read = [True] * len(self.nic_targets)
        self.all_vbds_read = [True] * len(self.disk_targets)


class _Read(NamedTuple):
    """One domain's figures from one refresh: what the columns need worked out at once, the rest
    (per-vCPU times, device records) only when its record is made. `StatsMixin._read` makes a plain
    tuple in this order (a `ReadTuple`: one per domain at every refresh, and a tuple subclass costs about
    three times as much to make); `_columns` takes its columns by position, `_record` reads it as a `_Read`."""

    known: KnownDomain
    flags: DomainFlag
    cpu_ns: int
    mem_kib: int
    maxmem_kib: int | None
    net_rx: int
    net_tx: int
    vbd_rd: int
    vbd_wr: int
    vbd_oo: int
    vbd_rsect: int
    vbd_wsect: int
    layout: tuple
    stats: dict[str, Any]
    listed: Any  # dom.vcpus()[0] (each vCPU's number, state, time, cpu), where the record has no vcpu figures
    info_vcpus: int | None  # dom.info()'s vCPU count, where the record lacks what info() gives
    vifs: list  # each <interface>'s eight counters, in `_NET_COUNTERS` order
    vbds: list  # each <disk>'s counters, as `_vbd_entry` takes them (its figures are worked out for its record)
    unknown: tuple[str, ...]  # the unknown markers (`_record` makes them a set)
    read_at: float | None  # when its counters were read, where by calls of its own (not in a record): `Domain.read_at`


ReadTuple = tuple  # a `_Read`'s fields as a plain tuple
_KNOWN = _Read._fields.index("known")


def _columns(reads: list[ReadTuple]) -> DomainColumns:
    def column(name: str) -> list:
        return list(map(itemgetter(_Read._fields.index(name)), reads))

    knowns = column("known")
    return DomainColumns(
        keys=list(map(attrgetter("uuid"), knowns)), names=list(map(attrgetter("name"), knowns)),
        ids=list(map(attrgetter("domid"), knowns)), flags=column("flags"),
        cpu_ns=column("cpu_ns"), net_rx_bytes=column("net_rx"), net_tx_bytes=column("net_tx"),
        vbd_rd_reqs=column("vbd_rd"), vbd_wr_reqs=column("vbd_wr"), vbd_oo_reqs=column("vbd_oo"),
        vbd_rd_sectors=column("vbd_rsect"), vbd_wr_sectors=column("vbd_wsect"), layouts=column("layout"),
        mem_kib=column("mem_kib"), read_at=None if None in (read_at := column("read_at")) else read_at,
    )


def _record(figures: ReadTuple, timed: bool = True) -> Domain:
    """The domain's record, made from what its refresh read (no libvirt call: this runs on the event loop);
    ``timed``: with its read time (`Domain.read_at`), which is given to every domain of a sample or to none."""
    read = _Read._make(figures)
    known = read.known
    config = known.config
    unknown = set(read.unknown)
    vcpus, vcpus_max = _vcpus(read.stats, read.listed, read.info_vcpus, config, unknown)
    vifs = [Vif(nic.devid, nic.target or "-", nic.mac, nic.bridge, *values, error=not readable)
            for nic, values, readable in zip(config.interfaces, read.vifs, read.layout[3], strict=True)]
    vbds = [Vbd(devid=disk.devid, device=disk.target, backend=disk.backend, path=path or disk.path,
                oo_reqs=oo, rd_reqs=rd, wr_reqs=wr, rd_sectors=rsect, wr_sectors=wsect, error=error)
            for disk, ((oo, rd, wr, rsect, wsect), error, path)
            in zip(config.disks, map(_vbd_entry, read.vbds), strict=True)]
    return Domain(
        id=known.domid, name=known.name, uuid=known.uuid, type=config.type, flags=read.flags, cpu_ns=read.cpu_ns,
        mem_kib=read.mem_kib, maxmem_kib=read.maxmem_kib, vcpus=vcpus, vcpus_max=vcpus_max, vifs=vifs, vbds=vbds,
        sched_weight=known.weight, sched_cap=known.cap, unknown=frozenset(unknown),
        read_at=read.read_at if timed else None,
    )


def _vcpus(stats: dict[str, Any], listed: Any, info_vcpus: int | None, config: DomainConfig,
           unknown: set[str]) -> tuple[list[Vcpu], int]:
    current_count = stats.get("vcpu.current")
    maximum = stats.get("vcpu.maximum") or config.vcpus_max
    if current_count is not None:
        vcpus = []
        for index in range(max(maximum or 0, current_count)):
            state = stats.get(f"vcpu.{index}.state")
            online = state != _VCPU_OFFLINE if state is not None else index < current_count
            vcpus.append(Vcpu(index, online, int(stats.get(f"vcpu.{index}.time") or 0)))
        return vcpus, maximum or current_count
    if listed is not None:
        online = {entry[0]: entry for entry in listed}
        count = max(maximum or 0, max(online, default=-1) + 1)
        vcpus = [
            Vcpu(index, index in online and online[index][1] != _VCPU_OFFLINE,
                 int(online[index][2]) if index in online else 0)
            for index in range(count)
        ]
        return vcpus, count
    if info_vcpus is None and maximum is None:
        unknown.add(UNKNOWN_VCPUS)
        return [], 0
    unknown.add(UNKNOWN_VCPU_TIMES)  # how many are online, not how long each ran
    online_count = info_vcpus if info_vcpus is not None else config.vcpus_current or 0
    count = max(maximum or 0, online_count)
    return [Vcpu(index, index < online_count, 0) for index in range(count)], count
