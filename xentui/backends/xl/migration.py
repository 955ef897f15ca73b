"""The xl backend's live migration: the pre-flight over ssh, ``xl migrate`` with its progress read from what it
prints, and what a failure means in words."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import shlex
from collections.abc import AsyncIterator, Callable

from xentui.backends.base import (
    BackendError,
    MigratePhase,
    MigrateProgress,
    PreflightCheck,
    Unsupported,
)
from xentui.backends.host import HostAccess, end_process
from xentui.backends.xl_parsers import (
    ParseError,
    parse_xl_info,
    parse_xl_list,
    xl_info_host,
)
from xentui.backends.xl_tool import error_summary
from xentui.model import KIB, DomainType
from xentui.validate import (
    check_host,
)

_MIGRATE_SSH_TIMEOUT = 10

# --- migration progress ------------------------------------------------------------------

_FRAMES = re.compile(r"Frames(?: iteration (?P<iteration>\d+))?.*?(?P<done>\d+)/(?P<total>\d+)")
_MIGRATE_STEPS: tuple[tuple[str, MigratePhase, float, str], ...] = (
    ("migration target: Ready to receive domain", MigratePhase.PREFLIGHT, 0.03, "target ready to receive"),
    ("Saving to migration stream", MigratePhase.COPYING, 0.05, "sending memory"),
    ("Domain now suspended", MigratePhase.STOP_AND_COPY, 0.85, "guest suspended, sending the last pages"),
    ("migration target: Transfer complete", MigratePhase.STOP_AND_COPY, 0.92, "transfer complete"),
    ("Giving target permission to start", MigratePhase.STOP_AND_COPY, 0.95, "starting on the target"),
    ("Target reports successful startup", MigratePhase.STOP_AND_COPY, 0.98, "running on the target"),
    ("Migration successful", MigratePhase.DONE, 1.0, "migration successful"),
)
_PAGE = 4096
_SENDING, _SUSPENDED = 0.05, 0.85  # the fractions of "sending memory" and of "guest suspended" above
_ARRIVAL_EVERY = 2.0  # seconds between looks at the guest's memory on the target while it is sent


def migrate_progress_from_line(line: str) -> MigrateProgress | None:
    """One line of ``xl migrate``'s stderr as progress, or None when it says nothing about progress.

    libxc reports "Frames iteration N" steps as done/total pages: the first pass sends all of
    memory, later passes what the guest dirtied meanwhile.
    """
    if match := _FRAMES.search(line):
        done, total = int(match["done"]), max(1, int(match["total"]))
        iteration = int(match["iteration"] or 0)
        share = min(1.0, done / total)
        fraction = 0.05 + 0.6 * share if iteration == 0 else min(0.84, 0.65 + 0.04 * iteration)
        phase = MigratePhase.COPYING
        what = "copying memory" if iteration == 0 else f"pre-copy round {iteration}: dirty pages"
        return MigrateProgress(phase, fraction, f"{what} ({done}/{total} pages)", done * _PAGE, total * _PAGE)
    for marker, phase, fraction, message in _MIGRATE_STEPS:
        if marker in line:
            return MigrateProgress(phase, fraction, message)
    return None


class MigrateProgressReader:
    """xl migrate's lines as progress that never goes back.

    The sender's lines and the target's (through ssh's stderr) interleave as they arrive: the
    target's "Ready to receive" can come after the sender's "Saving to migration stream". Such a
    line still says something; it keeps the furthest fraction seen.
    """

    def __init__(self) -> None:
        self.furthest = 0.0

    def feed(self, line: str) -> MigrateProgress | None:
        progress = migrate_progress_from_line(line)
        if progress is None:
            return None
        if progress.fraction < self.furthest:
            return dataclasses.replace(progress, fraction=self.furthest)
        self.furthest = progress.fraction
        return progress

    @property
    def sending(self) -> bool:
        """Between "Saving to migration stream" and "Domain now suspended": memory on its way."""
        return _SENDING <= self.furthest < _SUSPENDED

    def arrived(self, mib: int, total_mib: int) -> MigrateProgress | None:
        """The guest's memory the target holds so far (its ``NAME--incoming`` domain grows as the pages of the
        first pass arrive) as progress, for an xl that prints no "Frames" lines (Xen 4.17's does not)."""
        if not self.sending or total_mib <= 0:
            return None
        share = min(1.0, mib / total_mib)
        fraction = _SENDING + (_SUSPENDED - 0.02 - _SENDING) * share
        if fraction <= self.furthest:
            return None
        self.furthest = fraction
        return MigrateProgress(MigratePhase.COPYING, fraction, f"sending memory: {mib} of {total_mib} MiB there",
                               mib << 20, total_mib << 20)



class MigrationMixin:
    """Part of `XlBackend`: moving a domain to another host."""

    xl: str
    host: HostAccess
    migrate_ssh: str | None
    _config_stale: bool
    _domids_by_name: dict[str, int]
    _known: Callable[..., object]
    _read_host: Callable[..., object]
    sample: Callable[[], object]

    def _ssh_argv(self, host: str) -> list[str]:
        base = shlex.split(self.migrate_ssh) if self.migrate_ssh else ["ssh"]
        return [*base, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={_MIGRATE_SSH_TIMEOUT}", "--", host]

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]:
        known = await self._known(domain, action="migrate", allow_dom0=False)
        host = check_host(target)
        checks: list[PreflightCheck] = []
        try:
            remote = xl_info_host(parse_xl_info((await self.host.run(
                [*self._ssh_argv(host), "xl", "info"], what=f"ssh {host} xl info", limit=30)).stdout))
        except (BackendError, ParseError) as error:
            return [PreflightCheck("reachable", False, f"{host}: {error}")]
        checks.append(PreflightCheck("reachable", True, f"{remote['hostname']} answers over ssh, xl runs there"))
        local = await self._read_host()
        checks.append(_version_check(local["xen_version"], remote["xen_version"]))
        checks.append(_dirty_tracking_check(known.domain.type, local["virt_caps"]))
        need_mib = (known.domain.mem_kib + KIB - 1) // KIB
        checks.append(PreflightCheck(
            "memory", remote["free_memory_mib"] >= need_mib,
            f"{remote['free_memory_mib']} MiB free there, {known.domain.name} needs {need_mib} MiB"))
        same_cpu = remote["hw_caps"] == local["hw_caps"]
        checks.append(PreflightCheck(
            "cpu", True if same_cpu else None,
            "same CPU features" if same_cpu else "CPU features differ; Xen checks the guest's CPUID policy on arrival"))
        for disk in known.config.disks if known.config else []:
            if not disk.target:
                continue
            result = await self.host.run([*self._ssh_argv(host), "test -e " + shlex.quote(disk.target)],
                                         check=False, what=f"ssh {host} test", limit=30)
            checks.append(PreflightCheck(
                f"disk {disk.vdev}", result.returncode == 0,
                f"{disk.target} {'exists' if result.returncode == 0 else 'is missing'} on {host}"))
        return checks

    async def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]:
        known = await self._known(domain, action="migrate", allow_dom0=False)
        host = check_host(target)
        if not live:
            raise Unsupported("migrate: xl migrates live only (the guest runs until the last round)")
        argv = [self.xl, "migrate"]
        if self.migrate_ssh:
            argv += ["-s", self.migrate_ssh]
        argv += [str(known.domain.id), host]
        yield MigrateProgress(MigratePhase.PREFLIGHT, 0.0, f"starting xl migrate to {host}")
        process = await self.host.start(argv, merge_stderr=True, hang_up=True)
        assert process.stdout is not None
        said: list[str] = []
        finished = False
        reader = MigrateProgressReader()
        events: asyncio.Queue[tuple[str, str | int | None]] = asyncio.Queue()
        total_mib = known.domain.mem_kib // KIB
        watchers = [asyncio.create_task(_read_lines(process.stdout, events)),
                    asyncio.create_task(self._watch_arrival(host, known.domain.name, reader, events))]
        try:
            while True:
                kind, value = await events.get()
                if kind == "end":
                    break
                if kind == "line":
                    said.append(str(value))
                    progress = reader.feed(str(value))
                else:
                    progress = reader.arrived(int(value or 0), total_mib)
                if progress is not None and progress.phase is not MigratePhase.DONE:
                    yield progress
            returncode = await process.wait()
            finished = True
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            if not finished:
                # closed early: the operator's Stop. Over ssh xl runs on a terminal there (hang_up), which the
                # ended connection hangs up; the guest has not left, xl has it go on running at the sender.
                await end_process(process)
            self._config_stale = True
            self._domids_by_name = {}  # the name left, or xl found no domain by that id: `xl list` again
        if returncode != 0 or not any("Migration successful" in line for line in said):
            raise BackendError(f"migrate {known.domain.name} to {host} failed: {_migrate_failure(said, returncode)}",
                               detail="\n".join(said))
        await self.sample()
        yield MigrateProgress(MigratePhase.DONE, 1.0, f"{known.domain.name} now runs on {host}")


    async def _watch_arrival(self, host: str, name: str, reader: MigrateProgressReader,
                             events: asyncio.Queue[tuple[str, str | int | None]]) -> None:
        """While memory is being sent, what the target's ``NAME--incoming`` domain holds, every few seconds (over
        the same ssh xl migrate uses). A look that fails is skipped: progress is a nicety, the migration is xl's."""
        incoming = f"{name}--incoming"
        while True:
            await asyncio.sleep(_ARRIVAL_EVERY)
            if not reader.sending:
                continue
            try:
                result = await self.host.run([*self._ssh_argv(host), "xl", "list", incoming], check=False,
                                             what=f"ssh {host} xl list", limit=30)
            except BackendError:
                continue
            if result.returncode != 0:
                continue
            with contextlib.suppress(ParseError):
                for entry in parse_xl_list(result.stdout):
                    if entry.name == incoming:
                        await events.put(("arrived", entry.mem_mib))


async def _read_lines(stream: asyncio.StreamReader, events: asyncio.Queue[tuple[str, str | int | None]]) -> None:
    """xl's output, line by line (a carriage return ends one too), then ("end", None)."""
    try:
        buffer = b""
        while chunk := await stream.read(4096):
            buffer += chunk
            *lines, buffer = re.split(rb"[\r\n]", buffer)
            for raw in lines:
                if line := raw.decode("utf-8", "replace").strip():
                    await events.put(("line", line))
    finally:
        await events.put(("end", None))


_FAILURE_WORDS = re.compile(r"error|fail|cannot|unable|refused|denied", re.IGNORECASE)


def _migrate_failure(said: list[str], returncode: int) -> str:
    """What went wrong, from xl migrate's output: xl's verdict, then the error lines (the sender's come
    first), and what a known cause means for the operator."""
    errors = [line for line in said if _FAILURE_WORDS.search(line)]
    if errors and errors[-1].startswith("Migration failed"):  # xl's verdict, then the causes in order
        errors.insert(0, errors.pop())
    summary = error_summary("\n".join(errors or said[-8:])) or f"exit status {returncode}"
    if any("Failed to enable logdirty" in line for line in said):
        summary = ("this Xen cannot track the guest's dirty pages, so it cannot migrate it live (PV guests need "
                   "shadow paging, which this hypervisor was built without; HVM/PVH guests need HAP); "
                   f"the guest keeps running here. xl said: {summary}")
    return summary



def _dirty_tracking_check(kind: DomainType, virt_caps: list[str]) -> PreflightCheck:
    """Whether this Xen can track the guest's dirty pages while it runs, which a live migration needs: a PV
    guest through shadow paging, an HVM or PVH guest through HAP (or shadow). Xen 4.15 and later say which
    they have in ``virt_caps``; an older Xen says neither."""
    caps = set(virt_caps)
    said = f"virt_caps here: {' '.join(virt_caps) or 'none'}"
    if not caps & {"hap", "shadow"}:
        return PreflightCheck("dirty pages", None, f"this Xen does not say how it tracks dirty pages ({said})")
    if kind is DomainType.PV:
        if "shadow" in caps:
            return PreflightCheck("dirty pages", True, "PV guest: tracked through shadow paging")
        return PreflightCheck("dirty pages", False, "a PV guest needs shadow paging to move live, and this Xen was "
                                                   f"built without it ({said}); save it and restore it there instead")
    if kind in (DomainType.HVM, DomainType.PVH):
        how = "HAP" if "hap" in caps else "shadow paging"
        return PreflightCheck("dirty pages", True, f"{kind.value.upper()} guest: tracked through {how}")
    return PreflightCheck("dirty pages", None, f"guest type {kind.value}: cannot tell ({said})")


def _version_check(local: str | None, remote: str | None) -> PreflightCheck:
    def major_minor(version: str | None) -> tuple[int, ...] | None:
        match = re.match(r"(\d+)\.(\d+)", version or "")
        return (int(match[1]), int(match[2])) if match else None

    here, there = major_minor(local), major_minor(remote)
    if here is None or there is None:
        return PreflightCheck("xen version", None, f"cannot compare Xen {local} with {remote}")
    if there < here:
        return PreflightCheck("xen version", False, f"Xen {remote} there is older than {local} here: "
                                                    "migration to an older Xen is not supported")
    return PreflightCheck("xen version", True, f"Xen {remote} there, {local} here")
