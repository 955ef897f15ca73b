"""A running guest's disks and NICs, and the guest configs a host can start: what every backend lists and the
checks every backend makes before it attaches, detaches or creates, so sim, xl and libvirt refuse alike.

The checks here need what the backend knows (the guest's devices, the other guests' disks, the host's bridges);
the checks of the typed text alone (a vdev's form, a MAC, a bridge's name, a path) are in `xentui.validate`.
"""

from __future__ import annotations

import os.path
import string
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from xentui.errors import BackendError, InvalidArgument
from xentui.units import human_kib
from xentui.validate import check_lv_name, check_vdev, quoted

DISK_FORMATS = ("raw", "qcow2", "qcow", "vhd", "qed")
"""The image formats xl's disk spec takes (``format=``); libvirt's QEMU driver takes raw and qcow2 of these."""


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """A disk to attach: what backs it on the host, the guest's name for it, and how."""

    path: str
    vdev: str
    readonly: bool = False
    format: str = "raw"


@dataclass(frozen=True, slots=True)
class AttachedDisk:
    """One of a guest's disks, as its host sees it."""

    vdev: str
    path: str  # "" for an empty CD-ROM drive
    backend: str  # xl: phy, qdisk, tap; libvirt: the driver (qemu)
    readonly: bool
    format: str = "raw"
    devid: int | None = None
    cdrom: bool = False

    @property
    def mode(self) -> str:
        return "ro" if self.readonly else "rw"


@dataclass(frozen=True, slots=True)
class AttachedNic:
    """One of a guest's NICs, as its host sees it."""

    devid: int
    mac: str
    bridge: str | None
    backend: str  # the backend domain (xl: "0", a driver domain's name) or libvirt's interface type
    ifname: str = ""  # dom0's end: vifD.N, or libvirt's target dev (vnet3)
    model: str | None = None


@dataclass(frozen=True, slots=True)
class GuestConfig:
    """A guest the host can start: an xl config file, or a libvirt domain defined and not running."""

    ref: str
    """What `Backend.create` takes: the config file's path (xl), the defined domain's name (libvirt)."""
    name: str | None
    type: str | None = None  # pv, pvh, hvm (xl's ``type=``); libvirt: the OS type and driver
    memory_kib: int | None = None
    maxmem_kib: int | None = None
    vcpus: int | None = None
    disks: tuple[str, ...] = ()
    nics: tuple[str, ...] = ()
    running: bool = False  # a domain of this name runs on the host now: xl would refuse it
    problem: str | None = None  # why it cannot be read (a syntax error, unreadable): xl's own reason where known
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or os.path.basename(self.ref)


def same_path(a: str, b: str) -> bool:
    return bool(a) and bool(b) and os.path.normpath(a) == os.path.normpath(b)


def free_vdevs(used: Iterable[str], prefix: str = "xvd", count: int = 3) -> list[str]:
    """The first ``count`` guest disk names not in ``used``: xvdb, xvdc, ... then xvdaa (a is the root disk's)."""
    taken = set(used)
    letters = string.ascii_lowercase
    names = [prefix + c for c in letters] + [prefix + a + b for a in letters for b in letters]
    return [name for name in names if name not in taken][:count]


def vdev_prefix(disks: Sequence[AttachedDisk], default: str = "xvd") -> str:
    """The naming the guest already uses (xvd, vd, sd, hd), for the suggested vdev."""
    for disk in disks:
        for prefix in ("xvd", "vd", "sd", "hd"):
            if disk.vdev.startswith(prefix):
                return prefix
    return default


def check_disk_attach(
    domain: str,
    spec: DiskSpec,
    own: Sequence[AttachedDisk],
    others: Mapping[str, Sequence[AttachedDisk]],
) -> DiskSpec:
    """Refuse, before anything changes, a disk the guest cannot take: a vdev it already has, a path it already
    has, an unknown format, or a path another running guest has read-write (or has at all, when this one would
    write it): two guests writing one disk destroy its filesystem. xl's block hotplug script refuses the same
    sharing for a device, late and with a terse message; this says who holds it. Returns the spec, normalised."""
    vdev = check_vdev(spec.vdev)
    if spec.format not in DISK_FORMATS:
        raise InvalidArgument(f"{quoted(spec.format)} is not a disk format: use one of {', '.join(DISK_FORMATS)}")
    for disk in own:
        if disk.vdev == vdev:
            held = f" (it holds {disk.path})" if disk.path else ""
            free = ", ".join(free_vdevs((d.vdev for d in own), vdev_prefix(own)))
            raise InvalidArgument(f"{vdev} is taken on {domain}{held}: choose a free one ({free})")
        if same_path(disk.path, spec.path):
            raise InvalidArgument(f"{spec.path} is already {domain}'s {disk.vdev}")
    for other, disks in others.items():
        for disk in disks:
            if not same_path(disk.path, spec.path):
                continue
            if not disk.readonly:
                raise InvalidArgument(
                    f"{spec.path} is attached read-write to {other} ({disk.vdev}): two guests using one disk "
                    "while one writes it corrupts it; detach it there first"
                )
            if not spec.readonly:
                raise InvalidArgument(
                    f"{spec.path} is attached to {other} ({disk.vdev}), read-only: attach it read-only here too, "
                    "or detach it there first"
                )
    return DiskSpec(spec.path, vdev, spec.readonly, spec.format)


def find_disk(domain: str, vdev: str, disks: Sequence[AttachedDisk]) -> AttachedDisk:
    for disk in disks:
        if disk.vdev == vdev or (disk.devid is not None and str(disk.devid) == vdev):
            return disk
    have = ", ".join(d.vdev for d in disks) or "none"
    raise InvalidArgument(f"{domain} has no disk {quoted(vdev)} (its disks: {have})")


def check_nic_attach(
    domain: str, bridge: str, mac: str | None, bridges: Sequence[str], macs_in_use: Mapping[str, str]
) -> None:
    """Refuse a bridge the host does not have (naming the ones it has) and a MAC another NIC already uses
    (``macs_in_use``: MAC, lower case -> the guest that has it): two NICs with one MAC on a segment lose frames."""
    if bridge not in bridges:
        have = ", ".join(bridges) if bridges else "none"
        raise InvalidArgument(f"there is no bridge {quoted(bridge)} on this host (its bridges: {have})")
    if mac is not None and mac.lower() in macs_in_use:
        raise InvalidArgument(f"{mac} is already the MAC of a NIC of {macs_in_use[mac.lower()]}: leave it empty "
                              "and one is made")


def find_nic(domain: str, nic: str, nics: Sequence[AttachedNic]) -> AttachedNic:
    """A NIC by its devid or its MAC, as ``xl network-detach`` takes it."""
    for candidate in nics:
        if str(candidate.devid) == nic or candidate.mac.lower() == nic.lower():
            return candidate
    have = ", ".join(f"{n.devid} ({n.mac})" for n in nics) or "none"
    raise InvalidArgument(f"{domain} has no NIC {quoted(nic)} (its NICs: {have})")


# --- snapshots while paused ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotSource:
    """One of a guest's disks as a snapshot would take it."""

    vdev: str
    path: str
    kind: str
    """``lv``: an LVM snapshot (``lvcreate -s``, copy-on-write, instant); ``file``: a copy made while the guest is
    paused (instant where the filesystem shares blocks, a reflink); ``libvirt``: the driver's own snapshot;
    ``none``: it cannot be (`reason` says why)."""
    size_bytes: int | None = None
    group: str | None = None  # the LV's volume group
    group_free_bytes: int | None = None
    reflink: bool | None = None  # a file copy shares its blocks: no time, no space at first
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot of one of a guest's disks (or, on libvirt, of the whole domain)."""

    name: str  # what `snapshot_delete` takes: the LV's name, the copy's path, libvirt's snapshot name
    origin: str  # the disk it was taken of ("" for a whole-domain snapshot)
    path: str = ""
    size_bytes: int | None = None
    created: float | None = None  # wall clock


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    taken: tuple[Snapshot, ...]
    paused_s: float
    """How long the guest was paused for it: what its users felt."""


def snapshot_name(origin: str, tag: str) -> str:
    """The LV name of a snapshot of ``origin`` (an LV path or name) tagged ``tag``, checked by lvm's rules."""
    return check_lv_name(f"{os.path.basename(origin)}-{tag.strip()}")


def check_snapshot_plan(sources: Sequence[SnapshotSource], cow_bytes: int, tag: str) -> list[SnapshotSource]:
    """The disks a snapshot takes (LV and file ones), refused before anything pauses: none to take, a tag lvm
    would refuse, or copy-on-write space the volume groups do not have free (each LV snapshot takes ``cow_bytes``
    of its group). Returns the sources to take."""
    taking = [s for s in sources if s.kind in ("lv", "file", "libvirt")]
    if not taking:
        reasons = "; ".join(f"{s.vdev}: {s.reason}" for s in sources if s.reason) or "it has no disks"
        raise InvalidArgument(f"nothing to snapshot: {reasons}")
    if not tag.strip() or "/" in tag:
        raise InvalidArgument(f"{quoted(tag)} is not a snapshot tag: letters, digits and + _ . - only")
    if any(s.kind == "libvirt" for s in taking):  # one snapshot of the whole domain: every disk must allow it
        blocking = [s for s in sources if s.kind == "none" and s.reason and "qcow2" in s.reason]
        if blocking:
            raise InvalidArgument("libvirt cannot snapshot this domain: " + "; ".join(
                f"{s.vdev}: {s.reason}" for s in blocking))
    for source in taking:
        if source.kind == "lv":
            snapshot_name(source.path, tag)
        elif source.kind == "file":
            check_lv_name(tag)  # the same rule for a copy's suffix: no blank, no shell character
        # libvirt's own: any name without '/' or a control character (escaped in the snapshot's XML)
    if cow_bytes <= 0:
        raise InvalidArgument("a snapshot's copy-on-write size must be more than zero, e.g. 1G")
    needed: dict[str, int] = {}
    free: dict[str, int | None] = {}
    for source in taking:
        if source.kind == "lv" and source.group:
            needed[source.group] = needed.get(source.group, 0) + cow_bytes
            free[source.group] = source.group_free_bytes
    for group, bytes_needed in needed.items():
        have = free[group]
        if have is not None and bytes_needed > have:
            raise InvalidArgument(
                f"the snapshots need {human_kib(bytes_needed // 1024)} of copy-on-write space in {group}, which has "
                f"{human_kib(have // 1024)} free: a smaller size, or free space in {group} first"
            )
    return taking


T = TypeVar("T")


async def while_paused(
    pause: Callable[[], Awaitable[object]],
    unpause: Callable[[], Awaitable[object]],
    work: Callable[[], Awaitable[T]],
    *,
    already_paused: bool,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[T, float]:
    """Run ``work`` with the guest paused, and unpause it afterwards whatever happened (a guest the operator had
    paused stays paused). Returns work's result and how long the guest was paused, in seconds. When ``work``
    fails the guest is unpaused first, then the error goes on, with the paused time in its message."""
    if not already_paused:
        await pause()
    started = clock()
    try:
        result = await work()
    except BaseException as error:
        paused = clock() - started
        if not already_paused:
            await unpause()
        if isinstance(error, BackendError):
            after = "stays paused, as it was" if already_paused else "runs again"
            error.message = f"{error.message} (the guest was paused {paused:.2f} s for it, and {after})"
            error.args = (error.message,)
        raise
    paused = clock() - started
    if not already_paused:
        await unpause()
    return result, paused
