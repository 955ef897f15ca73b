"""A dom0 reached with the system ``ssh``: the `HostAccess` the pool's hosts use.

The operator's own ``~/.ssh/config``, agent, keys and ProxyJump apply: xentui runs ``ssh`` and adds only what a
screen needs. ``BatchMode=yes``: a password or host-key prompt fails at once instead of hanging the screen, and
`ssh_failure` says what such a failure means in an operator's words (a password wanted, a host key changed or not
known, a name that does not resolve), ssh's own kept in the error's ``detail``. ``ControlMaster=auto`` with a
socket per host under a private directory and ``ControlPersist``: the first
command opens the connection, each later one is one round trip over it.

The remote side gets one command line, parsed by the remote user's shell: every word is quoted (`shlex.join`), so
a domain name, a path or a bridge name reaches the remote program as one argument, whatever it holds.

The file calls of save and restore are one round trip each, run by ``sh`` there with the paths as its arguments
(never spliced into the script): GNU coreutils' ``stat`` (``-c``, ``--printf``), ``mkdir -p``, ``mv -T`` and
``rm -f``, as a Debian dom0 has them. Their errors come back as the OSError the same call gives here (the C
locale's words, mapped back to the errno), so a message names the reason as it would for a local file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from xentui.backends.host import FileInfo, HostAccess, NetCounters
from xentui.backends.xl_tool import ToolResult, run_tool
from xentui.console.channel import ConsoleChannel
from xentui.errors import BackendError, BackendUnavailable, InvalidArgument

__all__ = ["SshHost", "check_destination", "parse_net_dev", "ssh_failure"]

# user@host, host, an ssh_config alias, [v6]:port-less forms; never an option (a leading "-") nor a shell word
_DESTINATION = re.compile(r"[A-Za-z0-9_.%+\[\]:-]+(@[A-Za-z0-9_.%+\[\]:-]+)?")
_READ_LINKS = 'for p; do printf "%s\\0" "$(readlink -- "$p")"; done'
# stat each path given after "--" ("stat -L" follows links): "K<mode> <size> <mtime>" or "E<stat's error>", NUL-ended
_STAT = ('for p; do if o=$(stat {follow}-c "%f %s %Y" -- "$p" 2>&1); then printf "K%s\\0" "$o"; '
         'else printf "E%s\\0" "$o"; fi; done')
# every entry of the directory $1, through links: "<mode> <size> <mtime> <name>", NUL-ended. Exit 4: not there,
# 5: not a directory, 6: cannot enter it. stat's complaints (a dangling link, a glob that matched nothing) dropped.
_LIST_DIR = ('unset CDPATH; [ -e "$1" ] || exit 4; [ -d "$1" ] || exit 5; cd -- "$1" || exit 6; '
             'set -- * .[!.]* ..?*; stat -L --printf "%f %s %Y %n\\0" -- "$@" 2>/dev/null; [ $? -le 1 ]')
_LIST_DIR_ERRORS = {4: errno.ENOENT, 5: errno.ENOTDIR, 6: errno.EACCES}
_ERRNO_BY_WORDS = {os.strerror(code): code for code in sorted(errno.errorcode, reverse=True)}


def _os_error(said: str) -> OSError:
    """The OSError a tool's complaint names (``mkdir: cannot create directory '/x': File exists``: the words after
    the last ``: `` are strerror's, in the C locale), as the same call here would raise it."""
    words = said.strip().rpartition(": ")[2].strip()
    code = _ERRNO_BY_WORDS.get(words)
    return OSError(code, words) if code is not None else OSError(said.strip() or "failed")


def _short_directory() -> str:
    """Where the ControlMaster socket's directory goes: a unix socket's path must stay under 108 bytes (ssh says
    "ControlPath too long" otherwise), so not a long $TMPDIR: $XDG_RUNTIME_DIR when short, else /tmp."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    return runtime if runtime and len(runtime) <= 40 and os.path.isdir(runtime) else "/tmp"


def check_destination(destination: str) -> str:
    """An ssh destination as the operator would type it (``root@dom0a``, ``dom0a``: letters, digits and
    ``. _ - : @ % + [ ]``); InvalidArgument for spaces, shell characters, controls or a leading ``-``."""
    if not destination or destination.startswith("-") or not _DESTINATION.fullmatch(destination):
        # short: argparse puts it after "xentui: error: argument --host: " on an 80-column line
        raise InvalidArgument(f"not an ssh destination: {destination!r}")
    return destination


_DENIED = re.compile(r"Permission denied \(([^)]*)\)")
_UNRESOLVED = re.compile(r"Could not resolve hostname (.+?): (.+)$", re.MULTILINE)
_ASKS_PASSWORD = ("password", "keyboard-interactive")


def ssh_failure(name: str, said: str) -> str:
    """What ssh's own failure (its exit status 255) means, on one line an operator acts on; ``said`` is ssh's
    stderr (C locale: OpenSSH has no translations). A host key that changed (ssh's banner, and the command it
    gives to remove the old key), one not known (BatchMode never accepts one), a password asked for (BatchMode
    never gives one), a name that does not resolve; anything else, "cannot reach" and ssh's words."""
    lines = list(dict.fromkeys(line.strip() for line in said.replace("\r", "\n").splitlines()
                               if line.strip() and not line.lstrip().startswith(("@", "Warning: Permanently"))))
    text = "\n".join(lines)
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in said or re.search(r"Host key for \S+ has changed", text):
        remove = next((line for line in lines if line.startswith("ssh-keygen ")), "ssh-keygen -R HOST")
        return (f"the host key of {name} has CHANGED since it was last seen: ssh refused to connect (a "
                f"reinstalled host, or someone in between?); check the new key, then remove the old one: {remove}")
    if "Host key verification failed" in text:
        return (f"the host key of {name} is not known here (not in known_hosts): ssh refused to connect, and "
                "xentui never accepts a key; check it and accept it with ssh by hand once")
    denied = _DENIED.search(text)
    if denied:
        methods = [method.strip() for method in denied.group(1).split(",")]
        if any(method in _ASKS_PASSWORD for method in methods):
            return (f"ssh to {name} asks for a password, and xentui never types one (BatchMode): log in with a key "
                    "(ssh-copy-id, or load yours in ssh-agent)")
        return f"ssh to {name}: permission denied ({denied.group(1)}): no key of yours is accepted there"
    unresolved = _UNRESOLVED.search(text)
    if unresolved:
        return (f"cannot reach {name}: the host name {unresolved.group(1)} cannot be resolved "
                f"({unresolved.group(2)}); check the name, or its HostName in ~/.ssh/config")
    return f"cannot reach {name} with ssh: {'; '.join(lines) or 'exit status 255'}"


def parse_net_dev(text: str) -> dict[str, NetCounters]:
    """/proc/net/dev: each interface's receive and transmit counters."""
    counters = {}
    for line in text.splitlines()[2:]:
        name, colon, rest = line.partition(":")
        fields = rest.split()
        if not colon or len(fields) < 16 or not all(field.isdigit() for field in fields[:16]):
            continue
        values = [int(field) for field in fields[:16]]
        counters[name.strip()] = NetCounters(bytes_sent=values[8], bytes_recv=values[0], packets_sent=values[9],
                                             packets_recv=values[1], errin=values[2], errout=values[10],
                                             dropin=values[3], dropout=values[11])
    return counters


class SshHost(HostAccess):
    """Another machine, through ``ssh DESTINATION``."""

    local = False

    def __init__(self, destination: str, *, options: Sequence[str] = (), ssh: str = "ssh",
                 connect_timeout: float = 10.0, control_dir: Path | None = None) -> None:
        """``options``: more ssh arguments (e.g. ``["-p", "2222"]``), placed before the destination."""
        self.destination = check_destination(destination)
        self.name = destination
        self.ssh = ssh
        self.options = list(options)
        self.connect_timeout = connect_timeout
        self._control_dir = control_dir or Path(tempfile.mkdtemp(prefix="xentui-ssh-", dir=_short_directory()))
        self._control_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self._control_dir, 0o700)  # the sockets let whoever reaches them use the connection

    def command(self, argv: Sequence[str], *, tty: bool = False) -> list[str]:
        """The local ssh command line that runs ``argv`` there, every word quoted for the remote shell."""
        return [
            self.ssh, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout:g}",
            "-o", "ControlMaster=auto", "-o", f"ControlPath={self._control_dir}/%C", "-o", "ControlPersist=60",
            "-o", "ServerAliveInterval=15", *self.options, "-tt" if tty else "-T", "--", self.destination,
            shlex.join(["env", "LC_ALL=C", *argv]),
        ]

    def has(self, program: str) -> bool:
        """Asked there with ``command -v`` (before the screen opens: it waits for the answer). BackendUnavailable,
        with ssh's own words, when the host cannot be reached at all."""
        try:
            done = subprocess.run(self.command(["sh", "-c", 'command -v "$1"', "sh", program]),
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=self.connect_timeout + 20)
        except subprocess.TimeoutExpired:
            raise BackendUnavailable(f"cannot reach {self.name} with ssh: no answer in "
                                     f"{self.connect_timeout + 20:g} s") from None
        except OSError as error:
            raise BackendUnavailable(f"cannot run {self.ssh}: {error.strerror}", detail=str(error)) from error
        if done.returncode == 255:
            said = done.stderr.decode("utf-8", "replace")
            raise BackendUnavailable(ssh_failure(self.name, said), detail=said)
        return done.returncode == 0 and bool(done.stdout.strip())

    async def run(self, argv: list[str], *, what: str | None = None, limit: float = 60.0, check: bool = True,
                  on_timeout: str | None = None) -> ToolResult:
        result = await run_tool(self.command(argv), what=what or " ".join(argv[:2]), limit=limit, check=False,
                                on_timeout=on_timeout)
        if result.returncode == 255:  # ssh's own failure: the host, not the command
            raise BackendUnavailable(ssh_failure(self.name, result.stderr), detail=result.stderr)
        if check and result.returncode != 0:
            summary = result.stderr.strip().splitlines()[-1:] or [f"exit status {result.returncode}"]
            raise BackendError(f"{what or ' '.join(argv[:2])} on {self.name} failed: {summary[0]}",
                               detail=result.stderr or result.stdout)
        return result

    async def start(self, argv: list[str], *, merge_stderr: bool = False,
                    hang_up: bool = False) -> asyncio.subprocess.Process:
        """``hang_up``: on a terminal there (``-tt``; its output then ends lines with CR LF), so that this ssh
        ending (the operator's Stop) hangs the command up there. Without one, a command that writes nothing
        for a while (xl migrate sending memory) would not notice the connection is gone and go on."""
        try:
            return await asyncio.create_subprocess_exec(
                *self.command(argv, tty=hang_up), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE)
        except OSError as error:
            raise BackendUnavailable(f"cannot run {self.ssh}: {error.strerror}", detail=str(error)) from error

    async def _done(self, argv: list[str], limit: float = 30.0) -> tuple[int, bytes, bytes]:
        """Run to the end: its exit status, stdout and stderr (ssh's own failure raised, as everywhere)."""
        process = await self.start(argv)
        try:
            out, err = await asyncio.wait_for(process.communicate(), limit)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise BackendError(f"{argv[0]} on {self.name}: no answer after {limit:g} s") from None
        if process.returncode == 255:
            said = err.decode(errors="replace")
            raise BackendUnavailable(ssh_failure(self.name, said), detail=said)
        return process.returncode or 0, out, err

    async def _bytes(self, argv: list[str], limit: float = 30.0) -> bytes:
        code, out, err = await self._done(argv, limit)
        if code != 0:
            raise OSError(f"{argv[0]} on {self.name}: {err.decode(errors='replace').strip()}")
        return out

    async def read_head(self, path: str, size: int) -> bytes:
        return await self._bytes(["head", "-c", str(size), "--", path])

    async def read_links(self, paths: Iterable[str]) -> dict[str, str | None]:
        """All in one round trip: one shell loop there, its answers NUL-separated (empty: no such link)."""
        wanted = list(paths)
        if not wanted:
            return {}
        out = await self._bytes(["sh", "-c", _READ_LINKS, "sh", *wanted])
        answers = out.decode("utf-8", "surrogateescape").split("\0")
        return {path: answer or None for path, answer in zip(wanted, answers, strict=False)}

    async def net_counters(self) -> dict[str, NetCounters]:
        return parse_net_dev((await self._bytes(["cat", "/proc/net/dev"])).decode("ascii", "replace"))

    async def _file_call(self, argv: list[str]) -> None:
        """A file tool there (mkdir, mv, rm): its complaint as the OSError it names."""
        code, _out, err = await self._done(argv)
        if code != 0:
            raise _os_error(err.decode("utf-8", "surrogateescape") or f"{argv[0]}: exit status {code}")

    async def stat(self, paths: Iterable[str], *, follow_links: bool = False) -> dict[str, FileInfo | OSError]:
        """All in one round trip: one ``stat`` per path in one shell there."""
        wanted = list(paths)
        if not wanted:
            return {}
        script = _STAT.format(follow="-L " if follow_links else "")
        code, out, err = await self._done(["sh", "-c", script, "sh", *wanted])
        answers = out.split(b"\0")
        if code != 0 or len(answers) <= len(wanted):
            raise BackendError(f"stat on {self.name} failed: {err.decode(errors='replace').strip() or code}")
        found: dict[str, FileInfo | OSError] = {}
        for path, answer in zip(wanted, answers, strict=False):
            text = answer[1:].decode("utf-8", "surrogateescape")
            fields = text.split()
            if answer[:1] == b"K" and len(fields) == 3:
                found[path] = FileInfo(int(fields[0], 16), int(fields[1]), float(fields[2]))
            else:
                found[path] = _os_error(text)
        return found

    async def list_dir(self, directory: str) -> dict[str, FileInfo]:
        """All in one round trip, whatever the number of entries: one ``stat --printf`` of them all there."""
        code, out, err = await self._done(["sh", "-c", _LIST_DIR, "sh", directory])
        if code in _LIST_DIR_ERRORS:
            raise OSError(_LIST_DIR_ERRORS[code], os.strerror(_LIST_DIR_ERRORS[code]))
        if code != 0:
            raise _os_error(err.decode("utf-8", "surrogateescape") or f"listing {directory}: exit status {code}")
        entries = {}
        for record in out.split(b"\0")[:-1]:
            fields = record.split(b" ", 3)
            if len(fields) == 4 and fields[1].isdigit() and fields[2].lstrip(b"-").isdigit():
                entries[os.fsdecode(fields[3])] = FileInfo(int(fields[0], 16), int(fields[1]), float(fields[2]))
        return entries

    async def make_dirs(self, directory: str) -> None:
        await self._file_call(["mkdir", "-p", "--", directory])

    async def rename(self, source: str, target: str) -> None:
        await self._file_call(["mv", "-f", "-T", "--", source, target])

    async def remove(self, path: str) -> None:
        await self._file_call(["rm", "-f", "--", path])

    async def open_console(self, argv: list[str]) -> ConsoleChannel:
        from xentui.console.pty import PtyConsole

        return await PtyConsole.start(self.command(argv, tty=True))

    async def close(self) -> None:
        """Stop the ControlMaster (else it lingers ControlPersist seconds) and remove its socket's directory."""
        with contextlib.suppress(OSError):
            process = await asyncio.create_subprocess_exec(
                self.ssh, "-o", f"ControlPath={self._control_dir}/%C", *self.options, "-O", "exit", "--",
                self.destination, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(self._control_dir, ignore_errors=True)
