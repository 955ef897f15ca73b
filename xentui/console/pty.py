"""A console command (``xl console DOM``, ``virsh console DOM``) run in a pseudo-terminal.

The command gets the slave side as its stdin, stdout and stderr, so it behaves as under a
real terminal (``xl console`` switches that tty to raw mode itself); we keep the master and
exchange bytes with it from the event loop: ``loop.add_reader`` fills a buffer, no thread
and no blocking read.

xenconsole lets only one client attach to a domain's console: a second ``xl console``
prints a complaint and exits at once. `PtyConsole.start` watches the first moments of the
command's life to turn that into `ConsoleBusy`, and any other early exit into
`BackendError`, instead of handing back a console that is already dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import signal
import struct
import termios

from xentui.console.channel import ConsoleChannel
from xentui.errors import BackendError, BackendUnavailable, ConsoleBusy, DomainNotFound

__all__ = ["DEFAULT_BUSY_PATTERNS", "MAX_READ", "PtyConsole"]

log = logging.getLogger(__name__)

# What xenconsole / virsh say when another client holds the console (matched case-insensitively).
DEFAULT_BUSY_PATTERNS: tuple[bytes, ...] = (
    b"already in use",
    b"is already connected",
    b"console is busy",
    b"lock",
)

MAX_READ = 64 * 1024  # one read() never returns more, so a flood arrives in bounded pieces
_HIGH_WATER = 256 * 1024  # stop reading the pty above this much unread output (the child then blocks)
_LOW_WATER = 64 * 1024  # and start again below this
_READS_PER_CALLBACK = 16  # keep the event loop responsive while a child floods
_EOF_AFTER_EXIT = 0.5  # a grandchild may keep the slave open: after this, the child's exit is the end
_EOF_DRAIN_ON_FAILURE = 0.2  # how long start() waits for a failed command's last output
_TERM_TIMEOUT = 1.0  # SIGTERM, then SIGKILL after this
_MAX_LINE = 200

_ANSI_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC
    r"|\x1b[@-_]"  # other two-character escapes
)


def _set_winsize(fd: int, columns: int, rows: int) -> None:
    """TIOCSWINSZ; the kernel field is an unsigned short, so the size is clamped to it."""
    columns = max(1, min(int(columns), 0xFFFF))
    rows = max(1, min(int(rows), 0xFFFF))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _clean_text(raw: bytes) -> str:
    """Tool output made safe for a one-line message: escapes and control characters removed."""
    text = _ANSI_ESCAPE.sub("", raw.decode("utf-8", errors="replace")).replace("\t", " ")
    # isprintable() is False for controls, format characters (bidi overrides...) and separators.
    return "".join(char for char in text if char in "\n\r" or char.isprintable())


def _last_line(raw: bytes) -> str:
    """The last non-blank line of a command's output, cleaned and shortened."""
    lines = [line.strip() for line in re.split(r"[\r\n]+", _clean_text(raw))]
    last = next((line for line in reversed(lines) if line), "")
    if not last:
        return "(no output)"
    return last if len(last) <= _MAX_LINE else last[: _MAX_LINE - 1] + "…"


def _describe_status(returncode: int | None) -> str:
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit status {returncode}"


class PtyConsole(ConsoleChannel):
    """A running console command behind a pty master. Create it with `start`."""

    def __init__(self, process: asyncio.subprocess.Process, master_fd: int, argv: list[str]) -> None:
        self._loop = asyncio.get_running_loop()
        self._process = process
        self._fd = master_fd  # -1 once closed
        self._argv = list(argv)
        self._buffer = bytearray()
        self._data_ready = asyncio.Event()  # set when the buffer grows, at EOF and at close
        self._eof_seen = asyncio.Event()
        self._reading = False
        self._child_gone = False  # the child exited a while ago: an empty pty now means EOF
        self._closed = False
        self._write_lock = asyncio.Lock()
        self._write_waiter: asyncio.Future[None] | None = None
        self._wait_task = asyncio.create_task(process.wait())
        self._watch_task = asyncio.create_task(self._watch_exit())
        self._resume_reading()

    # -- starting -----------------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        argv: list[str],
        *,
        columns: int = 80,
        rows: int = 24,
        env: dict[str, str] | None = None,
        busy_patterns: tuple[bytes, ...] = DEFAULT_BUSY_PATTERNS,
        startup_grace: float = 0.3,
    ) -> PtyConsole:
        """Run ``argv`` on a new pty of ``columns`` x ``rows``.

        Raises `ConsoleBusy` if the command gives up within ``startup_grace`` seconds saying
        the console is taken, `BackendError` if it exits then for another reason and
        `BackendUnavailable` if it cannot be run at all. Returns within ``startup_grace``
        plus a fraction of a second.
        """
        if not argv:
            raise ValueError("PtyConsole.start needs a command")
        if env is None:
            # Our own TERM describes the operator's terminal; the child talks to our emulator.
            child_env = {**os.environ, "TERM": "xterm-256color"}
        else:
            child_env = dict(env)
            child_env.setdefault("TERM", "xterm-256color")

        master, slave = os.openpty()
        try:
            try:
                _set_winsize(slave, columns, rows)
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    start_new_session=True,
                    env=child_env,
                )
            finally:
                os.close(slave)
            os.set_blocking(master, False)
        except OSError as exc:
            os.close(master)
            reason = exc.strerror or str(exc)
            raise BackendUnavailable(f"cannot run {argv[0]}: {reason}", detail=str(exc)) from exc
        except BaseException:
            os.close(master)
            raise

        console = cls(process, master, argv)
        try:
            if startup_grace > 0:
                await console._check_startup(busy_patterns, startup_grace)
        except BaseException:
            console._abandon()
            raise
        return console

    async def _check_startup(self, busy_patterns: tuple[bytes, ...], grace: float) -> None:
        """Raise if the command dies within ``grace`` seconds; a survivor is a working console."""
        done, _ = await asyncio.wait({self._wait_task}, timeout=grace)
        if not done:
            return
        # It exited: the pty still holds its last words until every slave fd is closed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._eof_seen.wait(), _EOF_DRAIN_ON_FAILURE)
        output = bytes(self._buffer)
        returncode = self._process.returncode
        await self.close()

        line = _last_line(output)
        detail = _clean_text(output).strip() or None
        lowered = output.lower()
        if any(pattern.lower() in lowered for pattern in busy_patterns if pattern):
            raise ConsoleBusy(
                f"the console is already in use by another session (only one may attach at a time); "
                f"close the other one and retry: {line}",
                detail=detail,
            )
        raise BackendError(f"console command exited: {line} ({_describe_status(returncode)})", detail=detail)

    # -- the ConsoleChannel interface ---------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it has been reaped, else None."""
        return self._process.returncode

    async def read(self) -> bytes:
        """The output available now (at most `MAX_READ` bytes), waiting for some; b'' at the end."""
        while not self._buffer:
            if self._closed or self._eof_seen.is_set():
                return b""
            self._data_ready.clear()
            await self._data_ready.wait()
        count = min(len(self._buffer), MAX_READ)
        chunk = bytes(self._buffer[:count])
        del self._buffer[:count]
        if not self._reading and len(self._buffer) <= _LOW_WATER:
            self._resume_reading()
        return chunk

    async def write(self, data: bytes) -> None:
        """Send all of ``data`` to the command, waiting while the pty is full."""
        self._check_writable()
        view = memoryview(data).cast("B")
        async with self._write_lock:
            while view:
                self._check_writable()
                try:
                    written = os.write(self._fd, view)
                except BlockingIOError:
                    await self._wait_writable()
                    continue
                except OSError as exc:  # EIO: the other side is gone
                    raise DomainNotFound("console closed", detail=str(exc)) from exc
                view = view[written:]

    async def resize(self, columns: int, rows: int) -> None:
        """Tell the command its terminal changed size. A no-op once the console is closed."""
        if self._fd < 0:
            return
        try:
            _set_winsize(self._fd, columns, rows)
        except OSError as exc:
            log.debug("TIOCSWINSZ on the console pty failed: %s", exc)
            return
        # The kernel signals the tty's foreground group, but the child (a new session that
        # never acquired the pty as its controlling terminal) is in none: tell it ourselves.
        self._signal_group(signal.SIGWINCH)

    async def close(self) -> None:
        """Stop the command (SIGTERM, SIGKILL after a second) and release the pty. Never raises."""
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._data_ready.set()
        try:
            if self._process.returncode is None:
                self._signal_group(signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(self._wait_task), _TERM_TIMEOUT)
                except TimeoutError:
                    self._signal_group(signal.SIGKILL)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._wait_task), _TERM_TIMEOUT)
        except Exception:
            log.exception("closing the console command %s", self._argv[0])
        finally:
            if self._process.returncode is None:  # cancelled, or unkillable
                self._signal_group(signal.SIGKILL)
            self._release_fd()
            self._watch_task.cancel()

    # -- internals ----------------------------------------------------------------------------

    def _abandon(self) -> None:
        """Synchronous last-resort cleanup when start() fails or is cancelled."""
        self._closed = True
        if self._process.returncode is None:
            self._signal_group(signal.SIGKILL)
        self._release_fd()
        self._watch_task.cancel()
        self._data_ready.set()

    def _check_writable(self) -> None:
        if self._closed or self._fd < 0:
            raise DomainNotFound("console closed")

    def _signal_group(self, signum: int) -> None:
        # Only while the child is unreaped: afterwards its pid (our group id) could be reused.
        if self._process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def _resume_reading(self) -> None:
        if self._reading or self._fd < 0:
            return
        self._loop.add_reader(self._fd, self._on_readable)
        self._reading = True
        if self._child_gone:
            self._loop.call_soon(self._on_readable)

    def _pause_reading(self) -> None:
        if self._reading and self._fd >= 0:
            self._loop.remove_reader(self._fd)
        self._reading = False

    def _on_readable(self) -> None:
        if self._fd < 0 or not self._reading:
            return
        grew = False
        for _ in range(_READS_PER_CALLBACK):
            try:
                chunk = os.read(self._fd, MAX_READ)
            except BlockingIOError:
                if self._child_gone:
                    self._set_eof()
                break
            except OSError:  # EIO on Linux once every slave fd is closed: the end
                self._set_eof()
                break
            if not chunk:  # how the BSDs say the same
                self._set_eof()
                break
            self._buffer += chunk
            grew = True
            if len(self._buffer) >= _HIGH_WATER:
                self._pause_reading()
                break
        else:
            if self._child_gone:  # keep draining until the pty is empty, then call it EOF
                self._loop.call_soon(self._on_readable)
        if grew:
            self._data_ready.set()

    def _set_eof(self) -> None:
        self._release_fd()
        self._eof_seen.set()
        self._data_ready.set()

    def _release_fd(self) -> None:
        """Stop watching the master and close it (before the number can be reused)."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        if self._reading:
            self._loop.remove_reader(fd)
            self._reading = False
        if self._write_waiter is not None:
            self._loop.remove_writer(fd)
            if not self._write_waiter.done():
                self._write_waiter.set_result(None)  # the writer wakes and finds the console closed
        with contextlib.suppress(OSError):
            os.close(fd)

    async def _wait_writable(self) -> None:
        fd = self._fd
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._write_waiter = waiter

        def ready() -> None:
            if not waiter.done():
                waiter.set_result(None)

        self._loop.add_writer(fd, ready)
        try:
            await waiter
        finally:
            self._write_waiter = None
            if self._fd == fd:  # else _release_fd already removed it
                self._loop.remove_writer(fd)

    async def _watch_exit(self) -> None:
        """After the child exits, stop waiting for an EOF a lingering grandchild would withhold."""
        await asyncio.shield(self._wait_task)
        await asyncio.sleep(_EOF_AFTER_EXIT)
        if self._eof_seen.is_set() or self._fd < 0:
            return
        self._child_gone = True
        if self._reading:
            self._on_readable()
