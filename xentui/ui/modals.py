"""The action modals: each validates what the operator typed before anything reaches the backend.

The shared frame is in `dialogs`, migrate and evacuate in `migrate`; every dialog is opened from here."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from xentui.backends.base import BackendError, SavedImage, SaveTarget
from xentui.backends.savefile import file_of
from xentui.model import Domain, Host
from xentui.textsafe import name_list, printable
from xentui.ui.dialogs import (
    NAME_INPUT,
    PATH_INPUT,
    SHORT_INPUT,
    ConfirmScreen,
    DialogScreen,
    FormScreen,
    _facts,
)
from xentui.ui.messages import ActionLogged
from xentui.ui.migrate import EvacuateScreen, MigrateScreen, Migrator
from xentui.ui.widgets import PickList, TickBox
from xentui.units import human_kib
from xentui.validate import (
    SCHED_WEIGHT_DEFAULT,
    SYSRQ_KEYS,
    check_memory_ceiling,
    check_memory_target,
    check_sched,
    check_vcpu_count,
    format_kib,
    parse_memory,
    parse_whole,
)
from xentui.xentop_columns import maxmem_text

# the dialogs of the other modules too: the app opens every one of them from here
__all__ = [
    "ActionLogScreen", "ConfirmScreen", "DestroyScreen", "DialogScreen", "EvacuateScreen", "FormScreen",
    "MemoryScreen", "MigrateScreen", "Migrator", "QuitScreen", "RestoreScreen", "SaveFiles", "SaveRequest",
    "SaveScreen", "SchedScreen", "SysrqScreen", "VcpuScreen", "default_save_path", "quit_consequence",
]

class MemoryScreen(FormScreen):
    """mem-set (the balloon target) or mem-max (the ceiling mem-set may reach)."""


    def __init__(self, domain: Domain, host: Host, *, ceiling: bool) -> None:
        super().__init__()
        self.domain, self.host, self.ceiling = domain, host, ceiling

    def compose(self) -> ComposeResult:
        d = self.domain
        what = "mem-max: the ceiling mem-set may reach" if self.ceiling else "mem-set: the balloon target"
        ceiling = d.mem_ceiling_kib
        maxmem = maxmem_text(ceiling, human_kib)
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


class SaveFiles(Protocol):
    """What the save dialog and the restore picker may ask of a backend: its own checks of an image's path and
    the images in a directory, where it saves (the xl backend: on its dom0, over ssh too). Awaited in workers,
    never on the event loop."""

    async def check_save_target(self, path: Path, *, overwrite: bool) -> SaveTarget: ...

    async def saved_images(self, directory: Path) -> list[SavedImage]: ...


class SaveScreen(FormScreen):

    def __init__(self, domain: Domain, path: Path, backend: SaveFiles) -> None:
        super().__init__()
        self.domain, self.path, self.backend = domain, path, backend
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
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # ~name of no user here (Python cannot tell whose home it is)
            self.show_error(f"{printable(text.split('/', 1)[0])}: no such user here, so no home directory")
            return
        if not path.is_absolute():  # relative to the save directory, where restore looks: never to xentui's cwd
            path = self.path.parent / path
        self.check(path, self.query_one("#keep", Checkbox).value)

    @work(exclusive=True, group="save-check")
    async def check(self, path: Path, keep: bool) -> None:
        """The backend's own checks, where the image goes, before the guest is stopped: no device, link,
        directory, over-long name; and whether an earlier image is there to overwrite."""
        try:
            target = await self.backend.check_save_target(path, overwrite=True)
        except BackendError as error:
            self.show_error(str(error).removeprefix("save: "))
            return
        except Exception as error:  # a backend bug must not take the screen down
            self.show_error(f"{type(error).__name__}: {error}")
            return
        if target.existing_bytes is not None and self._confirmed_overwrite != path:
            def answered(yes: bool | None) -> None:
                if yes:
                    self._confirmed_overwrite = path
                    self.dismiss(SaveRequest(path, keep, overwrite=True))
                else:
                    self.show_error(f"{printable(str(path))} exists: choose another name, or confirm to overwrite it")

            self.app.push_screen(ConfirmScreen(
                f"{printable(str(path))} already exists ({file_of(target.existing_bytes)}). Overwrite it? The old "
                "one is replaced only once the new image is written."), answered)
            return
        self.dismiss(SaveRequest(path, keep, overwrite=False))


class RestoreScreen(FormScreen):
    """Pick a saved image from the save directory, as the backend lists it where it saves (in a worker)."""

    DEFAULT_CSS = "RestoreScreen OptionList { max-height: 16; }"
    # Enter while the images are being listed says so, instead of ticking "start it paused"; the list, once
    # there, takes the focus
    AUTO_FOCUS = "#ok"

    def __init__(self, save_dir: Path, backend: SaveFiles) -> None:
        super().__init__()
        self.save_dir, self.backend = save_dir, backend
        self.images: list[SavedImage] | None = None  # None: still being listed
        self.files: list[Path] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Restore a saved domain from {printable(str(self.save_dir))}"), classes="title")
            yield Label(Text(f"Reading {printable(str(self.save_dir))}…"), id="listing")
            yield TickBox("start it paused", id="paused")
            yield Label("", classes="problem")
            yield self.buttons("Restore")

    def on_mount(self) -> None:
        self.list_images()

    @work(exclusive=True, group="restore-list")
    async def list_images(self) -> None:
        listing = self.query_one("#listing", Label)
        try:
            images = await self.backend.saved_images(self.save_dir)
        except Exception as error:  # BackendError (ssh cannot reach the host), or a backend bug: said, not raised
            self.images = []
            listing.update(Text(f"Cannot list {printable(str(self.save_dir))}: {printable(str(error))}"))
            listing.add_class("problem")
            return
        self.images = [image for image in images if not _is_console_log(image.name)]
        self.files = [image.path for image in self.images]
        if not self.images:
            listing.update(Text(f"No saved images in {printable(str(self.save_dir))} (--save-dir changes it)."))
            listing.add_class("problem")
            return
        options = [
            Option(Text(f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(image.mtime))}  "
                        f"{human_kib(image.size // 1024):>6}  {printable(image.name)}"), id=str(i))
            for i, image in enumerate(self.images)
        ]
        picker = PickList(*options, id="files")
        await self.query_one(Vertical).mount(picker, after=listing)
        await listing.remove()
        picker.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.submit()

    def submit(self) -> None:
        if self.images is None:
            self.show_error(f"still reading {printable(str(self.save_dir))}")
            return
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



