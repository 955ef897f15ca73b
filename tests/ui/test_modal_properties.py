"""Each number and size field of the action modals, driven with generated text: nothing raises out of the
app, and a refused input changes nothing (the backend records every call that reached it)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
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


# --- the path and host fields -----------------------------------------------------------------------------------

HOST_OR_ADDRESS = re.compile(r"[A-Za-z0-9.:-]+")  # what check_host lets through (a name, IPv4, IPv6)


class RecordingActions(SimBackend):
    """Records save and migrate calls and does nothing else: a generated path must never be written."""

    calls: list[tuple[str, tuple]]

    async def save(self, domain, path, *, keep_running=False, overwrite=False):
        self.calls.append(("save", (domain, path, overwrite)))

    async def migrate_preflight(self, domain, target):
        self.calls.append(("migrate_preflight", (domain, target)))
        return await super().migrate_preflight(domain, target)

    async def migrate(self, domain, target, *, live=True):
        self.calls.append(("migrate", (domain, target)))
        if False:  # an async generator, as the interface has it
            yield


async def drive_path_or_host(field: str, text: str, save_dir: Path) -> None:
    sim, clock = make_sim()
    backend = RecordingActions(sim.cluster)
    backend.calls = []
    app = XentuiApp(backend, StartOptions(delay=NEVER, theme="xentui-dark", save_dir=save_dir, audit=None))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == "mail-relay"))
        await pilot.press("ctrl+s" if field == "save-path" else "g")
        form = app.screen
        box = form.query_one("#path" if field == "save-path" else "#target", Input)
        box.value = text
        box.focus()
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.is_running and app.return_code is None
        refused = str(form.query_one(".problem").render()).strip() if form in app.screen_stack else ""
        names = [name for name, _ in backend.calls]
        if field == "save-path":
            if names:  # taken: one save, of an absolute path that is the text's (or under the save directory)
                (_, (domain, path, _overwrite)), = backend.calls
                assert names == ["save"] and domain == "mail-relay" and path.is_absolute()
                assert str(path).endswith(text.strip().rstrip("/")) or not text.strip()
            else:  # refused with a reason, or asking first whether to overwrite what is there
                assert refused or type(app.screen).__name__ == "ConfirmScreen", text
        else:
            assert "migrate" not in names  # one Enter checks; it never starts a migration
            if names:
                (_, (domain, target)), = backend.calls
                assert "://" in target or HOST_OR_ADDRESS.fullmatch(target), target
            else:
                assert refused, text


@pytest.mark.parametrize("field", ["save-path", "migrate-target"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=typed)
@example(text="-rf.save")
@example(text="../../../../etc/passwd")
@example(text="x" * 300)
@example(text="/dev/null")
@example(text="host; reboot")
@example(text="\x1b]0;t\x07.save")
@example(text="[bold]x")
@example(text="qemu+ssh://h/system")
@example(text="\x00")  # found by this test: a NUL ended the app (ValueError from the save path check)
@example(text="~\x00")
def test_generated_paths_and_hosts_are_taken_whole_or_refused_and_reach_nothing(field, text, tmp_path):
    asyncio.run(drive_path_or_host(field, text, tmp_path / "saves"))
