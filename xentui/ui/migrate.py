"""Moving domains to another host: one (migrate) or all of them (evacuate), pre-flight checks first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import ClassVar, NamedTuple, Protocol

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, Static

from xentui.backends.base import BackendError, MigratePhase, MigrateProgress, PreflightCheck
from xentui.model import Domain
from xentui.textsafe import name_list, printable
from xentui.ui.dialogs import NAME_INPUT, ConfirmScreen, FormScreen
from xentui.ui.widgets import TickBox
from xentui.units import human_kib
from xentui.validate import check_host, check_other_host


def _migration_target(text: str) -> str:
    """A host name or address, checked here; a URI (libvirt's qemu+ssh://host/system) is the backend's to check."""
    text = text.strip()
    return text if "://" in text else check_host(text)


def _source_names(host: str, source: Sequence[str]) -> list[str]:
    """The names the host a domain is on is known by: its pool name and whatever else the pool calls it (its
    address, its URI); none outside a pool, where migrating to this host's own name is the operator's call."""
    return [host, *source] if host else []


def _check_line(check: PreflightCheck) -> Content:
    """One pre-flight result, coloured from the theme; the detail is data, never markup."""
    mark, style = {True: ("✓", "$success"), False: ("✗", "$error"), None: ("?", "$warning")}[check.ok]
    return Content.assemble((f" {mark} ", f"bold {style}"), (f"{printable(check.name)}: ", "bold"),
                            printable(check.detail))


class Migrator(Protocol):
    """What the migrate and evacuate dialogs may ask of a backend: the checks, and the move. Nothing else."""

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]: ...

    def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]: ...


class PoolTarget(NamedTuple):
    """Another host of the pool, as a migration's target: its name, the address its peers reach it by, and
    the memory it has free."""

    label: str
    address: str
    free_kib: int


def _targets_line(targets: Sequence[PoolTarget]) -> Text:
    return Text("Pool hosts, most free memory first: " + ", ".join(
        (f"{printable(target.label)} at {printable(target.address)}" if target.address != target.label
         else printable(target.label)) + f" ({human_kib(target.free_kib)} free)" for target in targets))


class MigrateScreen(FormScreen):
    """Target, pre-flight checks, then live progress; Escape cancels a running migration.

    Enter checks, and starts only a migration whose checks all passed. After a failed check Enter checks
    again (and says why it will not start); going ahead is a separate "Migrate anyway" button, shown only
    then, in the error style, and never given the focus by the screen.
    """

    DEFAULT_CSS = """
    MigrateScreen #checks { height: auto; }
    MigrateScreen #status { width: 100%; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, domain: Domain, backend: Migrator, on_result: Callable[[str, str | None, dict], None],
                 on_running: Callable[[bool], None] | None = None, targets: Sequence[PoolTarget] = (),
                 source: Sequence[str] = ()) -> None:
        """``targets``: the pool's other hosts; ``source``: what else the pool calls the domain's own host (its
        address), refused as a target with its pool name (`Domain.host`) before any check runs."""
        super().__init__()
        self.domain = domain
        self.backend = backend
        self.targets = sorted(targets, key=lambda target: -target.free_kib)  # a pool's other hosts
        self.source = _source_names(domain.host, source)
        self.on_result = on_result  # (result, message, arguments) for the action and audit logs, when it ends
        self.on_running = on_running  # told when the migration starts and stops: the app's busy map
        self.checked_target: str | None = None
        self.failures = 0
        self.progress: AsyncIterator[MigrateProgress] | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        d = self.domain
        with Vertical():
            yield Label(Text(f"Migrate {printable(d.name)} ({human_kib(d.mem_kib)}) to another host"),
                        classes="title")
            yield Label("Target host name or address:")
            yield Input(self.targets[0].address if self.targets else "", id="target",
                        placeholder="e.g. xen02.example.org or 10.0.0.7", max_length=NAME_INPUT)
            if self.targets:
                yield Label(_targets_line(self.targets), id="pool-targets")
            yield TickBox("live (the guest keeps running while its memory is copied)", value=True, id="live")
            yield Static(id="checks")
            yield ProgressBar(total=100, show_eta=False, id="bar")
            yield Label("", id="status")
            yield Label("", classes="problem")
            yield Horizontal(
                Button("Cancel", id="cancel"),
                Button("Migrate anyway", id="anyway", variant="error"),
                Button("Check", id="ok", variant="primary"),
                classes="buttons",
            )

    def on_mount(self) -> None:
        self.query_one("#bar", ProgressBar).display = False
        self.query_one("#anyway", Button).display = False

    def _target(self) -> str | None:
        """The target typed, checked, and not the domain's own host; else None, the reason shown."""
        try:
            target = _migration_target(self.query_one("#target", Input).value)
            domain = self.domain
            return check_other_host(target, self.source,
                                    what=f"the host {printable(domain.name)} is on ({printable(domain.host)})")
        except BackendError as error:
            self.show_error(str(error))
            return None

    def submit(self) -> None:
        if self.running:
            return
        target = self._target()
        if target is None:
            return
        if target == self.checked_target and not self.failures:
            self.start(target)
        else:
            self.preflight(target)  # a new target, or checks that failed: check (again), never start

    @work(exclusive=True, group="preflight")
    async def preflight(self, target: str) -> None:
        self.show_error("")
        self.checked_target = None
        self.query_one("#anyway", Button).display = False
        self.query_one("#status", Label).update(Text(f"checking {printable(target)}…"))
        try:
            checks = await self.backend.migrate_preflight(self.domain.name, target)
        except BackendError as error:
            self.query_one("#status", Label).update("")
            self.show_error(str(error))
            return
        self.checked_target = target
        self.failures = sum(1 for check in checks if check.ok is False)
        self.query_one("#checks", Static).update(Content("\n").join(_check_line(c) for c in checks))
        if self.failures:
            self.query_one("#status", Label).update(Text(
                f"✗ {self.failures} check{'s' if self.failures != 1 else ''} failed: Enter checks again; "
                "Migrate anyway goes ahead."))
            self.query_one("#ok", Button).label = "Check"
            self.query_one("#anyway", Button).display = True
        else:
            self.query_one("#status", Label).update(Text("Checks passed: Enter starts the migration."))
            self.query_one("#ok", Button).label = "Migrate"

    @work(exclusive=True, group="migrate")
    async def start(self, target: str) -> None:
        self.running = True
        if self.on_running is not None:
            self.on_running(True)
        try:
            await self._migrate(target)
        finally:
            self.running = False
            if self.on_running is not None:
                self.on_running(False)

    async def _migrate(self, target: str) -> None:
        self.show_error("")
        self.query_one("#ok", Button).disabled = True
        self.query_one("#anyway", Button).display = False
        self.query_one("#cancel", Button).label = "Stop"
        bar = self.query_one("#bar", ProgressBar)
        bar.display = True
        status = self.query_one("#status", Label)
        live = self.query_one("#live", Checkbox).value
        arguments = {"target": target, "live": live, "checks_failed": self.failures}
        self.progress = self.backend.migrate(self.domain.name, target, live=live)
        try:
            async for event in self.progress:
                bar.update(progress=event.fraction * 100)
                status.update(Text(event.message))
                if event.phase is MigratePhase.DONE:
                    self.on_result("ok", event.message, arguments)
                    self.dismiss(event.message)
                    return
        except BackendError as error:
            self.on_result("failed", str(error), arguments)
            self.show_error(str(error))
            self.query_one("#cancel", Button).label = "Close"
        except asyncio.CancelledError:
            # Cancelling the worker throws into the backend's iterator where it waits: it undoes its work.
            self.on_result("cancelled", "stopped by the operator; the domain stays where it was", arguments)
            self.dismiss(None)

    async def action_cancel(self) -> None:
        if self.running:
            self.workers.cancel_group(self, "migrate")
            return
        self.dismiss(None)

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.prevent_default()  # not the form's handler too: it would submit twice, or close a running dialog
        if event.button.id == "cancel":
            await self.action_cancel()
        elif event.button.id == "ok":
            self.submit()
        elif event.button.id == "anyway" and not self.running:
            target = self._target()
            if target is not None and target == self.checked_target:
                self.start(target)
            elif target is not None:
                self.preflight(target)  # the target changed since its checks: check it first


class EvacuateScreen(FormScreen):
    """Empty the host: check every domU against the target, show the plan, ask, then move them one by one.

    Enter with a target runs the pre-flight for each domain and shows the plan: the order (smallest first,
    so the most guests are off the host soonest), the target, and each domain whose checks failed, which
    stays here. Enter again asks, naming the domains; only a yes starts. A migration that fails stops the
    rest unless "carry on" is ticked.
    """

    DEFAULT_CSS = (
        "EvacuateScreen #rows { height: auto; max-height: 20; text-wrap: nowrap; text-overflow: ellipsis; }")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, domains: list[Domain], backend: Migrator,
                 on_result: Callable[[Domain, str, str | None, dict], None],
                 on_running: Callable[[Domain, bool], None] | None = None,
                 targets: Sequence[PoolTarget] = (), host: str | None = None, source: Sequence[str] = ()) -> None:
        """``host``: the pool host being emptied; ``source``: what else the pool calls it (its address). Neither
        is taken as a target: the plan never places a domain on the host it leaves."""
        super().__init__()
        self.domains = sorted(domains, key=lambda d: (d.mem_kib, d.name))
        self.backend = backend
        self.targets = sorted(targets, key=lambda target: -target.free_kib)  # a pool's other hosts
        self.host = host  # the pool host being emptied, to name it
        self.source = _source_names(host or "", source)
        self.plan: dict[str, str] = {}  # domain key -> the target it goes to
        self.on_result = on_result
        self.on_running = on_running  # (domain, moving): the app's busy map
        self.state: dict[str, str] = {d.key: "not checked yet" for d in self.domains}
        self.checked_target: str | None = None
        self.movable: list[Domain] = []
        self.running = False
        self.stopping = False

    def compose(self) -> ComposeResult:
        with Vertical():
            count = len(self.domains)
            which = f"{printable(self.host)}" if self.host else "this host"
            yield Label(Text(f"Evacuate {which}: migrate its {count} domU{'s' if count != 1 else ''}, "
                             "one after another"),
                        classes="title")
            yield Label("Target hosts, one or several (a, b): each domain to the one with the most memory "
                        "left (Enter checks every domain first):" if self.targets else
                        "Target host name or address (Enter checks every domain first):")
            yield Input(", ".join(target.address for target in self.targets), id="target",
                        max_length=NAME_INPUT * 4)
            if self.targets:
                yield Label(_targets_line(self.targets), id="pool-targets")
            yield TickBox("carry on after a failure (default: stop at the first one)", id="carry-on")
            yield Static(id="rows")
            yield Label("", classes="problem")
            yield self.buttons("Check")

    def on_mount(self) -> None:
        self._show_rows()

    def _show_rows(self) -> None:
        lines = []
        order = {d.key: index for index, d in enumerate(self.movable, 1)}
        for d in self.domains:
            place = f"{order[d.key]:2}." if d.key in order else "  -"
            lines.append(Text(f"{place} {printable(d.name)} ({human_kib(d.mem_kib)}): {self.state[d.key]}"))
        self.query_one("#rows", Static).update(Text("\n").join(lines) if lines else Text("no domUs to move"))

    def on_input_changed(self, event: Input.Changed) -> None:
        if not self.running and self.checked_target is not None:
            self.checked_target = None  # a new target: the plan no longer holds
            self.movable = []
            self.state = {d.key: "not checked yet" for d in self.domains}
            self.query_one("#ok", Button).label = "Check"
            self._show_rows()

    def submit(self) -> None:
        if self.running:
            return
        try:
            targets = [_migration_target(word) for word in self.query_one("#target", Input).value.split(",")
                       if word.strip()] or [_migration_target("")]
            for target in targets:
                check_other_host(target, self.source, what=f"the host being evacuated ({printable(self.host or '')})")
        except BackendError as error:
            self.show_error(str(error))
            return
        target = ", ".join(dict.fromkeys(targets))
        if target != self.checked_target:
            self.run_worker(self._plan(list(dict.fromkeys(targets))), group="evacuate-plan", exclusive=True)
            return
        if not self.movable:
            self.show_error(f"no domain passed its checks for {target}: nothing to move")
            return
        staying = [d.name for d in self.domains if d not in self.movable]
        where = {self.plan[d.key] for d in self.movable}
        question = (f"Migrate {len(self.movable)} domain{'s' if len(self.movable) != 1 else ''} to "
                    f"{name_list(sorted(where))}, one after another: "
                    f"{name_list([f'{d.name} → {self.plan[d.key]}' for d in self.movable])}?")
        if staying:
            question += f" {name_list(staying)} stay{'s' if len(staying) == 1 else ''} here (checks failed)."

        def answered(yes: bool | None) -> None:
            if yes:
                self.evacuate(target)

        self.app.push_screen(ConfirmScreen(question), answered)

    async def _plan(self, targets: list[str]) -> None:
        """Each domain, the biggest first, to the target with the most memory left once those before it are
        placed (a target the pool does not know counts as having none to spare), checked there; a domain
        whose checks fail tries the next target, and stays when none passes."""
        self.show_error("")
        self.movable, self.plan = [], {}
        free = {target: 0 for target in targets}
        for pool_target in self.targets:
            if pool_target.address in free:
                free[pool_target.address] = pool_target.free_kib
        placing = sorted(self.domains, key=lambda d: (-d.mem_kib, d.name))

        def where(target: str) -> str:  # which target a reason is about, when there are several
            return f"{target}: " if len(targets) > 1 else ""

        for index, domain in enumerate(placing, 1):
            self.state[domain.key] = f"checking ({index} of {len(placing)})…"
            self._show_rows()
            reasons = []
            for target in sorted(targets, key=lambda t: -free[t]):
                try:
                    checks = await self.backend.migrate_preflight(domain.name, target)
                except BackendError as error:
                    reasons.append(f"{where(target)}{error}")
                    continue
                failed = [c for c in checks if c.ok is False]
                if failed:
                    reasons.append(f"{where(target)}✗ " + "; ".join(f"{c.name} ({c.detail})" for c in failed))
                    continue
                self.plan[domain.key] = target
                free[target] -= domain.mem_kib
                self.state[domain.key] = f"→ {target} ✓"
                break
            else:
                self.state[domain.key] = "stays: " + " | ".join(reasons)
        self.movable = [domain for domain in self.domains if domain.key in self.plan]  # the smallest first
        self.checked_target = ", ".join(targets)
        self._show_rows()
        count = len(self.movable)
        self.query_one("#ok", Button).label = "Evacuate" if count else "Check"
        self.show_error(f"The plan: {count} of {len(self.domains)} move, in this order. Enter asks before the first "
                        "moves." if count else "No domain passed its checks: nothing would move.")

    def evacuate(self, targets: str) -> None:
        self._worker = self.run_worker(self._evacuate(targets), group="evacuate", exclusive=True)

    async def _evacuate(self, targets: str) -> None:
        self.running = True
        self.query_one("#ok", Button).disabled = True
        self.query_one("#cancel", Button).label = "Stop"
        carry_on = self.query_one("#carry-on", Checkbox).value
        for domain in self.movable:
            self.state[domain.key] = "waiting"
        failed = 0
        for domain in self.movable:
            if self.stopping:
                break
            if self.on_running is not None:
                self.on_running(domain, True)
            target = self.plan[domain.key]
            arguments = {"target": target, "live": True, "evacuate": True, "carry_on": carry_on}
            try:
                async for event in self.backend.migrate(domain.name, target):
                    self.state[domain.key] = f"{event.fraction * 100:.0f}% {event.message}"
                    self._show_rows()
                    if event.phase is MigratePhase.DONE:
                        self.state[domain.key] = "done"
                        self.on_result(domain, "ok", event.message, arguments)
            except BackendError as error:
                failed += 1
                self.state[domain.key] = f"failed: {error}"
                self.on_result(domain, "failed", str(error), arguments)
                if not carry_on:
                    self.stopping = True
            except asyncio.CancelledError:
                self.state[domain.key] = "stopped by the operator; it stays here"
                self.on_result(domain, "cancelled", "stopped by the operator", arguments)
                self.stopping = True
            finally:
                if self.on_running is not None:
                    self.on_running(domain, False)
            self._show_rows()
        self.running = False
        skipped = [d for d in self.movable if self.state[d.key] == "waiting"]
        staying = len(self.domains) - len(self.movable)
        summary = f"{sum(1 for v in self.state.values() if v == 'done')} moved, {failed} failed"
        if skipped:
            summary += f", {len(skipped)} not tried"
        if staying:
            summary += f", {staying} left here by the checks"
        self.show_error(summary)
        self.query_one("#cancel", Button).label = "Close"

    async def action_cancel(self) -> None:
        if self.running:
            self.stopping = True
            self._worker.cancel()
            return
        self.dismiss(None)

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.prevent_default()  # not the form's handler too: it would submit twice, or close a running dialog
        if event.button.id == "cancel":
            await self.action_cancel()
        elif event.button.id == "ok":
            self.submit()
