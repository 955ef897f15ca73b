"""What every console is to the rest of xentui: a byte stream with a size.

Here, below the backends: a backend opens one (the xl backend through `console.pty`), the screen reads it.
"""

from __future__ import annotations

import abc

__all__ = ["ConsoleChannel"]


class ConsoleChannel(abc.ABC):
    """A domain's console as a byte stream. ``read`` returns b'' once the console is gone."""

    @abc.abstractmethod
    async def read(self) -> bytes: ...

    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def resize(self, columns: int, rows: int) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...
