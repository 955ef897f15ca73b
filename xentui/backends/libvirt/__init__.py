"""The libvirt backend: Xen via libxl, QEMU/KVM, remote hosts, through libvirt-python.

Every libvirt call that can block (all RPCs) runs in a worker thread (``asyncio.to_thread``);
nothing here blocks the event loop.

Events. libvirt delivers domain events, the connection's close and console stream data
through an event loop implementation registered once per process. libvirt's asyncio adapter
(``libvirtaio``) cannot be used here: it can be registered only once per process (a second
``asyncio.run`` or a test with its own loop gets "Event loop is already registered"), and it
calls ``loop.add_reader``/``remove_reader`` from whichever thread made the RPC, which for us is
a worker thread (asyncio's loops are not thread-safe). So libvirt's own default event loop
runs in one daemon thread, and every callback hands its result to the asyncio loop with
``call_soon_threadsafe``.

Statistics. One ``getAllDomainStats`` per refresh. Every key is optional: what the driver
left out is read with the per-domain calls (``info``, ``vcpus``, ``interfaceStats``,
``blockStats``), learnt from what each record lacks, not from the driver's name; what
neither gives is marked unknown (`Domain.unknown`), never shown as zero.

The domain XML (type, vifs, disks, maximum memory, vCPUs) is parsed once per domain and read
again only when an event says the domain changed, when its id changed, or after an action
that changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from xentui.backends.base import (
    Action,
    Backend,
    BackendError,
    BackendUnavailable,
    Capabilities,
    ConsoleBusy,
    ConsoleChannel,
    DomainNotFound,
    InvalidArgument,
    MigratePhase,
    MigrateProgress,
    PreflightCheck,
    ReadOnlyError,
    Unsupported,
)
from xentui.backends.libvirt_xml import (
    DomainConfig,
    HostCaps,
    host_from,
    parse_capabilities,
    parse_domain_xml,
    parse_version,
    saved_image_name,
)
from xentui.backends.savefile import check_save_path, discard, finish, partial_path
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
from xentui.validate import (
    check_host,
    check_memory_ceiling,
    check_memory_target,
    check_sched,
    check_sysrq,
    check_vcpu_count,
    format_kib,
)

try:  # an optional extra: pip install 'xentui[libvirt]'
    import libvirt
except ImportError:  # pragma: no cover - exercised only where libvirt-python is missing
    libvirt = None  # type: ignore[assignment]

__all__ = ["LibvirtBackend", "LibvirtConsole"]

log = logging.getLogger(__name__)
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
_PAUSED_MIGRATION = 2  # VIR_DOMAIN_PAUSED_MIGRATION: the stop-and-copy of a live migration
_VCPU_OFFLINE = 0

# Linux input key codes (linux/input-event-codes.h) for Alt+SysRq+key through sendKey.
_KEY_LEFTALT, _KEY_SYSRQ = 56, 99
_LINUX_KEYS = {
    **{char: code for code, char in enumerate("1234567890", start=2)},
    **{char: code for code, char in enumerate("qwertyuiop", start=16)},
    **{char: code for code, char in enumerate("asdfghjkl", start=30)},
    **{char: code for code, char in enumerate("zxcvbnm", start=44)},
}
_SYSRQ_HOLD_MS = 100

_BACKOFF_INITIAL_S = 1.0
_BACKOFF_MAX_S = 30.0
_KEEPALIVE = (5, 3)  # probe every 5 s, give up after 3 unanswered: a dead daemon is noticed in ~20 s
_PREFLIGHT_TIMEOUT_S = 30.0
_MIGRATE_POLL_S = 0.5
_CONSOLE_READ = 64 * 1024
_CONSOLE_HIGH_WATER = 1024 * 1024


# --- libvirt's event loop, in a thread ------------------------------------------------------

_events_lock = threading.Lock()
_events_state: bool | None = None  # None: not tried; True: events flow; False: cannot


def _start_events() -> bool:
    """Register libvirt's default event loop and run it in a daemon thread, once per process."""
    global _events_state
    with _events_lock:
        if _events_state is not None:
            return _events_state
        libvirt.registerErrorHandler(_silence, None)  # libvirt prints every error on stderr otherwise
        try:
            import libvirtaio  # only to see whether someone registered it already

            if libvirtaio.getCurrentImpl() is not None:
                _events_state = True  # its loop dispatches; our callbacks are thread-safe either way
                return True
        except ImportError:
            pass
        try:
            libvirt.virEventRegisterDefaultImpl()
        except (libvirt.libvirtError, RuntimeError) as error:
            log.warning("libvirt events unavailable: %s", error)
            _events_state = False
            return False
        threading.Thread(target=_run_events, name="libvirt-events", daemon=True).start()
        _events_state = True
        return True


def _silence(_context: object, _error: object) -> None:
    """libvirt's error callback: errors reach us as exceptions, not on the terminal."""


def _run_events() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:  # never let the thread die: consoles and events depend on it
            log.exception("libvirt event loop iteration failed")
            time.sleep(0.1)


# --- errors -----------------------------------------------------------------------------------


def _message(error: BaseException) -> str:
    if libvirt is not None and isinstance(error, libvirt.libvirtError):
        return error.get_error_message() or str(error)
    return str(error)


def _code(error: BaseException) -> int | None:
    if libvirt is not None and isinstance(error, libvirt.libvirtError):
        return error.get_error_code()
    return None


def _unsupported_codes() -> set[int]:
    return {libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
            getattr(libvirt, "VIR_ERR_OPERATION_UNSUPPORTED", 84)}


def _connection_codes() -> set[int]:
    return {libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_NO_CONNECT,
            libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_INTERNAL_ERROR}


_URI_SCHEME = re.compile(r"[a-z][a-z0-9]*(\+[a-z0-9]+)?")


class _Connection:
    """One open connection and what is known about it; replaced whole on reconnect."""

    def __init__(self, conn: Any, generation: int) -> None:
        self.conn = conn
        self.generation = generation
        self.dead = False
        self.uri = conn.getURI()
        self.local = not urlsplit(self.uri).netloc
        self.driver = conn.getType()
        self.hostname = conn.getHostname()
        try:
            self.hv_version = conn.getVersion()
        except libvirt.libvirtError:
            self.hv_version = 0
        try:
            self.caps = parse_capabilities(conn.getCapabilities())
        except libvirt.libvirtError:
            self.caps = HostCaps()
        self.callbacks: list[int] = []
        self.bulk = True  # getAllDomainStats answers (until the driver says it has none)
        self.nowait = True  # and accepts VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
        self.console_safe = True  # openConsole accepts VIR_DOMAIN_CONSOLE_SAFE (the libxl driver does not)
        self.scheduler = ""


class LibvirtBackend(Backend):
    """A libvirt host, local or remote, by URI (None: libvirt's default, as virsh without -c)."""

    name = "libvirt"

    def __init__(
        self,
        uri: str | None = None,
        *,
        read_only: bool = False,
        backoff: tuple[float, float] = (_BACKOFF_INITIAL_S, _BACKOFF_MAX_S),
        migrate_data_uri: str | None = None,
        migrate_params: dict[str, Any] | None = None,
    ) -> None:
        """``backoff``: the first and the longest wait between reconnection attempts, in seconds.
        ``migrate_data_uri``: where QEMU sends a migration's memory (VIR_MIGRATE_PARAM_URI,
        e.g. ``tcp://10.0.0.2``); by default the target's libvirtd chooses from its host name.
        ``migrate_params``: more typed parameters for migrateToURI3 (e.g. ``{"bandwidth": 100}``, MiB/s)."""
        if libvirt is None:
            raise BackendUnavailable(
                "the libvirt backend needs libvirt-python: pip install 'xentui[libvirt]' "
                "(it builds against libvirt-dev and pkg-config)"
            )
        self.uri = uri
        self.read_only = read_only
        self.migrate_data_uri = migrate_data_uri
        self.migrate_params = dict(migrate_params or {})
        self._backoff_initial, self._backoff_max = backoff
        self._backoff = self._backoff_initial
        self._retry_at = 0.0
        self._last_error = ""
        self._events = _start_events()
        self._lock = threading.RLock()
        self._current: _Connection | None = None
        self._generation = 0
        self._configs: dict[str, tuple[int, DomainConfig, int | None, int | None]] = {}  # uuid -> id, xml, w, cap
        self._dirty: set[str] = set()  # uuids whose XML an event said changed
        self._learned: dict[Action, str] = {}  # what the driver turned out not to do, and why
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Callable[[], None]] = []
        self._wake_pending = False
        self._consoles: set[LibvirtConsole] = set()

    @property
    def where(self) -> str:
        return self.uri or "libvirt's default URI"

    # --- capabilities -----------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        unsupported = dict(self._learned)
        if self.read_only:
            reason = "the libvirt connection is read-only"
            unsupported.update({action: reason for action in Action})
            unsupported[Action.CONSOLE] = "libvirt opens no console on a read-only connection"
        if not self._events:
            unsupported.setdefault(Action.CONSOLE, "libvirt's event loop could not be started")
        return Capabilities(unsupported)

    def _learn(self, action: Action | None, error: BaseException) -> None:
        if action is not None and _code(error) in _unsupported_codes():
            driver = self._current.driver if self._current is not None else "this"
            self._learned[action] = f"the {driver} driver does not support it ({_message(error)})"

    # --- change notifications ---------------------------------------------------------------------

    def watch_changes(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` on the event loop when libvirt reports a change (see `Backend.watch_changes`)."""
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        self._listeners = [] if callback is None else [callback]

    def _notify(self) -> None:
        """From libvirt's event thread: wake the poller once, however many events came together."""
        loop = self._loop
        if loop is None or not self._listeners or self._wake_pending:
            return
        self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._wake_pending = False
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("change listener failed")

    # libvirt's event thread calls these

    def _on_lifecycle(self, _conn: Any, dom: Any, _event: int, _detail: int, _opaque: Any) -> None:
        with self._lock:
            self._dirty.add(dom.UUIDString())
        self._notify()

    def _on_device(self, _conn: Any, dom: Any, *_rest: Any) -> None:
        with self._lock:
            self._dirty.add(dom.UUIDString())
        self._notify()

    def _on_reboot(self, _conn: Any, dom: Any, _opaque: Any) -> None:
        self._notify()

    def _on_close(self, _conn: Any, reason: int, generation: int) -> None:
        current = self._current
        if current is not None and current.generation == generation:
            current.dead = True
            log.info("libvirt connection to %s closed (reason %s)", self.where, reason)
        self._notify()

    # --- the connection ---------------------------------------------------------------------------

    def _connection(self) -> _Connection:
        """The open connection, opened (again) if needed; BackendUnavailable while it cannot be."""
        with self._lock:
            current = self._current
            if current is not None and not current.dead:
                return current
            if current is not None:
                self._drop(current)
            now = time.monotonic()
            if now < self._retry_at:
                raise BackendUnavailable(
                    f"cannot reach libvirt at {self.where}: {self._last_error}; "
                    f"trying again in {self._retry_at - now:.0f}s",
                    detail=self._last_error,
                )
            try:
                conn = libvirt.openReadOnly(self.uri) if self.read_only else libvirt.open(self.uri)
                self._generation += 1
                current = _Connection(conn, self._generation)
            except libvirt.libvirtError as error:
                self._last_error = _message(error)
                self._retry_at = now + self._backoff
                self._backoff = min(self._backoff * 2, self._backoff_max)
                raise BackendUnavailable(
                    f"cannot connect to libvirt at {self.where}: {self._last_error}", detail=self._last_error
                ) from error
            self._backoff = self._backoff_initial
            self._retry_at = 0.0
            self._configs.clear()
            self._subscribe(current)
            self._current = current
            return current

    def _subscribe(self, current: _Connection) -> None:
        if not self._events:
            return
        conn = current.conn
        with contextlib.suppress(libvirt.libvirtError):
            conn.registerCloseCallback(self._on_close, current.generation)
        with contextlib.suppress(libvirt.libvirtError):
            conn.setKeepAlive(*_KEEPALIVE)  # a remote daemon that stops answering closes the connection
        for event, callback in (
            (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle),
            (libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot),
            (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, self._on_device),
            (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, self._on_device),
        ):
            try:
                current.callbacks.append(conn.domainEventRegisterAny(None, event, callback, None))
            except libvirt.libvirtError as error:
                log.info("libvirt event %s not available from %s: %s", event, self.where, _message(error))

    def _drop(self, current: _Connection) -> None:
        """Forget a connection (dead, or being closed); never raises."""
        if self._current is current:
            self._current = None
        current.dead = True
        conn = current.conn
        for callback_id in current.callbacks:
            with contextlib.suppress(libvirt.libvirtError):
                conn.domainEventDeregisterAny(callback_id)
        current.callbacks.clear()
        with contextlib.suppress(libvirt.libvirtError):
            conn.unregisterCloseCallback()
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    def _lost(self, current: _Connection, error: BaseException) -> bool:
        """Whether ``error`` means the connection is gone; if so, drop it (the next call reconnects)."""
        if _code(error) not in _connection_codes() and not current.dead:
            return False
        alive = False
        if not current.dead:
            try:
                alive = bool(current.conn.isAlive())
            except libvirt.libvirtError:
                alive = False
        if alive:
            return False
        with self._lock:
            self._last_error = _message(error)
            self._drop(current)
        return True

    def _failure(self, current: _Connection, error: BaseException, what: str,
                 action: Action | None = None) -> BackendError:
        """A libvirt error as one of ours, carrying libvirt's message."""
        message = _message(error)
        code = _code(error)
        if self._lost(current, error):
            return BackendUnavailable(
                f"lost the connection to libvirt at {self.where} ({message}); reconnecting", detail=message
            )
        if code == libvirt.VIR_ERR_NO_DOMAIN:
            return DomainNotFound(f"{what}: {message}", detail=message)
        if code in _unsupported_codes():
            self._learn(action, error)
            return Unsupported(f"{what}: not supported by the {current.driver} driver: {message}", detail=message)
        if code in (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_INVALID_ARG):
            return InvalidArgument(f"{what} refused: {message}", detail=message)
        if code == libvirt.VIR_ERR_OPERATION_DENIED and self.read_only:
            return ReadOnlyError(f"{what} refused: {message}", detail=message)
        return BackendError(f"{what} failed: {message}", detail=message)

    def _call(self, what: str, fn: Callable[[_Connection], T], action: Action | None = None) -> T:
        """Run ``fn`` with the connection, in the calling (worker) thread, mapping libvirt's errors."""
        current = self._connection()
        try:
            return fn(current)
        except libvirt.libvirtError as error:
            raise self._failure(current, error, what, action) from error

    async def _run(self, what: str, fn: Callable[[_Connection], T], action: Action | None = None) -> T:
        self._loop = asyncio.get_running_loop()
        return await asyncio.to_thread(self._call, what, fn, action)

    def _writable(self, what: str, action: Action | None = None) -> None:
        if self.read_only:
            raise ReadOnlyError(f"{what} refused: the libvirt connection to {self.where} is read-only")
        if action is not None and action in self._learned:
            raise Unsupported(f"{what}: {self._learned[action]}")

    @staticmethod
    def _lookup(current: _Connection, name: str) -> Any:
        return current.conn.lookupByName(name)

    def _forget(self, uuid: str | None = None) -> None:
        """Read a domain's XML again at the next refresh (every domain's when ``uuid`` is None)."""
        with self._lock:
            if uuid is None:
                self._configs.clear()
            else:
                self._configs.pop(uuid, None)

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

    # --- memory, vCPUs, scheduler ----------------------------------------------------------------

    async def mem_set(self, domain: str, kib: int) -> None:
        what = f"mem-set {domain}"
        self._writable(what, Action.MEM_SET)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            total_kib = int(current.conn.getInfo()[1]) * 1024
            try:
                free_kib: int | None = int(current.conn.getFreeMemory()) // 1024
            except libvirt.libvirtError:
                free_kib = None  # a driver without it: libvirt itself refuses what does not fit
            # maxMemory is the domain's configured maximum (libvirt's <memory>), the ceiling of a live setmem.
            check_memory_target(kib, maxmem_kib=dom.maxMemory(), host_total_kib=total_kib, name=domain,
                                current_kib=dom.info()[2], host_free_kib=free_kib)
            dom.setMemoryFlags(kib, libvirt.VIR_DOMAIN_AFFECT_LIVE)

        await self._run(what, run, Action.MEM_SET)

    async def mem_max(self, domain: str, kib: int) -> None:
        what = f"mem-max {domain}"
        self._writable(what, Action.MEM_MAX)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            total_kib = int(current.conn.getInfo()[1]) * 1024
            check_memory_ceiling(kib, target_kib=dom.info()[2], host_total_kib=total_kib, name=domain)
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_MEM_MAXIMUM
            dom.setMemoryFlags(kib, flags)
            self._forget(dom.UUIDString())

        await self._run(what, run, Action.MEM_MAX)

    async def vcpu_set(self, domain: str, count: int, *, allow_overcommit: bool = False) -> None:
        what = f"vcpu-set {domain}"
        self._writable(what, Action.VCPU_SET)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            try:
                maximum = dom.vcpusFlags(libvirt.VIR_DOMAIN_VCPU_MAXIMUM | libvirt.VIR_DOMAIN_AFFECT_LIVE)
            except libvirt.libvirtError:
                maximum = dom.maxVcpus()
            check_vcpu_count(count, max_vcpus=maximum, host_cpus=int(current.conn.getInfo()[2]),
                             allow_overcommit=allow_overcommit, name=domain)
            dom.setVcpusFlags(count, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            self._forget(dom.UUIDString())

        await self._run(what, run, Action.VCPU_SET)

    async def set_sched(self, domain: str, *, weight: int | None = None, cap: int | None = None) -> None:
        what = f"scheduler change for {domain}"
        self._writable(what, Action.SCHED)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            kind = dom.schedulerType()[0]
            params = dom.schedulerParameters()
            if "weight" not in params:
                raise Unsupported(f"{what}: the {current.driver} driver's {kind} scheduler has no credit weight/cap "
                                  f"(it has {', '.join(sorted(params)) or 'no parameters'})")
            if cap is not None and "cap" not in params:
                raise Unsupported(f"{what}: the {current.driver} driver's {kind} scheduler has a weight but no cap")
            try:
                vcpus_max = dom.maxVcpus()
            except libvirt.libvirtError:
                vcpus_max = dom.info()[3]
            check_sched(weight, cap, max_vcpus=vcpus_max)
            wanted = {key: value for key, value in (("weight", weight), ("cap", cap)) if value is not None}
            if wanted:  # AFFECT_CURRENT: the running guest, or the definition of a stopped one
                try:
                    dom.setSchedulerParametersFlags(wanted, libvirt.VIR_DOMAIN_AFFECT_CURRENT)
                except libvirt.libvirtError as error:
                    if _code(error) != libvirt.VIR_ERR_INVALID_ARG:  # "unsupported flags": the older call
                        raise
                    dom.setSchedulerParameters(wanted)
            self._forget(dom.UUIDString())

        await self._run(what, run, Action.SCHED)

    # --- pause, life-cycle ------------------------------------------------------------------------

    @staticmethod
    def _refuse_dom0(dom: Any, action: str) -> None:
        if dom.ID() == 0:
            raise InvalidArgument(f"{action} refused: Domain-0 is the control domain; that would take the host down")

    async def pause(self, domain: str) -> None:
        what = f"pause {domain}"
        self._writable(what, Action.PAUSE)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            self._refuse_dom0(dom, "pause")
            if dom.state()[0] == _PAUSED:
                raise InvalidArgument(f"pause: {domain} is already paused")
            dom.suspend()

        await self._run(what, run, Action.PAUSE)

    async def unpause(self, domain: str) -> None:
        what = f"unpause {domain}"
        self._writable(what, Action.UNPAUSE)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            if dom.state()[0] != _PAUSED:
                raise InvalidArgument(f"unpause: {domain} is not paused")
            dom.resume()

        await self._run(what, run, Action.UNPAUSE)

    def _graceful(self, domain: str, action: str, call: Callable[[Any], object]) -> Callable[[_Connection], None]:
        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            self._refuse_dom0(dom, action)
            if dom.state()[0] == _PAUSED:
                raise InvalidArgument(f"{action}: {domain} is paused and cannot react; unpause it first")
            call(dom)

        return run

    async def shutdown(self, domain: str) -> None:
        self._writable(f"shutdown {domain}", Action.SHUTDOWN)
        await self._run(f"shutdown {domain}", self._graceful(domain, "shutdown", lambda dom: dom.shutdown()),
                        Action.SHUTDOWN)

    async def reboot(self, domain: str) -> None:
        self._writable(f"reboot {domain}", Action.REBOOT)
        await self._run(f"reboot {domain}", self._graceful(domain, "reboot", lambda dom: dom.reboot(0)),
                        Action.REBOOT)

    async def destroy(self, domain: str) -> None:
        what = f"destroy {domain}"
        self._writable(what, Action.DESTROY)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            self._refuse_dom0(dom, "destroy")
            dom.destroy()

        await self._run(what, run, Action.DESTROY)

    # --- sysrq ------------------------------------------------------------------------------------

    async def sysrq(self, domain: str, key: str) -> None:
        check_sysrq(key)
        what = f"sysrq {key} to {domain}"
        self._writable(what, Action.SYSRQ)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            self._refuse_dom0(dom, "sysrq")
            codes = [_KEY_LEFTALT, _KEY_SYSRQ, _LINUX_KEYS[key]]
            dom.sendKey(libvirt.VIR_KEYCODE_SET_LINUX, _SYSRQ_HOLD_MS, codes, len(codes), 0)

        await self._run(what, run, Action.SYSRQ)

    # --- save / restore ---------------------------------------------------------------------------

    async def save(
        self, domain: str, path: Path, *, keep_running: bool = False, overwrite: bool = False
    ) -> None:
        """libvirtd writes the file, on the libvirt host. ``keep_running``: saved, then restored from
        the same file at once (as ``xl save -c``, the guest stops for the length of the save)."""
        what = f"save {domain}"
        self._writable(what, Action.SAVE)
        path = Path(path)

        def run(current: _Connection) -> None:
            # Only on a local connection is the path on this machine to check; there the image is written
            # beside and renamed over an earlier one after success (a failed save leaves that one whole).
            target = check_save_path(path, overwrite=overwrite) if current.local else path
            dom = self._lookup(current, domain)
            self._refuse_dom0(dom, "save")
            paused = dom.state()[0] == _PAUSED
            if current.local:
                partial = partial_path(target)
                try:
                    dom.save(str(partial))
                    finish(partial, target)
                except BaseException:
                    discard(partial)
                    raise
            else:
                dom.save(str(target))
            self._forget(dom.UUIDString())
            if keep_running:
                try:
                    current.conn.restoreFlags(str(target), None, libvirt.VIR_DOMAIN_SAVE_PAUSED if paused else 0)
                except libvirt.libvirtError as error:
                    raise BackendError(
                        f"save: {domain} was saved to {path} but could not be started again from it: "
                        f"{_message(error)}; restore it from there",
                        detail=_message(error),
                    ) from error

        await self._run(what, run, Action.SAVE)

    async def restore(self, path: Path, *, paused: bool = False) -> str:
        path = Path(path)
        what = f"restore {path}"
        self._writable(what, Action.RESTORE)

        def run(current: _Connection) -> str:
            conn = current.conn
            if current.local and not path.is_file():
                raise InvalidArgument(f"restore: cannot read {path}: no such file")
            name = ""
            try:
                name = saved_image_name(conn.saveImageGetXMLDesc(str(path), 0))
            except libvirt.libvirtError as error:
                if self._lost(current, error):
                    raise
            before = {dom.UUIDString() for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
            conn.restoreFlags(str(path), None, libvirt.VIR_DOMAIN_SAVE_PAUSED if paused else 0)
            if not name:  # the driver cannot read the image's XML: the domain that appeared is the one
                new = [dom for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                       if dom.UUIDString() not in before]
                name = new[0].name() if len(new) == 1 else path.name
            return name

        return await self._run(what, run, Action.RESTORE)

    # --- migration --------------------------------------------------------------------------------

    def _destination(self, target: str) -> str:
        """A libvirt URI for ``target``: as given when it is one, else our driver and path on that host
        over ssh (``qemu:///system`` + ``host2`` -> ``qemu+ssh://host2/system``)."""
        target = target.strip()
        if "://" in target:
            scheme = target.split("://", 1)[0]
            if not _URI_SCHEME.fullmatch(scheme) or any(char.isspace() or ord(char) < 32 for char in target):
                raise InvalidArgument(f"{target!r} is not a libvirt URI (e.g. qemu+ssh://host2/system)")
            return target
        host = check_host(target)
        current = self._current
        own = urlsplit(current.uri if current is not None else (self.uri or "qemu:///system"))
        driver, _, transport = own.scheme.partition("+")
        if transport in ("", "unix"):
            transport = "ssh"
        if ":" in host:
            host = f"[{host}]"
        return f"{driver}+{transport}://{host}{own.path or '/system'}"

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]:
        destination = self._destination(target)
        what = f"migrate {domain}"
        if Action.MIGRATE in self._learned:
            raise Unsupported(f"{what}: {self._learned[Action.MIGRATE]}")
        try:
            return await asyncio.wait_for(
                self._run(what, lambda current: self._preflight_sync(current, domain, destination)),
                _PREFLIGHT_TIMEOUT_S,
            )
        except TimeoutError:
            return [PreflightCheck("reachable", False,
                                   f"{destination} did not answer within {_PREFLIGHT_TIMEOUT_S:.0f}s")]

    def _preflight_sync(self, current: _Connection, domain: str, destination: str) -> list[PreflightCheck]:
        conn = current.conn
        dom = self._lookup(current, domain)
        mem_kib = dom.info()[2]
        config = parse_domain_xml(dom.XMLDesc(0))
        try:
            dconn = libvirt.openReadOnly(destination)
        except libvirt.libvirtError as error:
            return [PreflightCheck("reachable", False, f"cannot connect to {destination}: {_message(error)}")]
        checks = []
        try:
            checks.append(PreflightCheck("reachable", True, f"{dconn.getHostname()} answers at {destination}"))
            theirs = parse_capabilities(dconn.getCapabilities())
            if theirs.uuid and theirs.uuid == current.caps.uuid:
                checks.append(PreflightCheck("another host", False,
                                             f"{destination} is this host (same host UUID {theirs.uuid})"))
            mine_v, theirs_v = current.hv_version, dconn.getVersion()
            driver = dconn.getType()
            checks.append(PreflightCheck(
                "hypervisor version", driver == current.driver and theirs_v >= mine_v,
                f"{driver} {parse_version(theirs_v)} there, {current.driver} {parse_version(mine_v)} here"
                + ("" if theirs_v >= mine_v else ": a guest cannot move to an older hypervisor"),
            ))
            checks.append(self._cpu_check(dconn, current.caps))
            free = dconn.getFreeMemory() // 1024
            checks.append(PreflightCheck("free memory", free >= mem_kib,
                                         f"{format_kib(free)} free there, {domain} needs {format_kib(mem_kib)}"))
            try:
                there = dconn.lookupByUUIDString(dom.UUIDString())
                checks.append(PreflightCheck("name", not there.isActive(),
                                             f"{there.name()} is already {'running' if there.isActive() else 'defined'}"
                                             " there"))
            except libvirt.libvirtError:
                checks.append(PreflightCheck("name", True, f"no domain with {domain}'s UUID there"))
            checks.append(self._storage_check(dconn, config))
            checks.append(PreflightCheck("libvirt", None, f"libvirt {parse_version(dconn.getLibVersion())} there, "
                                                          f"{parse_version(conn.getLibVersion())} here"))
        except libvirt.libvirtError as error:
            checks.append(PreflightCheck("target", False, f"{destination}: {_message(error)}"))
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                dconn.close()
        return checks

    @staticmethod
    def _cpu_check(dconn: Any, caps: HostCaps) -> PreflightCheck:
        if not caps.cpu_xml:
            return PreflightCheck("CPU", None, "this host's CPU is not known")
        try:
            result = dconn.compareCPU(caps.cpu_xml, 0)
        except libvirt.libvirtError as error:
            return PreflightCheck("CPU", None, f"cannot compare: {_message(error)}")
        if result in (libvirt.VIR_CPU_COMPARE_IDENTICAL, libvirt.VIR_CPU_COMPARE_SUPERSET):
            return PreflightCheck("CPU", True, "the target's CPU has every feature of this one")
        return PreflightCheck("CPU", False, "the target's CPU lacks features of this one that the guest may use")

    @staticmethod
    def _storage_check(dconn: Any, config: DomainConfig) -> PreflightCheck:
        paths = [disk.path for disk in config.disks if disk.path]
        if not paths:
            return PreflightCheck("storage", True, "no disks to reach")
        unseen = []
        for path in paths:
            try:
                dconn.storageVolLookupByPath(path)
            except libvirt.libvirtError:
                unseen.append(path)
        if not unseen:
            return PreflightCheck("storage", True, "every disk is a volume the target knows")
        return PreflightCheck("storage", None, f"not known as volumes there (shared storage?): {', '.join(unseen)}")

    async def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]:
        """migrateToURI3, peer to peer; progress from jobStats. Closing this iterator aborts the job."""
        what = f"migrate {domain}"
        self._writable(what, Action.MIGRATE)
        destination = self._destination(target)
        yield MigrateProgress(MigratePhase.PREFLIGHT, 0.0, f"migrating {domain} to {destination}")
        dom, persistent = await self._run(what, lambda current: self._migrate_prepare(current, domain))
        flags = libvirt.VIR_MIGRATE_PEER2PEER
        if live:
            flags |= libvirt.VIR_MIGRATE_LIVE
        if persistent:  # the definition moves with the guest, as a Xen domain does
            flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        params: dict[str, Any] = dict(self.migrate_params)
        if self.migrate_data_uri:
            params[libvirt.VIR_MIGRATE_PARAM_URI] = self.migrate_data_uri
        job = asyncio.ensure_future(self._run(
            what, lambda _current: dom.migrateToURI3(destination, params, flags), Action.MIGRATE))
        try:
            while True:
                done, _ = await asyncio.wait({job}, timeout=_MIGRATE_POLL_S)
                if done:
                    break
                progress = await asyncio.to_thread(self._job_progress, dom, domain)
                if progress is not None:
                    yield progress
            try:
                job.result()
            except BackendError as error:
                raise type(error)(f"{error.message}; {domain} keeps running here", detail=error.detail) from error
            self._forget()
            yield MigrateProgress(MigratePhase.DONE, 1.0, f"{domain} now runs at {destination}")
        finally:
            if not job.done():  # closed or cancelled while it runs: ask libvirt to stop it
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(dom.abortJob)
                with contextlib.suppress(BaseException):
                    await asyncio.shield(job)

    @staticmethod
    def _migrate_prepare(current: _Connection, domain: str) -> tuple[Any, bool]:
        dom = current.conn.lookupByName(domain)
        if dom.ID() == 0:
            raise InvalidArgument("migrate refused: Domain-0 is the control domain; that would take the host down")
        if not dom.isActive():
            raise InvalidArgument(f"migrate refused: {domain} is not running")
        return dom, bool(dom.isPersistent())

    @staticmethod
    def _job_progress(dom: Any, domain: str) -> MigrateProgress | None:
        try:
            stats = dom.jobStats()
            state, reason = dom.state()
        except libvirt.libvirtError:
            return None  # the job is ending, or has not started yet
        total = int(stats.get("data_total") or stats.get("memory_total") or 0)
        sent = int(stats.get("data_processed") or stats.get("memory_processed") or 0)
        if not total:
            return None
        fraction = min(0.95, sent / total)
        rounds = stats.get("memory_iteration")
        if state == _PAUSED and reason == _PAUSED_MIGRATION:
            remaining = int(stats.get("data_remaining") or 0)
            return MigrateProgress(MigratePhase.STOP_AND_COPY, max(fraction, 0.96),
                                   f"{domain} paused; copying the last {format_kib(max(remaining // 1024, 1))}",
                                   sent, total)
        round_text = f"round {rounds}: " if rounds is not None else ""
        return MigrateProgress(MigratePhase.COPYING, fraction,
                               f"{round_text}{format_kib(max(sent // 1024, 1))} of {format_kib(max(total // 1024, 1))}"
                               " sent", sent, total)

    # --- console ----------------------------------------------------------------------------------

    async def open_console(self, domain: str) -> ConsoleChannel:
        what = f"console of {domain}"
        if self.read_only:
            raise ReadOnlyError(f"{what}: libvirt opens no console on a read-only connection")
        if not self._events:
            raise Unsupported(f"{what}: libvirt's event loop could not be started")
        if Action.CONSOLE in self._learned:
            raise Unsupported(f"{what}: {self._learned[Action.CONSOLE]}")
        loop = asyncio.get_running_loop()
        self._loop = loop

        def open_stream(current: _Connection, dom: Any) -> Any:
            """A stream with the console on it: SAFE (refuse a console that cannot be shared safely) where
            the driver takes the flag; the libxl driver accepts only FORCE ("unsupported flags (0x2)"), and
            without either flag it refuses a console another session holds, which is what we want anyway."""
            while True:
                stream = current.conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
                flags = libvirt.VIR_DOMAIN_CONSOLE_SAFE if current.console_safe else 0
                try:
                    dom.openConsole(None, stream, flags)
                    return stream
                except libvirt.libvirtError as error:
                    with contextlib.suppress(libvirt.libvirtError):
                        stream.abort()
                    if flags and _code(error) == libvirt.VIR_ERR_INVALID_ARG and "flags" in _message(error):
                        current.console_safe = False
                        continue
                    raise

        def run(current: _Connection) -> LibvirtConsole:
            dom = self._lookup(current, domain)
            try:
                stream = open_stream(current, dom)
            except libvirt.libvirtError as error:
                text = _message(error)
                if "console session exists" in text or "already in use" in text:
                    raise ConsoleBusy(f"{what}: the console is already in use by another session "
                                      f"(virsh console?); close it and retry: {text}", detail=text) from error
                raise
            console = LibvirtConsole(self, loop, stream, domain)
            stream.eventAddCallback(
                libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP,
                console._on_stream, None,
            )
            return console

        console = await self._run(what, run, Action.CONSOLE)
        self._consoles.add(console)
        return console

    # --- the end ----------------------------------------------------------------------------------

    async def close(self) -> None:
        for console in list(self._consoles):
            await console.close()
        self._listeners = []

        def drop() -> None:
            with self._lock:
                if self._current is not None:
                    self._drop(self._current)

        await asyncio.to_thread(drop)


class LibvirtConsole(ConsoleChannel):
    """A domain's console on a non-blocking libvirt stream.

    libvirt's event thread reads the stream when it is readable and hands the bytes to the
    asyncio loop; ``write`` sends from a worker thread. ``read`` returns b'' once the guest or
    the connection hung up.
    """

    def __init__(self, backend: LibvirtBackend, loop: asyncio.AbstractEventLoop, stream: Any, domain: str) -> None:
        self._backend = backend
        self._loop = loop
        self._stream = stream
        self.domain = domain
        self._buffer = bytearray()
        self._ready = asyncio.Event()
        self._eof = False
        self._closed = False
        self._paused = False  # stopped watching the stream: the reader is far behind
        self._write_lock = asyncio.Lock()
        self.size = (80, 24)

    # libvirt's event thread

    def _on_stream(self, stream: Any, events: int, _opaque: Any) -> None:
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            while True:
                try:
                    data = stream.recv(_CONSOLE_READ)
                except libvirt.libvirtError:
                    self._post(None)
                    return
                if data == -2:  # drained for now
                    break
                if not data:
                    self._post(None)
                    return
                self._post(bytes(data))
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._post(None)

    def _post(self, data: bytes | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone
            self._loop.call_soon_threadsafe(self._arrived, data)

    # the asyncio loop

    def _arrived(self, data: bytes | None) -> None:
        if self._closed:
            return
        if data is None:
            if not self._eof:
                self._eof = True
                self._unwatch()
        else:
            self._buffer += data
            if len(self._buffer) > _CONSOLE_HIGH_WATER and not self._paused:
                self._paused = True
                with contextlib.suppress(libvirt.libvirtError):
                    self._stream.eventUpdateCallback(0)  # local bookkeeping, no RPC
        self._ready.set()

    async def read(self) -> bytes:
        if self._closed:  # closed by us: what arrived after the last read is nobody's any more
            return b""
        while not self._buffer:
            if self._closed or self._eof:
                return b""
            self._ready.clear()
            await self._ready.wait()
        chunk = bytes(self._buffer[:_CONSOLE_READ])
        del self._buffer[:_CONSOLE_READ]
        if self._paused and len(self._buffer) < _CONSOLE_HIGH_WATER // 4 and not self._eof:
            self._paused = False
            with contextlib.suppress(libvirt.libvirtError):
                self._stream.eventUpdateCallback(libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR
                                                 | libvirt.VIR_STREAM_EVENT_HANGUP)
        return chunk

    async def write(self, data: bytes) -> None:
        if self._closed or self._eof:
            raise DomainNotFound(f"{self.domain}'s console is closed")
        view = bytes(data)
        async with self._write_lock:
            while view:
                try:
                    sent = await asyncio.to_thread(self._stream.send, view)
                except libvirt.libvirtError as error:
                    raise DomainNotFound(f"{self.domain}'s console is closed: {_message(error)}",
                                         detail=_message(error)) from error
                if sent == -2:  # the stream's queue is full: the daemon has not taken the last bytes yet
                    await asyncio.sleep(0.01)
                    continue
                view = view[sent:]

    async def resize(self, columns: int, rows: int) -> None:
        """A serial line has no size to tell; kept for the pane's own layout."""
        self.size = (columns, rows)

    def _unwatch(self) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.eventRemoveCallback()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._ready.set()
        self._backend._consoles.discard(self)
        stream = self._stream

        def finish() -> None:
            with contextlib.suppress(libvirt.libvirtError):
                stream.eventRemoveCallback()
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()

        await asyncio.to_thread(finish)
