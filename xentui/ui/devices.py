"""A running guest's disks and NICs (list, attach, detach) and starting a guest from the host's configs.

Each dialog lists what the backend says, in a worker (over ssh, a listing takes a round trip), checks what the
operator typed (`xentui.validate`, and against the guest's own devices) and returns a request; the app runs it
through the action runner (audited, one action per domain at a time). The backend checks the rest (the path on
the host, the other guests' disks, the host's bridges) before anything changes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, OptionList
from textual.widgets.option_list import Option

from xentui.backends.base import BackendError, InvalidArgument
from xentui.backends.devices import (
    DISK_FORMATS,
    AttachedDisk,
    AttachedNic,
    DiskSpec,
    GuestConfig,
    Snapshot,
    SnapshotSource,
    check_disk_attach,
    check_snapshot_plan,
    free_vdevs,
    vdev_prefix,
)
from xentui.model import Domain
from xentui.textsafe import printable
from xentui.ui.dialogs import NAME_INPUT, PATH_INPUT, SHORT_INPUT, ConfirmScreen, FormScreen, _facts
from xentui.ui.widgets import PickList, TickBox
from xentui.units import human_kib
from xentui.validate import check_bridge_name, check_host_path, check_mac, check_vdev, parse_memory


@dataclass(frozen=True)
class DiskAttach:
    spec: DiskSpec


@dataclass(frozen=True)
class DiskDetach:
    disk: AttachedDisk


@dataclass(frozen=True)
class NicAttach:
    bridge: str
    mac: str | None


@dataclass(frozen=True)
class NicDetach:
    nic: AttachedNic


@dataclass(frozen=True)
class SnapshotTake:
    tag: str
    cow_bytes: int


@dataclass(frozen=True)
class SnapshotRemove:
    snapshot: Snapshot


@dataclass(frozen=True)
class CreateRequest:
    ref: str
    label: str
    paused: bool
    console: bool


ItemT = TypeVar("ItemT")


class _ListingScreen(FormScreen, Generic[ItemT]):
    """A form under a list the backend gives (in a worker): the list, or why it cannot be read."""

    DEFAULT_CSS = """
    _ListingScreen OptionList { max-height: 8; }
    _ListingScreen .row { height: auto; }
    _ListingScreen .row Input { width: 1fr; }
    _ListingScreen .row Input#format { width: 12; }
    _ListingScreen Label { width: 100%; }
    """
    AUTO_FOCUS = "Input"
    what = "devices"

    def __init__(self, refused: str | None) -> None:
        super().__init__()
        self.refused = refused  # why changes are refused here (--read-only, the backend cannot): shown, not hidden
        self.items: list[ItemT] | None = None  # None: still being listed

    def listing(self) -> Label:
        return Label(Text(f"Reading the {self.what}…"), id="listing")

    def refusal_lines(self) -> ComposeResult:
        if self.refused:
            yield Label(Text(f"Changes refused: {printable(self.refused)}"), classes="problem", id="refused")

    def on_mount(self) -> None:
        if self.refused:
            for button_id in ("#ok", "#detach"):
                for button in self.query(button_id):
                    button.disabled = True
        self.list_items()

    async def fetch(self) -> list[ItemT]:
        raise NotImplementedError

    def option(self, item: ItemT) -> Text:
        raise NotImplementedError

    def listed(self) -> None:
        """The items are in: a subclass fills its suggestions."""

    @work(exclusive=True, group="device-list")
    async def list_items(self) -> None:
        listing = self.query_one("#listing", Label)
        try:
            items = await self.fetch()
        except Exception as error:  # BackendError (a host that does not answer) or a backend bug: said
            self.items = []
            listing.update(Text(f"Cannot list the {self.what}: {printable(str(error))}"))
            listing.add_class("problem")
            self.listed()
            return
        self.items = items
        if not items:
            listing.update(Text(f"No {self.what}."))
        else:
            picker = PickList(*[Option(self.option(item), id=str(i)) for i, item in enumerate(items)], id="items")
            await self.query_one(Vertical).mount(picker, after=listing)
            await listing.remove()
        self.listed()

    def highlighted(self) -> ItemT | None:
        pickers = self.query("#items")
        if not pickers or self.items is None:
            return None
        index = pickers.first(OptionList).highlighted
        return None if index is None else self.items[index]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Detach here; OK and Cancel are the form's (Textual runs its handler after this one by itself: a
        call to it here as well submitted every click twice)."""
        if event.button.id == "detach":
            event.prevent_default()
            self.detach()

    def detach(self) -> None:
        raise NotImplementedError

    def ask_then(self, question: str, result: object) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(result)

        self.app.push_screen(ConfirmScreen(question), answered)


class DisksScreen(_ListingScreen[AttachedDisk]):
    """A guest's disks; attach one (a path or an LV on the host, a free vdev suggested), detach the one picked."""

    what = "disks"

    def __init__(self, domain: Domain, fetch: Callable[[], Awaitable[list[AttachedDisk]]], refused: str | None,
                 io_rates: dict[str, float] | None = None) -> None:
        super().__init__(refused)
        self.domain, self._fetch = domain, fetch
        self.io_rates = io_rates or {}  # vdev -> requests/s at the last refresh: a disk in use, for the warning

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Disks of {printable(self.domain.name)}"), classes="title")
            yield self.listing()
            yield Label("Attach a disk: its path on the host (a file, an LV, a device)")
            yield Input(placeholder="/var/lib/xen/images/data.img or /dev/vg0/data", id="path",
                        max_length=PATH_INPUT)
            with Horizontal(classes="row"):
                yield Input(placeholder="vdev, e.g. xvdb", id="vdev", max_length=SHORT_INPUT)
                yield Input(value="raw", placeholder="format", id="format", max_length=SHORT_INPUT)
                yield TickBox("read-only", id="readonly")
            yield from self.refusal_lines()
            yield Label("", classes="problem")
            yield Horizontal(Button("Cancel", id="cancel"), Button("Detach picked", id="detach", variant="warning"),
                             Button("Attach", id="ok", variant="primary"), classes="buttons")

    async def fetch(self) -> list[AttachedDisk]:
        return await self._fetch()

    def option(self, disk: AttachedDisk) -> Text:
        kind = "cdrom" if disk.cdrom else disk.format
        return Text(f"{disk.vdev:<6} {disk.backend:<6} {disk.mode}  {kind:<6} {_tail(printable(disk.path), 40)}")

    def listed(self) -> None:
        vdev = self.query_one("#vdev", Input)
        if not vdev.value and self.items is not None:
            default = "vd" if self.domain.type.value == "kvm" else "xvd"
            free = free_vdevs((d.vdev for d in self.items), vdev_prefix(self.items, default), 1)
            vdev.value = free[0] if free else ""

    def submit(self) -> None:
        if self.refused:
            self.show_error(f"refused: {self.refused}")
            return
        if self.items is None:
            self.show_error("still reading the guest's disks")
            return
        form = self.query_one("#format", Input).value.strip().lower() or "raw"
        try:
            path = check_host_path(self.query_one("#path", Input).value)
            vdev = check_vdev(self.query_one("#vdev", Input).value)
            if form not in DISK_FORMATS:
                raise InvalidArgument(f"{form!r} is not a disk format: use one of {', '.join(DISK_FORMATS)}")
            spec = check_disk_attach(self.domain.name, DiskSpec(path, vdev, self.query_one("#readonly", Checkbox).value,
                                                                form), self.items, {})
        except InvalidArgument as error:
            self.show_error(str(error))
            return
        self.dismiss(DiskAttach(spec))

    def detach(self) -> None:
        disk = self.highlighted()
        if disk is None:
            self.show_error("pick the disk to detach in the list")
            return
        warnings = []
        if disk.vdev in ("xvda", "vda", "sda", "hda") or (self.items and disk is self.items[0]):
            warnings.append("it is the guest's first disk, most likely its root filesystem: the guest may hang")
        rate = self.io_rates.get(disk.vdev)
        if rate:
            warnings.append(f"it did {rate:.0f} requests/s at the last refresh: it is in use")
        warning = (" Careful: " + "; ".join(warnings) + ".") if warnings else ""
        self.ask_then(
            f"Detach {disk.vdev} ({printable(disk.path) or 'empty'}) from {printable(self.domain.name)}? If the guest "
            f"still has it mounted or in use, what it was writing is lost: unmount it in the guest first.{warning}",
            DiskDetach(disk))


class NicsScreen(_ListingScreen[AttachedNic]):
    """A guest's NICs; attach one to a bridge the host has (MAC optional), detach the one picked."""

    what = "NICs"

    def __init__(self, domain: Domain, fetch: Callable[[], Awaitable[list[AttachedNic]]],
                 bridges: Callable[[], Awaitable[list[str]]], refused: str | None) -> None:
        super().__init__(refused)
        self.domain, self._fetch, self._bridges = domain, fetch, bridges
        self.bridges: list[str] | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Network interfaces of {printable(self.domain.name)}"), classes="title")
            yield self.listing()
            yield Label("Attach a NIC: the bridge, and a MAC (empty: one is made)", id="bridges")
            with Horizontal(classes="row"):
                yield Input(placeholder="bridge, e.g. xenbr0", id="bridge", max_length=NAME_INPUT)
                yield Input(placeholder="MAC (optional)", id="mac", max_length=SHORT_INPUT)
            yield from self.refusal_lines()
            yield Label("", classes="problem")
            yield Horizontal(Button("Cancel", id="cancel"), Button("Detach picked", id="detach", variant="warning"),
                             Button("Attach", id="ok", variant="primary"), classes="buttons")

    async def fetch(self) -> list[AttachedNic]:
        nics = await self._fetch()
        try:
            self.bridges = await self._bridges()
        except BackendError:
            self.bridges = None
        return nics

    def option(self, nic: AttachedNic) -> Text:
        return Text(f"{nic.devid:<3} {nic.mac:<17}  {printable(nic.bridge or '-'):<10} {printable(nic.ifname)}")

    def listed(self) -> None:
        if self.bridges:
            self.query_one("#bridges", Label).update(Text(
                f"Attach a NIC: the bridge (this host's: {printable(', '.join(self.bridges))}), and a MAC "
                "(empty: one is made)"))
            bridge = self.query_one("#bridge", Input)
            if not bridge.value:
                bridge.value = self.bridges[0]

    def submit(self) -> None:
        if self.refused:
            self.show_error(f"refused: {self.refused}")
            return
        try:
            bridge = check_bridge_name(self.query_one("#bridge", Input).value)
            mac = check_mac(self.query_one("#mac", Input).value)
        except InvalidArgument as error:
            self.show_error(str(error))
            return
        if self.bridges is not None and bridge not in self.bridges:
            self.show_error(f"there is no bridge {bridge!r} on this host (its bridges: "
                            f"{', '.join(self.bridges) or 'none'})")
            return
        if mac is not None and any(n.mac.lower() == mac for n in self.items or ()):
            self.show_error(f"{mac} is already one of {self.domain.name}'s NICs")
            return
        self.dismiss(NicAttach(bridge, mac))

    def detach(self) -> None:
        nic = self.highlighted()
        if nic is None:
            self.show_error("pick the NIC to detach in the list")
            return
        self.ask_then(f"Detach NIC {nic.devid} ({nic.mac}, on {printable(nic.bridge or '?')}) from "
                      f"{printable(self.domain.name)}? The guest loses that link at once.", NicDetach(nic))


COPY_BYTES_S = 200 << 20
"""A plain copy's pace, for the pause it will cost said before: a cautious figure for a dom0's local disk."""


class SnapshotScreen(_ListingScreen[Snapshot]):
    """Snapshot a guest's disks while it is paused (the LVM recipe: pause, lvcreate -s each LV, unpause; a file
    copied meanwhile), with what each disk will cost said first; its snapshots, to remove one."""

    what = "snapshots"

    def __init__(self, domain: Domain, sources: Callable[[], Awaitable[list[SnapshotSource]]],
                 fetch: Callable[[], Awaitable[list[Snapshot]]], refused: str | None, now: float) -> None:
        super().__init__(refused)
        self.domain, self._sources, self._fetch = domain, sources, fetch
        self.sources: list[SnapshotSource] | None = None
        self.tag = time.strftime("snap-%Y%m%d-%H%M", time.localtime(now))

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Snapshot {printable(self.domain.name)} while it is paused"), classes="title")
            yield Label(Text("Reading its disks…"), id="sources", classes="facts")
            yield self.listing()
            with Horizontal(classes="row"):
                yield Input(value=self.tag, placeholder="tag", id="tag", max_length=NAME_INPUT)
                yield Input(value="1G", placeholder="copy-on-write size per LV", id="cow", max_length=SHORT_INPUT)
            yield from self.refusal_lines()
            yield Label("", classes="problem")
            yield Horizontal(Button("Cancel", id="cancel"), Button("Remove picked", id="detach", variant="warning"),
                             Button("Take", id="ok", variant="primary"), classes="buttons")

    async def fetch(self) -> list[Snapshot]:
        self.sources = await self._sources()
        self.query_one("#sources", Label).update(Text("\n".join(_source_line(s) for s in self.sources) or "no disks"))
        return await self._fetch()

    def option(self, snapshot: Snapshot) -> Text:
        size = human_kib(snapshot.size_bytes // 1024) if snapshot.size_bytes else "?"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(snapshot.created)) if snapshot.created else ""
        return Text(f"{snapshot.origin or '-':<6} {when:<16} {size:>6}  {_tail(printable(snapshot.name), 40)}")

    def submit(self) -> None:
        if self.refused:
            self.show_error(f"refused: {self.refused}")
            return
        if self.sources is None:
            self.show_error("still reading the guest's disks")
            return
        tag = self.query_one("#tag", Input).value.strip()
        try:
            cow_bytes = parse_memory(self.query_one("#cow", Input).value) * 1024
            taking = check_snapshot_plan(self.sources, cow_bytes, tag)
        except InvalidArgument as error:
            self.show_error(str(error))
            return
        slow = sum((s.size_bytes or 0) for s in taking if s.kind == "file" and not s.reflink)
        if any(s.kind == "libvirt" for s in taking):
            pause = "as long as QEMU takes to write its memory and disks' state (seconds)"
        elif slow:
            pause = f"about {slow / COPY_BYTES_S:.0f} s (a full copy of {human_kib(slow // 1024)})"
        else:
            pause = "well under a second"

        def how(source: SnapshotSource) -> str:
            if source.kind == "lv":
                return f"an LVM snapshot, {human_kib(cow_bytes // 1024)} copy-on-write in {source.group}"
            if source.kind == "libvirt":
                return "libvirt's own snapshot"
            return "a copy" + (" sharing its blocks" if source.reflink else "")

        plan = "; ".join(f"{s.vdev}: {how(s)}" for s in taking)
        self.ask_then(f"Pause {printable(self.domain.name)}, take {plan}, then unpause it? It stays paused for "
                      f"{pause}.", SnapshotTake(tag, cow_bytes))

    def detach(self) -> None:
        snapshot = self.highlighted()
        if snapshot is None:
            self.show_error("pick the snapshot to remove in the list")
            return
        self.ask_then(f"Remove the snapshot {printable(snapshot.name)} of {printable(self.domain.name)}? What it "
                      "kept is gone.", SnapshotRemove(snapshot))


def _source_line(source: SnapshotSource) -> str:
    size = human_kib(source.size_bytes // 1024) if source.size_bytes else "?"
    if source.kind == "lv":
        free = human_kib(source.group_free_bytes // 1024) if source.group_free_bytes is not None else "?"
        how = f"LV, {free} free in {source.group}"
    elif source.kind == "file":
        how = "file, copied sharing its blocks" if source.reflink else "file, copied whole while paused"
    elif source.kind == "libvirt":
        how = "libvirt's own snapshot"
    else:
        how = f"not taken: {source.reason}"
    return f"{source.vdev:<6} {size:>6}  {how}  {_tail(printable(source.path), 30)}"


class CreateScreen(_ListingScreen[GuestConfig]):
    """The host's guest configs, with what each says; start one (paused, straight into its console), or a
    config path typed in."""

    DEFAULT_CSS = """
    CreateScreen OptionList { max-height: 10; }
    CreateScreen .row TickBox { margin-right: 1; }
    """
    AUTO_FOCUS = "#ok"  # the list takes the focus once it is there
    what = "guest configs"

    def __init__(self, where: str, fetch: Callable[[], Awaitable[list[GuestConfig]]], refused: str | None) -> None:
        super().__init__(refused)
        self.where, self._fetch = where, fetch

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Start a guest{printable(self.where)}"), classes="title")
            yield self.listing()
            yield Label("", id="about", classes="facts")
            yield Input(placeholder="or a config file's path on the host", id="path", max_length=PATH_INPUT)
            yield from self.refusal_lines()
            yield Label("", classes="problem")
            with Horizontal(classes="row buttons"):  # one row: an 80x24 terminal has no room for two
                yield TickBox("start paused", id="paused")
                yield TickBox("open console", id="console")
                yield Button("Cancel", id="cancel")
                yield Button("Start", id="ok", variant="primary")

    async def fetch(self) -> list[GuestConfig]:
        """By name, the ones that cannot be read last."""
        return sorted(await self._fetch(), key=lambda c: (c.problem is not None, c.label.lower(), c.ref))

    def option(self, config: GuestConfig) -> Text:
        if config.problem:
            return Text(f"✗ {printable(config.ref)}: cannot be read")
        memory = human_kib(config.memory_kib) if config.memory_kib else "?"
        if config.maxmem_kib and config.maxmem_kib != config.memory_kib:
            memory += f"/{human_kib(config.maxmem_kib)}"
        state = "  runs now" if config.running else ""
        return Text(f"{printable(config.label)[:28]:<28} {config.type or '?':<4} {memory:<11} "
                    f"{config.vcpus or '?'} vCPU{state}")

    def listed(self) -> None:
        pickers = self.query("#items")
        if pickers:
            pickers.first(OptionList).focus()
            self.about(self.highlighted())

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.about(self.highlighted())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.submit()

    def about(self, config: GuestConfig | None) -> None:
        label = self.query_one("#about", Label)
        if config is None:
            label.update("")
        elif config.problem:
            label.update(Text(printable(config.problem)))
        else:
            label.update(_facts(("file", printable(config.ref)),
                                ("disks", printable(", ".join(config.disks)) or "none"),
                                ("NICs", printable(", ".join(config.nics)) or "none")))

    def submit(self) -> None:
        if self.refused:
            self.show_error(f"refused: {self.refused}")
            return
        typed = self.query_one("#path", Input).value
        try:
            if typed.strip():
                ref = check_host_path(typed, what="a guest config")
                label = ref
            else:
                config = self.highlighted()
                if config is None:
                    raise InvalidArgument("still reading the configs" if self.items is None
                                          else "pick a config in the list, or type a config file's path")
                if config.problem:
                    raise InvalidArgument(f"{config.ref} cannot be started: {config.problem}")
                if config.running:
                    raise InvalidArgument(f"a domain named {config.name} exists on this host already: the toolstack "
                                          "would refuse a second one")
                ref, label = config.ref, config.label
        except InvalidArgument as error:
            self.show_error(str(error))
            return
        self.dismiss(CreateRequest(ref, label, self.query_one("#paused", Checkbox).value,
                                   self.query_one("#console", Checkbox).value))


def _tail(path: str, width: int) -> str:
    """A path cut to ``width`` from the left: its end (the file's name) is what tells two disks apart."""
    if not path:
        return "(empty)"
    return path if len(path) <= width else "…" + path[-(width - 1):]


def disk_rates(domain: Domain, rates: object) -> dict[str, float]:
    """vdev -> requests/s of this domain's disks at the last refresh (for the detach warning)."""
    try:
        vbds = rates[domain.key].vbds  # type: ignore[index]
    except (KeyError, TypeError, AttributeError):
        return {}
    names = {vbd.devid: vbd.device for vbd in domain.vbds}
    return {names[devid]: r.rd_reqs_s + r.wr_reqs_s for devid, r in vbds.items() if devid in names}

