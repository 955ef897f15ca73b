"""Acting on guests from the screen: the keys and dialogs of each domain action, up to the backend call.

Every action goes through the one backend interface, and is handed to the app's `ActionRunner`
(`xentui.ui.runner`), which runs it as a worker (the table keeps refreshing during a long save or
migrate), refuses a second action on a busy domain, logs every attempt (the action log view, and one
JSON line in the audit log) and polls after it, so the table shows what really happened.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from xentui.audit import AuditLog
from xentui.backends.base import Action, Backend
from xentui.backends.pool import PoolBackend
from xentui.backends.readonly import ReadOnlyBackend
from xentui.model import Domain, DomainState, Host, Sample
from xentui.model.rates import Rates
from xentui.textsafe import name_list, printable
from xentui.ui.lines import HOST_KEY
from xentui.ui.messages import ActionLogged
from xentui.ui.runner import ActionRunner, LogEntry, busy_name
from xentui.ui.table import DomainTable
from xentui.validate import format_kib

if TYPE_CHECKING:
    from types import ModuleType

    from xentui.ui.main_screen import MainScreen
    from xentui.ui.migrate import PoolTarget
    from xentui.ui.modals import SaveRequest


def _devices() -> ModuleType:
    """The device and create dialogs, imported when the first one opens."""
    from xentui.ui import devices

    return devices


def _modals() -> ModuleType:
    """The action dialogs, imported when the first one opens: the first frame does not wait for them."""
    from xentui.ui import modals

    return modals



class ActionsMixin:
    """Mixed into the app: it provides backend, sample, table and the poller this needs."""

    backend: Backend
    sample: Sample | None
    rates: Rates | None
    save_dir: Path
    runner: ActionRunner
    main: MainScreen
    wall_clock: Callable[[], float] = time.time  # for the logs and default file names; tests freeze it

    # the app's own, used here
    table: DomainTable
    push_screen: Callable[..., object]
    exit: Callable[..., None]
    run_worker: Callable[..., object]
    _start_poll: Callable[[], None]
    action_console: Callable[[], Awaitable[None]]

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification of the app, from any screen: text from outside (names, paths, tool stderr,
        libvirt's words) is made printable and never read as markup, whatever the caller passed."""
        lines = [printable(line) for line in str(message).split("\n")]
        super().notify("\n".join(lines), title=printable(str(title)), severity=severity,  # type: ignore[misc]
                       timeout=timeout, markup=False)

    # helpers --------------------------------------------------------------------------------

    def _host(self) -> Host | None:
        return self.sample.host if self.sample is not None else None

    def _selected(self) -> Domain | None:
        domain = self.table.selected
        if domain is None:
            self.notify("No domain selected.", severity="warning")
        return domain

    def _on(self, domain: Domain) -> Backend:
        """The backend that acts on this domain (in a pool, its host's)."""
        return self.backend.for_domain(domain)

    def _targets(self) -> list[Domain]:
        """The marked domains, or the selected one when none is marked."""
        marked = self.table.marked_domains()
        if marked:
            return marked
        domain = self._selected()
        return [domain] if domain is not None else []

    def _unavailable(self, action: Action, domains: list[Domain] | None = None,
                     backend: Backend | None = None) -> bool:
        """Refuse, with the reason, what this backend or host cannot do (--read-only included), and, with
        --require-audit, anything while the audit log cannot be written. ``backend``: the one that would act,
        where no domain says it (restore on a pool's host)."""
        why = None
        for domain in domains or [None]:  # type: ignore[list-item]
            acting = backend or (self.backend if domain is None else self._on(domain))
            why = self.runner.refusal(action, acting)
            if why is not None:
                break
        if why is None:
            return False
        if self.audit is not None and self.audit.last_error is not None:
            self.show_audit_health()
        self.notify(f"{action.value}: {why}", severity="warning", title="Not available")
        for domain in domains or [None]:  # type: ignore[list-item]
            self.runner.record(domain, action.value, {}, "refused", why)
        return True

    def show_audit_health(self) -> None:
        """A line under the header, for as long as the audit log cannot be written: seen at once, and kept.
        Actions go ahead meanwhile (an operator may need to stop a guest with /var full), unless
        --require-audit; each entry that could not be written is named in a notification."""
        if self.audit is None:
            return
        error = self.audit.last_error
        if error is None:
            self.main.show_banner(None, banner_id="audit-banner")
            return
        if not self.main.banner_shown("audit-banner"):
            self.notify(f"{error}: actions are not being recorded", severity="error", title="audit log",
                        timeout=15)
        self.main.show_banner(f"AUDIT LOG NOT WRITTEN: {printable(error)}. Actions are not recorded"
                              + (" and are refused (--require-audit)." if self.runner.require_audit else "."),
                              banner_id="audit-banner")

    # what the runner asks of the app (`RunnerHost`)

    def hostname(self) -> str:
        host = self._host()
        return host.hostname if host else ""

    _syslog_said: str | None = None

    def entry_logged(self) -> None:
        if self.screen is not self.main:  # the action log, when it is open, shows the line
            self.screen.post_message(ActionLogged())
        self.show_audit_health()
        syslog = self.audit.syslog if self.audit is not None else None
        error = syslog.last_error if syslog is not None else None
        if error is not None and error != self._syslog_said:
            self.notify(f"{error}: the audit lines still go to {self.audit.path}", severity="warning",  # type: ignore[union-attr]
                        title="audit to syslog", timeout=10)
        self._syslog_said = error

    def poll_now(self) -> None:
        self._start_poll()

    # the runner's state, read by the screens and tests

    @property
    def busy(self) -> dict[str, str]:
        return self.runner.busy

    @property
    def action_log(self) -> list[LogEntry]:
        return self.runner.log

    @property
    def audit(self) -> AuditLog | None:
        return self.runner.audit

    def start_action(self, domain: Domain | str, action: str, call: Callable[[], Awaitable[object]],
                     arguments: dict | None = None, *, done: str | Callable[[object], str] | None = None) -> None:
        self.runner.start(domain, action, call, arguments, done=done)

    # memory, vCPUs, scheduler -------------------------------------------------------------------

    def action_mem_set(self) -> None:
        self._memory(ceiling=False)

    def action_mem_max(self) -> None:
        self._memory(ceiling=True)

    def _memory(self, *, ceiling: bool) -> None:
        action = Action.MEM_MAX if ceiling else Action.MEM_SET
        domain, host = self._selected(), self._host()
        if domain is None or host is None or self._unavailable(action, [domain]):
            return

        def chosen(kib: int | None) -> None:
            if kib is None:
                return
            call = self._on(domain).mem_max if ceiling else self._on(domain).mem_set
            self.start_action(domain, action.value, lambda: call(domain.name, kib), {"kib": kib},
                            done=f"{action.value} {printable(domain.name)} {format_kib(kib)}")

        self.push_screen(_modals().MemoryScreen(domain, host, ceiling=ceiling), chosen)

    def action_vcpu_set(self) -> None:
        domain, host = self._selected(), self._host()
        if domain is None or host is None or self._unavailable(Action.VCPU_SET, [domain]):
            return

        def chosen(value: tuple[int, bool] | None) -> None:
            if value is None:
                return
            count, overcommit = value
            self.start_action(domain, "vcpu-set",
                            lambda: self._on(domain).vcpu_set(domain.name, count, allow_overcommit=overcommit),
                            {"count": count, "allow_overcommit": overcommit},
                            done=f"vcpu-set {printable(domain.name)} {count}")

        self.push_screen(_modals().VcpuScreen(domain, host), chosen)

    def action_sched(self) -> None:
        domain = self._selected()
        if domain is None or self._unavailable(Action.SCHED, [domain]):
            return

        def chosen(value: tuple[int, int] | None) -> None:
            if value is None:
                return
            weight, cap = value
            self.start_action(domain, "sched", lambda: self._on(domain).set_sched(domain.name, weight=weight, cap=cap),
                            {"weight": weight, "cap": cap},
                            done=f"{printable(domain.name)}: weight {weight}, cap {cap}")

        self.push_screen(_modals().SchedScreen(domain), chosen)

    # pause ---------------------------------------------------------------------------------------

    def action_pause_toggle(self) -> None:
        """p: pause what runs, or unpause when everything targeted is paused already."""
        domains = self._targets()
        if not domains:
            return
        if all(d.state is DomainState.PAUSED for d in domains):
            self._bulk(domains, Action.UNPAUSE)
        else:
            self._pause([d for d in domains if d.state is not DomainState.PAUSED])

    def action_pause(self) -> None:
        self._pause(self._targets())

    def _pause(self, domains: list[Domain]) -> None:
        """One domain pauses at once (p again unpauses it); several marked ones ask first, by name: a
        pause stops every guest in it, and a forgotten mark must not stop one nobody meant."""
        if len(domains) <= 1:
            self._bulk(domains, Action.PAUSE)
            return
        if self._unavailable(Action.PAUSE, domains):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._bulk(domains, Action.PAUSE)

        self.push_screen(_modals().ConfirmScreen(
            f"Pause these {len(domains)} domains: {name_list([d.name for d in domains])}? "
            "(each stops running until unpaused)"), answered)

    def action_unpause(self) -> None:
        self._bulk(self._targets(), Action.UNPAUSE)

    def _bulk(self, domains: list[Domain], action: Action, key: str | None = None) -> None:
        """One action on each domain: each runs on its own and gets its own result."""
        if not domains or self._unavailable(action, domains):
            return
        for domain in domains:
            backend = self._on(domain)
            calls: dict[Action, Callable[[str], Awaitable[object]]] = {
                Action.PAUSE: backend.pause,
                Action.UNPAUSE: backend.unpause,
                Action.SHUTDOWN: backend.shutdown,
                Action.REBOOT: backend.reboot,
                Action.SYSRQ: lambda name, backend=backend: backend.sysrq(name, key or ""),  # type: ignore[misc]
            }
            call = partial(calls[action], domain.name)
            arguments = {"key": key} if key else {}
            what = f"sysrq {key}" if key else action.value
            self.start_action(domain, action.value, call, arguments, done=f"{what} {printable(domain.name)}")

    # save / restore -------------------------------------------------------------------------------

    def action_save(self) -> None:
        domain = self._selected()
        if domain is None or self._unavailable(Action.SAVE, [domain]):
            return

        def chosen(request: SaveRequest | None) -> None:
            if request is None:
                return
            self.start_action(
                domain, "save",
                lambda: self._on(domain).save(domain.name, request.path, keep_running=request.keep_running,
                                          overwrite=request.overwrite),
                {"path": str(request.path), "keep_running": request.keep_running,
                 "overwrite": request.overwrite},
                done=f"saved {printable(domain.name)} to {request.path}",
            )

        async def open_dialog() -> None:
            if not await self._save_dir_usable(self._on(domain)):
                return
            modals = _modals()
            suggested = modals.default_save_path(self.save_dir, domain, self.wall_clock())
            self.push_screen(modals.SaveScreen(domain, suggested, self._on(domain)), chosen)

        # the directory is made where the backend saves (the xl backend: on its dom0, over ssh too): in a worker
        self.run_worker(open_dialog(), group="save-dialog", exclusive=True, exit_on_error=False)

    async def _save_dir_usable(self, backend: Backend) -> bool:
        """The save directory, made if missing where the backend saves (in a pool, the domain's host); a clear
        message (and False) when it cannot be."""
        from xentui.backends.base import BackendError

        try:
            await backend.make_save_dir(self.save_dir)
        except OSError as error:
            reason = "a file is in the way" if isinstance(error, FileExistsError) else error.strerror or str(error)
        except Exception as error:  # BackendError: ssh cannot reach the host; anything else: a backend bug, said
            reason = str(error) if isinstance(error, BackendError) else f"{type(error).__name__}: {error}"
        else:
            return True
        self.notify(f"the save directory {self.save_dir} cannot be used: {reason} (--save-dir picks another)",
                    severity="error", title="save", timeout=10)
        return False

    def action_restore(self) -> None:
        """Ctrl+R: an image of the save directory back to life; in a pool, on the selected domain's (or host
        line's) host, whose save directory it lists."""
        host = self._selected_pool_host()
        backend = self.backend if host is None else self.backend.for_host(host)
        if self._unavailable(Action.RESTORE, backend=backend):
            return
        where = "" if host is None else f" on {host}"

        def chosen(value: tuple[Path, bool] | None) -> None:
            if value is None:
                return
            path, paused = value
            self.start_action(f"image {path.name}{where}", "restore", lambda: backend.restore(path, paused=paused),
                              {"path": str(path), "paused": paused, **({"host": host} if host else {})},
                              done=f"restored {path.name}{where}")

        self.push_screen(_modals().RestoreScreen(self.save_dir, backend), chosen)  # it lists in a worker

    # sysrq, life-cycle ----------------------------------------------------------------------------

    def action_sysrq(self) -> None:
        domains = self._targets()
        if not domains or self._unavailable(Action.SYSRQ, domains):
            return

        def chosen(key: str | None) -> None:
            if key is not None:
                self._bulk(domains, Action.SYSRQ, key)

        self.push_screen(_modals().SysrqScreen([d.name for d in domains]), chosen)

    def _confirmed_bulk(self, action: Action, question: str) -> None:
        domains = self._targets()
        if not domains or self._unavailable(action, domains):
            return
        names = name_list([d.name for d in domains])
        who = names if len(domains) == 1 else f"these {len(domains)} domains ({names})"

        def answered(yes: bool | None) -> None:
            if yes:
                self._bulk(domains, action)

        self.push_screen(_modals().ConfirmScreen(question.format(who=who)), answered)

    def action_shutdown(self) -> None:
        self._confirmed_bulk(Action.SHUTDOWN, "Shut down {who}? (the guest is asked to power off)")

    def action_reboot(self) -> None:
        self._confirmed_bulk(Action.REBOOT, "Reboot {who}? (the guest is asked to restart)")

    def action_destroy(self) -> None:
        domain = self._selected()
        if domain is None or self._unavailable(Action.DESTROY, [domain]):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.start_action(domain, "destroy", lambda: self._on(domain).destroy(domain.name),
                                done=f"destroyed {printable(domain.name)}")

        self.push_screen(_modals().DestroyScreen(domain), answered)

    # migration ------------------------------------------------------------------------------------

    def action_migrate(self) -> None:
        domain = self._selected()
        if domain is None or self._unavailable(Action.MIGRATE, [domain]):
            return
        if busy_name(domain) in self.busy:
            self.notify(f"{printable(busy_name(domain))} is busy with {self.busy[busy_name(domain)]}",
                        severity="warning")
            return

        def result(outcome: str, message: str | None, arguments: dict) -> None:
            self.runner.record(domain, "migrate", arguments, outcome, message)
            self._start_poll()

        def running(moving: bool) -> None:
            self.runner.set_busy(busy_name(domain), "migrate", moving)

        self.push_screen(_modals().MigrateScreen(domain, self._on(domain), result, running,
                                                 targets=self._pool_targets(domain.host),
                                                 source=self._pool_addresses(domain.host)))

    def _pool(self) -> PoolBackend | None:
        backend = self.backend.inner if isinstance(self.backend, ReadOnlyBackend) else self.backend
        return backend if isinstance(backend, PoolBackend) else None

    def _pool_addresses(self, host: str | None) -> list[str]:
        """What else the pool calls HOST (the address the others reach it at): refused as a target of its own."""
        pool = self._pool()
        return [pool.address_of(host)] if pool is not None and host else []

    def _pool_targets(self, source: str) -> list[PoolTarget]:
        """The pool's other hosts that answer, as migration targets (none outside a pool)."""
        pool = self._pool()
        if self.sample is None or pool is None:
            return []
        from xentui.ui.migrate import PoolTarget  # with the dialog: a quicker first frame

        return [PoolTarget(status.label, pool.address_of(status.label), status.host.free_kib)
                for status in self.sample.hosts
                if status.label != source and status.error is None and status.host is not None]

    def action_evacuate(self) -> None:
        """E: every domU of this host (in a pool, of the selected domain's or host line's host) to another."""
        if self.sample is None or self._unavailable(Action.MIGRATE):
            return
        host = self._selected_pool_host()
        backend = self.backend if host is None else self.backend.for_host(host)
        domus = [d for d in self.sample.domains
                 if not d.is_dom0 and d.host == (host or "")
                 and d.state in (DomainState.RUNNING, DomainState.BLOCKED, DomainState.PAUSED)]

        def result(domain: Domain, outcome: str, message: str | None, arguments: dict) -> None:
            self.runner.record(domain, "migrate", arguments, outcome, message)
            self._start_poll()

        def running(domain: Domain, moving: bool) -> None:
            self.runner.set_busy(busy_name(domain), "migrate", moving)

        self.push_screen(_modals().EvacuateScreen(domus, backend, result, running,
                                                  targets=self._pool_targets(host or ""), host=host,
                                                  source=self._pool_addresses(host)))

    def _selected_pool_host(self) -> str | None:
        """In a pool, the host of the selected domain or of the host line under the cursor; else None."""
        if self.sample is None or not self.sample.hosts:
            return None
        key = self.table.cursor_key or ""
        if key.startswith(HOST_KEY):
            return key[len(HOST_KEY):]
        domain = self.table.selected
        return domain.host if domain is not None else self.sample.hosts[0].label

    # disks, NICs, create ----------------------------------------------------------------------------

    def _change_refused(self, action: Action, backend: Backend) -> str | None:
        return self.runner.refusal(action, backend)

    def action_disks(self) -> None:
        """A: the selected guest's disks, listed even --read-only; attach and detach where allowed."""
        domain = self._selected()
        if domain is None:
            return
        backend = self._on(domain)
        devices = _devices()

        def chosen(request: object) -> None:
            if isinstance(request, devices.DiskAttach):
                spec = request.spec
                if self._unavailable(Action.DISK_ATTACH, [domain]):
                    return
                self.start_action(domain, Action.DISK_ATTACH.value, lambda: backend.disk_attach(domain.name, spec),
                                  {"path": spec.path, "vdev": spec.vdev, "readonly": spec.readonly,
                                   "format": spec.format},
                                  done=f"attached {printable(spec.path)} to {printable(domain.name)} as {spec.vdev}")
            elif isinstance(request, devices.DiskDetach):
                vdev = request.disk.vdev
                if self._unavailable(Action.DISK_DETACH, [domain]):
                    return
                self.start_action(domain, Action.DISK_DETACH.value, lambda: backend.disk_detach(domain.name, vdev),
                                  {"vdev": vdev, "path": request.disk.path},
                                  done=f"detached {vdev} from {printable(domain.name)}")

        refused = self._change_refused(Action.DISK_ATTACH, backend)
        self.push_screen(devices.DisksScreen(domain, lambda: backend.disks(domain.name), refused,
                                             devices.disk_rates(domain, self.rates)), chosen)

    def action_nics(self) -> None:
        """I: the selected guest's network interfaces; attach one to a bridge, detach one."""
        domain = self._selected()
        if domain is None:
            return
        backend = self._on(domain)
        devices = _devices()

        def chosen(request: object) -> None:
            if isinstance(request, devices.NicAttach):
                bridge, mac = request.bridge, request.mac
                if self._unavailable(Action.NIC_ATTACH, [domain]):
                    return
                self.start_action(domain, Action.NIC_ATTACH.value, lambda: backend.nic_attach(domain.name, bridge, mac),
                                  {"bridge": bridge, "mac": mac},
                                  done=f"attached a NIC on {printable(bridge)} to {printable(domain.name)}")
            elif isinstance(request, devices.NicDetach):
                nic = request.nic
                if self._unavailable(Action.NIC_DETACH, [domain]):
                    return
                self.start_action(domain, Action.NIC_DETACH.value,
                                  lambda: backend.nic_detach(domain.name, nic.mac or str(nic.devid)),
                                  {"devid": nic.devid, "mac": nic.mac},
                                  done=f"detached NIC {nic.devid} ({nic.mac}) from {printable(domain.name)}")

        refused = self._change_refused(Action.NIC_ATTACH, backend)
        self.push_screen(devices.NicsScreen(domain, lambda: backend.nics(domain.name), backend.bridges, refused),
                         chosen)

    def action_snapshot(self) -> None:
        """P: snapshot the selected guest's disks while it is paused (LVM, or a copy), or remove a snapshot."""
        domain = self._selected()
        if domain is None:
            return
        backend = self._on(domain)
        devices = _devices()

        def said(result: object) -> str:
            taken = getattr(result, "taken", ())
            return (f"snapshot of {printable(domain.name)}: {', '.join(printable(s.name) for s in taken)}; "
                    f"the guest was paused {getattr(result, 'paused_s', 0.0):.2f} s")

        def chosen(request: object) -> None:
            if self._unavailable(Action.SNAPSHOT, [domain]):
                return
            if isinstance(request, devices.SnapshotTake):
                tag, cow = request.tag, request.cow_bytes
                self.start_action(domain, Action.SNAPSHOT.value,
                                  lambda: backend.snapshot_create(domain.name, tag, cow_bytes=cow),
                                  {"tag": tag, "cow_bytes": cow}, done=said)
            elif isinstance(request, devices.SnapshotRemove):
                name = request.snapshot.name
                self.start_action(domain, "snapshot-remove", lambda: backend.snapshot_delete(domain.name, name),
                                  {"snapshot": name}, done=f"removed snapshot {printable(name)}")

        self.push_screen(devices.SnapshotScreen(domain, lambda: backend.snapshot_sources(domain.name),
                                                lambda: backend.snapshots(domain.name),
                                                self._change_refused(Action.SNAPSHOT, backend),
                                                self.wall_clock()), chosen)

    console_after_create: tuple[str, str] | None = None
    """(name, host) of a guest just created with "open its console": opened once a poll shows it."""

    def action_create(self) -> None:
        """Ctrl+N: start a guest from the host's configs (in a pool, the selected domain's or host line's)."""
        host = self._selected_pool_host()
        backend = self.backend if host is None else self.backend.for_host(host)
        where = f" on {host}" if host else (f" on {self.hostname()}" if self.hostname() else "")
        devices = _devices()

        def chosen(request: object) -> None:
            if not isinstance(request, devices.CreateRequest) or self._unavailable(Action.CREATE, backend=backend):
                return

            async def create() -> None:
                name = await backend.create(request.ref, paused=request.paused)
                if request.console:
                    self.console_after_create = (name, host or "")

            self.start_action(f"config {request.label}{where}", Action.CREATE.value, create,
                              {"config": request.ref, "paused": request.paused, **({"host": host} if host else {})},
                              done=f"started {printable(request.label)}{where}" + (" paused" if request.paused else ""))

        self.push_screen(devices.CreateScreen(where, backend.guest_configs,
                                              self._change_refused(Action.CREATE, backend)), chosen)

    def open_console_after_create(self) -> None:
        """After a poll: the console of the guest just created, once the table has it."""
        if self.console_after_create is None or self.sample is None:
            return
        name, host = self.console_after_create
        for domain in self.sample.domains:
            if domain.name == name and domain.host == host:
                self.console_after_create = None
                if self.table.select(domain.key):
                    self.run_worker(self.action_console(), group="console-after-create", exit_on_error=False)
                return

    # quitting ---------------------------------------------------------------------------------------

    quit_when_idle: bool = False

    async def action_quit(self) -> None:
        """q, Ctrl+C: quit at once when nothing runs; otherwise ask, saying what happens to each action."""
        if not self.busy:
            self.exit()
            return

        def answered(answer: str | None) -> None:
            if answer == "now":
                self.exit()
            elif answer == "when-done":
                self.quit_when_idle = True
                self.notify(f"xentui quits when {name_list(sorted(self.busy))} "
                            f"{'is' if len(self.busy) == 1 else 'are'} done (q again to choose otherwise)",
                            title="quit")
                self.quit_if_idle()
            elif self.quit_when_idle:
                self.quit_when_idle = False
                self.notify("xentui keeps running", title="quit")

        self.push_screen(_modals().QuitScreen(self.busy, self.backend.name), answered)

    def quit_if_idle(self) -> None:
        if self.quit_when_idle and not self.busy:
            self.exit()

    # marks and the log ------------------------------------------------------------------------------

    def action_mark(self) -> None:
        domain = self._selected()
        if domain is not None:
            self.table.toggle_mark(domain.key)
            self.table.move_cursor(1)

    def action_unmark_all(self) -> None:
        self.table.clear_marks()

    def action_action_log(self) -> None:
        self.push_screen(_modals().ActionLogScreen(self.action_log))
