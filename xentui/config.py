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
from dataclasses import dataclass
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
