"""Parsers for a guest's devices as xl lists them (``block-list``, ``network-list``), for xl's guest config files
(``/etc/xen/*.cfg``) and for the one-round-trip dumps the xl backend asks the host for (the configs, the bridges).

Pure functions, no I/O, as in `xentui.backends.xl_parsers`: any input ends in a result or a `ParseError` naming the
command and the line. A config file is never executed: xl's config language is a small one (``key = value``
statements; values are strings, numbers and lists of them), and `parse_xl_cfg` reads exactly that, refusing
anything else with the line it met it on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from xentui.backends.devices import AttachedDisk, AttachedNic, GuestConfig
from xentui.backends.xen_vdev import vdev_name, vdev_number
from xentui.backends.xl_parsers import ParseError, _error, _int, _lines
from xentui.textsafe import printable

__all__ = [
    "BRIDGE_DUMP",
    "CONFIG_DUMP",
    "ConfigValue",
    "XlBlockRow",
    "XlDomainDevices",
    "XlNetRow",
    "attached_disks",
    "guest_config",
    "guest_config_from_file",
    "parse_bridge_dump",
    "parse_config_dump",
    "parse_xl_block_list",
    "parse_xl_cfg",
    "parse_xl_devices",
    "parse_xl_network_list",
]

_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}", re.ASCII | re.IGNORECASE)


# --- xl block-list ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class XlBlockRow:
    """One row of ``xl block-list DOM``: the vdev's number (51728 is xvdb), where its backend lives, its state."""

    devid: int
    backend_domid: int
    handle: int
    state: int  # XenbusState: 4 connected, 5 closing, 6 closed
    evtch: int
    ring_ref: int
    be_path: str


_BLOCK_HEADER = ("Vdev", "BE", "handle", "state", "evt-ch", "ring-ref", "BE-path")


def _signed(command: str, token: str, what: str, line: str, lineno: int) -> int:
    """xl prints -1 for an event channel or ring not set up yet (a device still connecting)."""
    return -_int(command, token[1:], what, line, lineno) if token.startswith("-") else _int(
        command, token, what, line, lineno)


def parse_xl_block_list(text: str) -> list[XlBlockRow]:
    command = "xl block-list"
    lines = _lines(command, text)
    if not lines:
        raise _error(command, "no output at all (expected the 'Vdev BE handle state evt-ch ring-ref BE-path' header)")
    lineno, header = lines[0]
    if tuple(header.split()) != _BLOCK_HEADER:
        raise _error(command, "expected the 'Vdev BE handle state evt-ch ring-ref BE-path' header", header, lineno)
    rows = []
    for lineno, line in lines[1:]:
        parts = line.split(None, 6)
        if len(parts) != 7:
            raise _error(command, "expected Vdev BE handle state evt-ch ring-ref BE-path", line, lineno)
        rows.append(XlBlockRow(
            devid=_int(command, parts[0], "Vdev", line, lineno),
            backend_domid=_int(command, parts[1], "BE", line, lineno),
            handle=_int(command, parts[2], "handle", line, lineno),
            state=_int(command, parts[3], "state", line, lineno),
            evtch=_signed(command, parts[4], "evt-ch", line, lineno),
            ring_ref=_signed(command, parts[5], "ring-ref", line, lineno),
            be_path=parts[6].strip(),
        ))
    return rows


# --- xl network-list ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class XlNetRow:
    """One row of ``xl network-list DOM``."""

    devid: int
    backend_domid: int
    mac: str  # lower case
    handle: int
    state: int
    evtch: int
    tx_ring_ref: int
    rx_ring_ref: int
    be_path: str


_NET_HEADER = ("Idx", "BE", "Mac", "Addr.", "handle", "state", "evt-ch", "tx-/rx-ring-ref", "BE-path")


def parse_xl_network_list(text: str) -> list[XlNetRow]:
    command = "xl network-list"
    lines = _lines(command, text)
    if not lines:
        raise _error(command, "no output at all (expected the 'Idx BE Mac Addr. handle state ...' header)")
    lineno, header = lines[0]
    if tuple(header.split()) != _NET_HEADER:
        raise _error(command, "expected the 'Idx BE Mac Addr. handle state evt-ch tx-/rx-ring-ref BE-path' header",
                     header, lineno)
    rows = []
    for lineno, line in lines[1:]:
        parts = line.split(None, 7)
        if len(parts) != 8:
            raise _error(command, "expected Idx BE Mac handle state evt-ch tx/rx-ring-ref BE-path", line, lineno)
        if not _MAC.fullmatch(parts[2]):
            raise _error(command, "the Mac Addr. column is not a MAC", line, lineno)
        tx, slash, rx = parts[6].partition("/")
        if not slash:
            raise _error(command, "expected the tx/rx ring refs as N/M", line, lineno)
        rows.append(XlNetRow(
            devid=_int(command, parts[0], "Idx", line, lineno),
            backend_domid=_int(command, parts[1], "BE", line, lineno),
            mac=parts[2].lower(),
            handle=_int(command, parts[3], "handle", line, lineno),
            state=_int(command, parts[4], "state", line, lineno),
            evtch=_signed(command, parts[5], "evt-ch", line, lineno),
            tx_ring_ref=_signed(command, tx, "tx-ring-ref", line, lineno),
            rx_ring_ref=_signed(command, rx, "rx-ring-ref", line, lineno),
            be_path=parts[7].strip(),
        ))
    return rows


# --- xl's config language -----------------------------------------------------------------

ConfigValue = str | int | list["ConfigValue"]

_MAX_CONFIG_BYTES = 256 * 1024
_MAX_DEPTH = 8  # xl nests lists for vnuma (a list of lists); deeper is not a config
_MAX_STRING = 64 * 1024
_TOKEN = re.compile(r"""
    (?P<blank>[ \t\r]+)
  | (?P<comment>\#[^\n]*)
  | (?P<newline>\n)
  | (?P<id>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<number>0[xX][0-9A-Fa-f]{1,16}(?![A-Za-z0-9_])|[0-9]{1,18}(?![A-Za-z0-9_.]))
  | (?P<dstring>"(?:[^"\\\n]|\\[^\n])*")
  | (?P<sstring>'[^'\n]*')
  | (?P<plus>\+=)
  | (?P<op>[=;,\[\]])
""", re.VERBOSE | re.ASCII)
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|[0-7]{1,3}|.)")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "\\": "\\",
                   '"': '"', "'": "'", "?": "?"}


class ConfigSyntaxError(ParseError):
    """A guest config that is not xl's language; the message names the line, as xl's does."""


def _unescape(body: str, lineno: int) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "x":
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8) & 0xFF)
        if code in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[code]
        raise ConfigSyntaxError(f"line {lineno}: unknown escape \\{printable(code)} in a string")

    return _ESCAPE.sub(one, body)


def _tokens(text: str) -> list[tuple[str, str | int, int]]:
    tokens: list[tuple[str, str | int, int]] = []
    lineno, position = 1, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # met by the parser where it stands: the first error in the file is the one said
            tokens.append(("error", text[position:position + 20].split("\n", 1)[0], lineno))
            break
        kind, raw = match.lastgroup or "", match.group()
        position = match.end()
        if kind == "newline":
            tokens.append(("newline", "\n", lineno))
            lineno += 1
        elif kind == "number":
            tokens.append(("atom", int(raw, 0) if raw.lower().startswith("0x") else int(raw, 10), lineno))
        elif kind == "dstring":
            tokens.append(("atom", _unescape(raw[1:-1], lineno), lineno))
        elif kind == "sstring":
            tokens.append(("atom", raw[1:-1], lineno))
        elif kind == "id":
            tokens.append(("id", raw, lineno))
        elif kind in ("plus", "op"):
            tokens.append((raw, raw, lineno))
        if kind in ("dstring", "sstring") and len(raw) > _MAX_STRING:
            raise ConfigSyntaxError(f"line {lineno}: a string of {len(raw)} characters: not a config value")
    tokens.append(("end", "", lineno))
    return tokens


def parse_xl_cfg(text: str) -> dict[str, ConfigValue]:
    """``key = value`` statements (ended by a newline or ';', ``#`` comments, ``key += [list]`` appends), values
    a "string" (C escapes) or 'string', a number (decimal or 0x hex) or a [list] of them (lists nest, for vnuma;
    newlines and a trailing comma allowed inside). A key set twice keeps the last value, as xl does.
    ConfigSyntaxError with the line otherwise: an expression, a call, an unclosed string or list."""
    if not isinstance(text, str):
        raise ConfigSyntaxError(f"expected text, got {type(text).__name__}")
    if len(text) > _MAX_CONFIG_BYTES:
        raise ConfigSyntaxError(f"{len(text)} characters: far more than a guest config (at most "
                                f"{_MAX_CONFIG_BYTES // 1024} KiB read)")
    if "\0" in text:
        raise ConfigSyntaxError(f"line {text[:text.index(chr(0))].count(chr(10)) + 1}: a NUL byte: not a text file")
    tokens = _tokens(text)
    settings: dict[str, ConfigValue] = {}
    index = 0

    def near(token: tuple[str, str | int, int]) -> str:
        kind, value, lineno = token
        shown = {"newline": "end of line", "end": "end of file"}.get(kind) or repr(printable(str(value))[:30])
        if kind == "error":
            return f"line {lineno}: syntax error near {shown}, not xl's config language"
        return f"line {lineno}: syntax error near {shown}"

    def value_at(position: int, depth: int) -> tuple[ConfigValue, int]:
        kind, value, lineno = tokens[position]
        if kind == "atom":
            return value, position + 1
        if kind != "[":
            raise ConfigSyntaxError(f"{near(tokens[position])}: expected a \"string\", a number or a [ list ]")
        if depth >= _MAX_DEPTH:
            raise ConfigSyntaxError(f"line {lineno}: lists nested {depth + 1} deep: not a config value")
        items: list[ConfigValue] = []
        position += 1
        while True:
            while tokens[position][0] == "newline":
                position += 1
            if tokens[position][0] == "]":
                return items, position + 1
            item, position = value_at(position, depth + 1)
            items.append(item)
            while tokens[position][0] == "newline":
                position += 1
            if tokens[position][0] == ",":
                position += 1
            elif tokens[position][0] != "]":
                raise ConfigSyntaxError(f"{near(tokens[position])}: expected ',' or ']' in a list")

    while True:
        kind, value, lineno = tokens[index]
        if kind == "end":
            return settings
        if kind in ("newline", ";"):
            index += 1
            continue
        if kind != "id":
            raise ConfigSyntaxError(f"{near(tokens[index])}: expected a setting's name (key = value)")
        key = str(value)
        operator = tokens[index + 1][0]
        if operator not in ("=", "+="):
            raise ConfigSyntaxError(f"{near(tokens[index + 1])}: expected '=' after {printable(key)[:40]}")
        found, index = value_at(index + 2, 0)
        if tokens[index][0] not in ("newline", ";", "end"):
            raise ConfigSyntaxError(f"{near(tokens[index])}: expected the end of the line after "
                                    f"{printable(key)[:40]}'s value")
        if operator == "+=":
            earlier = settings.get(key, [])
            if not isinstance(found, list) or not isinstance(earlier, list):
                raise ConfigSyntaxError(f"line {lineno}: '+=' appends a list to a list ({printable(key)[:40]})")
            found = [*earlier, *found]
        settings[key] = found


# --- a guest config, as the operator's picker shows it ------------------------------------

_TYPES = ("pv", "pvh", "hvm")


def _number(settings: dict[str, ConfigValue], key: str) -> int | None:
    """xl reads a number from a number or a string of digits (its values are text inside)."""
    value = settings.get(key)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value.strip(), re.ASCII):
        return int(value)
    if value is None:
        return None
    raise ConfigSyntaxError(f"{key} should be a number, not {printable(str(value))[:40]!r}")


def _strings(settings: dict[str, ConfigValue], key: str) -> tuple[str, ...]:
    value = settings.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigSyntaxError(f"{key} should be a list of strings, e.g. {key} = [ '...' ]")
    return tuple(printable(item) for item in value if isinstance(item, str))


def guest_config(ref: str, text: str, running: Iterable[str] = ()) -> GuestConfig:
    """What the config at ``ref`` says, for the picker; a config that does not read is one with its ``problem``
    (and never raised): the picker shows why and the operator fixes the file."""
    try:
        settings = parse_xl_cfg(text)
        name = settings.get("name")
        if name is not None and not isinstance(name, str):
            raise ConfigSyntaxError("name should be a string, e.g. name = \"guest1\"")
        kind = settings.get("type")
        builder = settings.get("builder")
        if isinstance(kind, str) and kind.lower() in _TYPES:
            domain_type: str | None = kind.lower()
        elif kind is not None:
            raise ConfigSyntaxError(f"type should be pv, pvh or hvm, not {printable(str(kind))[:20]!r}")
        elif builder == "hvm":
            domain_type = "hvm"
        elif builder in (None, "generic", "linux"):
            domain_type = "pv"  # xl's default, and the old builder="generic"
        else:
            raise ConfigSyntaxError(f"builder should be hvm or generic, not {printable(str(builder))[:20]!r}")
        memory, maxmem, vcpus = _number(settings, "memory"), _number(settings, "maxmem"), _number(settings, "vcpus")
        disks, nics = _strings(settings, "disk"), _strings(settings, "vif")
    except ParseError as error:
        return GuestConfig(ref=ref, name=None, problem=str(error))
    shown = printable(name) if isinstance(name, str) else None
    problem = None if shown else "no name = \"...\" line: xl refuses a config without a name"
    return GuestConfig(
        ref=ref, name=shown, type=domain_type,
        memory_kib=memory * 1024 if memory is not None else None,
        maxmem_kib=maxmem * 1024 if maxmem is not None else None,
        vcpus=vcpus, disks=disks, nics=nics,
        running=name in set(running) if isinstance(name, str) else False,
        problem=problem,
    )


# --- the host's dumps: every config in one round trip, the bridges in one --------------------

CONFIG_DUMP = r"""
for f in /etc/xen/*.cfg /etc/xen/auto/*; do
  [ -f "$f" ] || continue
  case "$f" in *~|*.dpkg-*|*.rpmsave|*.rpmnew|*.bak|*.swp) continue;; esac
  real=$(readlink -f -- "$f") || real=$f
  printf '%s\0%s\0' "$f" "$real"
  if [ -r "$f" ]; then printf 'ok\0'; head -c 262145 -- "$f" | tr '\0' '\001'; else printf 'unreadable\0'; fi
  printf '\0'
done
"""
"""``sh -c CONFIG_DUMP``: each config file as path NUL realpath NUL ok|unreadable NUL content NUL (a NUL in a file
becomes \\x01, which the parser refuses). /etc/xen/auto/ holds what xendomains starts at boot: any file there,
most often a link to a config in /etc/xen (listed once)."""

BRIDGE_DUMP = "for d in /sys/class/net/*/bridge; do [ -d \"$d\" ] && printf '%s\\n' \"${d%/bridge}\"; done; true"
"""``sh -c BRIDGE_DUMP``: the host's bridges (an interface with a ``bridge`` directory in sysfs), one path a line."""


def parse_config_dump(data: bytes) -> list[tuple[str, bytes | None]]:
    """CONFIG_DUMP's output: (path, the file's bytes or None when it cannot be read), each file once (a link in
    auto/ to a config already listed is left out)."""
    fields = data.split(b"\0")
    found: list[tuple[str, bytes | None]] = []
    seen: set[bytes] = set()
    for start in range(0, len(fields) - 4, 4):
        path, real, status, content = fields[start:start + 4]
        if real in seen:
            continue
        seen.add(real)
        found.append((path.decode("utf-8", "surrogateescape"), content if status == b"ok" else None))
    return found


def guest_config_from_file(ref: str, data: bytes | None, running: Iterable[str] = ()) -> GuestConfig:
    """`guest_config` of a file's bytes as CONFIG_DUMP read them (None: unreadable)."""
    if data is None:
        return GuestConfig(ref=ref, name=None, problem="cannot be read (permissions)")
    if len(data) > _MAX_CONFIG_BYTES:
        return GuestConfig(ref=ref, name=None, problem=f"more than {_MAX_CONFIG_BYTES // 1024} KiB: not a guest "
                                                       "config")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return GuestConfig(ref=ref, name=None, problem=f"not UTF-8 text (byte {error.start}): not a guest config")
    return guest_config(ref, text, running)


def parse_bridge_dump(text: str) -> list[str]:
    return sorted({line.rsplit("/", 1)[-1] for line in text.splitlines() if line.strip()})


# --- xl list -l: every domain's disks and NICs as libxl keeps them (it updates them on each hot-plug) ----------

_BACKEND_KINDS = {"vbd": "phy", "qdisk": "qdisk", "vbd3": "tap"}


@dataclass(frozen=True, slots=True)
class XlDomainDevices:
    domid: int
    name: str
    disks: list[AttachedDisk]
    nics: list[AttachedNic]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _flag(value: object) -> bool:
    """libxl's JSON booleans: 1/0, True/False, "True"/"False" (it leaves a false one out)."""
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value) if isinstance(value, (bool, int)) else False


def parse_xl_devices(text: str) -> list[XlDomainDevices]:
    """Each domain's disks and NICs from ``xl list -l`` (all domains, or ``xl list -l DOM``): vdev, the path
    (``pdev_path``), read-write or not (libxl leaves ``readwrite`` out when it is 0), format, CD-ROM; devid, MAC,
    bridge. A domain without a name or domid is left out; a malformed document is `ParseError`."""
    try:
        document = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError) as error:
        raise _error("xl list -l", f"not valid JSON ({type(error).__name__})") from None
    if not isinstance(document, list):
        raise _error("xl list -l", "expected a JSON array of domains")
    found = []
    for entry in document:
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            continue
        config = entry["config"]
        c_info = config.get("c_info") if isinstance(config.get("c_info"), dict) else {}
        domid, name = entry.get("domid"), c_info.get("name")
        if isinstance(domid, bool) or not isinstance(domid, int) or not isinstance(name, str):
            continue
        disks = []
        for disk in config.get("disks") or []:
            if not isinstance(disk, dict) or not isinstance(disk.get("vdev"), str):
                continue
            disks.append(AttachedDisk(
                vdev=disk["vdev"], path=_text(disk.get("pdev_path")) or _text(disk.get("target")) or "",
                backend=_text(disk.get("backend")) or "", readonly=not _flag(disk.get("readwrite")),
                format=_text(disk.get("format")) or "raw", cdrom=_flag(disk.get("is_cdrom"))))
        nics = []
        for nic in config.get("nics") or []:
            if not isinstance(nic, dict):
                continue
            devid = nic.get("devid")
            nics.append(AttachedNic(
                devid=devid if isinstance(devid, int) and not isinstance(devid, bool) else -1,
                mac=(_text(nic.get("mac")) or "").lower(), bridge=_text(nic.get("bridge")),
                backend=str(nic.get("backend_domid") or 0)))
        found.append(XlDomainDevices(domid, name, disks, nics))
    return found


def attached_disks(rows: list[XlBlockRow], configured: list[AttachedDisk]) -> list[AttachedDisk]:
    """The disks ``xl block-list`` says are there, each with what libxl's config says of it (path, mode, format):
    block-list has the truth of what is plugged in, the config the rest. A row the config does not know (plugged
    in behind libxl's back) is shown with its number's name and no path."""
    by_number = {vdev_number(disk.vdev): disk for disk in configured}
    disks = []
    for row in rows:
        known = by_number.get(row.devid)
        kind = row.be_path.rstrip("/").split("/")[-3] if row.be_path.count("/") >= 3 else ""
        backend = (known.backend if known and known.backend else "") or _BACKEND_KINDS.get(kind, kind or "?")
        if known is None:
            disks.append(AttachedDisk(vdev=vdev_name(row.devid), path="", backend=backend, readonly=False,
                                      devid=row.devid))
        else:
            disks.append(AttachedDisk(vdev=known.vdev, path=known.path, backend=backend, readonly=known.readonly,
                                      format=known.format, devid=row.devid, cdrom=known.cdrom))
    return disks
