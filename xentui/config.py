"""The operator's config file: ``$XDG_CONFIG_HOME/xentui/config.toml`` (else ``~/.config/xentui/config.toml``).

xentui reads it and never writes it behind the operator's back. It names the pool's hosts, which
``xentui --pool`` watches in one table::

    [[hosts]]
    name = "dom0a"                 # its name in the table: unique, no '/'
    backend = "xl"                 # "xl" (over ssh) or "libvirt"
    address = "root@dom0a"         # xl: the ssh destination (your ~/.ssh/config applies)
    ssh_options = ["Port=2222"]    # xl: more ssh -o options
    group = "rack 1"               # shown on its line; the filter matches it
    migrate_address = "10.0.0.11"  # how the other dom0s reach it for xl migrate (default: the address's host)

    [[hosts]]
    name = "kvm1"
    backend = "libvirt"
    uri = "qemu+ssh://root@kvm1/system"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from xentui.errors import InvalidArgument

POOL_BACKENDS = ("xl", "libvirt")
_HOST_KEYS = {"name", "backend", "address", "uri", "ssh_options", "group", "migrate_address"}


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/xentui``, else ``~/.config/xentui`` (a relative or empty XDG_CONFIG_HOME is ignored, as
    the XDG spec says)."""
    home = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(home) if home and Path(home).is_absolute() else Path.home() / ".config"
    return base / "xentui"


def config_path() -> Path:
    return config_dir() / "config.toml"


@dataclass(frozen=True)
class PoolHost:
    """One host of the pool, as the config file names it."""

    name: str
    backend: str  # "xl" or "libvirt"
    address: str  # xl: the ssh destination; libvirt: the URI
    ssh_options: tuple[str, ...] = ()
    group: str = ""
    migrate_address: str | None = None


def load_pool(path: Path | None = None) -> list[PoolHost]:
    """The hosts the config file names, in its order. A file that cannot be read or parsed, or a host entry
    that does not make sense, is an `InvalidArgument` naming the file and the line or the entry."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidArgument(f"{path}: no such file; --pool reads the pool's hosts from it "
                              "(see `[[hosts]]` in the README)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidArgument(f"{path}: cannot be read: {error}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidArgument(f"{path}: {error}") from None
    entries = document.get("hosts", [])
    if not isinstance(entries, list) or not entries:
        raise InvalidArgument(f"{path}: no [[hosts]] entries: --pool needs at least one host")
    hosts = [_host(path, number, entry) for number, entry in enumerate(entries, 1)]
    names = [host.name for host in hosts]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidArgument(f"{path}: two [[hosts]] are named {', '.join(twice)}: each needs its own name")
    return hosts


def _host(path: Path, number: int, entry: object) -> PoolHost:
    where = f"{path}: [[hosts]] number {number}"
    if not isinstance(entry, dict):
        raise InvalidArgument(f"{where}: not a table")
    unknown = sorted(set(entry) - _HOST_KEYS)
    if unknown:
        raise InvalidArgument(f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(_HOST_KEYS))})")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or "/" in name or not name.isprintable():
        raise InvalidArgument(f"{where}: name must be a printable string without '/', not {name!r}")
    where = f"{path}: host {name!r}"
    backend = entry.get("backend", "xl")
    if backend not in POOL_BACKENDS:
        raise InvalidArgument(f"{where}: backend must be one of {', '.join(POOL_BACKENDS)}, not {backend!r}")
    address = entry.get("uri" if backend == "libvirt" else "address")
    if not isinstance(address, str) or not address.strip():
        wanted = "uri (a libvirt URI)" if backend == "libvirt" else "address (an ssh destination)"
        raise InvalidArgument(f"{where}: needs {wanted}")
    options = entry.get("ssh_options", [])
    if not isinstance(options, list) or not all(isinstance(option, str) and option.isprintable() and option.strip()
                                                for option in options):
        raise InvalidArgument(f"{where}: ssh_options must be a list of strings, as ssh -o takes them")
    group, migrate_address = entry.get("group", ""), entry.get("migrate_address")
    if not isinstance(group, str) or not group.isprintable():
        raise InvalidArgument(f"{where}: group must be a string")
    if migrate_address is not None and (not isinstance(migrate_address, str) or not migrate_address.strip()):
        raise InvalidArgument(f"{where}: migrate_address must be a host name or address")
    return PoolHost(name.strip(), backend, address.strip(), tuple(options), group, migrate_address)


# --- settings that stay ---------------------------------------------------------------------------------------

COLUMN_IDS = ("state", "cpu_pct", "cpu_s", "mem", "mem_pct", "maxmem", "maxmem_pct", "vcpus", "nets", "nettx",
              "netrx", "vbds", "vbd_oo", "vbd_rd", "vbd_wr", "vbd_rsect", "vbd_wsect", "ssid", "type")
"""The table's columns after NAME, by id, in their default order (`xentui.ui.columns.COLUMNS`, checked by a test)."""


@dataclass
class Settings:
    """The ``[settings]`` table: what the screen starts with. The command line wins over it."""

    theme: str | None = None
    delay: float | None = None
    sort: str | None = None
    reverse: bool = False
    columns: tuple[str, ...] | None = None  # shown, in this order; None: every column, in the default order
    name_width: int | None = None  # NAME's widest; None: as wide as the longest name (up to its share)
    networks: bool = False
    vbds: bool = False
    vcpus: bool = False
    dom0_first: bool = False
    save_dir: str | None = None
    audit_log: str | None = None
    keymap: dict[str, str] = field(default_factory=dict)  # binding id -> keys, from the [keymap] table


_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "theme": (str,), "delay": (int, float), "sort": (str,), "reverse": (bool,), "columns": (list,),
    "name_width": (int,), "networks": (bool,), "vbds": (bool,), "vcpus": (bool,), "dom0_first": (bool,),
    "save_dir": (str,), "audit_log": (str,),
}


def _line_of(text: str, key: str, table: str) -> str:
    """Where ``key`` is set inside ``[table]``, for a message: "line 7"."""
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped.strip("[] ") == table
        elif inside and stripped.split("=", 1)[0].strip().strip('"') == key:
            return f"line {number}"
    return f"[{table}]"


def load_settings(path: Path | None = None) -> tuple[Settings, list[str]]:
    """The settings of the config file and what is wrong in it, each problem naming its line. Never raises: a
    broken file gives the defaults (and the problem), a bad value is left out (and said); nothing is lost, as
    xentui never writes the file unless the operator asks."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings(), []
    except (OSError, UnicodeDecodeError) as error:
        return Settings(), [f"{path}: cannot be read ({error}); the defaults are used"]
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return Settings(), [f"{path}: {error}; the defaults are used"]
    problems: list[str] = []
    settings = Settings()
    table = document.get("settings", {})
    if not isinstance(table, dict):
        return settings, [f"{path}: settings must be a table ([settings])"]
    for key, value in table.items():
        where = f"{path}, {_line_of(text, key, 'settings')}"
        types = _SETTING_TYPES.get(key)
        if types is None:
            problems.append(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(_SETTING_TYPES))})")
            continue
        if not isinstance(value, types) or (bool in types) != isinstance(value, bool):
            problems.append(f"{where}: {key} must be {' or '.join(t.__name__ for t in types)}, not {value!r}")
            continue
        problem = _check_setting(key, value)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        setattr(settings, key, tuple(value) if key == "columns" else value)
    keymap = document.get("keymap", {})
    if not isinstance(keymap, dict):
        problems.append(f"{path}: keymap must be a table ([keymap]: binding id = \"keys\")")
    else:
        for binding, keys in keymap.items():
            if not isinstance(keys, str) or not keys.strip() or not keys.isprintable():
                problems.append(f"{path}, {_line_of(text, binding, 'keymap')}: {binding} must be keys, e.g. \"ctrl+x\"")
                continue
            settings.keymap[binding] = keys.strip()
    return settings, problems


def _check_setting(key: str, value: object) -> str | None:
    if key == "delay" and not 0.5 <= float(value) <= 3600:  # type: ignore[arg-type]
        return f"delay must be 0.5..3600 seconds, not {value}"
    if key == "name_width" and not 10 <= int(value) <= 200:  # type: ignore[call-overload]
        return f"name_width must be 10..200, not {value}"
    if key == "columns":
        unknown = [c for c in value if c not in COLUMN_IDS]  # type: ignore[attr-defined]
        if unknown or not value or len(set(value)) != len(value):  # type: ignore[arg-type]
            return (f"columns: {', '.join(map(repr, unknown))} unknown" if unknown else "columns: empty or a column "
                    "twice") + f" (columns: {', '.join(COLUMN_IDS)}; NAME always comes first)"
    if key == "sort" and value not in ("name", *COLUMN_IDS):
        return f"sort: no column {value!r} (columns: name, {', '.join(COLUMN_IDS)})"
    if key in ("save_dir", "audit_log") and not str(value).startswith(("/", "~")):
        return f"{key} must be an absolute path (or start with ~), not {value!r}"
    return None


def settings_text(settings: Settings) -> str:
    """The ``[settings]`` table as TOML, for writing back."""
    lines = ["[settings]"]
    for key in _SETTING_TYPES:
        value = getattr(settings, key)
        if value is None or (key in ("reverse", "networks", "vbds", "vcpus", "dom0_first") and value is False):
            continue
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value!r}")
        elif isinstance(value, tuple):
            lines.append(f"{key} = [{', '.join(_toml_string(v) for v in value)}]")
        else:
            lines.append(f"{key} = {_toml_string(str(value))}")
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    """A TOML basic string: backslash and quote escaped, anything unprintable as \\uXXXX."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    body = "".join(c if c.isprintable() else "\\u" + format(ord(c), "04x") for c in escaped)
    return '"' + body + '"'


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write ``[settings]`` into the config file, leaving everything else in it as it was (the hosts, the
    keymap, comments): the old ``[settings]`` table is replaced where it stands, or the new one is added at
    the end. Written to a new file, then renamed over the old one."""
    path = path or config_path()
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = ""
    kept: list[str] = []
    inside = placed = False
    new = settings_text(settings).rstrip("\n").split("\n")
    for line in old.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            inside = stripped.strip("[] ") == "settings"
            if inside and not placed:
                kept.extend(new)
                placed = True
            if inside:
                continue
        elif stripped.startswith("[["):
            inside = False
        if not inside:
            kept.append(line)
    if not placed:
        kept = [*kept, *([""] if kept and kept[-1].strip() else []), *new]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    partial.write_text("\n".join(kept) + "\n", encoding="utf-8")
    partial.replace(path)
    return path
