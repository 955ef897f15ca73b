"""``--read-only``: any backend, with every action refused before it reaches the host."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NoReturn

from xentui.backends.base import (
    Action,
    Backend,
    Capabilities,
    ConsoleChannel,
    MigrateProgress,
    PreflightCheck,
    ReadOnlyError,
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

    async def sample(self) -> Sample:
        return await self.inner.sample()

    async def host_info(self) -> Host:
        return await self.inner.host_info()

    async def mem_set(self, domain: str, kib: int) -> None:
        _refuse("mem-set")

    async def mem_max(self, domain: str, kib: int) -> None:
        _refuse("mem-max")

    async def vcpu_set(self, domain: str, count: int, *, allow_overcommit: bool = False) -> None:
        _refuse("vcpu-set")

    async def pause(self, domain: str) -> None:
        _refuse("pause")

    async def unpause(self, domain: str) -> None:
        _refuse("unpause")

    async def save(
        self, domain: str, path: Path, *, keep_running: bool = False, overwrite: bool = False
    ) -> None:
        _refuse("save")

    async def restore(self, path: Path, *, paused: bool = False) -> str:
        _refuse("restore")

    async def sysrq(self, domain: str, key: str) -> None:
        _refuse("sysrq")

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]:
        return await self.inner.migrate_preflight(domain, target)

    async def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]:
        _refuse("migrate")
        yield  # pragma: no cover - makes this an async generator like the others

    async def shutdown(self, domain: str) -> None:
        _refuse("shutdown")

    async def reboot(self, domain: str) -> None:
        _refuse("reboot")

    async def destroy(self, domain: str) -> None:
        _refuse("destroy")

    async def set_sched(self, domain: str, *, weight: int | None = None, cap: int | None = None) -> None:
        _refuse("scheduler change")

    async def open_console(self, domain: str) -> ConsoleChannel:
        return _ReadOnlyConsole(await self.inner.open_console(domain))

    async def set_poll_interval(self, seconds: float) -> None:
        await self.inner.set_poll_interval(seconds)

    def watch_changes(self, callback: Callable[[], None] | None) -> None:
        self.inner.watch_changes(callback)

    async def close(self) -> None:
        await self.inner.close()
