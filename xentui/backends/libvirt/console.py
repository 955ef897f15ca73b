"""The console: opening a domain's console on a libvirt stream (`ConsoleMixin.open_console`) and the
channel that reads and writes it (`LibvirtConsole`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from xentui.backends.base import Action, ConsoleBusy, ConsoleChannel, DomainNotFound, ReadOnlyError, Unsupported
from xentui.backends.libvirt.connection import ConnectionMixin, _code, _Connection, _message, libvirt

if TYPE_CHECKING:
    from xentui.backends.libvirt import LibvirtBackend

_CONSOLE_READ = 64 * 1024
_CONSOLE_HIGH_WATER = 1024 * 1024


class ConsoleMixin(ConnectionMixin):
    """`open_console`: a domain's console, on a libvirt stream."""

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
