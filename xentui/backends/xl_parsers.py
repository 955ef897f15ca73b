"""Parsers for the text `xl` prints: ``list``, ``list -l``, ``info``, ``vcpu-list``, ``sched-credit[2]``.

Pure functions, no I/O. Whatever the input, they return a result or raise `ParseError`:
the xl backend feeds them a tool's output, and an unexpected xl version must end in a clear
message naming the command and the offending line, never in a traceback.

Rows are split from the right: the trailing columns never contain spaces, while domain
names may (XenServer users name VMs "SQL LUBSS227").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, TypedDict

from xentui.errors import BackendError
from xentui.model import DomainFlag, DomainType

__all__ = [
    "ParseError",
    "XlDiskConfig",
    "XlDomainConfig",
    "XlHostInfo",
    "XlListEntry",
    "XlSched",
    "XlVcpu",
    "XlVifConfig",
    "parse_xl_info",
    "parse_xl_list",
    "parse_xl_list_long",
    "parse_xl_sched_credit",
    "parse_xl_vcpu_list",
    "xl_info_host",
]


class ParseError(BackendError):
    """xl printed something these parsers do not understand (another xl version, a truncated output...)."""


# Numbers are matched explicitly: int()/float() alone would accept "1_000", " 7", "nan", "1e3" or
# non-ASCII digits, and int() raises ValueError beyond 4300 digits.
_INT = re.compile(r"[0-9]{1,12}")
_DECIMAL = re.compile(r"([0-9]{1,15})(?:\.[0-9]{1,9})?")
_MAX_LINE_SHOWN = 120


def _error(command: str, reason: str, line: str | None = None, lineno: int | None = None) -> ParseError:
    where = f" (line {lineno})" if lineno is not None else ""
    message = f"Unexpected `{command}` output{where}: {reason}"
    if line is not None:
        shown = line if len(line) <= _MAX_LINE_SHOWN else line[:_MAX_LINE_SHOWN] + "…"
        message += f": {shown!r}"
    return ParseError(message, detail=line)


def _lines(command: str, text: object) -> list[tuple[int, str]]:
    """Numbered non-blank lines, without line ends."""
    if not isinstance(text, str):
        raise _error(command, f"expected text, got {type(text).__name__}")
    numbered = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if line.strip():
            numbered.append((lineno, line))
    return numbered


def _int(command: str, token: str, what: str, line: str, lineno: int) -> int:
    if not _INT.fullmatch(token):
        raise _error(command, f"{what} is not a number", line, lineno)
    return int(token)


def _seconds(command: str, token: str, line: str, lineno: int) -> float:
    if not _DECIMAL.fullmatch(token):
        raise _error(command, "Time(s) is not a number", line, lineno)
    return float(token)


# --- xl list ------------------------------------------------------------------------------

_LIST_HEADER = ("Name", "ID", "Mem", "VCPUs", "State", "Time(s)")
# Optional columns xl list appends (-v, -Z, -c, -n, claims); two of them have two-word titles.
_LIST_TWO_WORD_COLUMNS = {("Security", "Label"), ("NODE", "Affinity")}
_LIST_STATE = re.compile(r"[r-][b-][p-][s-][-rscwS?][d-]")
_SHUTDOWN_REASONS = {
    "r": "reboot",
    "s": "suspend",
    "c": "crash",
    "w": "watchdog",
    "S": "soft_reset",
    "?": "unknown",
}


@dataclass(frozen=True, slots=True)
class XlListEntry:
    name: str
    domid: int
    mem_mib: int
    vcpus: int  # online vCPUs
    flags: DomainFlag
    # None while the domain is not shut down; "poweroff" when shut down with xl's '-' reason letter.
    shutdown_reason: str | None
    cpu_s: float
    uuid: str | None = None  # only with `xl list -v`


def _list_extra_columns(tokens: list[str]) -> list[str]:
    """Titles of the columns after Time(s), one entry per column as the rows print them."""
    columns: list[str] = []
    index = 0
    while index < len(tokens):
        pair = tuple(tokens[index:index + 2])
        if pair in _LIST_TWO_WORD_COLUMNS:
            columns.append(" ".join(pair))
            index += 2
        else:
            columns.append(tokens[index])
            index += 1
    return columns


def _list_flags(state: str) -> tuple[DomainFlag, str | None]:
    """xl's r b p s <reason> d letters, mapped by meaning (xentop uses another order)."""
    flags = DomainFlag.NONE
    for char, flag in zip(state[:4], (DomainFlag.RUNNING, DomainFlag.BLOCKED, DomainFlag.PAUSED,
                                      DomainFlag.SHUTDOWN), strict=True):
        if char != "-":
            flags |= flag
    if state[5] == "d":
        flags |= DomainFlag.DYING
    reason_letter = state[4]
    if reason_letter == "c":
        flags |= DomainFlag.CRASHED
    if reason_letter != "-":
        reason: str | None = _SHUTDOWN_REASONS[reason_letter]
    else:
        # xl prints the reason only for a shut-down domain, and poweroff (reason 0) as '-'.
        reason = "poweroff" if DomainFlag.SHUTDOWN in flags else None
    return flags, reason


def parse_xl_list(text: str) -> list[XlListEntry]:
    """Rows of ``xl list`` (also ``-v``, ``-Z``, ``-c``, ``-n``: their extra columns are skipped, but the UUID kept)."""
    command = "xl list"
    lines = _lines(command, text)
    if not lines:
        raise _error(command, "no output at all (expected a 'Name ID Mem VCPUs State Time(s)' header)")
    lineno, header = lines[0]
    header_tokens = header.split()
    if tuple(header_tokens[:6]) != _LIST_HEADER:
        raise _error(command, "expected the 'Name ID Mem VCPUs State Time(s)' header", header, lineno)
    extra = _list_extra_columns(header_tokens[6:])
    uuid_index = extra.index("UUID") if "UUID" in extra else None
    trailing = 5 + len(extra)
    entries = []
    for lineno, line in lines[1:]:
        parts = line.rsplit(None, trailing)
        if len(parts) != trailing + 1:
            raise _error(command, f"expected a name and {trailing} columns", line, lineno)
        name = parts[0].strip()
        domid_s, mem_s, vcpus_s, state, time_s = parts[1:6]
        if not _LIST_STATE.fullmatch(state):
            raise _error(command, "the State column is not xl's r b p s <reason> d letters", line, lineno)
        flags, reason = _list_flags(state)
        entries.append(XlListEntry(
            name=name,
            domid=_int(command, domid_s, "ID", line, lineno),
            mem_mib=_int(command, mem_s, "Mem", line, lineno),
            vcpus=_int(command, vcpus_s, "VCPUs", line, lineno),
            flags=flags,
            shutdown_reason=reason,
            cpu_s=_seconds(command, time_s, line, lineno),
            uuid=parts[6 + uuid_index] if uuid_index is not None else None,
        ))
    return entries


# --- xl list -l ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class XlVifConfig:
    devid: int | None
    mac: str | None
    bridge: str | None
    backend_domid: int | None  # libxl leaves out a zero (dom0) backend, so None mostly means dom0


@dataclass(frozen=True, slots=True)
class XlDiskConfig:
    vdev: str | None
    target: str | None  # pdev_path: a file, an LV, a device; None for an empty CD-ROM
    backend: str | None  # "phy", "qdisk", "tap", "standalone", "unknown"
    format: str | None  # "raw", "qcow2", "vhd", "empty"...


@dataclass(frozen=True, slots=True)
class XlDomainConfig:
    """What the toolstack knows of one domain; None wherever libxl left a key out (Domain-0's config is a stub)."""

    domid: int
    name: str | None
    uuid: str | None
    type: DomainType | None
    max_memkb: int | None
    target_memkb: int | None
    max_vcpus: int | None
    avail_vcpus: list[int] | None
    vifs: list[XlVifConfig] = field(default_factory=list)
    disks: list[XlDiskConfig] = field(default_factory=list)
    sched: str | None = None
    sched_weight: int | None = None
    sched_cap: int | None = None


_LIST_LONG = "xl list -l"
_MAX_VCPU_INDEX = 1 << 16  # far above any Xen limit; keeps a bitmap string like "0-99999999999" from eating memory
_BITMAP_PART = re.compile(r"([0-9]{1,6})(?:-([0-9]{1,6}))?")


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _brief(value: object) -> str:
    """A JSON value for an error message, without serialising a whole (possibly very deep) structure."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return json.dumps(value)[:80]


def _member(obj: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...]) -> Any:
    """obj[key] if present and not null, checked against `kind`; bools never pass for ints."""
    value = obj.get(key)
    if value is None:
        return None
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise _error(_LIST_LONG, f"{_where(path, key)} should be {names}, got {_brief(value)}")
    return value


def _section(obj: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    return _member(obj, key, path, dict) or {}


def _records(obj: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    items = _member(obj, key, path, list) or []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _error(_LIST_LONG, f"{path}.{key}[{index}] should be an object, got {_brief(item)}")
    return items


def _avail_vcpus(b_info: dict[str, Any], max_vcpus: int | None) -> list[int] | None:
    """libxl prints bitmaps as a list of set bits; accept xl's "0-3,8" text form too."""
    value = _member(b_info, "avail_vcpus", "b_info", (list, str))
    if value is None:
        return None
    if isinstance(value, list):
        for bit in value:
            if isinstance(bit, bool) or not isinstance(bit, int) or not 0 <= bit < _MAX_VCPU_INDEX:
                raise _error(_LIST_LONG, f"b_info.avail_vcpus holds {_brief(bit)[:40]}, not a vCPU number")
        return sorted(set(value))
    text = value.strip()
    if text == "all":
        return list(range(max_vcpus)) if max_vcpus is not None and max_vcpus < _MAX_VCPU_INDEX else None
    if text in ("", "none"):
        return []
    bits: set[int] = set()
    for part in text.split(","):
        match = _BITMAP_PART.fullmatch(part.strip())
        if not match:
            raise _error(_LIST_LONG, f"b_info.avail_vcpus is not a CPU list: {text[:80]!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first or last >= _MAX_VCPU_INDEX:
            raise _error(_LIST_LONG, f"b_info.avail_vcpus has a bad range: {part[:40]!r}")
        bits.update(range(first, last + 1))
    return sorted(bits)


def _domain_type(c_info: dict[str, Any]) -> DomainType | None:
    value = _member(c_info, "type", "c_info", str)
    if value is None:
        return None
    try:
        return DomainType(value.lower())
    except ValueError:
        return DomainType.UNKNOWN


def _domain_config(entry: object, index: int) -> XlDomainConfig:
    if not isinstance(entry, dict):
        raise _error(_LIST_LONG, f"element {index} should be a {{\"domid\", \"config\"}} object")
    domid = _member(entry, "domid", f"[{index}]", int)
    if domid is None:
        raise _error(_LIST_LONG, f"element {index} has no domid")
    path = f"[{index}].config"
    config = _section(entry, "config", f"[{index}]")
    c_info = _section(config, "c_info", path)
    b_info = _section(config, "b_info", path)
    sched = _section(b_info, "sched_params", f"{path}.b_info")
    max_vcpus = _member(b_info, "max_vcpus", f"{path}.b_info", int)
    weight = _member(sched, "weight", f"{path}.b_info.sched_params", int)
    cap = _member(sched, "cap", f"{path}.b_info.sched_params", int)
    return XlDomainConfig(
        domid=domid,
        name=_member(c_info, "name", f"{path}.c_info", str),
        uuid=_member(c_info, "uuid", f"{path}.c_info", str),
        type=_domain_type(c_info),
        max_memkb=_member(b_info, "max_memkb", f"{path}.b_info", int),
        target_memkb=_member(b_info, "target_memkb", f"{path}.b_info", int),
        max_vcpus=max_vcpus,
        avail_vcpus=_avail_vcpus(b_info, max_vcpus),
        vifs=[
            XlVifConfig(
                devid=_member(nic, "devid", f"{path}.nics", int),
                mac=_member(nic, "mac", f"{path}.nics", str),
                bridge=_member(nic, "bridge", f"{path}.nics", str),
                backend_domid=_member(nic, "backend_domid", f"{path}.nics", int),
            )
            for nic in _records(config, "nics", path)
        ],
        disks=[
            XlDiskConfig(
                vdev=_member(disk, "vdev", f"{path}.disks", str),
                target=_member(disk, "pdev_path", f"{path}.disks", str)
                or _member(disk, "target", f"{path}.disks", str),
                backend=_member(disk, "backend", f"{path}.disks", str),
                format=_member(disk, "format", f"{path}.disks", str),
            )
            for disk in _records(config, "disks", path)
        ],
        sched=_member(sched, "sched", f"{path}.b_info.sched_params", str),
        # -1 is libxl's "default" marker for both.
        sched_weight=weight if weight is not None and weight >= 0 else None,
        sched_cap=cap if cap is not None and cap >= 0 else None,
    )


def parse_xl_list_long(text: str) -> list[XlDomainConfig]:
    """The JSON array ``xl list -l`` prints: one ``{"domid", "config"}`` object per domain."""
    if not isinstance(text, str):
        raise _error(_LIST_LONG, f"expected text, got {type(text).__name__}")
    if text.lstrip().startswith("("):
        raise _error(_LIST_LONG, 'this is SXP, not JSON (xl.conf has output_format="sxp"); set it to "json"')
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.split("\n")
        line = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else None
        raise _error(_LIST_LONG, f"not valid JSON ({exc.msg}, column {exc.colno})", line, exc.lineno) from None
    except (ValueError, RecursionError) as exc:  # an integer too long to convert, nesting too deep
        raise _error(_LIST_LONG, f"not usable JSON ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(document, list):
        raise _error(_LIST_LONG, f"expected a JSON array of domains, got a JSON {type(document).__name__}")
    return [_domain_config(entry, index) for index, entry in enumerate(document)]


# --- xl info ------------------------------------------------------------------------------

# "%-23s: %s": the key padded to 23 columns, then ': ' and the value (possibly empty, possibly without the space).
_INFO_LINE = re.compile(r"(?P<key>[A-Za-z][A-Za-z0-9_ ]*?) *:(?: (?P<value>.*))?")
_INFO_KEY_WIDTH = 23


class XlHostInfo(TypedDict):
    hostname: str
    release: str | None
    nr_cpus: int
    cpu_mhz: int | None
    total_memory_mib: int
    free_memory_mib: int
    xen_version: str | None
    xen_scheduler: str | None
    virt_caps: list[str]
    hw_caps: str | None


def parse_xl_info(text: str) -> dict[str, str]:
    """``key : value`` pairs of ``xl info``, values stripped (some are empty).

    The tables of ``xl info -n`` (cpu_topology, numa_info, device topology) follow a key
    with an empty value; their lines become that key's value, joined by newlines.
    """
    command = "xl info"
    info: dict[str, str] = {}
    block_key: str | None = None
    for lineno, line in _lines(command, text):
        match = _INFO_LINE.fullmatch(line)
        key = match.group("key") if match else ""
        if match and line.index(":", len(key)) == max(_INFO_KEY_WIDTH, len(key)):
            value = (match.group("value") or "").strip()
            info[key] = value
            block_key = key if not value else None
        elif block_key is not None:
            info[block_key] = f"{info[block_key]}\n{line}" if info[block_key] else line
        else:
            raise _error(command, "expected 'key : value' with the colon in column 24", line, lineno)
    if not info:
        raise _error(command, "no output at all")
    return info


def _info_number(key: str, value: str, pattern: re.Pattern[str]) -> int:
    """The integer part of a number xl printed; the key's line in the message otherwise."""
    match = pattern.fullmatch(value)
    if not match:
        raise _error("xl info", f"{key} is not a number", f"{key:<{_INFO_KEY_WIDTH}}: {value}")
    return int(match.group(1) if pattern.groups else value)


def _info_required(info: dict[str, str], key: str) -> int:
    value = info.get(key)
    if value is None:
        raise _error("xl info", f"no {key} line")
    return _info_number(key, value, _INT)


def xl_info_host(info: dict[str, str]) -> XlHostInfo:
    """Typed host facts from `parse_xl_info`'s dict; MiB as xl prints them, cpu_mhz truncated."""
    hostname = info.get("host")
    if not hostname:
        raise _error("xl info", "no host line")
    version = info.get("xen_version") or None
    if version is None and info.get("xen_major") and info.get("xen_minor"):
        version = f"{info['xen_major']}.{info['xen_minor']}{info.get('xen_extra', '')}"
    mhz = info.get("cpu_mhz")
    return XlHostInfo(
        hostname=hostname,
        release=info.get("release") or None,
        nr_cpus=_info_required(info, "nr_cpus"),
        cpu_mhz=_info_number("cpu_mhz", mhz, _DECIMAL) if mhz else None,  # "%d.%03d"
        total_memory_mib=_info_required(info, "total_memory"),
        free_memory_mib=_info_required(info, "free_memory"),
        xen_version=version,
        xen_scheduler=info.get("xen_scheduler") or None,
        virt_caps=info.get("virt_caps", "").split(),
        hw_caps=info.get("hw_caps") or None,
    )


# --- xl vcpu-list -------------------------------------------------------------------------

_VCPU_HEADER = ("Name", "ID", "VCPU", "CPU", "State", "Time(s)")
_VCPU_STATE = re.compile(r"[r-][b-][p-]")


@dataclass(frozen=True, slots=True)
class XlVcpu:
    name: str
    domid: int
    vcpu: int
    cpu: int | None  # None: offline ('-')
    state: str  # 'r--', '-b-', '--p'
    online: bool
    time_s: float
    affinity_hard: str  # xl's bitmap text: '0-3,8', 'all', 'none'
    affinity_soft: str


def parse_xl_vcpu_list(text: str) -> list[XlVcpu]:
    """Rows of ``xl vcpu-list``; also the pre-4.5 layout with one "CPU Affinity" column (soft is then 'all')."""
    command = "xl vcpu-list"
    lines = _lines(command, text)
    if not lines:
        raise _error(command, "no output at all (expected a 'Name ID VCPU CPU State Time(s) Affinity' header)")
    lineno, header = lines[0]
    tokens = header.split()
    if tuple(tokens[:6]) != _VCPU_HEADER or tokens[6:] not in (["Affinity", "(Hard", "/", "Soft)"],
                                                               ["CPU", "Affinity"]):
        raise _error(command, "expected the 'Name ID VCPU CPU State Time(s) Affinity (Hard / Soft)' header",
                     header, lineno)
    with_soft = tokens[6] == "Affinity"
    trailing = 8 if with_soft else 6
    vcpus = []
    for lineno, line in lines[1:]:
        # Before 4.5 xl printed a full bitmap as "any cpu".
        row = line.rstrip()
        if row.endswith("any cpu"):
            row = row[:-len("any cpu")] + "all"
        parts = row.rsplit(None, trailing)
        if len(parts) != trailing + 1 or (with_soft and parts[7] != "/"):
            columns = "ID VCPU CPU State Time(s) Hard / Soft" if with_soft else "ID VCPU CPU State Time(s) Affinity"
            raise _error(command, f"expected a name then {columns}", line, lineno)
        cpu_s, state = parts[3], parts[4]
        if not _VCPU_STATE.fullmatch(state):
            raise _error(command, "the State column is not xl's r b p letters", line, lineno)
        cpu = None if cpu_s == "-" else _int(command, cpu_s, "CPU", line, lineno)
        vcpus.append(XlVcpu(
            name=parts[0].strip(),
            domid=_int(command, parts[1], "ID", line, lineno),
            vcpu=_int(command, parts[2], "VCPU", line, lineno),
            cpu=cpu,
            state=state,
            online=state != "--p" and cpu is not None,
            time_s=_seconds(command, parts[5], line, lineno),
            affinity_hard=parts[6],
            affinity_soft=parts[8] if with_soft else "all",
        ))
    return vcpus


# --- xl sched-credit / sched-credit2 -----------------------------------------------------

# "Cpupool %s: tslice=..." (credit), "Cpupool %s: ratelimit=..." (credit2), "Cpupool %s: [sched params unavailable]".
_CPUPOOL_LINE = re.compile(r"Cpupool (?P<pool>.+?): (?:[a-z_-]+=\S*( [a-z_-]+=\S*)*|\[sched params unavailable\])")


@dataclass(frozen=True, slots=True)
class XlSched:
    name: str
    domid: int
    weight: int
    cap: int | None  # None: credit2 before Xen 4.10 had no cap
    cpupool: str | None = None  # from the "Cpupool <name>: ..." line above the table


def parse_xl_sched_credit(text: str) -> list[XlSched]:
    """Rows of ``xl sched-credit`` or ``xl sched-credit2``: a "Cpupool" line, a header and rows, per pool.

    Empty output is valid: xl prints nothing when no cpupool runs that scheduler.
    """
    command = "xl sched-credit"
    entries = []
    pool: str | None = None
    columns: int | None = None  # 2 (ID Weight) or 3 (ID Weight Cap) once a header was seen
    for lineno, line in _lines(command, text):
        tokens = line.split()
        if pool_match := _CPUPOOL_LINE.fullmatch(line.strip()):
            pool, columns = pool_match.group("pool"), None
            continue
        if tokens in (["Name", "ID", "Weight"], ["Name", "ID", "Weight", "Cap"]):
            columns = len(tokens) - 1
            continue
        if columns is None:
            raise _error(command, "expected a 'Cpupool <name>:' line or the 'Name ID Weight Cap' header",
                         line, lineno)
        parts = line.rsplit(None, columns)
        if len(parts) != columns + 1:
            raise _error(command, "expected a name then ID Weight" + (" Cap" if columns == 3 else ""), line, lineno)
        entries.append(XlSched(
            name=parts[0].strip(),
            domid=_int(command, parts[1], "ID", line, lineno),
            weight=_int(command, parts[2], "Weight", line, lineno),
            cap=_int(command, parts[3], "Cap", line, lineno) if columns == 3 else None,
            cpupool=pool,
        ))
    return entries
