"""The action modals: each validates what the operator typed before anything reaches the backend."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from xentui.backends.base import BackendError, MigratePhase, MigrateProgress, PreflightCheck
from xentui.backends.savefile import check_save_path, existing_file
from xentui.model import Domain, Host
from xentui.textsafe import name_list, printable
from xentui.ui.messages import ActionLogged
from xentui.ui.widgets import PickList, TickBox
from xentui.units import human_kib
from xentui.validate import (
    SCHED_WEIGHT_DEFAULT,
    SYSRQ_KEYS,
    check_host,
    check_memory_ceiling,
    check_memory_target,
    check_sched,
    check_vcpu_count,
    format_kib,
    parse_memory,
    parse_whole,
)

# The longest text each kind of field takes: a paste of 10 KB is cut there, never echoed whole in a message.
SHORT_INPUT = 32  # sizes and counts
NAME_INPUT = 512  # host names, URIs, domain names
PATH_INPUT = 4096  # PATH_MAX

ResultT = TypeVar("ResultT")


class DialogScreen(ModalScreen[ResultT]):
    """Every action dialog's frame: centred, a panel of 76 columns at most, title, facts, problem, buttons."""

    DEFAULT_CSS = """
    DialogScreen { align: center middle; }
    DialogScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        background: $panel; border: round $primary; padding: 0 1;
    }
    DialogScreen .title { text-style: bold; width: 100%; }
    DialogScreen .problem { color: $error; height: auto; width: 100%; }
    DialogScreen .facts { color: $text-muted; height: auto; width: 100%; }
    DialogScreen .buttons { height: auto; align-horizontal: right; }
    DialogScreen Button { margin-left: 1; min-width: 10; }
    DialogScreen Input { margin: 0; }
    """


def _facts(*pairs: tuple[str, str]) -> Text:
    text = Text()
    for index, (label, value) in enumerate(pairs):
        if index:
            text.append("   ")
        text.append(f"{label} ", style="bold")
        text.append(value)
    return text


def _migration_target(text: str) -> str:
    """A host name or address, checked here; a URI (libvirt's qemu+ssh://host/system) is the backend's to check."""
    text = text.strip()
    return text if "://" in text else check_host(text)


class FormScreen(DialogScreen[object]):
    """A small form: facts, inputs, an error line; Enter submits, Escape cancels and changes nothing."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_error(self, message: str) -> None:
        """The reason, often a tool's or libvirt's words: made printable line by line."""
        self.query_one(".problem", Label).update(Text("\n".join(printable(line) for line in message.split("\n"))))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "ok":
            self.submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.submit()

    def submit(self) -> None:  # pragma: no cover - every form overrides it
        raise NotImplementedError

    @staticmethod
    def buttons(ok: str = "Apply") -> Horizontal:
        return Horizontal(Button("Cancel", id="cancel"), Button(ok, id="ok", variant="primary"),
                          classes="buttons")


class MemoryScreen(FormScreen):
    """mem-set (the balloon target) or mem-max (the ceiling mem-set may reach)."""


    def __init__(self, domain: Domain, host: Host, *, ceiling: bool) -> None:
        super().__init__()
        self.domain, self.host, self.ceiling = domain, host, ceiling

    def compose(self) -> ComposeResult:
        d = self.domain
        what = "mem-max: the ceiling mem-set may reach" if self.ceiling else "mem-set: the balloon target"
        ceiling = d.mem_ceiling_kib
        maxmem = "no limit" if ceiling is None else human_kib(ceiling)
        target = d.target_kib if d.target_kib is not None else d.mem_kib
        with Vertical():
            yield Label(Text(f"{printable(d.name)} — {what}"), classes="title")
            yield Label(_facts(("now", human_kib(d.mem_kib)), ("target", human_kib(target)), ("maxmem", maxmem),
                               ("host free", human_kib(self.host.free_kib))), classes="facts")
            yield Label("New size, with its unit (512M, 2G, 1048576K, 1.5G):")
            yield Input(value=format_kib(ceiling if self.ceiling and ceiling else target), id="size",
                        max_length=SHORT_INPUT)
            yield Label("", classes="problem")
            yield self.buttons()

    def submit(self) -> None:
        d = self.domain
        try:
            kib = parse_memory(self.query_one("#size", Input).value)
            if self.ceiling:
                check_memory_ceiling(kib, target_kib=d.target_kib if d.target_kib is not None else d.mem_kib,
                                     host_total_kib=self.host.total_kib, name=printable(d.name))
            else:  # the same check as the backends', against the configured ceiling and the host's free memory
                check_memory_target(kib, maxmem_kib=d.mem_ceiling_kib, host_total_kib=self.host.total_kib,
                                    name=printable(d.name), current_kib=d.mem_kib, host_free_kib=self.host.free_kib)
        except BackendError as error:
            self.show_error(str(error))
            return
        self.dismiss(kib)


class VcpuScreen(FormScreen):

    def __init__(self, domain: Domain, host: Host) -> None:
        super().__init__()
        self.domain, self.host = domain, host

    @property
    def max_vcpus(self) -> int:
        return self.domain.vcpus_total

    def compose(self) -> ComposeResult:
        d = self.domain
        with Vertical():
            yield Label(Text(f"{printable(d.name)} — vcpu-set"), classes="title")
            yield Label(_facts(("online", str(d.vcpus_online)), ("max", str(self.max_vcpus)),
                               ("host CPUs", str(self.host.nr_cpus))), classes="facts")
            yield Label(f"vCPUs online, 1 to {self.max_vcpus}:")
            yield Input(value=str(d.vcpus_online), id="count", max_length=SHORT_INPUT)
            yield TickBox("more vCPUs than the host has physical CPUs (xl vcpu-set -i)", id="overcommit")
            yield Label("", classes="problem")
            yield self.buttons()

    def submit(self) -> None:
        text = self.query_one("#count", Input).value
        overcommit = self.query_one("#overcommit", Checkbox).value
        try:
            count = check_vcpu_count(parse_whole(text, "a number of vCPUs", 1, self.max_vcpus),
                                     max_vcpus=self.max_vcpus, host_cpus=self.host.nr_cpus,
                                     allow_overcommit=overcommit, name=printable(self.domain.name))
        except BackendError as error:
            self.show_error(str(error))
            return
        self.dismiss((count, overcommit))


class SchedScreen(FormScreen):

    def __init__(self, domain: Domain) -> None:
        super().__init__()
        self.domain = domain

    def compose(self) -> ComposeResult:
        d = self.domain
        with Vertical():
            yield Label(Text(f"{printable(d.name)} — credit scheduler"), classes="title")
            yield Label(_facts(("weight", str(d.sched_weight)), ("cap", f"{d.sched_cap}%"),
                               ("vCPUs", str(d.vcpus_total))), classes="facts")
            yield Label(f"Weight, 1 to 65535 (default {SCHED_WEIGHT_DEFAULT}): a share of CPU against the others")
            yield Input(value=str(d.sched_weight or SCHED_WEIGHT_DEFAULT), id="weight", max_length=SHORT_INPUT)
            yield Label("Cap, % of one CPU (0 = no cap; 150 = one and a half CPUs):")
            yield Input(value=str(d.sched_cap or 0), id="cap", max_length=SHORT_INPUT)
            yield Label("", classes="problem")
            yield self.buttons()

    def submit(self) -> None:
        try:
            weight = parse_whole(self.query_one("#weight", Input).value, "a weight", 1, 65535)
            cap = parse_whole(self.query_one("#cap", Input).value, "a cap", 0, 100 * max(1, self.domain.vcpus_total))
            check_sched(weight, cap, max_vcpus=self.domain.vcpus_total)
        except BackendError as error:
            self.show_error(str(error))
            return
        self.dismiss((weight, cap))


def default_save_path(save_dir: Path, domain: Domain, now: float | None = None) -> Path:
    """``<save dir>/<name>-<YYYYmmdd-HHMMSS>.save``, with the name made safe for a file name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", domain.name).strip("._") or f"domain-{domain.id}"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time()))
    return save_dir / f"{safe}-{stamp}.save"


_CONSOLE_LOG = re.compile(r"console-.+-\d{8}-\d{6}\.log")


def _is_console_log(name: str) -> bool:
    """A console log (`L`: ``console-<name>-<YYYYmmdd-HHMMSS>.log``) that an older xentui saved among the
    images: not one to restore. Logs now go to their own directory (see `default_console_log_dir`)."""
    return _CONSOLE_LOG.fullmatch(name) is not None


@dataclass(frozen=True)
class SaveRequest:
    path: Path
    keep_running: bool
    overwrite: bool


class SaveScreen(FormScreen):

    def __init__(self, domain: Domain, path: Path) -> None:
        super().__init__()
        self.domain, self.path = domain, path
        self._confirmed_overwrite: Path | None = None

    def compose(self) -> ComposeResult:
        d = self.domain
        with Vertical():
            yield Label(Text(f"{printable(d.name)} — save its memory to a file"), classes="title")
            yield Label(_facts(("memory", human_kib(d.mem_kib)), ("state", d.state.value)), classes="facts")
            yield Label("File:")
            yield Input(value=str(self.path), id="path", max_length=PATH_INPUT)
            yield TickBox("keep it running after the save (xl save -c); otherwise it stops", id="keep")
            yield Label("", classes="problem")
            yield self.buttons("Save")

    def submit(self) -> None:
        text = self.query_one("#path", Input).value.strip()
        if not text:
            self.show_error("give a file to save to")
            return
        if "\0" in text:  # before expanduser: ~ with a NUL would raise from the user database
            self.show_error("the path has a NUL character in it")
            return
        path = Path(text).expanduser()
        if not path.is_absolute():  # relative to the save directory, where restore looks: never to xentui's cwd
            path = self.path.parent / path
        try:  # the backend's own checks, before the guest is stopped: no device, link, directory, over-long name
            check_save_path(path, overwrite=True)
        except BackendError as error:
            self.show_error(str(error).removeprefix("save: "))
            return
        keep = self.query_one("#keep", Checkbox).value
        existing = existing_file(path)
        if existing is not None and self._confirmed_overwrite != path:
            def answered(yes: bool | None) -> None:
                if yes:
                    self._confirmed_overwrite = path
                    self.dismiss(SaveRequest(path, keep, overwrite=True))
                else:
                    self.show_error(f"{printable(str(path))} exists: choose another name, or confirm to overwrite it")

            self.app.push_screen(ConfirmScreen(
                f"{printable(str(path))} already exists ({existing}). Overwrite it? The old one is replaced only "
                "once the new image is written."), answered)
            return
        self.dismiss(SaveRequest(path, keep, overwrite=False))


class RestoreScreen(FormScreen):
    """Pick a saved image from the save directory."""

    DEFAULT_CSS = "RestoreScreen OptionList { max-height: 16; }"

    def __init__(self, save_dir: Path) -> None:
        super().__init__()
        self.save_dir = save_dir
        try:
            files = [p for p in save_dir.iterdir() if p.is_file() and not p.name.startswith(".")
                     and not _is_console_log(p.name)]
        except OSError:
            files = []
        self.files = sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Restore a saved domain from {printable(str(self.save_dir))}"), classes="title")
            if self.files:
                options = [
                    Option(Text(f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(p.stat().st_mtime))}  "
                                f"{human_kib(p.stat().st_size // 1024):>6}  {printable(p.name)}"), id=str(i))
                    for i, p in enumerate(self.files)
                ]
                yield PickList(*options, id="files")
            else:
                yield Label(Text(f"No saved images in {printable(str(self.save_dir))} (--save-dir changes it)."),
                            classes="problem")
            yield TickBox("start it paused", id="paused")
            yield Label("", classes="problem")
            yield self.buttons("Restore")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.submit()

    def submit(self) -> None:
        if not self.files:
            self.dismiss(None)
            return
        index = self.query_one("#files", OptionList).highlighted
        if index is None:
            self.show_error("pick an image")
            return
        self.dismiss((self.files[index], self.query_one("#paused", Checkbox).value))


class SysrqScreen(FormScreen):
    """Every SysRq key with what it does; the dangerous ones are marked and confirmed."""

    DEFAULT_CSS = "SysrqScreen OptionList { max-height: 18; }"

    def __init__(self, targets: list[str]) -> None:
        super().__init__()
        self.targets = targets

    def compose(self) -> ComposeResult:
        keys = [k for k in SYSRQ_KEYS if not k.isdigit()] + ["0", "9"]
        options = [
            Option(Text(f"{key}  {'⚠ ' if SYSRQ_KEYS[key][1] else '  '}{SYSRQ_KEYS[key][0]}"), id=key)
            for key in keys
        ]
        with Vertical():
            who = name_list(self.targets) if len(self.targets) == 1 else \
                f"{len(self.targets)} marked domains ({name_list(self.targets)})"
            yield Label(Text(f"SysRq to {who} (⚠ = dangerous, asks again)"), classes="title")
            yield PickList(*options, id="keys")
            yield Label("", classes="problem")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        key = event.option.id
        assert key is not None
        meaning, dangerous = SYSRQ_KEYS[key]
        if not dangerous:
            self.dismiss(key)
            return
        who = name_list(self.targets) if len(self.targets) == 1 else \
            f"{len(self.targets)} domains ({name_list(self.targets)})"

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(key)

        self.app.push_screen(ConfirmScreen(f"SysRq {key} to {who}: {meaning}. Really?"), answered)

    def submit(self) -> None:
        highlighted = self.query_one("#keys", OptionList).highlighted_option
        if highlighted is not None:
            self.on_option_list_option_selected(
                OptionList.OptionSelected(self.query_one("#keys", OptionList), highlighted, 0))


class ConfirmScreen(DialogScreen[bool]):
    """y/N. Anything but y (or the Yes button) is a no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question), classes="title")
            yield Label("y: yes   n or Escape: no")
            yield Horizontal(Button("No", id="no", variant="primary"), Button("Yes", id="yes", variant="error"),
                             classes="buttons")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def quit_consequence(action: str, backend: str) -> str:
    """What quitting does to an action still running, said before the operator chooses. The xl backend kills its
    `xl` child; a libvirt call already in libvirtd runs on without xentui; a migration is cancelled."""
    check = {"xl": "xl list", "libvirt": "virsh list"}.get(backend, "the table")
    if action == "migrate":
        return "it is cancelled: the domain stays on this host"
    if action == "save" and backend == "xl":
        return ("xl is killed: no new image is kept (an older image of that name stays whole), and the guest may be "
                "left suspended here (check xl list when back)")
    if action == "restore" and backend == "xl":
        return "xl is killed: the domain being built may be left half-made and paused (destroy it)"
    if action == "save":
        return ("xentui stops waiting, but the hypervisor may finish the save: the guest may stop, and an older "
                f"image of that name stays whole (check {check} and the save directory when back)")
    return f"it is abandoned: it may or may not take effect (check {check} when back)"


class QuitScreen(DialogScreen[str]):
    """Quit while actions run: keep running (the default), quit when they are done, or quit now."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "answer('keep')", "Keep running")]
    DEFAULT_CSS = "QuitScreen #running { height: auto; width: 100%; }"

    def __init__(self, busy: dict[str, str], backend: str) -> None:
        super().__init__()
        self.busy = dict(busy)
        self.backend = backend

    def compose(self) -> ComposeResult:
        count = len(self.busy)
        lines = [Text(f"• {action} {printable(name)}: if xentui quits now, "
                      f"{quit_consequence(action, self.backend)}")
                 for name, action in sorted(self.busy.items())]
        with Vertical():
            yield Label(Text(f"{count} action{'s' if count != 1 else ''} still running. Quit?"), classes="title")
            yield Static(Text("\n").join(lines), id="running")
            yield Label("Escape or Enter keeps xentui running.", classes="facts")
            yield Horizontal(
                Button("Quit now", id="now", variant="error"),
                Button("Quit when done", id="when-done"),
                Button("Keep running", id="keep", variant="primary"),
                classes="buttons",
            )

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "keep")

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)


class DestroyScreen(FormScreen):
    """destroy is pulling the plug: the operator types the domain's name to go ahead."""


    def __init__(self, domain: Domain) -> None:
        super().__init__()
        self.domain = domain

    def compose(self) -> ComposeResult:
        name = printable(self.domain.name)
        with Vertical():
            yield Label(Text(f"Destroy {name}? It stops at once, like pulling the power cord."), classes="title")
            yield Label(Text(f"Type its name ({name}) to confirm:"))
            yield Input(id="name", max_length=NAME_INPUT)
            yield Label("", classes="problem")
            yield self.buttons("Destroy")

    def submit(self) -> None:
        typed = self.query_one("#name", Input).value
        if typed not in (self.domain.name, printable(self.domain.name)):
            self.show_error("that is not the domain's name; nothing was done")
            return
        self.dismiss(True)


def _check_line(check: PreflightCheck) -> Content:
    """One pre-flight result, coloured from the theme; the detail is data, never markup."""
    mark, style = {True: ("✓", "$success"), False: ("✗", "$error"), None: ("?", "$warning")}[check.ok]
    return Content.assemble((f" {mark} ", f"bold {style}"), (f"{printable(check.name)}: ", "bold"),
                            printable(check.detail))


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

    def __init__(self, domain: Domain, backend, on_result: Callable[[str, str | None, dict], None],
                 on_running: Callable[[bool], None] | None = None) -> None:
        super().__init__()
        self.domain = domain
        self.backend = backend
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
            yield Input(id="target", placeholder="e.g. xen02.example.org or 10.0.0.7", max_length=NAME_INPUT)
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
        try:
            return _migration_target(self.query_one("#target", Input).value)
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


class ActionLogScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,l", "dismiss", "Close")]
    DEFAULT_CSS = """
    ActionLogScreen { align: center middle; }
    ActionLogScreen > VerticalScroll {
        width: 100%; height: 90%; background: $panel; border: round $primary; padding: 0 1;
    }
    """

    def __init__(self, entries: list[tuple[float, str, str, str, str | None]]) -> None:
        """``entries`` is the app's own log, not a copy: an action that ends while it is open shows up."""
        super().__init__()
        self.entries = entries

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Label(Text("Action log (newest first; Escape closes)", style="bold"))
            yield Static(self._text(), id="entries")

    def on_action_logged(self, message: ActionLogged) -> None:
        self.entries_changed()

    def entries_changed(self) -> None:
        self.query_one("#entries", Static).update(self._text())

    def _text(self) -> Content:
        lines = [Content("No actions yet.")] if not self.entries else []
        for when, domain, action, result, message in reversed(self.entries):
            style = {"ok": "$success", "failed": "$error"}.get(result, "$warning")
            lines.append(Content.assemble(
                time.strftime("%H:%M:%S ", time.localtime(when)), (f"{result:9}", f"bold {style}"),
                f" {action:10} {printable(domain)}", f"  {printable(message)}" if message else "",
            ))
        return Content("\n").join(lines)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss()



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

    def __init__(self, domains: list[Domain], backend, on_result: Callable[[Domain, str, str | None, dict], None],
                 on_running: Callable[[Domain, bool], None] | None = None) -> None:
        super().__init__()
        self.domains = sorted(domains, key=lambda d: (d.mem_kib, d.name))
        self.backend = backend
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
            yield Label(Text(f"Evacuate this host: migrate its {count} domU{'s' if count != 1 else ''}, "
                             "one after another"),
                        classes="title")
            yield Label("Target host name or address (Enter checks every domain first):")
            yield Input(id="target", max_length=NAME_INPUT)
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
            target = _migration_target(self.query_one("#target", Input).value)
        except BackendError as error:
            self.show_error(str(error))
            return
        if target != self.checked_target:
            self.run_worker(self._plan(target), group="evacuate-plan", exclusive=True)
            return
        if not self.movable:
            self.show_error(f"no domain passed its checks for {target}: nothing to move")
            return
        staying = [d.name for d in self.domains if d not in self.movable]
        question = (f"Migrate {len(self.movable)} domain{'s' if len(self.movable) != 1 else ''} to {target}, "
                    f"one after another: {name_list([d.name for d in self.movable])}?")
        if staying:
            question += f" {name_list(staying)} stay{'s' if len(staying) == 1 else ''} here (checks failed)."

        def answered(yes: bool | None) -> None:
            if yes:
                self.evacuate(target)

        self.app.push_screen(ConfirmScreen(question), answered)

    async def _plan(self, target: str) -> None:
        self.show_error("")
        self.movable = []
        for index, domain in enumerate(self.domains, 1):
            self.state[domain.key] = f"checking ({index} of {len(self.domains)})…"
            self._show_rows()
            try:
                checks = await self.backend.migrate_preflight(domain.name, target)
            except BackendError as error:
                self.state[domain.key] = f"stays: {error}"
                continue
            failed = [c for c in checks if c.ok is False]
            if failed:
                self.state[domain.key] = "stays: ✗ " + "; ".join(f"{c.name} ({c.detail})" for c in failed)
            else:
                self.state[domain.key] = f"→ {target} ✓"
                self.movable.append(domain)
        self.checked_target = target
        self._show_rows()
        count = len(self.movable)
        self.query_one("#ok", Button).label = "Evacuate" if count else "Check"
        self.show_error(f"The plan: {count} of {len(self.domains)} move, in this order. Enter asks before the first "
                        "moves." if count else "No domain passed its checks: nothing would move.")

    def evacuate(self, target: str) -> None:
        self._worker = self.run_worker(self._evacuate(target), group="evacuate", exclusive=True)

    async def _evacuate(self, target: str) -> None:
        self.running = True
        self.query_one("#ok", Button).disabled = True
        self.query_one("#cancel", Button).label = "Stop"
        carry_on = self.query_one("#carry-on", Checkbox).value
        arguments = {"target": target, "live": True, "evacuate": True, "carry_on": carry_on}
        for domain in self.movable:
            self.state[domain.key] = "waiting"
        failed = 0
        for domain in self.movable:
            if self.stopping:
                break
            if self.on_running is not None:
                self.on_running(domain, True)
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
        if event.button.id == "cancel":
            await self.action_cancel()
        elif event.button.id == "ok":
            self.submit()
