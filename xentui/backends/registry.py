"""The backends xentui knows, as a table the command line reads: the name `--backend` takes, the option that
picks it on its own, how to build it from the options given, and how `auto` chooses.

A new backend is a module in this package and one entry here; `cli.py` does not change. Each backend is imported
only when it is built: the simulator's start-up does not wait for libvirt, nor batch mode for the screen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from xentui.backends.base import Backend
from xentui.errors import BackendError, BackendUnavailable, InvalidArgument

__all__ = ["BACKENDS", "BackendOptions", "BackendSpec", "picking_options"]


@dataclass(frozen=True)
class BackendOptions:
    """What the command line says that backends read (each takes its own)."""

    connect: str | None = None
    host: str | None = None  # an ssh destination: the xl backend on that dom0
    connects: tuple[str, ...] = ()  # -c given several times: a pool of libvirt hosts
    hosts: tuple[str, ...] = ()  # --host given several times: a pool of dom0s, xl over ssh each
    sim_hosts: int | None = None  # --sim-hosts: a simulated pool of that many hosts
    pool: str | None = None  # --pool: the config file naming the pool's hosts ("" for the default one)
    ssh_options: tuple[str, ...] = ()
    xl_stats: str = "auto"
    migrate_ssh: str | None = None
    delay: float = 3.0
    sim_domains: int = 12
    seed: int | None = None
    replay: Path | None = None
    replay_interval: float = 3.0
    read_only: bool = False


@dataclass(frozen=True)
class BackendSpec:
    name: str
    """What ``--backend`` takes."""
    summary: str
    build: Callable[[BackendOptions], Backend]
    option: str | None = None
    """The option that picks this backend by itself, as messages name it ("-c (libvirt)"), and ..."""
    dest: str | None = None
    """... its attribute in the parsed arguments."""


def _xl(options: BackendOptions) -> Backend:
    if len(options.hosts) > 1:
        return _pool([(host, dataclasses.replace(options, host=host, hosts=())) for host in options.hosts], _xl, "xl")
    from xentui.backends.xl import XlBackend

    host = None
    if options.host is not None:
        from xentui.backends.ssh import SshHost

        host = SshHost(options.host, options=options.ssh_options)
    backend = XlBackend(stats=options.xl_stats, delay=options.delay, migrate_ssh=options.migrate_ssh, host=host)
    try:
        backend.check_environment()
    except BackendError:
        if host is not None:  # its ssh connection, if one opened, and the socket's directory
            asyncio.run(host.close())
        raise
    return backend


def _libvirt(options: BackendOptions) -> Backend:
    if len(options.connects) > 1:
        return _pool([(uri_label(uri), dataclasses.replace(options, connect=uri, connects=()))
                      for uri in options.connects], _libvirt, "libvirt", address=_libvirt_address)
    try:
        from xentui.backends.libvirt import LibvirtBackend
    except ImportError as error:
        raise BackendUnavailable(f"the libvirt backend cannot load: {error}") from error
    return LibvirtBackend(options.connect, read_only=options.read_only)


def _sim(options: BackendOptions) -> Backend:
    from xentui.backends.sim import SimBackend, SimCluster

    seed = options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "big")
    if options.sim_hosts == 1:  # the first host alone; its two peers are still there to migrate to
        return SimBackend(SimCluster(seed=seed, domains=options.sim_domains))
    # the demo's three hosts (None), or that many hosts of --sim-domains each
    cluster = SimCluster(seed=seed, domains=options.sim_domains, hosts=options.sim_hosts)
    from xentui.backends.pool import PoolBackend

    return PoolBackend([(name, SimBackend(cluster, name)) for name in cluster.hosts])


def uri_label(uri: str) -> str:
    """A libvirt URI's name in a pool: its host, and its path when it has one (qemu+ssh://kvm1/system:
    kvm1:system; qemu:///system: qemu:system), with no '/' (the pool's keys are host/domain)."""
    try:
        parts = urlsplit(uri)
        where = parts.hostname or parts.scheme.split("+")[0] or uri
    except ValueError:  # a malformed address ("qemu+ssh://[::1/system"): the checks say so; a label all the same
        return uri.replace("/", ":")
    path = parts.path.strip("/").replace("/", ":")
    return f"{where}:{path}" if path else where


def _libvirt_address(options: BackendOptions) -> str | None:
    """A libvirt host's migration target is its URI: what migrateToURI3 takes, where its label ("qemu:system")
    means nothing to libvirt."""
    return options.connect


def _pool(members: list[tuple[str, BackendOptions]], build: Callable[[BackendOptions], Backend],
          kind: str, address: Callable[[BackendOptions], str | None] | None = None) -> Backend:
    """One backend per host, each built when first sampled: a host down at start is shown down (and tried
    again), not a reason to refuse the others. ``address``: how the other hosts reach one for a migration,
    from its options (default: the host part of its name)."""
    from xentui.backends.pool import LateMember, PoolBackend

    labels: list[str] = []
    for label, _options in members:
        unique, number = label, 2
        while unique in labels:
            unique, number = f"{label}#{number}", number + 1
        labels.append(unique)
    given = [member for _label, member in members]
    addresses = {label: where for label, where in zip(labels, map(address, given), strict=True)
                 if where} if address is not None else {}
    return PoolBackend([(label, LateMember(label, partial(build, member), kind))
                        for label, member in zip(labels, given, strict=True)], addresses=addresses)


def _configured_pool(options: BackendOptions) -> Backend:
    """The hosts the config file names (`xentui.config`), each with its own backend, in one table."""
    from xentui.backends.pool import LateMember, PoolBackend
    from xentui.backends.ssh import check_destination
    from xentui.config import config_path, load_pool
    from xentui.validate import check_libvirt_uri

    hosts = load_pool(Path(options.pool) if options.pool else None)
    members: list[tuple[str, Backend]] = []
    for host in hosts:
        if host.backend == "xl":
            check_destination(host.address)
            member = dataclasses.replace(options, host=host.address, hosts=(),
                                         ssh_options=tuple(f"-o{option}" for option in host.ssh_options))
            members.append((host.name, LateMember(host.name, partial(_xl, member), "xl")))
        else:
            try:
                check_libvirt_uri(host.address)
            except InvalidArgument as error:
                raise InvalidArgument(f"{config_path() if options.pool is None else options.pool}: host "
                                      f"{host.name!r}: {error}") from None
            member = dataclasses.replace(options, connect=host.address, connects=())
            members.append((host.name, LateMember(host.name, partial(_libvirt, member), "libvirt")))
    return PoolBackend(members, groups={host.name: host.group for host in hosts},
                       addresses={host.name: host.migrate_address or _reached_at(host.backend, host.address)
                                  for host in hosts})


def _reached_at(backend: str, address: str) -> str:
    """Where a configured host is migrated to when the file says no migrate_address: a libvirt host at its URI,
    an xl host at the host part of its ssh destination (root@dom0a: dom0a)."""
    return address if backend == "libvirt" else address.rsplit("@", 1)[-1]


def _replay(options: BackendOptions) -> Backend:
    from xentui.backends.replay import ReplayBackend

    assert options.replay is not None  # the command line refuses --backend replay without --replay
    return ReplayBackend(options.replay, interval=options.replay_interval)


# in the order --help lists them; `auto` picks xl in a Xen dom0, else libvirt (xentui.backends.detect)
BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec("xl", "Xen's own toolstack, in dom0 (libxenstat, or one xentop -b)", _xl,
                option="--host (xl over ssh)", dest="host"),
    BackendSpec("libvirt", "libvirt: Xen through libxl, QEMU/KVM, remote hosts", _libvirt,
                option="-c (libvirt)", dest="connect"),
    BackendSpec("sim", "a simulated Xen host", _sim, option="--demo (sim)", dest="demo"),
    BackendSpec("replay", "a recorded xentop -b log, played back", _replay, option="--replay", dest="replay"),
    BackendSpec("pool", "the hosts the config file names, in one table", _configured_pool, option="--pool",
                dest="pool"),
)}

# the order options that pick a backend are named in a message about two of them
_PICKING_ORDER = ("sim", "libvirt", "xl", "replay", "pool")


def picking_options() -> list[BackendSpec]:
    """The backends an option picks on its own (--demo, -c, --host, --replay)."""
    return [BACKENDS[name] for name in _PICKING_ORDER]
