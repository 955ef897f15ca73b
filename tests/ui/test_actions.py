"""Acting on guests from the screen, against the simulated host: every modal, its refusals, its confirmations."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from textual.widgets import Checkbox, Input, Label, OptionList, Static

from xentui.audit import AuditLog
from xentui.backends.base import MigratePhase, MigrateProgress
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
    RestoreScreen,
    SaveScreen,
    SchedScreen,
    SysrqScreen,
    VcpuScreen,
)
from xentui.ui.table import DomainTable

from .helpers import NEVER, make_sim, poll, settle

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
        await pilot.press("B", "y")
        await finish(pilot, app)
        clock.advance(3)
        assert (await dom(sim, "web-frontend-01")).id != before


async def test_destroy_needs_the_name_typed(env):
    app, sim, clock, _ = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "[staging] api")
        await pilot.press("D")
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
        await pilot.press("S")
        assert isinstance(app.screen, SaveScreen)
        path = app.screen.query_one("#path", Input).value
        assert path.startswith(str(tmp_path / "saves" / "mail-relay-")) and path.endswith(".save")
        await pilot.press("enter")
        await finish(pilot, app)
        assert await dom(sim, "mail-relay") is None
        saved = list((tmp_path / "saves").iterdir())
        assert len(saved) == 1
        await pilot.press("R")
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
        await pilot.press("S")
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


class SlowMigrations(SimBackend):
    """Migrations that wait on the test between progress events."""

    gate: asyncio.Event

    async def migrate(self, domain, target, *, live=True):
        yield MigrateProgress(MigratePhase.PREFLIGHT, 0.0, "starting")
        for step in range(1, 100):
            await self.gate.wait()
            yield MigrateProgress(MigratePhase.COPYING, step / 100, f"round 1: {step}%")


async def test_migrate_can_be_stopped_and_the_domain_stays(tmp_path):
    sim, clock = make_sim()
    backend = SlowMigrations(sim.cluster)
    backend.gate = asyncio.Event()
    app = XentuiApp(backend, StartOptions(delay=NEVER, save_dir=tmp_path, audit=AuditLog(tmp_path / "a.log")))
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


async def test_evacuate_stops_at_the_first_failure_unless_told(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("E")
        assert isinstance(app.screen, EvacuateScreen)
        await type_into(pilot, app, "#target", "sim-host-2")
        await pilot.press("enter")
        for _ in range(300):
            await pilot.pause(0.02)
            if not app.screen.running:
                break
        rows = str(app.screen.query_one("#rows").render())
        assert "failed" in rows and "waiting" in rows  # stopped at the first failure
        moved = [e for e in audit.read() if e["action"] == "migrate"]
        assert moved[-1]["result"] == "failed"
        await pilot.press("escape")
        await pilot.press("E")
        await type_into(pilot, app, "#target", "sim-host-2")
        app.screen.query_one("#carry-on", Checkbox).value = True
        await pilot.press("enter")
        for _ in range(300):
            await pilot.pause(0.02)
            if not app.screen.running:
                break
        assert "waiting" not in str(app.screen.query_one("#rows").render())
        remaining = {d.name for d in (await sim.sample()).domains}
        assert "db-primary" not in remaining  # on shared storage: it moved
        assert "web-frontend-01" in remaining  # local disk: failed, stayed


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
        await pilot.press("S", "enter")
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
        for key in ("m", "M", "C", "w", "p", "S", "R", "X", "g", "E", "h", "B", "D"):
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


@pytest.mark.parametrize("key", ["m", "M", "C", "w", "S", "R", "X", "g", "E", "h", "B", "D"])
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
