"""--read-only: nothing can change, whatever is asked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from xentui.backends.base import Action, ReadOnlyError
from xentui.backends.readonly import ReadOnlyBackend

pytestmark = pytest.mark.asyncio


def attempts(tmp: Path):
    return [
        lambda b: b.mem_set("web-frontend-01", 1024 * 1024),
        lambda b: b.mem_max("web-frontend-01", 8 * 1024 * 1024),
        lambda b: b.vcpu_set("web-frontend-01", 1),
        lambda b: b.pause("web-frontend-01"),
        lambda b: b.unpause("backup-old"),
        lambda b: b.save("web-frontend-01", tmp / "x.save"),
        lambda b: b.restore(tmp / "x.save"),
        lambda b: b.sysrq("web-frontend-01", "c"),
        lambda b: b.shutdown("web-frontend-01"),
        lambda b: b.reboot("web-frontend-01"),
        lambda b: b.destroy("web-frontend-01"),
        lambda b: b.set_sched("web-frontend-01", weight=1),
    ]


async def test_every_action_is_refused_and_nothing_changes(sim, clock, tmp_path):
    backend = ReadOnlyBackend(sim)
    before = await sim.sample()
    for attempt in attempts(tmp_path):
        with pytest.raises(ReadOnlyError, match="--read-only"):
            await attempt(backend)
    with pytest.raises(ReadOnlyError):
        async for _ in backend.migrate("db-primary", "sim-host-2"):
            pass
    after = await backend.sample()
    assert [(d.name, d.id, d.flags, d.target_kib, d.vcpus_online, d.sched_weight) for d in after.domains] == [
        (d.name, d.id, d.flags, d.target_kib, d.vcpus_online, d.sched_weight) for d in before.domains
    ]
    assert not list(tmp_path.iterdir())


async def test_capabilities_say_why(sim):
    caps = ReadOnlyBackend(sim).capabilities
    assert not caps.supports(Action.PAUSE)
    assert caps.why_not(Action.MIGRATE) == "xentui was started with --read-only"
    assert caps.supports(Action.CONSOLE) and not caps.supports(Action.CONSOLE_WRITE)
    assert sim.capabilities.supports(Action.PAUSE)


async def test_console_shows_output_but_refuses_keys(sim):
    backend = ReadOnlyBackend(sim)
    console = await backend.open_console("db-primary")
    with pytest.raises(ReadOnlyError):
        await console.write(b"reboot\r")
    await sim.sysrq("db-primary", "m")  # something happens in the guest: the operator still sees it
    assert b"Show Memory" in await asyncio.wait_for(console.read(), 1)
    await console.close()
