"""The xl backend's snapshots while the guest is paused (the LVM recipe): ``xl pause``, ``lvcreate -s`` of each
LV-backed disk (a file-backed disk: a copy, reflinked where the filesystem can), ``xl unpause`` whatever happened.

What a guest's disks are is read in ONE round trip to dom0 (`SURVEY`, a fixed script: the disks' paths are its
arguments, never its text): ``lvs`` and ``vgs`` as JSON, and for each disk path what it is (block device with its
major:minor, regular file with its size and filesystem type) and the copies ``PATH.*`` next to it. A disk is an
LV when it is the block device of an active LV (major:minor), whichever of ``/dev/VG/LV``, ``/dev/mapper/VG-LV``
or a link to them the guest's config names. The snapshots themselves are taken by a second fixed script (`TAKE`)
while the guest is paused, so an ssh round trip is paid once, not per disk, while the guest stands still.

Everything refusable is refused before the pause (`check_snapshot_plan`: no disk to take, a tag lvm would refuse
or with a shell character, more copy-on-write space than the volume group has free; and a snapshot name that
exists already). A failure while paused unpauses (`while_paused`) and says what was taken and what was not.
Removing one is only ever of a snapshot of this guest: an LV whose origin is one of its LVs, or a PATH.TAG copy
next to one of its file disks; never another LV or file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from xentui.backends.base import Action, BackendError, InvalidArgument, Unsupported
from xentui.backends.devices import (
    AttachedDisk,
    Snapshot,
    SnapshotResult,
    SnapshotSource,
    check_snapshot_plan,
    snapshot_name,
    while_paused,
)
from xentui.backends.host import HostAccess
from xentui.model import DomainFlag
from xentui.textsafe import printable
from xentui.validate import check_lv_name, quoted

_SURVEY_LIMIT = 60.0
_TAKE_LIMIT = 1800.0  # a file copy where the filesystem cannot share blocks takes as long as the disk is big
_REFLINK_FS = ("xfs", "btrfs")  # copies share blocks: XFS (reflink on by default since xfsprogs 5.1), Btrfs

SURVEY = r"""
lvs --reportformat json -o lv_name,vg_name,lv_size,lv_path,origin,lv_time,lv_kernel_major,lv_kernel_minor \
    --units b --nosuffix 2>/dev/null || echo '{}'
printf '\n\036\n'
vgs --reportformat json -o vg_name,vg_free --units b --nosuffix 2>/dev/null || echo '{}'
printf '\n\036\n'
for p in "$@"; do
    what=$(stat -L -c '%F|%s|%t:%T' -- "$p" 2>/dev/null)
    printf 'D\0%s\0%s\0%s\0' "$p" "$what" "$(stat -f -L -c %T -- "$p" 2>/dev/null)"
    for c in "$p".*; do
        [ -f "$c" ] && printf 'C\0%s\0%s\0' "$c" "$(stat -c '%s|%Y' -- "$c")"
    done
done
true
"""
"""Arguments: the disks' paths. Sections: lvs's JSON, vgs's JSON, then NUL-separated records: ``D path
type|size|major:minor fstype`` for each disk, ``C copy size|mtime`` for each PATH.* file next to it."""

TAKE = r"""
cow=$1; shift
while [ $# -ge 3 ]; do
    kind=$1 source=$2 target=$3; shift 3
    if [ "$kind" = lv ]; then
        said=$(lvcreate -q -s -L "${cow}b" -n "${target#*/}" "$source" 2>&1 </dev/null)
    else
        said=$(cp --reflink=auto --sparse=always -- "$source" "$target" 2>&1 </dev/null) \
            || { rm -f -- "$target"; false; }
    fi
    status=$?
    if [ $status -ne 0 ]; then
        printf 'failed\t%s\t%s\n' "$target" "$(printf '%s' "$said" | tr '\n\t' '  ')"
        exit 0
    fi
    printf 'taken\t%s\n' "$target"
done
"""
"""Arguments: the copy-on-write bytes, then ``kind source target`` per disk (``lv VG/LV VG/NAME`` or ``file
PATH PATH.TAG``). Stops at the first failure (a failed copy is removed); prints ``taken TARGET`` for each one
done and ``failed TARGET WHY`` for the one that failed."""


@dataclass(slots=True)
class _Lv:
    name: str
    group: str
    size: int
    path: str
    origin: str
    created: float | None
    device: str  # "major:minor" in hex, as stat prints it; "" when not active


@dataclass(slots=True)
class Survey:
    """What dom0 said of a guest's disks, in one round trip."""

    lvs: list[_Lv] = field(default_factory=list)
    free: dict[str, int] = field(default_factory=dict)  # each volume group's free bytes
    paths: dict[str, tuple[str, int | None, str, str]] = field(default_factory=dict)  # type, size, device, fs
    copies: dict[str, tuple[int | None, float | None]] = field(default_factory=dict)  # PATH.* -> size, mtime


def _int(text: object) -> int | None:
    try:
        return int(str(text).strip())
    except ValueError:
        return None


def _lv_time(text: str) -> float | None:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S %z").timestamp()
    except ValueError:
        return None


def _report(text: str, key: str) -> list[dict[str, str]]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return []
    rows: list[dict[str, str]] = []
    for report in data.get("report", []) if isinstance(data, dict) else []:
        rows.extend(row for row in report.get(key, []) if isinstance(row, dict))
    return rows


def _device(major: str, minor: str) -> str:
    major_n, minor_n = _int(major), _int(minor)
    if major_n is None or minor_n is None or major_n < 0 or minor_n < 0:
        return ""
    return f"{major_n:x}:{minor_n:x}"


def parse_survey(output: str) -> Survey:
    """`SURVEY`'s output (see there)."""
    lvs_text, _, rest = output.partition("\n\036\n")
    vgs_text, _, records = rest.partition("\n\036\n")
    survey = Survey()
    for row in _report(lvs_text, "lv"):
        size = _int(row.get("lv_size", ""))
        survey.lvs.append(_Lv(row.get("lv_name", ""), row.get("vg_name", ""), size or 0, row.get("lv_path", ""),
                              row.get("origin", ""), _lv_time(row.get("lv_time", "")),
                              _device(row.get("lv_kernel_major", ""), row.get("lv_kernel_minor", ""))))
    for row in _report(vgs_text, "vg"):
        free = _int(row.get("vg_free", ""))
        if row.get("vg_name") and free is not None:
            survey.free[row["vg_name"]] = free
    fields = records.split("\0")
    i = 0
    while i < len(fields):
        tag = fields[i].strip()
        if tag == "D" and i + 3 < len(fields):
            path, what, fs = fields[i + 1], fields[i + 2], fields[i + 3]
            kind, _, more = what.partition("|")
            size, _, device = more.partition("|")
            survey.paths[path] = (kind, _int(size), device, fs.strip())
            i += 4
        elif tag == "C" and i + 2 < len(fields):
            size, _, mtime = fields[i + 2].partition("|")
            stamp = _int(mtime)
            survey.copies[fields[i + 1]] = (_int(size), float(stamp) if stamp is not None else None)
            i += 3
        else:
            i += 1
    return survey


def _dm_name(group: str, name: str) -> str:
    """/dev/mapper's name of VG/LV: each '-' in either doubled, joined by one '-'."""
    return f"{group.replace('-', '--')}-{name.replace('-', '--')}"


def lv_of(path: str, survey: Survey) -> _Lv | None:
    """The LV a disk path is: by its block device's major:minor, else by the /dev/VG/LV or /dev/mapper/VG-LV
    form of the path."""
    _kind, _size, device, _fs = survey.paths.get(path, ("", None, "", ""))
    for lv in survey.lvs:
        if device and lv.device and device == lv.device:
            return lv
    for lv in survey.lvs:
        if path in (lv.path, f"/dev/{lv.group}/{lv.name}", f"/dev/mapper/{_dm_name(lv.group, lv.name)}"):
            return lv
    return None


def sources_from(disks: list[AttachedDisk], survey: Survey) -> list[SnapshotSource]:
    sources = []
    for disk in disks:
        path = disk.path
        if not path:
            sources.append(SnapshotSource(disk.vdev, path, "none", reason="an empty drive"))
            continue
        if disk.readonly or disk.cdrom:
            sources.append(SnapshotSource(disk.vdev, path, "none",
                                          reason="read-only: it cannot change, nothing to keep"))
            continue
        kind, size, _device, fs = survey.paths.get(path, ("", None, "", ""))
        lv = lv_of(path, survey)
        if lv is not None:
            if lv.origin:
                sources.append(SnapshotSource(disk.vdev, path, "none", lv.size, lv.group, survey.free.get(lv.group),
                                              reason=f"{lv.group}/{lv.name} is itself a snapshot of {lv.origin}: "
                                                     "lvm does not snapshot a snapshot"))
            else:
                sources.append(SnapshotSource(disk.vdev, path, "lv", lv.size, lv.group, survey.free.get(lv.group)))
        elif kind == "regular file" or kind == "regular empty file":
            sources.append(SnapshotSource(disk.vdev, path, "file", size, reflink=fs in _REFLINK_FS))
        elif not kind:
            sources.append(SnapshotSource(disk.vdev, path, "none", reason="not found on the host"))
        elif kind == "block special file":
            sources.append(SnapshotSource(disk.vdev, path, "none", size,
                                          reason="a block device that is not an LVM logical volume"))
        else:
            sources.append(SnapshotSource(disk.vdev, path, "none", reason=f"a {kind}, neither an LV nor a file"))
    return sources


class SnapshotsMixin:
    """Part of `XlBackend`: snapshots of a guest's disks while it is paused. Through `self.host` only."""

    xl: str
    host: HostAccess
    _known: Callable[..., object]
    disks: Callable[..., object]
    refusal: Callable[[Action], Unsupported]

    async def _survey(self, domain: str, *, action: str, need_active: bool = False):
        """The guest (as last sampled), its disks, and what dom0 says of them."""
        known = await self._known(domain, action=action, allow_dom0=False,  # type: ignore[misc]
                                  need_active=need_active)
        disks: list[AttachedDisk] = await self.disks(known.domain.name)  # type: ignore[misc]
        paths = sorted({disk.path for disk in disks if disk.path})
        result = await self.host.run(["sh", "-c", SURVEY, "sh", *paths], what="reading the guest's disks (lvs)",
                                     limit=_SURVEY_LIMIT)
        return known, disks, parse_survey(result.stdout)

    async def snapshot_sources(self, domain: str) -> list[SnapshotSource]:
        _known, disks, survey = await self._survey(domain, action="snapshot")
        return sources_from(disks, survey)

    @staticmethod
    def _snapshots_of(disks: list[AttachedDisk], survey: Survey) -> list[Snapshot]:
        found: list[Snapshot] = []
        for disk in disks:
            if not disk.path:
                continue
            lv = lv_of(disk.path, survey)
            if lv is not None:
                found.extend(Snapshot(each.name, disk.vdev, each.path, each.size, each.created) for each in survey.lvs
                             if each.group == lv.group and each.origin == lv.name)
            elif survey.paths.get(disk.path, ("",))[0].startswith("regular"):
                prefix = disk.path + "."
                found.extend(Snapshot(copy, disk.vdev, copy, size, mtime)
                             for copy, (size, mtime) in survey.copies.items() if copy.startswith(prefix))
        return sorted(found, key=lambda s: (s.created or 0.0, s.name))

    async def snapshots(self, domain: str) -> list[Snapshot]:
        _known, disks, survey = await self._survey(domain, action="snapshot")
        return self._snapshots_of(disks, survey)

    async def snapshot_create(self, domain: str, tag: str, *, cow_bytes: int = 1 << 30) -> SnapshotResult:
        known, disks, survey = await self._survey(domain, action="snapshot", need_active=True)
        name = known.domain.name
        taking = check_snapshot_plan(sources_from(disks, survey), cow_bytes, tag)
        tag = tag.strip()
        existing_lvs = {(lv.group, lv.name) for lv in survey.lvs}
        plan: list[tuple[SnapshotSource, str, str, str]] = []  # source, origin argument, target argument, path
        for source in taking:
            if source.kind == "lv":
                lv = lv_of(source.path, survey)
                assert lv is not None
                group, origin = check_lv_name(lv.group), check_lv_name(lv.name)
                target = snapshot_name(lv.name, tag)
                if (group, target) in existing_lvs:
                    raise InvalidArgument(f"snapshot: {group}/{target} exists already: choose another tag")
                plan.append((source, f"{group}/{origin}", f"{group}/{target}", f"/dev/{group}/{target}"))
            else:
                copy = f"{source.path}.{check_lv_name(tag)}"
                if copy in survey.copies or copy in survey.paths:
                    raise InvalidArgument(f"snapshot: {printable(copy)} exists already: choose another tag")
                plan.append((source, source.path, copy, copy))
        argv = ["sh", "-c", TAKE, "sh", str(cow_bytes)]
        for source, origin, target, _path in plan:
            argv += [source.kind, origin, target]
        domid = str(known.domain.id)

        async def pause() -> None:
            await self.host.run([self.xl, "pause", domid], what=f"xl pause {name}")

        async def unpause() -> None:
            await self.host.run([self.xl, "unpause", domid], what=f"xl unpause {name}")

        async def take() -> list[str]:
            result = await self.host.run(argv, what=f"snapshot {name}", limit=_TAKE_LIMIT)
            taken, failed = [], None
            for line in result.stdout.splitlines():
                word, _, rest = line.partition("\t")
                if word == "taken":
                    taken.append(rest)
                elif word == "failed":
                    failed = rest.partition("\t")
            if failed is not None or len(taken) != len(plan):
                not_taken = [target for _s, _o, target, _p in plan if target not in taken]
                why = f": {failed[2].strip()}" if failed and failed[2].strip() else ""
                raise BackendError(
                    f"snapshot {name}: {', '.join(taken) or 'nothing'} taken; not taken: {', '.join(not_taken)}"
                    f"{why}", detail=result.stdout)
            return taken

        already = DomainFlag.PAUSED in known.domain.flags
        _taken, paused_s = await while_paused(pause, unpause, take, already_paused=already)
        now = time.time()
        snapshots = tuple(
            Snapshot(path.rsplit("/", 1)[-1] if source.kind == "lv" else path, source.vdev, path,
                     cow_bytes if source.kind == "lv" else source.size_bytes, now)
            for source, _origin, _target, path in plan)
        return SnapshotResult(snapshots, paused_s)

    async def snapshot_delete(self, domain: str, name: str) -> None:
        _known, disks, survey = await self._survey(domain, action="snapshot")
        wanted = name.strip()
        for snapshot in self._snapshots_of(disks, survey):
            if wanted not in (snapshot.name, snapshot.path):
                continue
            if snapshot.path.startswith("/dev/"):  # an LV: VG/NAME, both names by lvm's rules
                lv = next(lv for lv in survey.lvs if lv.path == snapshot.path and lv.name == snapshot.name)
                target = f"{check_lv_name(lv.group)}/{check_lv_name(lv.name)}"
                await self.host.run(["lvremove", "-f", target], what=f"lvremove {target}", limit=_SURVEY_LIMIT)
            else:
                try:
                    await self.host.remove(snapshot.path)
                except OSError as error:
                    raise BackendError(f"removing {printable(snapshot.path)}: {error.strerror or error}") from error
            return
        have = ", ".join(s.name for s in self._snapshots_of(disks, survey)) or "none"
        raise InvalidArgument(f"{printable(domain)} has no snapshot {quoted(name)} (its snapshots: {printable(have)})")
