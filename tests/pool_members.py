"""A pool member for tests of the pool: a real backend behind it, told to fail or hang on demand."""

from __future__ import annotations

import asyncio

from xentui.backends.base import Backend, Capabilities
from xentui.errors import BackendUnavailable
from xentui.model import Sample


class Flaky(Backend):
    """A member that fails, hangs or answers as told; counts how often it is asked."""

    name = "flaky"

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.mode = "ok"  # "ok", "fail", "hang"
        self.calls = 0
        self.release = asyncio.Event()

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    async def sample(self) -> Sample:
        self.calls += 1
        if self.mode == "fail":
            raise BackendUnavailable("ssh: connect to host dom0b port 22: Connection refused")
        if self.mode == "hang":
            await self.release.wait()
        return await self.inner.sample()

    async def host_info(self):  # type: ignore[no-untyped-def]
        return await self.inner.host_info()

    async def open_console(self, name: str):  # type: ignore[no-untyped-def]
        return await self.inner.open_console(name)
