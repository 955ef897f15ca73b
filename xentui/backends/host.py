"""Where a backend's commands run and its files are read: the seam between a backend and a machine.

`LocalHost` is this machine, and what every backend used before the seam. A backend written against `HostAccess`
(the xl backend is) does not change when the machine is another dom0 reached over ssh (the pool issue adds that
implementation). Argument lists stay argument lists through here; an implementation that has to hand a line to
a remote shell quotes every word itself.

Reads are batched where a refresh needs many (``read_links``), so a remote host costs one round trip for them,
not one per domain; so are the file calls of save and restore (``stat`` several paths, ``list_dir`` a whole
directory). Those file calls have defaults that refuse, so a host written for watching only still watches.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import shutil
import stat as _stat
from collections.abc import Iterable
from typing import NamedTuple

from xentui.backends.xl_tool import ToolResult, run_tool
from xentui.console.channel import ConsoleChannel
from xentui.errors import BackendUnavailable, Unsupported

__all__ = ["FileInfo", "HostAccess", "LocalHost", "NetCounters"]


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


class FileInfo(NamedTuple):
    """What ``stat`` says of one path there."""

    mode: int
    """``st_mode``: the kind of file (``stat.S_IFMT``) and its permissions."""
    size: int
    mtime: float
    """When its data last changed, seconds since the epoch (whole seconds over ssh)."""

    @property
    def kind(self) -> int:
        return _stat.S_IFMT(self.mode)


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
    async def start(self, argv: list[str], *, merge_stderr: bool = False,
                    hang_up: bool = False) -> asyncio.subprocess.Process:
        """A long-running command (``xentop -b``, ``xl migrate``): stdout piped, stdin closed; stderr piped,
        or into stdout with ``merge_stderr``. The caller reads it and ends it. ``hang_up``: ending the process
        here must end the command there, even one that writes nothing for minutes (xl migrate while it sends
        memory), so over ssh it runs on a terminal, which the closed connection hangs up."""

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

    # --- files, for save and restore: where the images are is the host's own filesystem

    async def stat(self, paths: Iterable[str], *, follow_links: bool = False) -> dict[str, FileInfo | OSError]:
        """What each path is: the link itself (as ``os.lstat``), or with ``follow_links`` what it points at (as
        ``os.stat``); for a path that cannot be looked at, the OSError that says why (FileNotFoundError: nothing
        there). All in one go."""
        raise Unsupported(f"looking at files on {self.name}: {type(self).__name__} cannot")

    async def list_dir(self, directory: str) -> dict[str, FileInfo]:
        """Every entry of ``directory`` (hidden ones too), by name, with what it is through links (as
        ``os.stat``); an entry that cannot be looked at (a dangling link) is left out. All in one go.
        OSError when the directory itself cannot be read (FileNotFoundError, NotADirectoryError, ...)."""
        raise Unsupported(f"listing a directory on {self.name}: {type(self).__name__} cannot")

    async def make_dirs(self, directory: str) -> None:
        """The directory and its missing parents (``mkdir -p``); nothing when it is there. OSError when it
        cannot be made (FileExistsError: a file is in the way)."""
        raise Unsupported(f"making a directory on {self.name}: {type(self).__name__} cannot")

    async def rename(self, source: str, target: str) -> None:
        """``source`` takes the name ``target``, replacing a file there in one step (as ``os.replace``)."""
        raise Unsupported(f"renaming a file on {self.name}: {type(self).__name__} cannot")

    async def remove(self, path: str) -> None:
        """Remove a file; nothing when it is not there. OSError when it cannot be removed."""
        raise Unsupported(f"removing a file on {self.name}: {type(self).__name__} cannot")

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

    async def start(self, argv: list[str], *, merge_stderr: bool = False,
                    hang_up: bool = False) -> asyncio.subprocess.Process:
        try:  # here the process is the command itself: ending it needs no hang-up
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

    # files: in a thread each (a hung NFS directory must not stop the screen)

    async def stat(self, paths: Iterable[str], *, follow_links: bool = False) -> dict[str, FileInfo | OSError]:
        wanted = list(paths)
        return await asyncio.to_thread(lambda: {path: _file_info(path, follow_links) for path in wanted})

    async def list_dir(self, directory: str) -> dict[str, FileInfo]:
        return await asyncio.to_thread(_list_dir, directory)

    async def make_dirs(self, directory: str) -> None:
        await asyncio.to_thread(os.makedirs, directory, exist_ok=True)

    async def rename(self, source: str, target: str) -> None:
        await asyncio.to_thread(os.replace, source, target)

    async def remove(self, path: str) -> None:
        await asyncio.to_thread(_remove, path)


def _file_info(path: str, follow_links: bool) -> FileInfo | OSError:
    try:
        found = os.stat(path) if follow_links else os.lstat(path)
    except OSError as error:
        return error
    except ValueError as error:  # a NUL in the path: no file can be named so
        return FileNotFoundError(2, str(error))
    return FileInfo(found.st_mode, found.st_size, found.st_mtime)


def _list_dir(directory: str) -> dict[str, FileInfo]:
    entries = {}
    with os.scandir(directory) as found:
        for entry in found:
            try:
                each = entry.stat(follow_symlinks=True)
            except OSError:
                continue
            entries[entry.name] = FileInfo(each.st_mode, each.st_size, each.st_mtime)
    return entries


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


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


async def end_process(process: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after GRACE seconds: an ssh multiplexing client waiting on its master can miss
    the first, and a Stop must never leave it (and, through it, the command there) running."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
