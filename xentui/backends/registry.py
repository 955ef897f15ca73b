"""The backends xentui knows, as a table the command line reads: the name `--backend` takes, the option that
picks it on its own, how to build it from the options given, and how `auto` chooses.

A new backend is a module in this package and one entry here; `cli.py` does not change. Each backend is imported
only when it is built: the simulator's start-up does not wait for libvirt, nor batch mode for the screen.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xentui.backends.base import Backend
from xentui.errors import BackendError, BackendUnavailable

__all__ = ["BACKENDS", "BackendOptions", "BackendSpec", "picking_options"]


@dataclass(frozen=True)
class BackendOptions:
    """What the command line says that backends read (each takes its own)."""

    connect: str | None = None
    host: str | None = None  # an ssh destination: the xl backend on that dom0
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
    try:
        from xentui.backends.libvirt import LibvirtBackend
    except ImportError as error:
        raise BackendUnavailable(f"the libvirt backend cannot load: {error}") from error
    return LibvirtBackend(options.connect, read_only=options.read_only)


def _sim(options: BackendOptions) -> Backend:
    from xentui.backends.sim import SimBackend, SimCluster

    seed = options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "big")
    return SimBackend(SimCluster(seed=seed, domains=options.sim_domains))


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
)}

# the order options that pick a backend are named in a message about two of them
_PICKING_ORDER = ("sim", "libvirt", "xl", "replay")


def picking_options() -> list[BackendSpec]:
    """The backends an option picks on its own (--demo, -c, --host, --replay)."""
    return [BACKENDS[name] for name in _PICKING_ORDER]
