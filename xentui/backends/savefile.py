"""Where a saved domain image goes on this machine: checked before the guest stops, written beside, renamed over.

A save stops (or pauses) the guest for as long as it writes, so everything that can be known about the path is
checked first: absolute (a relative path would land in whatever directory xentui was started from, and one
starting with '-' would reach `xl` as an option), every name within the filesystem's limit, an existing
directory, and nothing at the last component but a regular file the operator agreed to overwrite. A symbolic
link, a device, a FIFO or a directory is refused there, never followed or replaced.

The image is written to a hidden file in the same directory and renamed over the old one only once the save
succeeded: a save that fails midway (a full filesystem, a size limit, a killed `xl`) leaves the old image whole.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

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


def check_save_path(path: Path, *, overwrite: bool) -> Path:
    """The path, if a save may write there; InvalidArgument saying why not, before anything is stopped."""
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
    if not path.parent.is_dir():
        raise InvalidArgument(f"save: the directory {_shown(str(path.parent))} does not exist")
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError as error:
        raise InvalidArgument(f"save: cannot look at {_shown(str(path))}: {error.strerror}") from error
    kind = stat.S_IFMT(found.st_mode)
    if kind != stat.S_IFREG:
        what = _KINDS.get(kind, "not a regular file")
        raise InvalidArgument(f"save: {_shown(str(path))} is {what}: xentui writes an image only to a new file "
                              "or over an earlier image")
    if not overwrite:
        raise InvalidArgument(f"save: {_shown(str(path))} already exists; confirm to overwrite it")
    return path


def existing_file(path: Path) -> str | None:
    """What an Overwrite? question should say of what is at ``path`` (None: nothing there)."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    kind = stat.S_IFMT(found.st_mode)
    if kind != stat.S_IFREG:
        return _KINDS.get(kind, "not a regular file")
    from xentui.units import human_kib

    return f"a file of {human_kib(found.st_size // 1024)}" if found.st_size >= 1024 else \
        f"a file of {found.st_size} bytes"


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
