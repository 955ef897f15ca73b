"""The actions on one domain: memory, vCPUs and scheduler; pause and the life cycle (shutdown,
reboot, destroy); sysrq; save and restore. Each checks what it can first, then runs in a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from xentui.backends.base import Action, BackendError, InvalidArgument, Unsupported
from xentui.backends.libvirt.connection import ConnectionMixin, _code, _Connection, _message, libvirt
from xentui.backends.libvirt.stats import _PAUSED
from xentui.backends.libvirt_xml import saved_image_name
from xentui.backends.savefile import check_save_path, discard, finish, partial_path
from xentui.validate import check_memory_ceiling, check_memory_target, check_sched, check_sysrq, check_vcpu_count

# Linux input key codes (linux/input-event-codes.h) for Alt+SysRq+key through sendKey.
_KEY_LEFTALT, _KEY_SYSRQ = 56, 99
_LINUX_KEYS = {
    **{char: code for code, char in enumerate("1234567890", start=2)},
    **{char: code for code, char in enumerate("qwertyuiop", start=16)},
    **{char: code for code, char in enumerate("asdfghjkl", start=30)},
    **{char: code for code, char in enumerate("zxcvbnm", start=44)},
}
_SYSRQ_HOLD_MS = 100


class ActionsMixin(ConnectionMixin):
    """mem-set, mem-max, vcpu-set, the scheduler, pause, shutdown, reboot, destroy, sysrq, save and restore."""

    # --- memory, vCPUs, scheduler ----------------------------------------------------------------

    async def mem_set(self, domain: str, kib: int) -> None:
        what = f"mem-set {domain}"
        self._writable(what, Action.MEM_SET)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            total_kib = int(current.conn.getInfo()[1]) * 1024
            try:
                free_kib: int | None = int(current.conn.getFreeMemory()) // 1024
            except libvirt.libvirtError:
                free_kib = None  # a driver without it: libvirt itself refuses what does not fit
            # maxMemory is the domain's configured maximum (libvirt's <memory>), the ceiling of a live setmem.
            check_memory_target(kib, maxmem_kib=dom.maxMemory(), host_total_kib=total_kib, name=domain,
                                current_kib=dom.info()[2], host_free_kib=free_kib)
            dom.setMemoryFlags(kib, libvirt.VIR_DOMAIN_AFFECT_LIVE)

        await self._run(what, run, Action.MEM_SET)

    async def mem_max(self, domain: str, kib: int) -> None:
        what = f"mem-max {domain}"
        self._writable(what, Action.MEM_MAX)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            total_kib = int(current.conn.getInfo()[1]) * 1024
            check_memory_ceiling(kib, target_kib=dom.info()[2], host_total_kib=total_kib, name=domain)
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_MEM_MAXIMUM
            dom.setMemoryFlags(kib, flags)
            self._forget(dom.UUIDString())

        await self._run(what, run, Action.MEM_MAX)

    async def vcpu_set(self, domain: str, count: int, *, allow_overcommit: bool = False) -> None:
        what = f"vcpu-set {domain}"
        self._writable(what, Action.VCPU_SET)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            try:
                maximum = dom.vcpusFlags(libvirt.VIR_DOMAIN_VCPU_MAXIMUM | libvirt.VIR_DOMAIN_AFFECT_LIVE)
            except libvirt.libvirtError:
                maximum = dom.maxVcpus()
            check_vcpu_count(count, max_vcpus=maximum, host_cpus=int(current.conn.getInfo()[2]),
                             allow_overcommit=allow_overcommit, name=domain)
            dom.setVcpusFlags(count, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            self._forget(dom.UUIDString())

        await self._run(what, run, Action.VCPU_SET)

    async def set_sched(self, domain: str, *, weight: int | None = None, cap: int | None = None) -> None:
        what = f"scheduler change for {domain}"
        self._writable(what, Action.SCHED)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            kind = dom.schedulerType()[0]
            params = dom.schedulerParameters()
            if "weight" not in params:
                raise Unsupported(f"{what}: the {current.driver} driver's {kind} scheduler has no credit weight/cap "
                                  f"(it has {', '.join(sorted(params)) or 'no parameters'})")
            if cap is not None and "cap" not in params:
                raise Unsupported(f"{what}: the {current.driver} driver's {kind} scheduler has a weight but no cap")
            try:
                vcpus_max = dom.maxVcpus()
            except libvirt.libvirtError:
                vcpus_max = dom.info()[3]
            check_sched(weight, cap, max_vcpus=vcpus_max)
            wanted = {key: value for key, value in (("weight", weight), ("cap", cap)) if value is not None}
            if wanted:  # AFFECT_CURRENT: the running guest, or the definition of a stopped one
                try:
                    dom.setSchedulerParametersFlags(wanted, libvirt.VIR_DOMAIN_AFFECT_CURRENT)
                except libvirt.libvirtError as error:
                    if _code(error) != libvirt.VIR_ERR_INVALID_ARG:  # "unsupported flags": the older call
                        raise
                    dom.setSchedulerParameters(wanted)
            self._forget(dom.UUIDString())

        await self._run(what, run, Action.SCHED)

    # --- pause, life-cycle ------------------------------------------------------------------------

    @staticmethod
    def _refuse_dom0(dom: Any, action: str) -> None:
        if dom.ID() == 0:
            raise InvalidArgument(f"{action} refused: Domain-0 is the control domain; that would take the host down")

    async def pause(self, domain: str) -> None:
        what = f"pause {domain}"
        self._writable(what, Action.PAUSE)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            self._refuse_dom0(dom, "pause")
            if dom.state()[0] == _PAUSED:
                raise InvalidArgument(f"pause: {domain} is already paused")
            dom.suspend()

        await self._run(what, run, Action.PAUSE)

    async def unpause(self, domain: str) -> None:
        what = f"unpause {domain}"
        self._writable(what, Action.UNPAUSE)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            if dom.state()[0] != _PAUSED:
                raise InvalidArgument(f"unpause: {domain} is not paused")
            dom.resume()

        await self._run(what, run, Action.UNPAUSE)

    def _graceful(self, domain: str, action: str, call: Callable[[Any], object]) -> Callable[[_Connection], None]:
        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            self._refuse_dom0(dom, action)
            if dom.state()[0] == _PAUSED:
                raise InvalidArgument(f"{action}: {domain} is paused and cannot react; unpause it first")
            call(dom)

        return run

    async def shutdown(self, domain: str) -> None:
        self._writable(f"shutdown {domain}", Action.SHUTDOWN)
        await self._run(f"shutdown {domain}", self._graceful(domain, "shutdown", lambda dom: dom.shutdown()),
                        Action.SHUTDOWN)

    async def reboot(self, domain: str) -> None:
        self._writable(f"reboot {domain}", Action.REBOOT)
        await self._run(f"reboot {domain}", self._graceful(domain, "reboot", lambda dom: dom.reboot(0)),
                        Action.REBOOT)

    async def destroy(self, domain: str) -> None:
        what = f"destroy {domain}"
        self._writable(what, Action.DESTROY)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            self._refuse_dom0(dom, "destroy")
            dom.destroy()

        await self._run(what, run, Action.DESTROY)

    # --- sysrq ------------------------------------------------------------------------------------

    async def sysrq(self, domain: str, key: str) -> None:
        check_sysrq(key)
        what = f"sysrq {key} to {domain}"
        self._writable(what, Action.SYSRQ)

        def run(current: _Connection) -> None:
            dom = self._lookup(current, domain)
            self._refuse_dom0(dom, "sysrq")
            codes = [_KEY_LEFTALT, _KEY_SYSRQ, _LINUX_KEYS[key]]
            dom.sendKey(libvirt.VIR_KEYCODE_SET_LINUX, _SYSRQ_HOLD_MS, codes, len(codes), 0)

        await self._run(what, run, Action.SYSRQ)

    # --- save / restore ---------------------------------------------------------------------------

    async def save(
        self, domain: str, path: Path, *, keep_running: bool = False, overwrite: bool = False
    ) -> None:
        """libvirtd writes the file, on the libvirt host. ``keep_running``: saved, then restored from
        the same file at once (as ``xl save -c``, the guest stops for the length of the save)."""
        what = f"save {domain}"
        self._writable(what, Action.SAVE)
        path = Path(path)

        def run(current: _Connection) -> None:
            # Only on a local connection is the path on this machine to check; there the image is written
            # beside and renamed over an earlier one after success (a failed save leaves that one whole).
            target = check_save_path(path, overwrite=overwrite) if current.local else path
            dom = self._lookup(current, domain)
            self._refuse_dom0(dom, "save")
            paused = dom.state()[0] == _PAUSED
            if current.local:
                partial = partial_path(target)
                try:
                    dom.save(str(partial))
                    finish(partial, target)
                except BaseException:
                    discard(partial)
                    raise
            else:
                dom.save(str(target))
            self._forget(dom.UUIDString())
            if keep_running:
                try:
                    current.conn.restoreFlags(str(target), None, libvirt.VIR_DOMAIN_SAVE_PAUSED if paused else 0)
                except libvirt.libvirtError as error:
                    raise BackendError(
                        f"save: {domain} was saved to {path} but could not be started again from it: "
                        f"{_message(error)}; restore it from there",
                        detail=_message(error),
                    ) from error

        await self._run(what, run, Action.SAVE)

    async def restore(self, path: Path, *, paused: bool = False) -> str:
        path = Path(path)
        what = f"restore {path}"
        self._writable(what, Action.RESTORE)

        def run(current: _Connection) -> str:
            conn = current.conn
            if current.local and not path.is_file():
                raise InvalidArgument(f"restore: cannot read {path}: no such file")
            name = ""
            try:
                name = saved_image_name(conn.saveImageGetXMLDesc(str(path), 0))
            except libvirt.libvirtError as error:
                if self._lost(current, error):
                    raise
            before = {dom.UUIDString() for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
            conn.restoreFlags(str(path), None, libvirt.VIR_DOMAIN_SAVE_PAUSED if paused else 0)
            if not name:  # the driver cannot read the image's XML: the domain that appeared is the one
                new = [dom for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                       if dom.UUIDString() not in before]
                name = new[0].name() if len(new) == 1 else path.name
            return name

        return await self._run(what, run, Action.RESTORE)
