"""Running Xen's command-line tools (`xl`, `xentop`, ssh for migration checks) and reading their errors.

Every command runs through ``asyncio.create_subprocess_exec`` with an argument list: nothing
is ever interpreted by a local shell. Domains are passed by domid, never by name, so a name
that starts with '-' cannot turn into an option.

xl reports failures on stderr in libxl's log format (``libxl: error: libxl_domain.c:1234:fn:
Domain 3:what went wrong``); `error_summary` keeps the words an operator needs and drops the
source locations, which stay in the error's ``detail``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex

from xentui.errors import BackendError, BackendUnavailable
from xentui.textsafe import printable

LOG = logging.getLogger("xentui.run")

__all__ = ["ToolResult", "error_summary", "run_tool"]

_LOG_PREFIX = re.compile(r"^(?:libxl|xc|xl|libxlu|xenstore|xencall|xenforeignmemory|xentoollog)?:?\s*"
                         r"(?:error|warning|info|debug|critical|verbose|detail|notice)?:?\s*"
                         r"(?:[\w./-]+\.c:\d+:\w+:\s*)?")
_NOISE = (
    "xc: info:",
    "Parsing config from",
    "Loading new save file",
    "Savefile contains xl domain config",
)
_MAX_SUMMARY = 400
# What xl prints when it cannot talk to the hypervisor at all: not root, or not dom0.
_UNREACHABLE = (
    "cannot open libxl context",
    "Could not obtain handle on privileged command interface",
    "xc_interface_open failed",
    "Permission denied",
    "failed to open /dev/xen",
    "cannot initialise xentoollog",
)


class ToolResult:
    __slots__ = ("returncode", "stderr", "stdout")

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def error_summary(stderr: str) -> str:
    """The distinct meaningful lines of a tool's stderr, printable, without libxl's source locations."""
    seen: list[str] = []
    for raw in stderr.replace("\r", "\n").splitlines():
        line = raw.strip()
        if not line or line.startswith(_NOISE):
            continue
        line = _LOG_PREFIX.sub("", line, count=1).strip() or line
        line = printable(line)
        if line not in seen:
            seen.append(line)
    summary = "; ".join(seen)
    if len(summary) > _MAX_SUMMARY:
        summary = summary[: _MAX_SUMMARY - 1] + "…"
    return summary


async def _stop(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(process.wait(), 5)


async def run_tool(argv: list[str], *, limit: float = 60.0, check: bool = True,
                   what: str | None = None, stdin_data: bytes | None = None,
                   on_timeout: str | None = None) -> ToolResult:
    """Run ``argv``; with ``check``, a non-zero exit raises BackendError carrying the tool's own words.

    ``what`` names the action in messages (default: the command and its first argument);
    ``on_timeout`` replaces the message when the tool is stopped after ``limit`` seconds.
    """
    label = what or " ".join(argv[:2])
    LOG.debug("run: %s", shlex.join(argv))
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )
    except FileNotFoundError as error:
        raise BackendUnavailable(f"{argv[0]} is not installed or not on PATH", detail=str(error)) from error
    except OSError as error:
        raise BackendUnavailable(f"cannot run {argv[0]}: {error.strerror}", detail=str(error)) from error
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin_data), limit)
    except TimeoutError:
        await _stop(process)
        raise BackendError(on_timeout or f"{label}: no answer after {limit:g} s; stopped waiting") from None
    except asyncio.CancelledError:
        await _stop(process)
        raise
    result = ToolResult(process.returncode or 0, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    if check and result.returncode != 0:
        summary = error_summary(result.stderr) or error_summary(result.stdout) or f"exit status {result.returncode}"
        if any(marker in result.stderr for marker in _UNREACHABLE):
            hint = "run xentui as root in dom0" if os.geteuid() != 0 else "is the Xen toolstack running (xencommons)?"
            raise BackendUnavailable(f"{label}: cannot reach the hypervisor ({hint}): {summary}",
                                     detail=result.stderr)
        raise BackendError(f"{label} failed: {summary}", detail=result.stderr or result.stdout)
    return result
