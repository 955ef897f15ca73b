"""Xen virtual disk names and the numbers xentop prints for them (51712 is xvda).

The encoding is Xen's (docs/misc/vbd-interface.txt): xvd disks 0-15 as major 202 with 16 minors
each, any xvd disk in the extended form 1<<28 | disk<<8 | partition, and the emulated hd (majors
3 and 22, 64 minors a disk) and sd (major 8) names. libxenstat reports the number; the domain's
configuration names the disk; these two functions match one to the other.
"""

from __future__ import annotations

import re

__all__ = ["vdev_name", "vdev_number"]

_EXTENDED = 1 << 28
_XVD_MAJOR, _SD_MAJOR, _HD_MAJORS = 202, 8, (3, 22)
_NAME = re.compile(r"(xvd|hd|sd)([a-z]{1,3})([0-9]{0,3})")


def _letters(index: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa (the kernel's bijective base 26)."""
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(ord("a") + rest) + text
    return text


def _index(letters: str) -> int:
    value = 0
    for char in letters:
        value = value * 26 + (ord(char) - ord("a") + 1)
    return value - 1


def vdev_name(number: int) -> str:
    """The guest-side name of a vbd number; the number itself when it is none of Xen's forms."""
    if number & _EXTENDED:
        disk, partition = (number >> 8) & 0xFFFFF, number & 0xFF
        return f"xvd{_letters(disk)}{partition or ''}"
    major, minor = number >> 8, number & 0xFF
    if major == _XVD_MAJOR:
        return f"xvd{_letters(minor >> 4)}{(minor & 15) or ''}"
    if major == _SD_MAJOR:
        return f"sd{_letters(minor >> 4)}{(minor & 15) or ''}"
    if major in _HD_MAJORS:
        disk = (minor >> 6) + (0 if major == _HD_MAJORS[0] else 2)
        return f"hd{_letters(disk)}{(minor & 63) or ''}"
    return str(number)


def vdev_number(name: str) -> int | None:
    """Inverse of `vdev_name` for xvd/hd/sd names (a ``:cdrom`` suffix is ignored); None otherwise."""
    match = _NAME.fullmatch(name.split(":", 1)[0].strip())
    if not match:
        return None
    kind, letters, digits = match.groups()
    disk, partition = _index(letters), int(digits) if digits else 0
    if kind == "xvd":
        if disk < 16 and partition < 16:
            return (_XVD_MAJOR << 8) | (disk << 4) | partition
        if partition > 255 or disk >= 1 << 20:
            return None
        return _EXTENDED | (disk << 8) | partition
    if kind == "sd":
        return (_SD_MAJOR << 8) | (disk << 4) | partition if disk < 16 and partition < 16 else None
    if disk >= 4 or partition >= 64:
        return None
    major = _HD_MAJORS[0] if disk < 2 else _HD_MAJORS[1]
    return (major << 8) | ((disk % 2) << 6) | partition
