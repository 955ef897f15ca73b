"""The one async interface every backend implements (sim, xl, libvirt, replay).

The UI and the batch mode talk only to `Backend`. Every method is a coroutine; blocking
libraries run in threads, tools run through ``asyncio.create_subprocess_exec``.
Domains are named by their name, which is unique on a host (``xl`` and ``virsh`` accept it).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from xentui.backends.devices import (
    AttachedDisk,
    AttachedNic,
    DiskSpec,
    GuestConfig,
    Snapshot,
    SnapshotResult,
    SnapshotSource,
)
from xentui.backends.host import LocalHost
from xentui.backends.savefile import SavedImage, SaveTarget, save_target, saved_images
from xentui.console.channel import ConsoleChannel
from xentui.errors import (
    BackendError,
    BackendUnavailable,
    ConsoleBusy,
    DomainNotFound,
    InvalidArgument,
    ReadOnlyError,
    Unsupported,
)
from xentui.model import Domain, Host, Sample

__all__ = [
    "Action",
    "AttachedDisk",
    "AttachedNic",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "Capabilities",
    "ConsoleBusy",
    "ConsoleChannel",
    "DiskSpec",
    "DomainNotFound",
    "GuestConfig",
    "InvalidArgument",
    "MigratePhase",
    "MigrateProgress",
    "PreflightCheck",
    "ReadOnlyError",
    "SaveTarget",
    "SavedImage",
    "Snapshot",
    "SnapshotResult",
    "SnapshotSource",
    "Unsupported",
]


class Action(enum.StrEnum):
    MEM_SET = "mem-set"
    MEM_MAX = "mem-max"
    VCPU_SET = "vcpu-set"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    SAVE = "save"
    RESTORE = "restore"
    SYSRQ = "sysrq"
    MIGRATE = "migrate"
    SHUTDOWN = "shutdown"
    REBOOT = "reboot"
    DESTROY = "destroy"
    SCHED = "sched"
    CONSOLE = "console"
    CONSOLE_WRITE = "console-write"
    CREATE = "create"
    DISK_ATTACH = "block-attach"
    DISK_DETACH = "block-detach"
    NIC_ATTACH = "network-attach"
    NIC_DETACH = "network-detach"
    SNAPSHOT = "snapshot"


# how a refusal names an action, where its id is not the word an operator would use
ACTION_WORDS = {
    Action.SCHED: "scheduler change",
    Action.CONSOLE_WRITE: "typing into the console",
    Action.DISK_ATTACH: "attaching a disk",
    Action.DISK_DETACH: "detaching a disk",
    Action.NIC_ATTACH: "attaching a NIC",
    Action.NIC_DETACH: "detaching a NIC",
}


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What this backend can do on this host; what it cannot, with the reason to show the operator."""

    unsupported: dict[Action, str] = field(default_factory=dict)

    def supports(self, action: Action) -> bool:
        return action not in self.unsupported

    def why_not(self, action: Action) -> str | None:
        return self.unsupported.get(action)

    def without(self, actions: dict[Action, str]) -> Capabilities:
        return Capabilities({**self.unsupported, **actions})


class MigratePhase(enum.StrEnum):
    PREFLIGHT = "preflight"
    COPYING = "copying"  # live pre-copy rounds, the guest still runs
    STOP_AND_COPY = "stop-and-copy"  # the guest is paused for the last dirty pages
    DONE = "done"


@dataclass(frozen=True, slots=True)
class MigrateProgress:
    phase: MigratePhase
    fraction: float  # 0.0 .. 1.0 of the whole migration
    message: str
    bytes_sent: int = 0
    bytes_total: int = 0


@dataclass(frozen=True, slots=True)
class PreflightCheck:
    """One thing checked before a migration. ``ok=None`` means the backend could not tell."""

    name: str
    ok: bool | None
    detail: str


class Backend(abc.ABC):
    """A host (or the simulation of one) that xentui watches and acts on."""

    name: str = "backend"
    activity: str | None = None
    """What the backend is waiting on right now, for the operator ("xl list -l"), when it knows: the screen says
    it while the first sample is slow to come. None: nothing in particular."""
    finished: str | None = None
    """Set, for the operator, once this backend has no more samples to give (a replay that played its
    last recorded iteration): read it after each `sample`; then stop polling and keep what is shown.
    None while samples keep coming: always for a live host."""

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    async def sample(self) -> Sample:
        """Host and every domain, with cumulative counters and a monotonic timestamp."""

    @abc.abstractmethod
    async def host_info(self) -> Host: ...

    # --- actions: each refuses by default, with the reason `capabilities` gives; a backend overrides what it does

    def refusal(self, action: Action) -> Unsupported:
        """What an action this backend does not do raises."""
        reason = self.capabilities.why_not(action) or f"the {self.name} backend cannot do that"
        return Unsupported(f"{ACTION_WORDS.get(action, action.value)}: {reason}")

    async def mem_set(self, domain: str, kib: int) -> None:
        """Set the balloon target. Refused above maxmem: raise maxmem first."""
        raise self.refusal(Action.MEM_SET)

    async def mem_max(self, domain: str, kib: int) -> None:
        """Set the ceiling mem-set may reach. Refused below the current target."""
        raise self.refusal(Action.MEM_MAX)

    async def vcpu_set(self, domain: str, count: int, *, allow_overcommit: bool = False) -> None:
        raise self.refusal(Action.VCPU_SET)

    async def pause(self, domain: str) -> None:
        raise self.refusal(Action.PAUSE)

    async def unpause(self, domain: str) -> None:
        raise self.refusal(Action.UNPAUSE)

    async def save(
        self, domain: str, path: Path, *, keep_running: bool = False, overwrite: bool = False
    ) -> None:
        """Save the domain's memory to ``path``; it stops unless ``keep_running`` (``xl save -c``)."""
        raise self.refusal(Action.SAVE)

    async def restore(self, path: Path, *, paused: bool = False) -> str:
        """Bring a saved domain back; returns its name."""
        raise self.refusal(Action.RESTORE)

    # where save writes and restore looks: this machine, in a thread; a backend that saves elsewhere (xl, on its
    # host) overrides the three. The screen asks them before a save or restore, never on the event loop.

    async def make_save_dir(self, directory: Path) -> None:
        """The save directory, made with its missing parents where this backend saves. OSError when it cannot
        be (FileExistsError: a file is in the way)."""
        await LocalHost().make_dirs(str(directory))

    async def check_save_target(self, path: Path, *, overwrite: bool) -> SaveTarget:
        """`save`'s own checks of ``path``, where the image would go, before anything stops: InvalidArgument
        saying why not; else the path and the size of the earlier image an overwrite would replace."""
        return await save_target(LocalHost(), path, overwrite=overwrite)

    async def saved_images(self, directory: Path) -> list[SavedImage]:
        """The images a restore may offer from ``directory``, where this backend saves, newest first (name,
        path, size, mtime); [] when the directory cannot be read."""
        return await saved_images(LocalHost(), directory)

    async def sysrq(self, domain: str, key: str) -> None:
        raise self.refusal(Action.SYSRQ)

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]:
        """What can be known before migrating: reachability, versions, CPU, memory, storage."""
        raise self.refusal(Action.MIGRATE)

    async def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]:
        """Progress events until DONE. Closing the iterator early cancels where the backend allows."""
        raise self.refusal(Action.MIGRATE)
        yield  # pragma: no cover - an async generator, as every backend's is

    async def shutdown(self, domain: str) -> None:
        raise self.refusal(Action.SHUTDOWN)

    async def reboot(self, domain: str) -> None:
        raise self.refusal(Action.REBOOT)

    async def destroy(self, domain: str) -> None:
        raise self.refusal(Action.DESTROY)

    async def set_sched(self, domain: str, *, weight: int | None = None, cap: int | None = None) -> None:
        """Credit scheduler weight (1..65535) and cap (% of one CPU, 0 = none); None leaves it."""
        raise self.refusal(Action.SCHED)

    # --- a running guest's devices, and starting guests. Listing changes nothing (allowed --read-only); the
    # checks every backend makes before it changes anything are in `xentui.backends.devices`.

    async def disks(self, domain: str) -> list[AttachedDisk]:
        """The guest's disks: vdev, what backs it on the host, backend, mode."""
        raise Unsupported(f"listing disks: {self.capabilities.why_not(Action.DISK_ATTACH) or self.name + ' cannot'}")

    async def disk_attach(self, domain: str, spec: DiskSpec) -> None:
        """Hot-plug a disk into a running guest. Refused (InvalidArgument, nothing changed): a path missing on
        the host, a vdev the guest has, a path another running guest holds read-write (`check_disk_attach`)."""
        raise self.refusal(Action.DISK_ATTACH)

    async def disk_detach(self, domain: str, vdev: str) -> None:
        """Unplug a disk (by vdev, or devid); the guest is asked to let go of it."""
        raise self.refusal(Action.DISK_DETACH)

    async def nics(self, domain: str) -> list[AttachedNic]:
        """The guest's NICs: devid, MAC, bridge, backend."""
        raise Unsupported(f"listing NICs: {self.capabilities.why_not(Action.NIC_ATTACH) or self.name + ' cannot'}")

    async def bridges(self) -> list[str]:
        """The bridges of the host a NIC can be attached to."""
        return []

    async def nic_attach(self, domain: str, bridge: str, mac: str | None = None) -> None:
        """Hot-plug a NIC on ``bridge`` (one the host has); ``mac`` None: the toolstack makes one."""
        raise self.refusal(Action.NIC_ATTACH)

    async def nic_detach(self, domain: str, nic: str) -> None:
        """Unplug a NIC, by devid or MAC."""
        raise self.refusal(Action.NIC_DETACH)

    async def guest_configs(self) -> list[GuestConfig]:
        """The guests this host can start: xl's config files, libvirt's defined and inactive domains."""
        raise Unsupported(f"listing guest configs: {self.capabilities.why_not(Action.CREATE) or self.name + ' cannot'}")

    async def create(self, ref: str, *, paused: bool = False) -> str:
        """Start a guest from ``ref`` (a `GuestConfig.ref`: xl's config path, libvirt's domain name); returns
        its name. A config the toolstack refuses: InvalidArgument with the toolstack's own reason."""
        raise self.refusal(Action.CREATE)

    # --- snapshots: LVM's while the guest is paused (xl, sim), the driver's own (libvirt)

    async def snapshot_sources(self, domain: str) -> list[SnapshotSource]:
        """The guest's disks as a snapshot would take them: LV, file, or why not; sizes and free space."""
        raise Unsupported(f"snapshots: {self.capabilities.why_not(Action.SNAPSHOT) or self.name + ' cannot'}")

    async def snapshots(self, domain: str) -> list[Snapshot]:
        """The snapshots taken of the guest's disks, oldest first."""
        raise Unsupported(f"snapshots: {self.capabilities.why_not(Action.SNAPSHOT) or self.name + ' cannot'}")

    async def snapshot_create(self, domain: str, tag: str, *, cow_bytes: int = 1 << 30) -> SnapshotResult:
        """Pause the guest, snapshot each of its disks (an LV: ``lvcreate -s`` of ``cow_bytes``, named
        LV-TAG; a file: a copy, PATH.TAG), unpause it whatever happened. Refused before it pauses
        (`check_snapshot_plan`): no disk to take, a bad tag, not enough free space in a volume group."""
        raise self.refusal(Action.SNAPSHOT)

    async def snapshot_delete(self, domain: str, name: str) -> None:
        """Remove one of the guest's snapshots (`Snapshot.name`)."""
        raise self.refusal(Action.SNAPSHOT)

    @abc.abstractmethod
    async def open_console(self, domain: str) -> ConsoleChannel: ...

    def warm_up(self) -> None:  # noqa: B027 - optional
        """Start, in the background, what the first sample will need (a connection), while the screen starts.
        Called once, before the event loop; errors wait for the first sample, which reports them."""

    def for_domain(self, domain: Domain) -> Backend:
        """The backend that acts on this domain: this one, but for a pool (the domain's host's backend)."""
        return self.for_host(domain.host)

    def for_host(self, label: str) -> Backend:
        """The backend of a pool's host, by its name in the pool; this one outside a pool."""
        return self

    def focus(self, keys: Collection[str] | None,  # noqa: B027 - optional
              vcpu_keys: Collection[str] | None = None) -> None:
        """The domains whose figures are looked at (by `Domain.key`; None, the default: every domain's), and
        those whose per-vCPU times are (``vcpu_keys``; None: the same). A backend that pays a call per domain
        for per-device or per-vCPU figures (libvirt on a driver whose bulk records lack them) makes those
        calls for these domains only; the others' are unknown until looked at."""

    async def set_poll_interval(self, seconds: float) -> None:  # noqa: B027 - most backends sample on demand
        """The screen's refresh interval changed; a backend that streams (``xentop -b -d``) follows it."""

    def watch_changes(self, callback: Callable[[], None] | None) -> None:  # noqa: B027 - optional
        """Ask to be called, on the event loop, when something changed outside xentui (a domain
        paused, stopped or started elsewhere), so the app can poll at once instead of at the
        next tick. Bursts are coalesced; ``None`` stops it. Backends without events ignore it."""

    async def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release whatever the backend holds (subprocesses, connections)."""
