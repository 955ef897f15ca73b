"""Where a saved domain image goes: checked before the guest stops, written beside, renamed over.

A save stops (or pauses) the guest for as long as it writes, so everything that can be known about the path is
checked first: absolute (a relative path would land in whatever directory xentui was started from, and one
starting with '-' would reach `xl` as an option), every name within the filesystem's limit, an existing
directory, and nothing at the last component but a regular file the operator agreed to overwrite. A symbolic
link, a device, a FIFO or a directory is refused there, never followed or replaced.

The image is written to a hidden file in the same directory and renamed over the old one only once the save
succeeded: a save that fails midway (a full filesystem, a size limit, a killed `xl`) leaves the old image whole.

The checks are made on the machine the image goes to: `check_save_path` on this one (the simulator, libvirt),
`save_target` and `saved_images` on any `HostAccess` (the xl backend's dom0, over ssh too), with the same words.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import NamedTuple

from xentui.backends.host import FileInfo, HostAccess
from xentui.errors import InvalidArgument
from xentui.textsafe import printable

NAME_MAX = 255  # bytes in one path component, on Linux filesystems
PATH_MAX = 4095
_PARTIAL_MARK = ".xentui-partial-"

_KINDS = {
    stat.S_IFDIR: "a directory", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symbolic link",
}


def _shown(text: str, limit: int = 60) -> str:
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SaveTarget(NamedTuple):
    """A path a save may write to, as checked where it goes."""

    path: Path
    existing_bytes: int | None
    """The size of the earlier image there, which an overwrite replaces; None: nothing is there."""


class SavedImage(NamedTuple):
    """A file restore may offer: its name, where it is on the backend's host, and what stat said of it there."""

    name: str
    path: Path
    size: int
    mtime: float


def check_save_path(path: Path, *, overwrite: bool) -> Path:
    """The path, if a save may write there; InvalidArgument saying why not, before anything is stopped."""
    path = _checked_name(path)
    _judged(path, _local_info(path.parent, follow_links=True), _local_info(path, follow_links=False),
            overwrite=overwrite)
    return path


async def save_target(host: HostAccess, path: Path, *, overwrite: bool) -> SaveTarget:
    """`check_save_path` on ``host``'s filesystem, in one round trip (two when the directory is a link); the size
    of what an overwrite would replace."""
    path = _checked_name(path)
    seen = await host.stat([str(path.parent), str(path)], follow_links=False)
    parent = seen[str(path.parent)]
    if isinstance(parent, FileInfo) and parent.kind == stat.S_IFLNK:  # a link to the directory is fine
        parent = (await host.stat([str(path.parent)], follow_links=True))[str(path.parent)]
    return SaveTarget(path, _judged(path, parent, seen[str(path)], overwrite=overwrite))


async def saved_images(host: HostAccess, directory: Path) -> list[SavedImage]:
    """The files in ``directory`` on ``host`` that restore may offer, newest first: regular files (through links),
    not hidden (a save being written is: see `partial_path`). [] when the directory cannot be read."""
    try:
        entries = await host.list_dir(str(directory))
    except OSError:
        return []
    images = [SavedImage(name, directory / name, info.size, info.mtime) for name, info in entries.items()
              if info.kind == stat.S_IFREG and not name.startswith(".")]
    return sorted(images, key=lambda image: (-image.mtime, image.name))


def _checked_name(path: Path) -> Path:
    """What is known of a path without looking at the disk."""
    path = Path(path)
    if "\0" in str(path):  # the system would refuse it (ValueError), and no file can be named so
        raise InvalidArgument("save: the path has a NUL character in it")
    if not path.is_absolute():
        raise InvalidArgument(f"save: {_shown(str(path))} is not an absolute path: give the whole path")
    if len(os.fsencode(str(path))) > PATH_MAX:
        raise InvalidArgument(f"save: the path is longer than {PATH_MAX} bytes")
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise InvalidArgument(f"save: the name {_shown(part)} is longer than {NAME_MAX} bytes, "
                                  "more than a filesystem takes")
    return path


def _local_info(path: Path, *, follow_links: bool) -> FileInfo | OSError:
    try:
        found = os.stat(path) if follow_links else os.lstat(path)
    except OSError as error:
        return error
    return FileInfo(found.st_mode, found.st_size, found.st_mtime)


_NO_DIRECTORY = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def _judged(path: Path, parent: FileInfo | OSError, found: FileInfo | OSError, *, overwrite: bool) -> int | None:
    """What stat said of the directory (through links) and of the path itself: the size of the file an overwrite
    replaces, None when nothing is there; InvalidArgument saying why the path will not do."""
    if isinstance(parent, OSError) and parent.errno not in _NO_DIRECTORY:
        raise InvalidArgument(f"save: cannot look at the directory {_shown(str(path.parent))}: "
                              f"{parent.strerror or parent}")
    if isinstance(parent, OSError) or parent.kind != stat.S_IFDIR:
        raise InvalidArgument(f"save: the directory {_shown(str(path.parent))} does not exist")
    if isinstance(found, FileNotFoundError):
        return None
    if isinstance(found, OSError):
        raise InvalidArgument(f"save: cannot look at {_shown(str(path))}: {found.strerror or found}")
    if found.kind != stat.S_IFREG:
        what = _KINDS.get(found.kind, "not a regular file")
        raise InvalidArgument(f"save: {_shown(str(path))} is {what}: xentui writes an image only to a new file "
                              "or over an earlier image")
    if not overwrite:
        raise InvalidArgument(f"save: {_shown(str(path))} already exists; confirm to overwrite it")
    return found.size


def file_of(size: int) -> str:
    """An earlier image, as an Overwrite? question names it: "a file of 16 bytes", "a file of 1.2G"."""
    from xentui.units import human_kib

    return f"a file of {human_kib(size // 1024)}" if size >= 1024 else f"a file of {size} bytes"


def partial_path(path: Path) -> Path:
    """A hidden name beside ``path`` for the image while it is written (the same filesystem: rename is atomic)."""
    token = secrets.token_hex(4)
    stem = os.fsencode(path.name)[: NAME_MAX - 40].decode("utf-8", "ignore")
    return path.with_name(f".{stem}{_PARTIAL_MARK}{token}")


def is_partial(path: Path) -> bool:
    """A save still being written (or left by a save that was killed): never offered for restore."""
    return _PARTIAL_MARK in path.name


def finish(partial: Path, path: Path) -> None:
    """The save succeeded: the new image takes the final name (an old image there goes at this moment only)."""
    os.replace(partial, path)


def discard(partial: Path) -> None:
    with contextlib.suppress(OSError):
        partial.unlink()
