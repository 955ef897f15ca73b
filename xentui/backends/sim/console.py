"""A simulated guest's serial console: what is typed goes to its `SimShell`, what it prints comes back."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from xentui.backends.base import ConsoleChannel, DomainNotFound

if TYPE_CHECKING:
    from xentui.backends.sim.backend import SimBackend
    from xentui.backends.sim.domain import SimDomain


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
