"""Where a backend's commands run and its files are read: the seam between a backend and a machine.

`LocalHost` is this machine, and what every backend used before the seam. A backend written against `HostAccess`
(the xl backend is) does not change when the machine is another dom0 reached over ssh (the pool issue adds that
implementation). Argument lists stay argument lists through here; an implementation that has to hand a line to
a remote shell quotes every word itself.

Reads are batched where a refresh needs many (``read_links``), so a remote host costs one round trip for them,
not one per domain.
"""

from __future__ import annotations

import abc
import asyncio
import os
import shutil
from collections.abc import Iterable
from typing import NamedTuple

from xentui.backends.xl_tool import ToolResult, run_tool
from xentui.console.channel import ConsoleChannel
from xentui.errors import BackendUnavailable

__all__ = ["HostAccess", "LocalHost", "NetCounters"]


class NetCounters(NamedTuple):
    """One interface's counters, as the host sees them (for a vif: what dom0 sent, the guest received)."""

    bytes_sent: int
    bytes_recv: int
    packets_sent: int
    packets_recv: int
    errin: int
    errout: int
    dropin: int
    dropout: int


class HostAccess(abc.ABC):
    """Run commands and read files on one machine."""

    name: str
    """How messages name the machine ("this host", or the ssh destination)."""
    local: bool = True
    """This machine: its libraries (libxenstat) and uid are the host's."""

    @abc.abstractmethod
    def has(self, program: str) -> bool:
        """Whether ``program`` can be run there (on PATH, or a path to an executable)."""

    @abc.abstractmethod
    async def run(self, argv: list[str], *, what: str | None = None, limit: float = 60.0, check: bool = True,
                  on_timeout: str | None = None) -> ToolResult:
        """Run to the end and collect its output; see `xentui.backends.xl_tool.run_tool` for the errors."""

    @abc.abstractmethod
    async def start(self, argv: list[str], *, merge_stderr: bool = False) -> asyncio.subprocess.Process:
        """A long-running command (``xentop -b``, ``xl migrate``): stdout piped, stdin closed; stderr piped,
        or into stdout with ``merge_stderr``. The caller reads it and ends it."""

    @abc.abstractmethod
    async def read_head(self, path: str, size: int) -> bytes:
        """The first ``size`` bytes of a file (OSError when it cannot be read)."""

    @abc.abstractmethod
    async def read_links(self, paths: Iterable[str]) -> dict[str, str | None]:
        """Where each symbolic link points; None for one that is not there. All in one go."""

    @abc.abstractmethod
    async def net_counters(self) -> dict[str, NetCounters]:
        """Every network interface's counters, by name."""

    @abc.abstractmethod
    async def open_console(self, argv: list[str]) -> ConsoleChannel:
        """Run ``argv`` on a pseudo-terminal there (``xl console``) and hand back its byte stream."""

    async def close(self) -> None:  # noqa: B027 - most hosts hold nothing
        """Let go of what reaching the machine holds (an ssh connection)."""


class LocalHost(HostAccess):
    """This machine: subprocesses with argument lists, files through the kernel, psutil, a local pty."""

    name = "this host"

    def has(self, program: str) -> bool:
        return shutil.which(program) is not None

    async def run(self, argv: list[str], *, what: str | None = None, limit: float = 60.0, check: bool = True,
                  on_timeout: str | None = None) -> ToolResult:
        return await run_tool(argv, what=what, limit=limit, check=check, on_timeout=on_timeout)

    async def start(self, argv: list[str], *, merge_stderr: bool = False) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
                env={**os.environ, "LC_ALL": "C"})
        except OSError as error:
            raise BackendUnavailable(f"cannot run {argv[0]}: {error.strerror}", detail=str(error)) from error

    async def read_head(self, path: str, size: int) -> bytes:
        return await asyncio.to_thread(_read_head, path, size)

    async def read_links(self, paths: Iterable[str]) -> dict[str, str | None]:
        return await asyncio.to_thread(lambda: {path: _read_link(path) for path in paths})

    async def net_counters(self) -> dict[str, NetCounters]:
        return await asyncio.to_thread(_psutil_counters)

    async def open_console(self, argv: list[str]) -> ConsoleChannel:
        from xentui.console.pty import PtyConsole

        return await PtyConsole.start(argv)


def _read_head(path: str, size: int) -> bytes:
    with open(path, "rb") as file:
        return file.read(size)


def _read_link(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _psutil_counters() -> dict[str, NetCounters]:
    import psutil

    return {name: NetCounters(c.bytes_sent, c.bytes_recv, c.packets_sent, c.packets_recv, c.errin, c.errout,
                              c.dropin, c.dropout)
            for name, c in psutil.net_io_counters(pernic=True).items()}
