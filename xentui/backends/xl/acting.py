"""The xl backend's actions: each an ``xl`` subprocess with an argument list and the domain's id, never its
name; xl's stderr becomes the message. Checks xl would make only after doing half the work come first."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xentui.backends.base import (
    Action,
    BackendError,
    DomainNotFound,
    InvalidArgument,
    Unsupported,
)
from xentui.backends.host import FileInfo, HostAccess
from xentui.backends.savefile import SavedImage, SaveTarget, partial_path, save_target, saved_images
from xentui.backends.xl_parsers import (
    XlDomainConfig,
    parse_xl_list,
)
from xentui.model import Domain, DomainFlag, DomainType
from xentui.textsafe import printable
from xentui.validate import (
    check_memory_ceiling,
    check_memory_target,
    check_sched,
    check_sysrq,
    check_vcpu_count,
)

_SHUTDOWN_WAIT = 120.0  # `xl shutdown -w` waits for the guest; past this we stop waiting, the guest carries on
_SAVE_LIMIT = 1800.0
_SCHEDULERS = {"credit": "sched-credit", "credit2": "sched-credit2"}
_SAVE_HEAD = 256 * 1024  # the xl header and the domain's JSON configuration come first
_SAVED_NAME = re.compile(rb'"c_info"\s*:\s*\{[^{}]*?"name"\s*:\s*"((?:[^"\\]|\\.){1,256})"')


@dataclass(slots=True)
class _Known:
    """What the last sample said of a domain, for checks before an action."""

    domain: Domain
    config: XlDomainConfig | None


class ActingMixin:
    """Part of `XlBackend`: what it does to domains. The reading half (`_xl`, `sample`, `_last`) is the backend's."""

    xl: str
    host: HostAccess
    _last: dict[str, _Known]
    _config_stale: bool
    _domids_by_name: dict[str, int]
    _xl: Callable[..., object]
    sample: Callable[[], object]
    _read_host: Callable[..., object]
    refusal: Callable[[Action], Unsupported]

    async def _known(self, name: str, *, action: str, allow_dom0: bool = True, need_active: bool = True) -> _Known:
        """The domain as last sampled (sampling again if it is not there); refusals come before any xl runs."""
        known = self._last.get(name)
        if known is None:
            await self.sample()
            known = self._last.get(name)
        if known is None:
            raise DomainNotFound(f"{action}: no domain named {printable(name)!r} on this host")
        domain = known.domain
        if domain.is_dom0 and not allow_dom0:
            raise InvalidArgument(f"{action} refused: Domain-0 is the control domain; that would take the host down")
        if need_active and domain.flags & (DomainFlag.DYING | DomainFlag.SHUTDOWN | DomainFlag.CRASHED):
            raise InvalidArgument(f"{action} refused: {printable(name)} is {domain.state}, not running")
        return known

    async def _act(self, *args: str, what: str, limit: float = 60.0, on_timeout: str | None = None) -> str:
        try:
            return await self._xl(*args, what=what, limit=limit, on_timeout=on_timeout)
        finally:
            self._config_stale = True
            # xentop names domains, never numbers them: after a save or a restore the same name may be another
            # domid, and an action that failed may have failed for an old one, so the next sample from xentop
            # asks `xl list` again
            self._domids_by_name = {}

    async def mem_set(self, domain: str, kib: int) -> None:
        known = await self._known(domain, action="mem-set")
        host = await self.host_info()
        # The configured static maximum, not Xen's current limit: libxl raises that one itself, up to this.
        check_memory_target(kib, maxmem_kib=known.domain.mem_ceiling_kib, host_total_kib=host.total_kib,
                            name=printable(known.domain.name), current_kib=known.domain.mem_kib,
                            host_free_kib=host.free_kib)
        # Always with a unit: xl's documentation and its parser disagree on what a bare number means.
        await self._act("mem-set", str(known.domain.id), f"{kib}k", what=f"mem-set {known.domain.name}")
        self._targets[known.domain.id] = kib

    async def mem_max(self, domain: str, kib: int) -> None:
        known = await self._known(domain, action="mem-max")
        host = await self.host_info()
        target = self._targets.get(known.domain.id) or known.domain.target_kib or known.domain.mem_kib
        check_memory_ceiling(kib, target_kib=target, host_total_kib=host.total_kib, name=printable(known.domain.name))
        await self._act("mem-max", str(known.domain.id), f"{kib}k", what=f"mem-max {known.domain.name}")

    async def vcpu_set(self, domain: str, count: int, *, allow_overcommit: bool = False) -> None:
        known = await self._known(domain, action="vcpu-set")
        host = await self.host_info()
        check_vcpu_count(count, max_vcpus=known.domain.vcpus_total, host_cpus=host.nr_cpus,
                         allow_overcommit=allow_overcommit, name=known.domain.name)
        flags = ["-i"] if allow_overcommit and count > host.nr_cpus else []
        await self._act("vcpu-set", *flags, str(known.domain.id), str(count), what=f"vcpu-set {known.domain.name}")

    async def set_sched(self, domain: str, *, weight: int | None = None, cap: int | None = None) -> None:
        known = await self._known(domain, action="scheduler", need_active=False)
        scheduler = (await self._read_host())["xen_scheduler"] or ""
        command = _SCHEDULERS.get(scheduler)
        if command is None:
            raise Unsupported(f"scheduler: the host runs {scheduler or 'an unknown scheduler'}; "
                              "weight and cap belong to credit and credit2")
        check_sched(weight, cap, max_vcpus=known.domain.vcpus_total)
        if weight is None and cap is None:
            raise InvalidArgument("scheduler: give a weight, a cap or both")
        args = [command, "-d", str(known.domain.id)]
        if weight is not None:
            args += ["-w", str(weight)]
        if cap is not None:
            args += ["-c", str(cap)]
        await self._act(*args, what=f"{command} {known.domain.name}")

    async def pause(self, domain: str) -> None:
        known = await self._known(domain, action="pause", allow_dom0=False)
        if DomainFlag.PAUSED in known.domain.flags:
            raise InvalidArgument(f"pause: {known.domain.name} is already paused")
        await self._act("pause", str(known.domain.id), what=f"pause {known.domain.name}")
        await self.sample()

    async def unpause(self, domain: str) -> None:
        known = await self._known(domain, action="unpause", allow_dom0=False, need_active=False)
        if DomainFlag.PAUSED not in known.domain.flags:
            raise InvalidArgument(f"unpause: {known.domain.name} is not paused")
        await self._act("unpause", str(known.domain.id), what=f"unpause {known.domain.name}")
        await self.sample()

    async def sysrq(self, domain: str, key: str) -> None:
        check_sysrq(key)
        known = await self._known(domain, action="sysrq", allow_dom0=False)
        await self._act("sysrq", str(known.domain.id), key, what=f"sysrq {known.domain.name} {key}")

    async def shutdown(self, domain: str) -> None:
        known = await self._known(domain, action="shutdown", allow_dom0=False)
        self._refuse_paused(known, "shutdown")
        fallback = ["-F"] if known.domain.type is DomainType.HVM else []
        await self._act("shutdown", "-w", *fallback, str(known.domain.id), what=f"shutdown {known.domain.name}",
                        limit=_SHUTDOWN_WAIT,
                        on_timeout=f"shutdown {known.domain.name}: asked, but still running after {_SHUTDOWN_WAIT:g} s "
                                   "(the guest may ignore the request: look at its console, or destroy it)")

    async def reboot(self, domain: str) -> None:
        known = await self._known(domain, action="reboot", allow_dom0=False)
        self._refuse_paused(known, "reboot")
        fallback = ["-F"] if known.domain.type is DomainType.HVM else []
        await self._act("reboot", *fallback, str(known.domain.id), what=f"reboot {known.domain.name}")

    @staticmethod
    def _refuse_paused(known: _Known, action: str) -> None:
        if DomainFlag.PAUSED in known.domain.flags:
            raise InvalidArgument(f"{action}: {known.domain.name} is paused and cannot react; unpause it first")

    async def destroy(self, domain: str) -> None:
        known = await self._known(domain, action="destroy", allow_dom0=False, need_active=False)
        await self._act("destroy", str(known.domain.id), what=f"destroy {known.domain.name}")
        await self.sample()

    # --- save and restore: the image is on dom0, wherever xentui runs; every look at it goes through the host

    async def make_save_dir(self, directory: Path) -> None:
        await self.host.make_dirs(str(directory))

    async def check_save_target(self, path: Path, *, overwrite: bool) -> SaveTarget:
        return await save_target(self.host, path, overwrite=overwrite)

    async def saved_images(self, directory: Path) -> list[SavedImage]:
        return await saved_images(self.host, directory)

    async def save(self, domain: str, path: Path, *, keep_running: bool = False, overwrite: bool = False) -> None:
        known = await self._known(domain, action="save", allow_dom0=False)
        # absolute (never an option to xl), checked on dom0 through the host: off the event loop, so a hung NFS
        # directory or a slow ssh round trip does not stop the screen
        path = (await save_target(self.host, path, overwrite=overwrite)).path
        partial = partial_path(path)
        flags = ["-c"] if keep_running else []
        written = False
        try:
            await self._act("save", *flags, str(known.domain.id), str(partial), what=f"save {known.domain.name}",
                            limit=_SAVE_LIMIT)
            written = True
            await self.host.rename(str(partial), str(path))
        except BaseException as error:  # failed, killed or cancelled: the old image (if any) stays whole
            if not written:
                await asyncio.shield(self._discard(partial))
                raise
            if isinstance(error, OSError | BackendError):  # the only image of the guest: kept, and said where
                raise BackendError(f"save {printable(known.domain.name)}: the image was written to "
                                   f"{printable(str(partial))} but could not be renamed to {printable(str(path))}: "
                                   f"{getattr(error, 'strerror', None) or error}; it is kept there") from error
            raise
        await self.sample()

    async def _discard(self, partial: Path) -> None:
        with contextlib.suppress(OSError, BackendError):
            await self.host.remove(str(partial))

    async def restore(self, path: Path, *, paused: bool = False) -> str:
        path = Path(path)
        if self.host.local:
            path = await asyncio.to_thread(path.absolute)  # never an option to xl
        elif not path.is_absolute():  # relative to what, there? never an option to xl either
            raise InvalidArgument(f"restore: {path} is not an absolute path: give the whole path on {self.host.name}")
        found = (await self.host.stat([str(path)], follow_links=True))[str(path)]
        if not isinstance(found, FileInfo) or found.kind != stat.S_IFREG:
            raise InvalidArgument(f"restore: {path} is not a file")
        try:
            head = await self.host.read_head(str(path), _SAVE_HEAD)
        except OSError as error:
            raise InvalidArgument(f"restore: cannot read {path}: {error.strerror or error}") from error
        if not head.startswith(b"Xen saved domain"):
            raise InvalidArgument(f"restore: {path} is not a domain saved by xl (no 'Xen saved domain' header)")
        if (saved := _saved_name(head)) is not None:
            if not self._last:
                await self.sample()
            if saved in self._last:
                raise InvalidArgument(f"restore: {printable(saved)} is already running here; restoring "
                                      f"{path.name} would start it twice (destroy or rename the running one first)")
        before = {entry.domid for entry in parse_xl_list(await self._xl("list"))}
        flags = ["-p"] if paused else []
        await self._act("restore", *flags, str(path), what=f"restore {path.name}", limit=_SAVE_LIMIT)
        after = parse_xl_list(await self._xl("list"))
        new = [entry.name for entry in after if entry.domid not in before]
        await self.sample()
        if not new:
            raise BackendError(f"restore: xl reported success but no new domain appeared from {path}")
        return new[0]


def _saved_name(head: bytes) -> str | None:
    """The domain name in the configuration xl stores at the start of a save file, if it is there."""
    match = _SAVED_NAME.search(head)
    if match is None:
        return None
    try:
        return json.loads(b'"' + match.group(1) + b'"')
    except ValueError:
        return None
