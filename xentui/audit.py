"""An append-only audit log of every action an operator attempts: one JSON object per line.

The log answers "who did what to which domain, and did it work" after the fact, so writing it must
never get in the way of the action itself: a failed write is remembered in ``last_error`` for the UI
to show, never raised. Several xentui processes may append to one file at once; each entry is written
with a single ``write`` on an ``O_APPEND`` descriptor, so lines never interleave.
"""

from __future__ import annotations

import errno
import getpass
import json
import os
import pwd
import socket
import stat
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

RESULTS = frozenset({"ok", "failed", "refused", "cancelled"})
"""What became of an attempted action: done, the backend failed it, refused before trying, operator backed out."""


def state_dir() -> Path:
    """xentui's own state directory: ``$XDG_STATE_HOME/xentui``, else ``~/.local/state/xentui``.

    The XDG spec says a relative ``XDG_STATE_HOME`` is invalid and must be ignored, as is an empty one.
    """
    state_home = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state_home) if state_home and Path(state_home).is_absolute() else Path.home() / ".local" / "state"
    return base / "xentui"


def default_audit_path() -> Path:
    return state_dir() / "audit.log"


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no LOGNAME/USER and no passwd entry (a bare container): KeyError or OSError
        return str(os.getuid())


def _effective_user() -> str:
    """Whose rights the actions run with: root under sudo, whatever USER says."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _invoking_user() -> str:
    """Who started xentui: the operator behind sudo (SUDO_USER), else the login name, else the local user."""
    sudo_user = os.environ.get("SUDO_USER", "")
    if sudo_user:
        return sudo_user
    try:
        return os.getlogin()
    except OSError:  # no controlling terminal (a service, a test)
        return _local_user()


def _ssh_client() -> str | None:
    """Where the operator's ssh session comes from (``SSH_CONNECTION``'s client address and port), if any."""
    fields = (os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or "").split()
    return f"{fields[0]} port {fields[1]}" if len(fields) >= 2 else None


def _terminal() -> str | None:
    """The terminal xentui runs on (``/dev/pts/3``), if it runs on one."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            return os.ttyname(stream.fileno())
        except (OSError, ValueError, AttributeError):
            continue
    return None


class _Syslog:
    """The audit lines sent to syslog too (``--audit-syslog``), so the trail leaves the host's disk: authpriv,
    ident xentui; info for what worked, warning for what failed or was refused. One datagram per line to the
    local syslog socket (what the standard library's ``syslog`` and journald's /dev/log take); a syslog that is
    not there is said (``last_error``), never raised, and never blocks an action."""

    AUTHPRIV = 10
    INFO, WARNING = 6, 4

    def __init__(self, address: str) -> None:
        self.address = address
        self.last_error: str | None = None

    def send(self, line: str, result: str) -> None:
        priority = self.AUTHPRIV * 8 + (self.INFO if result == "ok" else self.WARNING)
        data = f"<{priority}>xentui[{os.getpid()}]: {line}".encode("ascii", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
                sender.setblocking(False)  # a syslog that does not read cannot hang the screen
                sender.sendto(data, self.address)
        except OSError as error:
            self.last_error = f"cannot send the audit line to syslog at {self.address}: {error.strerror or error}"
        else:
            self.last_error = None


def _timestamp(seconds: float) -> str:
    """ISO-8601 UTC with milliseconds and a 'Z': ``2024-05-01T12:34:56.789Z``."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _encode(entry: dict[str, object]) -> str:
    """One line of strict JSON. Odd argument values become strings rather than losing the entry."""
    try:
        return json.dumps(entry, ensure_ascii=True, sort_keys=False, default=str, allow_nan=False)
    except (TypeError, ValueError):
        # Non-string keys in a nested dict, a circular structure, NaN: keep the entry, flatten the arguments.
        arguments = entry.get("arguments")
        flat = {str(key): repr(value) for key, value in arguments.items()} if isinstance(arguments, dict) else {}
        return json.dumps({**entry, "arguments": flat}, ensure_ascii=True, sort_keys=False, default=str)


class AuditLog:
    """Appends one JSON line per attempted action to ``path``; see the module docstring."""

    def __init__(
        self, path: Path | None = None, *, clock: Callable[[], float] = time.time, user: str | None = None,
        syslog: str | None = None,
    ) -> None:
        self.path: Path = Path(path) if path is not None else default_audit_path()
        self.syslog = _Syslog(syslog) if syslog else None
        self.ssh_client = _ssh_client()
        self.terminal = _terminal()
        self._clock = clock
        self.user: str = user if user is not None else _effective_user()
        self.invoked_by: str = user if user is not None else _invoking_user()
        """The operator behind sudo (SUDO_USER) when xentui runs as root through it: both go in each entry."""
        self.last_error: str | None = None
        """Why the last write failed, or None once a write succeeds again."""

    def record(
        self,
        *,
        backend: str,
        host: str,
        action: str,
        domain: str | None,
        uuid: str | None,
        arguments: dict[str, object],
        result: str,
        message: str | None = None,
    ) -> dict:
        """Append one entry and return it as written (as ``read`` would give it back).

        ``message`` is what the backend or the refusal told the operator when ``result`` is not "ok".
        A failed write does not raise: it sets ``last_error``.
        """
        if result not in RESULTS:
            raise ValueError(f"audit result must be one of {sorted(RESULTS)}, not {result!r}")
        entry: dict[str, object] = {
            "time": _timestamp(self._clock()),
            "user": self.user,
            "invoked_by": self.invoked_by,
            **({"ssh_client": self.ssh_client} if self.ssh_client else {}),
            **({"terminal": self.terminal} if self.terminal else {}),
            "backend": backend,
            "host": host,
            "domain": domain,
            "uuid": uuid,
            "action": action,
            "arguments": dict(arguments),
            "result": result,
            "message": message,
        }
        line = _encode(entry)
        data = (line + "\n").encode("ascii")
        try:
            self._append(data)
        except OSError as error:
            reason = error.strerror or str(error)
            self.last_error = f"cannot write the audit log {self.path}: {reason}"
        else:
            self.last_error = None
        if self.syslog is not None:
            self.syslog.send(line, result)
        return json.loads(line)

    def _append(self, data: bytes) -> None:
        parent = self.path.parent
        if not parent.is_dir():
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_NOFOLLOW: a symlink planted at the log's path is refused, never written through (ELOOP);
        # O_NONBLOCK: a FIFO there cannot hang the screen; anything but a regular file is refused.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise OSError(error.errno, "it is a symbolic link; xentui does not write through one") from error
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "it is not a regular file")
            # One write on an O_APPEND descriptor: concurrent writers cannot interleave inside the line.
            written = os.write(fd, data) if data else 0
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError(f"short write ({written} of {len(data)} bytes; disk full?)")

    def check(self) -> str | None:
        """Whether an entry could be written now, without writing one: opens the log as `record` does (made
        if missing). Sets and returns ``last_error`` (None: writable)."""
        try:
            self._append(b"")
        except OSError as error:
            self.last_error = f"cannot write the audit log {self.path}: {error.strerror or error}"
        else:
            self.last_error = None
        return self.last_error

    def read(self, limit: int | None = None) -> list[dict]:
        """The last ``limit`` entries (all when None), oldest first.

        Lines that are not a JSON object are skipped: a crash mid-write leaves a truncated last line.
        A missing file is an empty log; other read errors (permissions) are raised.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        entries: list[dict] = []
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        if limit is None:
            return entries
        return entries[-limit:] if limit > 0 else []
