"""Each number and size field of the action modals, driven with generated text: nothing raises out of the
app, and a refused input changes nothing (the backend records every call that reached it)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from textual.widgets import Input

from xentui.backends.sim import SimBackend
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.table import DomainTable

from .helpers import NEVER, make_sim, settle

FIELDS = {  # key, field, the backend call it leads to
    "mem-set": ("m", "#size", "mem_set"),
    "vcpu-set": ("C", "#count", "vcpu_set"),
    "weight": ("w", "#weight", "set_sched"),
    "cap": ("w", "#cap", "set_sched"),
}

typed = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


class Recording(SimBackend):
    calls: list[tuple[str, tuple]]

    async def mem_set(self, *args, **kwargs):
        self.calls.append(("mem_set", args))
        return await super().mem_set(*args, **kwargs)

    async def vcpu_set(self, *args, **kwargs):
        self.calls.append(("vcpu_set", args))
        return await super().vcpu_set(*args, **kwargs)

    async def set_sched(self, *args, **kwargs):
        self.calls.append(("set_sched", args))
        return await super().set_sched(*args, **kwargs)


async def drive(field: str, text: str) -> None:
    key, selector, call = FIELDS[field]
    sim, clock = make_sim()
    backend = Recording(sim.cluster)
    backend.calls = []
    app = XentuiApp(backend, StartOptions(delay=NEVER, theme="xentui-dark"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        table = app.query_one(DomainTable)
        table.select(next(d.key for d in app.sample.domains if d.name == "mail-relay"))
        await pilot.press(key)
        box = app.screen.query_one(selector, Input)
        box.value = text
        box.focus()
        await pilot.press("enter")
        await pilot.pause(0.05)
        assert app.is_running and app.return_code is None
        if app.screen is not app.screen_stack[0]:  # refused: still open, said, nothing reached the backend
            assert backend.calls == []
            assert str(app.screen.query_one(".problem").render()).strip()
        else:  # taken: exactly one call, of the right kind, for that domain
            await pilot.pause(0.1)
            assert [name for name, _ in backend.calls] == [call]
            assert backend.calls[0][1][0] == "mail-relay"
            assert text.strip(), "an empty field is never taken"


@pytest.mark.parametrize("field", sorted(FIELDS))
@settings(max_examples=20, deadline=None)
@given(text=typed)
@example(text="256.0")
@example(text="2;reboot")
@example(text="\x1b]0;t\x07")
@example(text="[bold]x")
def test_generated_input_never_escapes_the_modal_and_a_refusal_changes_nothing(field, text):
    asyncio.run(drive(field, text))
