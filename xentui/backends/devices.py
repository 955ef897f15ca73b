"""A running guest's disks and NICs, and the guest configs a host can start: what every backend lists and the
checks every backend makes before it attaches, detaches or creates, so sim, xl and libvirt refuse alike.

The checks here need what the backend knows (the guest's devices, the other guests' disks, the host's bridges);
the checks of the typed text alone (a vdev's form, a MAC, a bridge's name, a path) are in `xentui.validate`.
"""

from __future__ import annotations

import os.path
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from xentui.errors import InvalidArgument
from xentui.validate import check_vdev, quoted

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
