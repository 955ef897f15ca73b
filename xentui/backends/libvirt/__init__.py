"""The libvirt backend: Xen via libxl, QEMU/KVM, remote hosts, through libvirt-python.

Every libvirt call that can block (all RPCs) runs in a worker thread (``asyncio.to_thread``);
nothing here blocks the event loop.

Events. libvirt delivers domain events, the connection's close and console stream data
through an event loop implementation registered once per process. libvirt's asyncio adapter
(``libvirtaio``) cannot be used here: it can be registered only once per process (a second
``asyncio.run`` or a test with its own loop gets "Event loop is already registered"), and it
calls ``loop.add_reader``/``remove_reader`` from whichever thread made the RPC, which for us is
a worker thread (asyncio's loops are not thread-safe). So libvirt's own default event loop
runs in one daemon thread, and every callback hands its result to the asyncio loop with
``call_soon_threadsafe``.

Statistics. One ``getAllDomainStats`` per refresh. Every key is optional: what the driver
left out is read with the per-domain calls (``info``, ``vcpus``, ``interfaceStats``,
``blockStats``), learnt from what each record lacks, not from the driver's name; what
neither gives is marked unknown (`Domain.unknown`), never shown as zero.

The domain XML (type, vifs, disks, maximum memory, vCPUs) is parsed once per domain and read
again only when an event says the domain changed, when its id changed, or after an action
that changes it.

The backend is one class composed of a mixin per concern, each in its own module:
``connection`` (the connection, libvirt's event loop thread, the domain events, errors),
``stats`` (sample, host_info), ``actions`` (memory, vCPUs, scheduler, pause, life cycle, sysrq,
save, restore), ``devices`` (a running guest's disks and NICs, the host's bridges, starting a defined domain,
the driver's snapshots), ``migration`` (preflight, migrate) and ``console`` (open_console, `LibvirtConsole`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from xentui.backends.base import Action, Backend, BackendError, BackendUnavailable
from xentui.backends.libvirt.actions import ActionsMixin
from xentui.backends.libvirt.connection import _BACKOFF_INITIAL_S, _BACKOFF_MAX_S, _Connection, _start_events, libvirt
from xentui.backends.libvirt.console import ConsoleMixin, LibvirtConsole
from xentui.backends.libvirt.devices import DevicesMixin
from xentui.backends.libvirt.migration import MigrationMixin
from xentui.backends.libvirt.stats import KnownDomain, StatsMixin
from xentui.backends.libvirt_xml import DomainConfig

__all__ = ["LibvirtBackend", "LibvirtConsole"]


class LibvirtBackend(StatsMixin, ActionsMixin, DevicesMixin, MigrationMixin, ConsoleMixin, Backend):
    """A libvirt host, local or remote, by URI (None: libvirt's default, as virsh without -c)."""

    name = "libvirt"

    def __init__(
        self,
        uri: str | None = None,
        *,
        read_only: bool = False,
        backoff: tuple[float, float] = (_BACKOFF_INITIAL_S, _BACKOFF_MAX_S),
        migrate_data_uri: str | None = None,
        migrate_params: dict[str, Any] | None = None,
    ) -> None:
        """``backoff``: the first and the longest wait between reconnection attempts, in seconds.
        ``migrate_data_uri``: where QEMU sends a migration's memory (VIR_MIGRATE_PARAM_URI,
        e.g. ``tcp://10.0.0.2``); by default the target's libvirtd chooses from its host name.
        ``migrate_params``: more typed parameters for migrateToURI3 (e.g. ``{"bandwidth": 100}``, MiB/s)."""
        if libvirt is None:
            raise BackendUnavailable(
                "the libvirt backend needs libvirt-python, which is not installed. Either "
                "pip install 'xentui[libvirt]': it has no wheels and compiles, so it needs libvirt's headers "
                "(libvirt-dev; libvirt-devel on Fedora), pkg-config, a C compiler and python3-dev; or install the "
                "distribution's python3-libvirt and run xentui from a venv made with --system-site-packages"
            )
        self.uri = uri
        self.read_only = read_only
        self.migrate_data_uri = migrate_data_uri
        self.migrate_params = dict(migrate_params or {})
        self._backoff_initial, self._backoff_max = backoff
        self._backoff = self._backoff_initial
        self._retry_at = 0.0
        self._last_error = ""
        self._events = _start_events()
        self._lock = threading.RLock()
        self._current: _Connection | None = None
        self._generation = 0
        self._configs: dict[str, KnownDomain] = {}  # uuid -> its XML, scheduler figures, device slots
        self._parsed_ahead: dict[str, DomainConfig] = {}  # uuid -> config, during a first refresh
        self._dirty: set[str] = set()  # uuids whose XML an event said changed
        # the domains looked at, and those whose per-vCPU times are (`focus`); None: all
        self._foci: tuple[frozenset[str] | None, frozenset[str] | None] = (None, None)
        self._learned: dict[Action, str] = {}  # what the driver turned out not to do, and why
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Callable[[], None]] = []
        self._wake_pending = False
        self._consoles: set[LibvirtConsole] = set()

    def warm_up(self) -> None:
        """Open the connection in a thread of its own while the screen starts: libvirt's open, a remote host's
        round trips (or a test driver parsing its node file) overlap Textual's start-up."""

        def connect() -> None:
            with self._lock:  # a sample meanwhile waits for this attempt (the lock is reentrant)
                try:
                    self._connection()
                except BackendError:  # the first sample tries again at once, and reports it
                    self._retry_at, self._backoff = 0.0, self._backoff_initial

        threading.Thread(target=connect, name="libvirt-connect", daemon=True).start()

    # --- the end ----------------------------------------------------------------------------------

    async def close(self) -> None:
        for console in list(self._consoles):
            await console.close()
        self._listeners = []

        def drop() -> None:
            with self._lock:
                if self._current is not None:
                    self._drop(self._current)

        await asyncio.to_thread(drop)
