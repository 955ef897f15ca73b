"""Acting on guests from the screen, against the simulated host: every modal, its refusals, its confirmations."""

from __future__ import annotations

import asyncio
import json
import os
import re

import pytest
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static

from xentui.audit import AuditLog
from xentui.backends.base import BackendError, MigratePhase, MigrateProgress
from xentui.backends.readonly import ReadOnlyBackend
from xentui.backends.sim import SimBackend
from xentui.model import DomainState
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.modals import (
    ActionLogScreen,
    ConfirmScreen,
    DestroyScreen,
    EvacuateScreen,
    MemoryScreen,
    MigrateScreen,
    QuitScreen,
    RestoreScreen,
    SaveScreen,
    SchedScreen,
    SysrqScreen,
    VcpuScreen,
)
from xentui.ui.table import DomainTable

from .helpers import NEVER, make_sim, poll, settle, wait_for

pytestmark = pytest.mark.asyncio
GIB = 1024 * 1024


@pytest.fixture
def env(tmp_path):
    sim, clock = make_sim()
    audit = AuditLog(tmp_path / "audit.log")
    app = XentuiApp(sim, StartOptions(delay=NEVER, theme="xentui-dark", save_dir=tmp_path / "saves", audit=audit))
    return app, sim, clock, audit


async def dom(sim: SimBackend, name: str):
    return {d.name: d for d in (await sim.sample()).domains}.get(name)


def choose(app: XentuiApp, name: str) -> None:
    app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == name))


async def finish(pilot, app) -> None:
    """Wait for background actions to end and the poll they trigger."""
    for _ in range(300):
        await pilot.pause(0.01)
        if not app.busy and not app._polling:
            break
    await pilot.pause(0.05)


async def type_into(pilot, app, selector: str, text: str) -> None:
    field = app.screen.query_one(selector, Input)
    field.value = ""
    field.focus()
    await pilot.press(*text) if text else None


def error_text(app) -> str:
    return str(app.screen.query_one(".problem", Label).render())


async def test_mem_set_valid_changes_the_target_and_is_audited(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")
        await pilot.press("m")
        assert isinstance(app.screen, MemoryScreen)
        await type_into(pilot, app, "#size", "3G")
        await pilot.press("enter")
        await finish(pilot, app)
        assert not isinstance(app.screen, MemoryScreen)
        assert (await dom(sim, "web-frontend-01")).target_kib == 3 * GIB
        entry = audit.read()[-1]
        assert (entry["action"], entry["domain"], entry["arguments"], entry["result"]) == (
            "mem-set", "web-frontend-01", {"kib": 3 * GIB}, "ok")


@pytest.mark.parametrize(
    ("typed", "message"),
    [("abc", "not a memory size"), ("512", "no unit"), ("8G", "raise maxmem first"), ("1M", "floor"),
     ("-2G", "not a memory size"), ("0M", "more than zero"), ("1.5K", "whole number"), ("999T", "more than the host")],
)
async def test_mem_set_refuses_nonsense_and_changes_nothing(env, typed, message):
    app, sim, clock, audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")
        await pilot.press("m")
        await type_into(pilot, app, "#size", typed)
        await pilot.press("enter")
        assert isinstance(app.screen, MemoryScreen)  # still open, with the reason
        assert message in error_text(app)
        await pilot.press("escape")
        await finish(pilot, app)
        assert (await dom(sim, "web-frontend-01")).target_kib == 2 * GIB
        assert audit.read() == []  # nothing was attempted


async def test_mem_max_below_target_refused_then_raised(env):
    app, sim, clock, _ = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "db-primary")
        await pilot.press("M")
        await type_into(pilot, app, "#size", "4G")
        await pilot.press("enter")
        assert "lower the target first" in error_text(app)
        await type_into(pilot, app, "#size", "16G")
        await pilot.press("enter")
        await finish(pilot, app)
        assert (await dom(sim, "db-primary")).mem_ceiling_kib == 16 * GIB


async def test_mem_set_down_then_up_to_the_configured_maxmem_as_on_real_xen(env):
    """After a mem-set down, libxl leaves Xen's limit at the target + 1 MiB (xentop's MAXMEM), yet a mem-set
    up to the configured maxmem works: the modal checks and shows that ceiling, not Xen's limit of the moment."""
    app, sim, clock, _ = env
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")  # target 2G, maxmem 4G
        await pilot.press("m")
        await type_into(pilot, app, "#size", "1G")
        await pilot.press("enter")
        await finish(pilot, app)
        lowered = await dom(sim, "web-frontend-01")
        assert lowered.maxmem_kib == 1 * GIB + 1024 and lowered.mem_ceiling_kib == 4 * GIB
        await pilot.press("m")
        assert "maxmem 4.0G" in str(app.screen.query_one(".facts", Label).render())
        await type_into(pilot, app, "#size", "3G")
        await pilot.press("enter")
        await finish(pilot, app)
        assert not isinstance(app.screen, MemoryScreen)
        assert (await dom(sim, "web-frontend-01")).target_kib == 3 * GIB
        await pilot.press("m")
        await type_into(pilot, app, "#size", "5G")  # above the configured maxmem: refused, nothing changes
        await pilot.press("enter")
        assert "raise maxmem first" in error_text(app) and "4G" in error_text(app)
        await pilot.press("escape")
        await finish(pilot, app)
        assert (await dom(sim, "web-frontend-01")).target_kib == 3 * GIB


async def test_mem_set_beyond_the_free_memory_is_refused_in_the_modal_in_one_unit_style(env):
    app, _sim, clock, audit = env
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "Domain-0")  # no maxmem: only the host's free memory limits it
        await pilot.press("m")
        await type_into(pilot, app, "#size", "60G")
        await pilot.press("enter")
        assert isinstance(app.screen, MemoryScreen)  # refused before anything reaches the backend
        message = error_text(app)
        assert "free" in message and "60G" in message
        assert not re.search(r"\d{4,}K", message), message  # no 31572624K beside 56G
        await pilot.press("escape")
        await finish(pilot, app)
        assert audit.read() == []


async def test_vcpu_set_limits_and_overcommit(env):
    app, sim, clock, _ = env
    sim.host.nr_cpus = 2
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "db-primary")
        await pilot.press("C")
        assert isinstance(app.screen, VcpuScreen)
        await type_into(pilot, app, "#count", "9")
        await pilot.press("enter")
        assert "at most 8" in error_text(app)
        await type_into(pilot, app, "#count", "6")
        await pilot.press("enter")
        assert "physical CPUs" in error_text(app)
        app.screen.query_one("#overcommit", Checkbox).value = True
        await pilot.press("enter")
        await finish(pilot, app)
        assert (await dom(sim, "db-primary")).vcpus_online == 6


async def test_sched_weight_and_cap(env):
    app, sim, clock, _ = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "batch-cruncher")
        await pilot.press("w")
        assert isinstance(app.screen, SchedScreen)
        await type_into(pilot, app, "#weight", "0")
        await pilot.press("enter")
        assert "out of range" in error_text(app)
        await type_into(pilot, app, "#weight", "128")
        await type_into(pilot, app, "#cap", "150")
        await pilot.press("enter")
        await finish(pilot, app)
        d = await dom(sim, "batch-cruncher")
        assert (d.sched_weight, d.sched_cap) == (128, 150)


async def test_pause_toggle_shows_at_once(env):
    app, _sim, clock, _ = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        await pilot.press("p")
        await finish(pilot, app)
        assert app.query_one(DomainTable).selected.state is DomainState.PAUSED  # the table, not just the sim
        await pilot.press("p")
        await finish(pilot, app)
        assert app.query_one(DomainTable).selected.state is not DomainState.PAUSED


async def test_marked_domains_get_a_bulk_action_with_one_result_each(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        for name in ("mail-relay", "web-frontend-01", "win2019-legacy"):
            choose(app, name)
            await pilot.press("space")
        assert len(app.query_one(DomainTable).marked_domains()) == 3
        await pilot.press("X")
        assert isinstance(app.screen, SysrqScreen)
        option_list = app.screen.query_one(OptionList)
        option_list.highlighted = [o.id for o in option_list._options].index("m")
        await pilot.press("enter")
        await finish(pilot, app)
        results = {e["domain"]: e["result"] for e in audit.read() if e["action"] == "sysrq"}
        # win2019-legacy has no PV drivers: its own failure, the others' own success
        assert results == {"mail-relay": "ok", "web-frontend-01": "ok", "win2019-legacy": "failed"}
        assert any("sysrq: Show Memory" in line for line in sim.host.domains["mail-relay"].kernel_log)
        await pilot.press("U")
        assert app.query_one(DomainTable).marked_domains() == []


async def test_dangerous_sysrq_asks_again(env):
    app, sim, clock, _ = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        await pilot.press("X")
        option_list = app.screen.query_one(OptionList)
        option_list.highlighted = [o.id for o in option_list._options].index("c")
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, SysrqScreen)
        await pilot.press("enter", "y")
        await finish(pilot, app)
        assert (await dom(sim, "mail-relay")).state is DomainState.CRASHED


async def test_shutdown_and_reboot_ask_first(env):
    app, sim, clock, _ = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        await pilot.press("h")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        clock.advance(5)
        assert await dom(sim, "mail-relay") is not None
        await pilot.press("h", "y")
        await finish(pilot, app)
        clock.advance(3)
        assert await dom(sim, "mail-relay") is None
        choose(app, "web-frontend-01")
        before = (await dom(sim, "web-frontend-01")).id
        await pilot.press("ctrl+t", "y")
        await finish(pilot, app)
        clock.advance(3)
        assert (await dom(sim, "web-frontend-01")).id != before


async def test_destroy_needs_the_name_typed(env):
    app, sim, clock, _ = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "[staging] api")
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, DestroyScreen)
        await type_into(pilot, app, "#name", "staging")
        await pilot.press("enter")
        assert "not the domain's name" in error_text(app)
        assert await dom(sim, "[staging] api") is not None
        await type_into(pilot, app, "#name", "[staging] api")
        await pilot.press("enter")
        await finish(pilot, app)
        assert await dom(sim, "[staging] api") is None


async def test_save_then_restore_from_the_save_directory(env, tmp_path):
    app, sim, clock, _ = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SaveScreen)
        path = app.screen.query_one("#path", Input).value
        assert path.startswith(str(tmp_path / "saves" / "mail-relay-")) and path.endswith(".save")
        await pilot.press("enter")
        await finish(pilot, app)
        assert await dom(sim, "mail-relay") is None
        saved = list((tmp_path / "saves").iterdir())
        assert len(saved) == 1
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, RestoreScreen)
        await pilot.press("enter")
        await finish(pilot, app)
        assert await dom(sim, "mail-relay") is not None
        assert "mail-relay" in str(app.query_one(DomainTable).shown_keys) or any(
            d.name == "mail-relay" for d in app.sample.domains)


async def test_save_refuses_to_overwrite_without_confirmation(env, tmp_path):
    app, _sim, clock, _ = env
    target = tmp_path / "x.save"
    target.write_text("precious")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        await pilot.press("ctrl+s")
        await type_into(pilot, app, "#path", str(target))
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert "exists" in error_text(app)
        assert target.read_text() == "precious"
        await pilot.press("enter", "y")
        await finish(pilot, app)
        assert target.read_bytes().startswith(b"xentui-sim")


async def test_migrate_checks_first_then_moves_the_domain(env):
    app, _sim, clock, audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "db-primary")
        await pilot.press("g")
        assert isinstance(app.screen, MigrateScreen)
        await type_into(pilot, app, "#target", "host; reboot")
        await pilot.press("enter")
        assert "not a host name" in error_text(app)
        await type_into(pilot, app, "#target", "sim-host-3")
        await pilot.press("enter")
        await pilot.pause(0.1)
        checks = str(app.screen.query_one("#checks").render())
        assert "✗ hypervisor version" in checks and "✗ free memory" in checks
        await type_into(pilot, app, "#target", "sim-host-2")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert "✗" not in str(app.screen.query_one("#checks").render())
        await pilot.press("enter")
        await finish(pilot, app)
        for _ in range(100):
            if not isinstance(app.screen, MigrateScreen):
                break
            await pilot.pause(0.02)
        await poll(pilot, app, clock)
        assert all(d.name != "db-primary" for d in app.sample.domains)
        assert audit.read()[-1]["result"] == "ok"
        assert audit.read()[-1]["arguments"] == {"target": "sim-host-2", "live": True, "checks_failed": 0}


class SlowMigrations(SimBackend):
    """Migrations that wait on the test between progress events."""

    gate: asyncio.Event

    async def migrate(self, domain, target, *, live=True):
        yield MigrateProgress(MigratePhase.PREFLIGHT, 0.0, "starting")
        for step in range(1, 100):
            await self.gate.wait()
            yield MigrateProgress(MigratePhase.COPYING, step / 100, f"round 1: {step}%")


def slow_migrations_app(tmp_path) -> tuple[XentuiApp, SimBackend, object]:
    sim, clock = make_sim()
    backend = SlowMigrations(sim.cluster)
    backend.gate = asyncio.Event()
    app = XentuiApp(backend, StartOptions(delay=NEVER, save_dir=tmp_path, audit=AuditLog(tmp_path / "a.log")))
    return app, sim, clock


async def test_migrate_can_be_stopped_and_the_domain_stays(tmp_path):
    app, sim, clock = slow_migrations_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "db-primary")
        await pilot.press("g")
        await type_into(pilot, app, "#target", "sim-host-2")
        await pilot.press("enter")
        await pilot.pause(0.1)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.screen.running
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, MigrateScreen)
        assert app.audit.read()[-1]["result"] == "cancelled"
        assert await dom(sim, "db-primary") is not None


async def test_migrate_by_mouse_checks_then_starts_once_and_stop_keeps_the_dialog_until_it_ends(tmp_path):
    """Clicks, not keys: Check, then Start (one migration, not two), then Stop while it runs (the migration ends
    and is audited once as cancelled; the dialog was not closed under it by the form's own Cancel)."""
    app, sim, clock = slow_migrations_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "db-primary")
        await pilot.press("g")
        screen = app.screen
        await type_into(pilot, app, "#target", "sim-host-2")
        await pilot.click("#ok")
        await wait_for(pilot, lambda: screen.checked_target == "sim-host-2")
        await pilot.pause(0.3)  # a button takes no second press while it shows the first (0.2 s)
        await pilot.click("#ok")
        await wait_for(pilot, lambda: screen.running)
        assert len([w for w in screen.workers if w.group == "migrate"]) == 1
        await pilot.click("#cancel")
        await wait_for(pilot, lambda: app.screen is app.main)
        await pilot.pause(0.1)
        assert [(e["action"], e["result"]) for e in app.audit.read()] == [("migrate", "cancelled")]
        assert await dom(sim, "db-primary") is not None


async def test_evacuate_checks_every_domain_shows_the_plan_and_asks_before_moving_any(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        before = {d.name for d in (await sim.sample()).domains}
        await pilot.press("E")
        assert isinstance(app.screen, EvacuateScreen)
        screen = app.screen
        await type_into(pilot, app, "#target", "sim-host-2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.checked_target == "sim-host-2")
        rows = str(screen.query_one("#rows").render())
        assert "web-frontend-01" in rows and "stays: ✗ storage" in rows  # local disk: its check fails, it stays
        assert " 1. " in rows and "→ sim-host-2 ✓" in rows  # the plan: an order and a target
        movable = [d.name for d in screen.movable]
        assert movable and "web-frontend-01" not in movable
        assert [d.mem_kib for d in screen.movable] == sorted(d.mem_kib for d in screen.movable)
        assert not [e for e in audit.read() if e["action"] == "migrate"]  # checked, nothing moved yet
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        question = app.screen.question
        assert f"Migrate {len(movable)} domain" in question and "sim-host-2" in question
        assert movable[0] in question and "web-frontend-01" in question and "stay" in question
        await pilot.press("n")  # no: nothing moves
        assert app.screen is screen and not screen.running
        assert {d.name for d in (await sim.sample()).domains} == before
        await pilot.press("enter")
        await pilot.press("y")
        await wait_for(pilot, lambda: "moved, " in str(screen.query_one(".problem").render()))
        remaining = {d.name for d in (await sim.sample()).domains}
        assert not set(movable) & remaining and "web-frontend-01" in remaining
        assert "left here by the checks" in str(screen.query_one(".problem").render())
        assert app.busy == {}


class FirstMigrationFails(SimBackend):
    """A migration that fails after its checks passed (the target ran out of memory meanwhile)."""

    failed: str | None = None

    async def migrate(self, domain, target, *, live=True):
        if self.failed is None:
            self.failed = domain
        if domain == self.failed:
            raise BackendError(f"migrate: {target} could not allocate {domain}'s memory")
        async for event in super().migrate(domain, target, live=live):
            yield event


async def test_evacuate_stops_at_the_first_failure_unless_told(tmp_path):
    sim, clock = make_sim()
    audit = AuditLog(tmp_path / "a.log")
    app = XentuiApp(FirstMigrationFails(sim.cluster), StartOptions(delay=NEVER, save_dir=tmp_path, audit=audit))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("E")
        screen = app.screen
        await type_into(pilot, app, "#target", "sim-host-2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.checked_target is not None)
        await pilot.press("enter", "y")
        await wait_for(pilot, lambda: "moved, " in str(screen.query_one(".problem").render()))
        rows = str(screen.query_one("#rows").render())
        assert "failed: migrate: sim-host-2 could not allocate" in rows and "waiting" in rows
        assert [e["result"] for e in audit.read() if e["action"] == "migrate"] == ["failed"]
        await pilot.press("escape")
        await pilot.press("E")
        screen = app.screen
        await type_into(pilot, app, "#target", "sim-host-2")
        screen.query_one("#carry-on", Checkbox).value = True
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.checked_target is not None)
        await pilot.press("enter", "y")
        await wait_for(pilot, lambda: "moved, " in str(screen.query_one(".problem").render()))
        assert "waiting" not in str(screen.query_one("#rows").render())
        results = [e["result"] for e in audit.read() if e["action"] == "migrate"]
        assert results.count("failed") == 2 and results.count("ok") == len(screen.movable) - 1


async def test_a_failed_migration_check_needs_the_migrate_anyway_button_not_enter(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "db-primary")
        await pilot.press("g")
        screen = app.screen
        await type_into(pilot, app, "#target", "sim-host-3")  # older Xen, too little memory
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.checked_target == "sim-host-3")
        anyway = screen.query_one("#anyway", Button)
        assert anyway.display and anyway.variant == "error" and not anyway.has_focus
        for _ in range(3):  # Enter, again and again: checks again, never starts
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert not screen.running and screen.query_one("#bar").display is False
        assert "Migrate anyway goes ahead" in str(screen.query_one("#status").render())
        assert app.focused is not anyway
        assert not [e for e in audit.read() if e["action"] == "migrate"]
        assert await dom(sim, "db-primary") is not None
        await pilot.click("#anyway")  # the explicit override: it starts, and the backend's refusal shows
        await wait_for(pilot, lambda: [e for e in audit.read() if e["action"] == "migrate"])
        assert audit.read()[-1]["result"] == "failed" and "sim-host-3" in audit.read()[-1]["message"]
        assert await dom(sim, "db-primary") is not None


async def test_a_running_migration_makes_the_domain_busy(tmp_path):
    app, _sim, clock = slow_migrations_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "db-primary")
        await pilot.press("g")
        await type_into(pilot, app, "#target", "sim-host-2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.checked_target == "sim-host-2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.running)
        assert app.busy == {"db-primary": "migrate"}
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MigrateScreen))
        assert app.busy == {}


async def test_quit_while_an_action_runs_asks_and_says_what_happens(tmp_path):
    sim, clock = make_sim()
    gate = asyncio.Event()

    class SlowSave(SimBackend):
        async def save(self, domain, path, *, keep_running=False, overwrite=False):
            await gate.wait()

    app = XentuiApp(SlowSave(sim.cluster), StartOptions(delay=NEVER, save_dir=tmp_path, audit=None))
    exits: list[bool] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        app.exit = lambda *a, **k: exits.append(True)
        choose(app, "mail-relay")
        await pilot.press("ctrl+s", "enter")
        await wait_for(pilot, lambda: app.busy == {"mail-relay": "save"})
        for key in ("q", "Q", "ctrl+c"):
            await pilot.press(key)
            assert isinstance(app.screen, QuitScreen), key
            text = str(app.screen.query_one("#running").render())
            assert "save mail-relay" in text and "stays whole" in text and "the guest may stop" in text
            assert app.focused is app.screen.query_one("#keep", Button)
            await pilot.press("enter")  # the default keeps running
            assert not exits and app.busy == {"mail-relay": "save"}
        await pilot.press("q")
        await pilot.click("#when-done")
        await pilot.pause(0.05)
        assert not exits  # still saving
        gate.set()
        await wait_for(pilot, lambda: exits)
        assert app.busy == {}


async def test_quit_says_what_each_backend_does_to_what_is_still_running():
    """It used to say "its xl child is killed" whatever the backend: libvirt has no child to kill."""
    from xentui.ui.modals import quit_consequence

    assert quit_consequence("save", "xl").startswith("xl is killed") and "xl list" in quit_consequence("save", "xl")
    for action in ("save", "restore", "pause"):
        assert "xl" not in quit_consequence(action, "libvirt") and "virsh list" in quit_consequence(action, "libvirt")
    assert "cancelled" in quit_consequence("migrate", "libvirt") == quit_consequence("migrate", "xl")


async def test_quit_with_nothing_running_quits_at_once(env):
    app, _sim, clock, _ = env
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("Q")
        await pilot.pause(0.05)
        assert not isinstance(app.screen, QuitScreen) and app.return_code == 0


async def test_bulk_questions_name_the_domains(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        for name in ("mail-relay", "web-frontend-01"):
            choose(app, name)
            await pilot.press("space")
        await pilot.press("h")
        assert isinstance(app.screen, ConfirmScreen)
        pair = re.compile(r"(mail-relay and web-frontend-01|web-frontend-01 and mail-relay)")
        assert re.search(r"these 2 domains \(" + pair.pattern + r"\)", app.screen.question)
        await pilot.press("n")
        await pilot.press("p")  # pausing several marked domains asks too, by name
        assert isinstance(app.screen, ConfirmScreen)
        assert re.search(r"Pause these 2 domains: " + pair.pattern + r"\?", app.screen.question)
        await pilot.press("escape")
        await finish(pilot, app)
        states = [(await dom(sim, n)).state for n in ("mail-relay", "web-frontend-01")]
        assert DomainState.PAUSED not in states
        assert audit.read() == []
        await pilot.press("p", "y")
        await finish(pilot, app)
        states = [(await dom(sim, n)).state for n in ("mail-relay", "web-frontend-01")]
        assert states == [DomainState.PAUSED, DomainState.PAUSED]
        await pilot.press("X")
        title = str(app.screen.query_one(".title").render())
        assert re.search(r"2 marked domains \(" + pair.pattern + r"\)", title)


async def test_many_marked_names_are_cut_with_a_count():
    from xentui.textsafe import name_list

    names = [f"guest{i}" for i in range(9)]
    assert name_list(names) == "guest0, guest1, guest2, guest3, guest4, guest5 and 3 more"
    assert name_list(["a"]) == "a" and name_list(["a", "b"]) == "a and b"
    assert name_list(["x\x1b]0;t\x07"]) == "x\\x1b]0;t\\x07"


async def test_a_busy_domain_refuses_a_second_action(tmp_path):
    sim, clock = make_sim()
    gate = asyncio.Event()

    class SlowSave(SimBackend):
        async def save(self, domain, path, *, keep_running=False, overwrite=False):
            await gate.wait()

    backend = SlowSave(sim.cluster)
    audit = AuditLog(tmp_path / "a.log")
    app = XentuiApp(backend, StartOptions(delay=NEVER, save_dir=tmp_path, audit=audit))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        await pilot.press("ctrl+s", "enter")
        await pilot.pause(0.1)
        assert app.busy == {"mail-relay": "save"}
        await poll(pilot, app, clock)  # the table keeps refreshing meanwhile
        await pilot.press("p")
        await pilot.pause(0.1)
        assert audit.read()[-1]["result"] == "refused" and "busy with save" in audit.read()[-1]["message"]
        gate.set()
        await finish(pilot, app)
        assert app.busy == {}


async def test_read_only_blocks_every_action_and_says_why(tmp_path):
    sim, clock = make_sim()
    audit = AuditLog(tmp_path / "a.log")
    app = XentuiApp(ReadOnlyBackend(sim), StartOptions(delay=NEVER, save_dir=tmp_path, audit=audit))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        before = [(d.name, d.flags, d.target_kib) for d in (await sim.sample()).domains]
        choose(app, "mail-relay")
        for key in ("m", "M", "C", "w", "p", "ctrl+s", "ctrl+r", "X", "g", "E", "h", "ctrl+t", "ctrl+k"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is app.screen_stack[0], key  # no modal opened
        entries = audit.read()
        assert len(entries) == 13 and {e["result"] for e in entries} == {"refused"}
        assert all("--read-only" in e["message"] for e in entries)
        assert [(d.name, d.flags, d.target_kib) for d in (await sim.sample()).domains] == before


async def test_action_log_view_lists_results(env):
    app, _sim, clock, _ = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "win2019-legacy")
        await pilot.press("h", "y")  # no PV drivers: refused by the backend
        await finish(pilot, app)
        await pilot.press("l")
        assert isinstance(app.screen, ActionLogScreen)
        assert app.screen.entries[-1][2:4] == ("shutdown", "failed")
        assert "PV control interface" in app.screen.entries[-1][4]


async def test_audit_lines_are_json_with_the_operator_and_host(env, tmp_path):
    app, sim, clock, _audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        await pilot.press("p")
        await finish(pilot, app)
    line = json.loads((tmp_path / "audit.log").read_text().splitlines()[-1])
    assert line["host"] == "sim-host-1" and line["backend"] == "sim" and line["user"]
    assert line["uuid"] == (await dom(sim, "mail-relay")).uuid


@pytest.mark.parametrize("key", ["m", "M", "C", "w", "ctrl+s", "ctrl+r", "X", "g", "E", "h", "ctrl+t", "ctrl+k"])
async def test_escape_cancels_every_modal_and_changes_nothing(env, key):
    app, sim, clock, audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        before = [(d.name, d.id, d.flags, d.target_kib, d.maxmem_kib, d.vcpus_online, d.sched_weight)
                  for d in (await sim.sample()).domains]
        await pilot.press(key)
        await pilot.pause(0.05)
        assert app.screen is not app.screen_stack[0]  # a modal opened
        await pilot.press("escape")
        await pilot.pause(0.05)
        assert app.screen is app.screen_stack[0]
        await finish(pilot, app)
        after = [(d.name, d.id, d.flags, d.target_kib, d.maxmem_kib, d.vcpus_online, d.sched_weight)
                 for d in (await sim.sample()).domains]
        assert after == before and audit.read() == []


async def test_palette_says_why_an_action_is_unavailable(tmp_path):
    sim, clock = make_sim()
    app = XentuiApp(ReadOnlyBackend(sim), StartOptions(delay=NEVER, save_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        from xentui.ui.app import XentuiCommands

        provider = XentuiCommands(app.screen)
        helps = {title: help_text for title, _, help_text in provider._commands()}
        assert helps["domain: migrate"] == "unavailable: xentui was started with --read-only"
        assert helps["view: action log"] == "every action and its result (l)"


def log_text(screen: ActionLogScreen) -> str:
    return "\n".join(str(widget.render()) for widget in screen.query(Static))


async def test_an_action_that_ends_while_the_action_log_is_open_shows_up_in_it(env):
    """Seen in the Xen lab over ssh: the pause was visible in the table, 'l' opened the log before the
    action had been recorded, and the log (a copy) said "No actions yet" for good."""
    app, _sim, clock, _ = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        domain = next(d for d in app.sample.domains if d.name == "mail-relay")
        release = asyncio.Event()
        app.start_action(domain, "pause", release.wait)
        await pilot.press("l")
        screen = app.screen
        assert isinstance(screen, ActionLogScreen)
        assert "No actions yet" in log_text(screen)
        release.set()
        await finish(pilot, app)
        assert app.screen is screen
        shown = log_text(screen)
        assert "pause" in shown and "mail-relay" in shown and "No actions yet" not in shown


XENTOP_KEYS = {  # xentop reads its keys case-insensitively: the upper-case ones do what xentop does
    "D": "delay", "N": "networks", "B": "vbds", "V": "vcpus", "R": "repeat header", "S": "sort", "Q": "quit",
}


@pytest.mark.parametrize("key", sorted(XENTOP_KEYS))
async def test_xentop_upper_case_keys_do_what_xentop_does_and_never_touch_a_guest(env, key):
    app, sim, clock, audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        table = app.query_one(DomainTable)
        before = [(d.name, d.id, d.flags) for d in (await sim.sample()).domains]
        def view() -> tuple:
            options = table.options
            return options.networks, options.vbds, options.vcpus, options.repeat_header, options.sort_column

        state = view()
        exits: list[bool] = []
        app.exit = lambda *a, **k: exits.append(True)  # Q would end the test's app: record it instead
        await pilot.press(key)
        await pilot.pause(0.05)
        after_state = view()
        changed = {name for name, old, new in zip(
            ("networks", "vbds", "vcpus", "repeat header", "sort"), state, after_state, strict=True) if old != new}
        what = XENTOP_KEYS[key]
        if what == "delay":
            assert type(app.screen).__name__ == "DelayScreen"
            await pilot.press("escape")
        elif what == "quit":
            assert exits or type(app.screen).__name__ == "QuitScreen"
        else:
            assert changed == {what}
            assert app.screen is app.screen_stack[0]  # no modal: nothing one Enter away
        await finish(pilot, app)
        assert [(d.name, d.id, d.flags) for d in (await sim.sample()).domains] == before
        assert audit.read() == []


@pytest.mark.parametrize("typed", ["256.0", "1e3", "0x2", "2;reboot", "2.5", "-1", "٣"])
async def test_number_fields_refuse_what_is_not_a_whole_number_and_change_nothing(env, typed):
    """A number field used to drop what it did not take: 256.0 became 2560, 2;reboot became 2. Refused now,
    by its whole text, with the range said."""
    app, sim, clock, audit = env
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        before = await dom(sim, "mail-relay")
        for key, field in (("C", "#count"), ("w", "#weight"), ("w", "#cap")):
            await pilot.press(key)
            await type_into(pilot, app, field, typed)
            assert app.screen.query_one(field, Input).value == typed  # nothing dropped as it was typed
            await pilot.press("enter")
            assert app.screen is not app.screen_stack[0], (key, field)  # still open: refused
            assert "is not" in error_text(app) and "whole number from" in error_text(app), error_text(app)
            await pilot.press("escape")
        await finish(pilot, app)
        after = await dom(sim, "mail-relay")
        assert (after.vcpus_online, after.sched_weight, after.sched_cap) == (
            before.vcpus_online, before.sched_weight, before.sched_cap)
        assert audit.read() == []


async def test_a_10kb_paste_is_cut_to_the_field_and_the_message_quotes_a_short_prefix(env):
    app, _sim, clock, audit = env
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        await pilot.press("m")
        field = app.screen.query_one("#size", Input)
        field.value = ""
        field.focus()
        await pilot.press(*"9" * 40)  # typed past the field's length: the rest is not taken
        field.insert_text_at_cursor("9" * 10_000)  # a paste: refused whole beyond the length
        assert field.value == "9" * 32
        await pilot.press("enter")
        message = error_text(app)
        assert len(message) < 120 and "…" in message, message
        assert app.screen.query_one("#ok").region.bottom <= 24  # the buttons stay on the screen
        await pilot.press("escape")
        assert audit.read() == []


async def test_notifications_show_outside_text_as_text_never_as_markup_or_escapes(env):
    """A name or path like `x[a="]` ended the app with a MarkupError; `[@click=app.quit]` became a live link;
    an OSC in a file name reached the outer terminal through a toast."""
    from textual.widgets._toast import Toast

    app, _sim, clock, _ = env
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot, app, clock)
        hostile = 'restored x[a="].save \x1b]0;owned\x1b\\ [@click=app.quit]q[/] [bold]b'
        app.notify(hostile, title="[red]t\x1b[2J")
        app.notify(hostile, title="markup asked for", markup=True)  # even a caller asking for markup gets text
        await pilot.pause(0.2)
        assert app.is_running and app.return_code is None
        toasts = list(app.query(Toast))
        assert len(toasts) == 2
        shown = " ".join(str(toast.render()) for toast in toasts)
        assert 'x[a="].save' in shown and "[@click=app.quit]q[/]" in shown and "[bold]b" in shown
        assert "\x1b" not in shown and "\\x1b]0;owned" in shown


async def test_the_save_dialog_refuses_what_the_backend_would_before_anything_stops(env, tmp_path):
    app, _sim, clock, audit = env
    (tmp_path / "saves").mkdir()
    os.mkfifo(tmp_path / "saves" / "fifo.save")
    (tmp_path / "saves" / "old.save").write_text("an earlier image")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        for typed, reason in ((str(tmp_path / "saves"), "is a directory"), ("fifo.save", "is a FIFO"),
                              ("x" * 300, "longer than 255 bytes")):
            await pilot.press("ctrl+s")
            await type_into(pilot, app, "#path", typed)
            await pilot.press("enter")
            assert isinstance(app.screen, SaveScreen) and reason in error_text(app), error_text(app)
            await pilot.press("escape")
        await pilot.press("ctrl+s")
        await type_into(pilot, app, "#path", "old.save")  # relative: in the save directory, not the cwd
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        question = app.screen.question
        assert str(tmp_path / "saves" / "old.save") in question and "a file of 16 bytes" in question
        await pilot.press("y")
        await finish(pilot, app)
        assert audit.read()[-1]["arguments"]["path"] == str(tmp_path / "saves" / "old.save")
        assert (tmp_path / "saves" / "old.save").read_bytes().startswith(b"xentui-sim saved domain")


async def test_an_unusable_save_directory_is_said_not_raised(tmp_path):
    sim, clock = make_sim()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the save directory should be")
    app = XentuiApp(sim, StartOptions(delay=NEVER, save_dir=blocker, audit=None))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert app.is_running and app.screen is app.screen_stack[0]
        assert any("cannot be used: a file is in the way" in n.message for n in app._notifications)


async def test_an_audit_log_that_cannot_be_written_is_shown_at_once_and_stays(tmp_path):
    """Every failed audit write used to be silent: the toast said only "pause mail-relay"."""
    sim, clock = make_sim()
    (tmp_path / "audit.log").mkdir()  # a directory where the log should be
    app = XentuiApp(sim, StartOptions(delay=NEVER, save_dir=tmp_path, audit=AuditLog(tmp_path / "audit.log")))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot, app, clock)
        banner = app.query_one("#audit-banner")
        assert banner.has_class("shown") and "AUDIT LOG NOT WRITTEN" in str(banner.render())
        assert any("actions are not being recorded" in n.message for n in app._notifications)
        choose(app, "mail-relay")
        await pilot.press("p")  # still acts: the default is to act and say so
        await finish(pilot, app)
        assert (await dom(sim, "mail-relay")).state is DomainState.PAUSED
        assert banner.has_class("shown")
        (tmp_path / "audit.log").rmdir()  # fixed: the next entry is written and the line goes
        await pilot.press("p")
        await finish(pilot, app)
        assert not banner.has_class("shown") and app.audit.read()[-1]["action"] == "unpause"


async def test_require_audit_refuses_actions_while_the_log_cannot_be_written(tmp_path):
    sim, clock = make_sim()
    (tmp_path / "audit.log").mkdir()
    app = XentuiApp(sim, StartOptions(delay=NEVER, save_dir=tmp_path, audit=AuditLog(tmp_path / "audit.log"),
                                      require_audit=True))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot, app, clock)
        choose(app, "mail-relay")
        await pilot.press("p")
        await finish(pilot, app)
        assert (await dom(sim, "mail-relay")).state is not DomainState.PAUSED
        assert "--require-audit refuses" in app.action_log[-1][4]
        assert "refused (--require-audit)" in str(app.query_one("#audit-banner").render())


async def test_read_only_pausing_marked_domains_refuses_once_each_without_asking(tmp_path):
    sim, clock = make_sim()
    audit = AuditLog(tmp_path / "a.log")
    app = XentuiApp(ReadOnlyBackend(sim), StartOptions(delay=NEVER, save_dir=tmp_path, audit=audit))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        for name in ("mail-relay", "web-frontend-01"):
            choose(app, name)
            await pilot.press("space")
        await pilot.press("p")
        await pilot.pause(0.05)
        assert app.screen is app.screen_stack[0]  # nothing to ask: it cannot be done
        assert sorted((e["domain"], e["result"]) for e in audit.read()) == [
            ("mail-relay", "refused"), ("web-frontend-01", "refused")]
