"""The libvirt connection: opening it and opening it again, libvirt's event loop thread and the
domain events it delivers, and libvirt's errors turned into xentui's.

`ConnectionMixin` is the part of `LibvirtBackend` the others build on: the connection, the calls
run with it in a worker thread (`_call`, `_run`), and the state the backend keeps between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from xentui.backends.base import (
    Action,
    BackendError,
    BackendUnavailable,
    Capabilities,
    DomainNotFound,
    InvalidArgument,
    ReadOnlyError,
    Unsupported,
)
from xentui.backends.libvirt_xml import DomainConfig, HostCaps, parse_capabilities

if TYPE_CHECKING:
    from xentui.backends.libvirt.console import LibvirtConsole
    from xentui.backends.libvirt.stats import KnownDomain

try:  # an optional extra: pip install 'xentui[libvirt]'
    import libvirt
except ImportError:  # pragma: no cover - exercised only where libvirt-python is missing
    libvirt = None  # type: ignore[assignment]

log = logging.getLogger(__package__)  # the package's logger: records keep the name they had before the split
T = TypeVar("T")

_BACKOFF_INITIAL_S = 1.0
_BACKOFF_MAX_S = 30.0
_KEEPALIVE = (5, 3)  # probe every 5 s, give up after 3 unanswered: a dead daemon is noticed in ~20 s


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
        self.thin_records = 0  # refreshes in a row whose bulk records held the state group only, for every domain
        self.listing_for = 0  # refreshes left that list the domains instead (see `StatsMixin._stats_sync`)
        self.listings = 0  # times the bulk call was set aside for that listing
        self.listed: dict[int, Any] = {}  # the domain objects of the last listing, by domid
        self.console_safe = True  # openConsole accepts VIR_DOMAIN_CONSOLE_SAFE (the libxl driver does not)
        self.vcpus_call = True  # virDomain.vcpus() answers (it needs virNodeGetCPUMap, which libxl lacks)
        self.scheduler = ""
        self.running: dict[int, KnownDomain] = {}  # by domid, as of the last refresh


class ConnectionMixin:
    """The connection and what every other part of `LibvirtBackend` uses: its state (set in
    `LibvirtBackend.__init__`), the capabilities learnt, the change events, and `_call`/`_run`."""

    uri: str | None
    read_only: bool
    _backoff_initial: float
    _backoff_max: float
    _backoff: float
    _retry_at: float
    _last_error: str
    _events: bool
    _lock: threading.RLock
    _current: _Connection | None
    _generation: int
    _configs: dict[str, KnownDomain]  # uuid -> what is kept of it between refreshes
    _parsed_ahead: dict[str, DomainConfig]  # uuid -> config parsed ahead, during a refresh new to the connection
    _dirty: set[str]
    _learned: dict[Action, str]
    _loop: asyncio.AbstractEventLoop | None
    _listeners: list[Callable[[], None]]
    _wake_pending: bool
    _consoles: set[LibvirtConsole]

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
