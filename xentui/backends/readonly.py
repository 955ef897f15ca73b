"""``--read-only``: any backend, with every action refused before it reaches the host.

A gate, not a copy of the interface: it forwards what watches (samples, the console's output, the pre-flight,
which changes nothing) and overrides no action, so each is the base class's refusal, said as read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import NoReturn

from xentui.backends.base import (
    ACTION_WORDS,
    Action,
    AttachedDisk,
    AttachedNic,
    Backend,
    Capabilities,
    ConsoleChannel,
    GuestConfig,
    PreflightCheck,
    ReadOnlyError,
    SavedImage,
    SaveTarget,
    Snapshot,
    SnapshotSource,
    Unsupported,
)
from xentui.model import Host, Sample

REASON = "xentui was started with --read-only"


def _refuse(what: str) -> NoReturn:
    raise ReadOnlyError(f"{what} refused: {REASON}")


class _ReadOnlyConsole(ConsoleChannel):
    """The guest's output still shows; keystrokes never reach it."""

    def __init__(self, inner: ConsoleChannel) -> None:
        self._inner = inner

    async def read(self) -> bytes:
        return await self._inner.read()

    async def write(self, data: bytes) -> None:
        _refuse("typing into the console")

    async def resize(self, columns: int, rows: int) -> None:
        await self._inner.resize(columns, rows)

    async def close(self) -> None:
        await self._inner.close()


class ReadOnlyBackend(Backend):
    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def finished(self) -> str | None:  # type: ignore[override]
        return self.inner.finished

    @property
    def activity(self) -> str | None:  # type: ignore[override]
        return self.inner.activity

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities.without(
            {action: REASON for action in Action if action is not Action.CONSOLE}
        )

    def refusal(self, action: Action) -> Unsupported:
        """Every action but the console and the pre-flight (which changes nothing) is the base class's
        refusal: this backend overrides none of them."""
        return ReadOnlyError(f"{ACTION_WORDS.get(action, action.value)} refused: {REASON}")

    async def sample(self) -> Sample:
        return await self.inner.sample()

    def for_host(self, label: str) -> Backend:
        """A pool's member, read-only too."""
        inner = self.inner.for_host(label)
        return self if inner is self.inner else ReadOnlyBackend(inner)

    async def host_info(self) -> Host:
        return await self.inner.host_info()

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]:
        return await self.inner.migrate_preflight(domain, target)

    async def open_console(self, domain: str) -> ConsoleChannel:
        return _ReadOnlyConsole(await self.inner.open_console(domain))

    async def check_save_target(self, path: Path, *, overwrite: bool) -> SaveTarget:  # looks, changes nothing
        return await self.inner.check_save_target(path, overwrite=overwrite)

    async def saved_images(self, directory: Path) -> list[SavedImage]:
        return await self.inner.saved_images(directory)

    # what a guest has, and what the host could start: listed, never changed

    async def disks(self, domain: str) -> list[AttachedDisk]:
        return await self.inner.disks(domain)

    async def nics(self, domain: str) -> list[AttachedNic]:
        return await self.inner.nics(domain)

    async def bridges(self) -> list[str]:
        return await self.inner.bridges()

    async def guest_configs(self) -> list[GuestConfig]:
        return await self.inner.guest_configs()

    async def snapshot_sources(self, domain: str) -> list[SnapshotSource]:
        return await self.inner.snapshot_sources(domain)

    async def snapshots(self, domain: str) -> list[Snapshot]:
        return await self.inner.snapshots(domain)

    async def set_poll_interval(self, seconds: float) -> None:
        await self.inner.set_poll_interval(seconds)

    def watch_changes(self, callback: Callable[[], None] | None) -> None:
        self.inner.watch_changes(callback)

    def focus(self, keys: Collection[str] | None, vcpu_keys: Collection[str] | None = None) -> None:
        self.inner.focus(keys, vcpu_keys)

    def warm_up(self) -> None:
        self.inner.warm_up()

    async def close(self) -> None:
        await self.inner.close()
