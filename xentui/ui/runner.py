"""The domain actions in flight and their record: which domain is busy with what, the workers that run the
backend calls, the action log, and the audit trail.

The app owns one `ActionRunner`; the forms hand it a backend call once the operator has said what to do. It knows
nothing of keys or dialogs, and the app knows nothing of how an action is run, logged and audited.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from xentui.audit import AuditLog
from xentui.backends.base import Action, Backend, BackendError
from xentui.model import Domain
from xentui.textsafe import printable

LOG = logging.getLogger("xentui.actions")

LogEntry = tuple[float, str, str, str, str | None]  # time, domain, action, result, message


def busy_name(domain: Domain | str) -> str:
    """How the busy map and the quit question name a domain: its name, with its host in a pool (two hosts
    may each have a guest of one name, and a migrating guest is on both)."""
    if isinstance(domain, Domain):
        return f"{domain.name} on {domain.host}" if domain.host else domain.name
    return domain


class RunnerHost(Protocol):
    """What the runner needs of the app around it."""

    backend: Backend
    wall_clock: Callable[[], float]

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               timeout: float | None = None, markup: bool = False) -> None: ...

    def run_worker(self, work: Awaitable[object], *, group: str, exit_on_error: bool) -> object: ...

    def hostname(self) -> str:
        """The host the actions go to, as the audit log names it ("" before the first sample)."""
        ...

    def entry_logged(self) -> None:
        """A line was added to the action log (and maybe the audit log): show it, and the log's health."""
        ...

    def poll_now(self) -> None:
        """An action ended: poll for what it changed."""
        ...

    def quit_if_idle(self) -> None:
        """Nothing may be running any more: quit, if the operator asked to once everything is done."""
        ...


class ActionRunner:
    """Runs each backend call on one domain as a worker, one action per domain at a time, and records every
    attempt (refused, failed, ok) in the action log and the audit log."""

    def __init__(self, host: RunnerHost, *, audit: AuditLog | None = None, require_audit: bool = False) -> None:
        self._host = host
        self.audit = audit
        self.require_audit = require_audit  # refuse actions while the audit log cannot be written
        self.log: list[LogEntry] = []
        self.busy: dict[str, str] = {}  # domain name -> the action running on it

    def refusal(self, action: Action, backend: Backend | None = None) -> str | None:
        """Why this action cannot run now (the capabilities of the backend that would run it, the app's by
        default; --read-only; --require-audit), or None."""
        why = (backend or self._host.backend).capabilities.why_not(action)
        if why is None and self.require_audit and self.audit is not None and self.audit.check() is not None:
            why = f"{self.audit.last_error}; --require-audit refuses actions until it can be"
        return why

    def record(self, domain: Domain | str | None, action: str, arguments: dict, result: str,
               message: str | None) -> None:
        """One line in the action log and the audit log. ``domain`` may be a bare name (restore)."""
        if isinstance(domain, Domain):
            name, uuid, host = domain.name, domain.uuid, domain.host or self._host.hostname()
        else:
            name, uuid, host = domain, None, self._host.hostname()
        shown = busy_name(domain) if domain is not None else "-"
        self.log.append((self._host.wall_clock(), shown or "-", action, result, message))
        if self.audit is not None:
            self.audit.record(backend=self._host.backend.name, host=host, action=action,
                              domain=name, uuid=uuid, arguments=arguments, result=result, message=message)
        self._host.entry_logged()

    def start(self, domain: Domain | str, action: str, call: Callable[[], Awaitable[object]],
              arguments: dict | None = None, *, done: str | Callable[[object], str] | None = None) -> None:
        """Run one backend call on one domain in the background, then log, notify and poll. ``done``: what
        success says, or a function of the call's result that says it (how long a snapshot paused the guest)."""
        arguments = arguments or {}
        name = busy_name(domain)
        if name in self.busy:
            message = f"{printable(name)} is busy with {self.busy[name]}; wait for it to finish"
            self._host.notify(message, severity="warning", title=f"{action} refused")
            self.record(domain, action, arguments, "refused", message)
            return
        self.busy[name] = action
        self._host.run_worker(self._perform(domain, name, action, call, arguments, done), group="actions",
                              exit_on_error=False)

    async def _perform(self, domain: Domain | str, raw_name: str, action: str,
                       call: Callable[[], Awaitable[object]], arguments: dict,
                       done: str | Callable[[object], str] | None) -> None:
        name = printable(raw_name)
        try:
            result = await call()
            if callable(done):
                done = done(result)
        except BackendError as error:
            LOG.warning("%s %s failed: %s", action, raw_name, error)
            self.record(domain, action, arguments, "failed", str(error))
            self._host.notify(str(error), severity="error", title=f"{action} {name} failed", timeout=10)
        except Exception as error:  # a backend bug must not take the screen down
            LOG.exception("%s %s raised", action, raw_name)
            message = f"{type(error).__name__}: {error}"
            self.record(domain, action, arguments, "failed", message)
            self._host.notify(message, severity="error", title=f"{action} {name} failed", timeout=10)
        else:
            LOG.info("%s %s: %s", action, raw_name, done or "done")
            self.record(domain, action, arguments, "ok", done)
            self._host.notify(done or f"{action} {name}: done", title=action)
        finally:
            self.busy.pop(raw_name, None)
            self._host.poll_now()
            self._host.quit_if_idle()

    def set_busy(self, name: str, action: str, busy: bool) -> None:
        """For an action that runs in its own screen, not `start` (a migration): it still counts as busy (a
        second action on the domain is refused, and quitting asks)."""
        if busy:
            self.busy[name] = action
        elif self.busy.get(name) == action:
            del self.busy[name]
            self._host.quit_if_idle()
