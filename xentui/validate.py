"""Checks on operator input that do not depend on a backend: sizes, counts, host names, SysRq keys.

Each function returns the normalised value or raises `InvalidArgument` with a message that
says what was wrong and what would be accepted.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable
from fractions import Fraction
from urllib.parse import urlsplit

from xentui.errors import InvalidArgument
from xentui.units import human_kib

MIN_MEMORY_KIB = 32 * 1024
"""Below this no Linux or Windows guest survives; refuse rather than let a typo kill a guest."""

_UNITS_KIB = {"k": 1, "m": 1024, "g": 1024**2, "t": 1024**3}
_SIZE_RE = re.compile(r"\s*(\d{1,15}(?:\.\d{1,6})?|\.\d{1,6})\s*([kmgt])(?:i?b)?\s*", re.IGNORECASE | re.ASCII)


def parse_memory(text: str) -> int:
    """``512M``, ``2G``, ``1048576K``, ``1.5G`` -> KiB. A unit is required: a bare number is ambiguous."""
    match = _SIZE_RE.fullmatch(text.strip())  # any surrounding blank; digits and units only in ASCII
    if not match:
        if re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", text):
            raise InvalidArgument(
                f"{quoted(text)} has no unit: write it as e.g. 512M, 2G or 1048576K"
            )
        raise InvalidArgument(
            f"{quoted(text)} is not a memory size: write a number and a unit, e.g. 512M, 2G, 1.5G"
        )
    number, unit = match.groups()
    kib = Fraction(number) * _UNITS_KIB[unit.lower()]  # exact: 1.5G is 1572864K, not a float near it
    if kib.denominator != 1:
        raise InvalidArgument(f"{quoted(text)} is not a whole number of KiB")
    if kib <= 0:
        raise InvalidArgument(f"{quoted(text)}: a memory size must be more than zero")
    return int(kib)


def format_kib(kib: int) -> str:
    """The exact form of a size, for messages about what was typed: `units.human_kib` with ``exact``."""
    return human_kib(kib, exact=True)


MIN_DELAY_S = 0.5
"""The shortest delay between polls, for -d, the d prompt and a replay's pace. Half a second refreshes faster
than anyone reads the table, keeps a 1,000-domain refresh (about 20 ms of CPU, README "Speed") under 5 % of a
dom0 core, and spans enough scheduler time slices for a CPU % that means something. xentop takes whole seconds."""

MAX_DELAY_S = 3600.0
"""The longest delay: an hour. More than that is a typo, not a refresh rate."""


def parse_seconds(text: str, *, minimum: float = MIN_DELAY_S, maximum: float = MAX_DELAY_S) -> float:
    """A delay or an interval typed by the operator: '2', '0.5'. Finite, from ``minimum`` to ``maximum``.

    The messages say what is wrong and what would be accepted, in few words: they follow argparse's
    "xentui: error: argument -d/--delay: " in an 80-column terminal, and fill the 50-column d prompt.
    """
    shown = text.strip()
    if len(shown) > 20:
        shown = shown[:19] + "\u2026"
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidArgument(f"{shown!r} is not a number: {minimum:g} to {maximum:g} s")
    if value < minimum:
        raise InvalidArgument(f"{shown} is too short: at least {minimum:g} s")
    if value > maximum:
        raise InvalidArgument(f"{shown} is too long: at most {maximum:g} s")
    return value


def quoted(text: str, limit: int = 20) -> str:
    """What the operator typed, for a message: repr'd, made printable, cut to ``limit`` characters."""
    text = text.strip()
    shown = text if len(text) <= limit else text[: limit - 1] + "\u2026"
    return repr(shown)


def parse_whole(text: str, what: str, low: int, high: int) -> int:
    """A whole number typed in a field: '2.5', '0x2', '1e3' or '2;reboot' is refused, saying the range
    (``low`` to ``high``), never read as the digits it contains."""
    stripped = text.strip()
    if not re.fullmatch(r"[0-9]{1,9}", stripped):
        raise InvalidArgument(f"{quoted(text)} is not {what}: a whole number from {low} to {high}")
    return int(stripped)  # the range itself is the caller's check, with its own words


def check_memory_target(kib: int, *, maxmem_kib: int | None, host_total_kib: int, name: str,
                        current_kib: float | None = None, host_free_kib: int | None = None) -> int:
    """A mem-set target: above the floor, within the host and the domain's ceiling (``maxmem_kib``: the
    configured static maximum, see `Domain.mem_ceiling_kib`), and, given the domain's current memory and
    the host's free memory, no more growth than the host has free. One check for the modal and every backend."""
    if kib <= 0:
        raise InvalidArgument("memory must be more than zero")
    if kib < MIN_MEMORY_KIB:
        raise InvalidArgument(
            f"{format_kib(kib)} is below the floor of {format_kib(MIN_MEMORY_KIB)}: "
            "a guest would not survive it"
        )
    if kib > host_total_kib:
        raise InvalidArgument(
            f"{format_kib(kib)} is more than the host has ({approx_kib(host_total_kib)})"
        )
    if maxmem_kib is not None and kib > maxmem_kib:
        raise InvalidArgument(
            f"{format_kib(kib)} is above {name}'s maxmem of {format_kib(maxmem_kib)}: "
            f"raise maxmem first (mem-max), then set the target"
        )
    if current_kib is not None and host_free_kib is not None and kib - current_kib > host_free_kib:
        raise InvalidArgument(
            f"{format_kib(kib)} would grow {name} by {approx_kib(kib - current_kib)}, "
            f"but the host has only {approx_kib(host_free_kib)} free"
        )
    return kib


def check_memory_ceiling(kib: int, *, target_kib: int, host_total_kib: int, name: str) -> int:
    """A mem-max: within the host, and not below the domain's memory target (libxl refuses that too)."""
    check_memory_target(kib, maxmem_kib=None, host_total_kib=host_total_kib, name=name)
    if kib < target_kib:
        raise InvalidArgument(
            f"{format_kib(kib)} is below {name}'s memory target of {format_kib(target_kib)}: "
            "lower the target first (mem-set), then maxmem"
        )
    return kib


def approx_kib(kib: float) -> str:
    """A size the operator did not type (free memory, a growth), in the units `format_kib` writes: '30.1G'."""
    for unit, size in (("T", 1024**3), ("G", 1024**2), ("M", 1024)):
        if kib >= size:
            value = kib / size
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text}{unit}"
    return f"{int(kib)}K"


def check_vcpu_count(count: int, *, max_vcpus: int, host_cpus: int, allow_overcommit: bool, name: str) -> int:
    if count < 1:
        raise InvalidArgument("a domain needs at least 1 vCPU")
    if count > max_vcpus:
        raise InvalidArgument(
            f"{name} has at most {max_vcpus} vCPUs (maxvcpus in its configuration); "
            f"more needs the configuration changed and the domain restarted"
        )
    if count > host_cpus and not allow_overcommit:
        raise InvalidArgument(
            f"{count} vCPUs is more than the host's {host_cpus} physical CPUs: "
            "confirm the overcommit to go ahead (xl vcpu-set -i)"
        )
    return count


SCHED_WEIGHT_MIN, SCHED_WEIGHT_MAX, SCHED_WEIGHT_DEFAULT = 1, 65535, 256


def check_sched(weight: int | None, cap: int | None, *, max_vcpus: int) -> None:
    if weight is not None and not SCHED_WEIGHT_MIN <= weight <= SCHED_WEIGHT_MAX:
        raise InvalidArgument(
            f"weight {weight} is out of range: {SCHED_WEIGHT_MIN}..{SCHED_WEIGHT_MAX} (default {SCHED_WEIGHT_DEFAULT})"
        )
    if cap is not None:
        ceiling = 100 * max_vcpus
        if not 0 <= cap <= ceiling:
            raise InvalidArgument(
                f"cap {cap} is out of range: 0 (no cap) .. {ceiling} (% of one CPU, {max_vcpus} vCPUs)"
            )


# A DNS name (RFC 1123 labels), or an IPv4/IPv6 literal. Nothing a shell could interpret
# gets through, and the leading character can never be '-' (no option injection into ssh).
_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def check_host(text: str) -> str:
    host = text.strip()
    if not host:
        raise InvalidArgument("no target host given")
    if "%" not in host:  # an IPv6 scope id (fe80::1%eth0) could carry anything: not accepted
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            pass
    if len(host) > 253 or not all(_LABEL_RE.fullmatch(label) for label in host.rstrip(".").split(".")):
        raise InvalidArgument(
            f"{quoted(host)} is not a host name or IP address (letters, digits, '-' and '.' only)"
        )
    return host


def _host_names(name: str) -> set[str]:
    """What a host is known by, for comparing with a typed target: the name itself, its host part after an
    ssh user (root@dom0a: dom0a), and a URI's host name (qemu+ssh://kvm1/system: kvm1); lower case, no
    trailing dot (DNS names ignore both)."""
    name = name.strip()
    names = {name, name.rsplit("@", 1)[-1]}
    if "://" in name:
        try:
            host = urlsplit(name).hostname
        except ValueError:
            host = None
        names = {name} | ({host} if host else set())
    return {each.lower().rstrip(".") for each in names if each}


def _uri_place(uri: str) -> tuple[str, int | None, str] | str:
    """Where a libvirt URI leads, whatever its transport and user: its host, port and path (a local URI: the
    URI itself, lower case, so qemu:///system and qemu:///session stay two places)."""
    try:
        parts = urlsplit(uri.strip())
        if parts.hostname:
            return parts.hostname.rstrip("."), parts.port, parts.path.strip("/")
    except ValueError:
        pass
    return uri.strip().lower()


def is_same_host(target: str, source: Iterable[str]) -> bool:
    """Whether a migration target names one of ``source``'s names (a pool host's name, its address or URI):
    compared without case, an ssh user or a trailing dot; a URI by the host, port and path it leads to."""
    names = [name for name in source if name and name.strip()]
    if "://" in target:
        place = _uri_place(target)
        return any("://" in name and _uri_place(name) == place for name in names)
    wanted = target.strip().lower().rstrip(".")
    return any(wanted in _host_names(name) for name in names)


def check_other_host(target: str, source: Iterable[str], *, what: str) -> str:
    """A migration target that is not the host the domain is on (``source``: the names that host is known by;
    ``what`` says it in the message, e.g. "the host web-1 is on"): InvalidArgument before any check runs."""
    if is_same_host(target, source):
        raise InvalidArgument(f"{quoted(target, 60)} is {what}: a migration needs another host "
                              "(nothing was checked or moved)")
    return target


_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9]*(\+[A-Za-z0-9-]+)?")
_URI_ALIAS = re.compile(r"[A-Za-z0-9_-]+")  # libvirt.conf's uri_aliases: a name libvirt looks up itself
_URI_USER = re.compile(r"(?!-)[A-Za-z0-9_.%+-]+")
URI_EXAMPLES = "e.g. qemu:///system, xen+ssh://root@dom0a/system"


def check_libvirt_uri(text: str) -> str:
    """A libvirt connection URI as ``virsh -c`` takes it: ``driver[+transport]://[user@][host][:port]/[path][?..]``
    (``qemu:///system``, ``xen+ssh://root@dom0a/system``), or a name libvirt.conf's ``uri_aliases`` may define.
    InvalidArgument for anything else, before libvirt (or the ssh it runs) sees it: blanks or control characters,
    no driver, a host or user that is not a plain name (a leading '-', shell characters), a port out of range,
    a malformed address."""
    if not text.strip():
        raise InvalidArgument(f"no libvirt URI given ({URI_EXAMPLES})")
    shown = quoted(text, 60)
    if any(char.isspace() or not char.isprintable() for char in text):
        raise InvalidArgument(f"not a libvirt URI: {shown} holds blanks or control characters ({URI_EXAMPLES})")
    if "://" not in text:
        if _URI_ALIAS.fullmatch(text) and not text.startswith("-"):
            return text
        raise InvalidArgument(f"not a libvirt URI: {shown}: write driver[+transport]://[user@]host/path "
                              f"({URI_EXAMPLES})")
    scheme = text.split("://", 1)[0]
    if not _URI_SCHEME.fullmatch(scheme):
        raise InvalidArgument(f"not a libvirt URI: {shown}: {quoted(scheme)} is not a driver[+transport] "
                              f"({URI_EXAMPLES})")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:  # "Invalid IPv6 URL", "Port out of range 0-65535", "Port could not be cast..."
        said = str(error)
        why = ("an IPv6 address needs both brackets, as in qemu+ssh://[::1]/system" if "IPv6" in said else
               "the port is not a number from 1 to 65535" if "Port" in said else said)
        raise InvalidArgument(f"not a libvirt URI: {shown}: {why}") from None
    user, _at, place = parts.netloc.rpartition("@")
    host = place.partition("]")[0] + "]" if place.startswith("[") else place.partition(":")[0]  # as typed
    try:
        if host.startswith("["):
            ipaddress.IPv6Address(host[1:-1])
        elif host:
            check_host(host)
    except (InvalidArgument, ValueError):
        raise InvalidArgument(f"not a libvirt URI: {shown}: {quoted(host)} is not a host name") from None
    if _at and not _URI_USER.fullmatch(user):
        raise InvalidArgument(f"not a libvirt URI: {shown}: {quoted(user)} is not a user name")
    if port == 0:
        raise InvalidArgument(f"not a libvirt URI: {shown}: the port is not a number from 1 to 65535")
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise InvalidArgument(f"not a libvirt URI: {shown}: a '%' not followed by two hex digits")
    return text


SYSRQ_KEYS: dict[str, tuple[str, bool]] = {
    # key: (what it does, dangerous)
    "b": ("reboot immediately, without syncing or unmounting", True),
    "c": ("crash the kernel (panic; kdump if configured)", True),
    "e": ("send SIGTERM to every process except init", True),
    "f": ("call the OOM killer once", True),
    "h": ("show SysRq help", False),
    "i": ("send SIGKILL to every process except init", True),
    "j": ("thaw filesystems frozen by FIFREEZE", False),
    "k": ("kill every process on the current virtual console (SAK)", True),
    "l": ("show a backtrace of every active CPU", False),
    "m": ("show memory usage", False),
    "n": ("make real-time tasks niceable", False),
    "o": ("power off immediately", True),
    "p": ("show the registers and flags of the current CPU", False),
    "q": ("show armed high-resolution timers", False),
    "r": ("turn off keyboard raw mode", False),
    "s": ("sync every mounted filesystem", False),
    "t": ("show every task and its state", False),
    "u": ("remount every filesystem read-only", True),
    "w": ("show tasks in uninterruptible (blocked) state", False),
    "z": ("dump the ftrace buffer", False),
    "0": ("set the console log level to 0 (only emergencies)", False),
    "1": ("set the console log level to 1", False),
    "2": ("set the console log level to 2", False),
    "3": ("set the console log level to 3", False),
    "4": ("set the console log level to 4", False),
    "5": ("set the console log level to 5", False),
    "6": ("set the console log level to 6", False),
    "7": ("set the console log level to 7", False),
    "8": ("set the console log level to 8", False),
    "9": ("set the console log level to 9 (everything)", False),
}


def check_sysrq(key: str) -> str:
    if len(key) != 1 or key not in SYSRQ_KEYS:
        raise InvalidArgument(
            f"{quoted(key)} is not a SysRq key; valid keys: {''.join(sorted(SYSRQ_KEYS))}"
        )
    return key


_VDEV_RE = re.compile(r"(xvd|vd|sd|hd)([a-z]{1,3})", re.ASCII)


def check_vdev(text: str) -> str:
    """A whole disk's name in the guest: ``xvdb`` (Xen PV), ``vdb`` (virtio), ``sdb``, ``hdb``. A partition
    (``xvdb1``) or a number is refused: the name is what the operator reads back in the guest."""
    vdev = text.strip()
    if not _VDEV_RE.fullmatch(vdev):
        raise InvalidArgument(
            f"{quoted(text)} is not a disk name for the guest: write e.g. xvdb (Xen PV), vdb (virtio), sdb or hdb"
        )
    return vdev


_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", re.ASCII | re.IGNORECASE)


def check_mac(text: str) -> str | None:
    """A NIC's MAC, six colon-separated hex octets, unicast and not all zero; empty: None (the toolstack makes
    one, 00:16:3e:... on Xen). Returned in lower case."""
    mac = text.strip()
    if not mac:
        return None
    if not _MAC_RE.fullmatch(mac):
        raise InvalidArgument(f"{quoted(text)} is not a MAC address: write six hex pairs, e.g. 00:16:3e:12:34:56")
    first = int(mac[:2], 16)
    if first & 1:
        raise InvalidArgument(f"{mac} is a multicast address (the first octet is odd): a NIC needs a unicast one, "
                              "e.g. 00:16:3e:12:34:56")
    if int(mac.replace(":", ""), 16) == 0:
        raise InvalidArgument("00:00:00:00:00:00 is not a usable MAC: leave it empty and one is made")
    return mac.lower()


_IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}", re.ASCII)


def check_bridge_name(text: str) -> str:
    """A Linux interface name (15 characters at most, no blank, '/' or ':'); letters, digits, '_', '.', '-'."""
    name = text.strip()
    if not _IFNAME_RE.fullmatch(name) or name in (".", ".."):
        raise InvalidArgument(
            f"{quoted(text)} is not a bridge name: up to 15 letters, digits, '_', '.' or '-', e.g. xenbr0"
        )
    return name


def check_host_path(text: str, *, what: str = "a disk") -> str:
    """An absolute path on the host, with no control characters (they cannot be in a path an operator meant,
    and a newline would end xl's config line)."""
    path = text.strip()
    if not path:
        raise InvalidArgument(f"{what}: give its path on the host, e.g. /var/lib/xen/images/data.img or /dev/vg0/data")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise InvalidArgument(f"{quoted(text)} has control characters: not a path")
    if not path.startswith("/"):
        raise InvalidArgument(f"{quoted(text)} is not an absolute path: {what} is named from / on the host")
    return path


_LV_NAME_RE = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}", re.ASCII)


def check_lv_name(text: str) -> str:
    """An LVM logical volume name, by lvm's own rule: letters, digits and ``+_.-``, not starting with '-',
    not '.' or '..', and not lvm's reserved ``snapshot``/``pvmove`` names."""
    name = text.strip()
    if not _LV_NAME_RE.fullmatch(name) or name in (".", ".."):
        raise InvalidArgument(
            f"{quoted(text)} is not a volume name: letters, digits and + _ . - only, not starting with -"
        )
    if name.startswith(("snapshot", "pvmove")) or any(
        part in name for part in ("_cdata", "_cmeta", "_corig", "_mlog", "_mimage", "_rimage", "_rmeta", "_tdata",
                                  "_tmeta", "_vorigin")
    ):
        raise InvalidArgument(f"{quoted(text)}: lvm reserves that name; choose another")
    return name
