"""The pool on the screen: a line per host, its domains under it, folding, filtering by host, actions going
to the domain's own host, and a host that goes down while the others keep refreshing."""

from __future__ import annotations

import pytest

from tests.pool_members import Flaky
from xentui.audit import AuditLog
from xentui.backends.pool import PoolBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.model import DomainState, Host, HostStatus
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.lines import HOST_KEY, host_key, host_line_text
from xentui.ui.migrate import PoolTarget

from .helpers import NEVER, poll, settle, wait_for

pytestmark = pytest.mark.asyncio


def pool_app(tmp_path, *, flaky: bool = False) -> tuple[XentuiApp, ManualClock, dict]:
    clock = ManualClock()
    cluster = SimCluster(seed=5, domains=4, clock=clock, hosts=3)
    members = {name: SimBackend(cluster, name) for name in cluster.hosts}
    if flaky:
        members["sim-host-3"] = Flaky(members["sim-host-3"])
    app = XentuiApp(PoolBackend(list(members.items())),
                    StartOptions(delay=NEVER, theme="xentui-dark", audit=AuditLog(tmp_path / "audit.log")))
    return app, clock, members


def table_rows(app: XentuiApp) -> list[str]:
    table = app.table
    return [table.render_line(y).text for y in range(1, len(table._lines) + 1)]


async def test_each_host_has_a_line_with_its_domains_under_it(tmp_path):
    app, clock, members = pool_app(tmp_path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        rows = table_rows(app)
        host_rows = [i for i, row in enumerate(rows) if row.startswith(("▾", "▸"))]
        assert [rows[i].split()[1] for i in host_rows] == ["sim-host-1", "sim-host-2", "sim-host-3"]
        assert "Xen 4.16.5" in rows[host_rows[2]] and "8 CPUs" in rows[host_rows[2]]
        for number, (start, end) in enumerate(zip(host_rows, [*host_rows[1:], len(rows)], strict=True), 1):
            own = await members[f"sim-host-{number}"].sample()
            shown = {row.split()[0] for row in rows[start + 1:end]}
            assert shown == {domain.name.split()[0] for domain in own.domains}
        header = app.main.header.render().plain
        assert header.splitlines()[2].endswith("   hosts: 3 up")  # none down: no "0 down"
        assert "Xen 4.16–4.17   pool of 3" in header and len(header.splitlines()[0]) <= 78  # fits 80 columns
        # the cursor starts on the first domain, not on a host line
        assert app.table.selected is not None and app.table.selected.host == "sim-host-1"


async def test_minus_folds_a_host_and_enter_unfolds_it(tmp_path):
    app, clock, _members = pool_app(tmp_path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        before = len(app.table._lines)
        await pilot.press("minus")
        assert app.table.cursor_key == host_key("sim-host-1") and app.table.selected is None
        rows = table_rows(app)
        assert rows[0].startswith("▸ sim-host-1") and rows[1].startswith("▾ sim-host-2")
        await poll(pilot, app, clock)  # stays folded across refreshes
        assert table_rows(app)[0].startswith("▸ sim-host-1") and len(app.table._lines) < before
        await pilot.press("m")  # no domain selected on a host line: nothing opens
        assert app.screen is app.main
        await pilot.press("enter")
        assert len(app.table._lines) == before and table_rows(app)[0].startswith("▾ sim-host-1")


async def test_the_filter_matches_host_names_too(tmp_path):
    app, clock, _members = pool_app(tmp_path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("slash", *"host-2", "enter")
        await pilot.pause()
        rows = table_rows(app)
        assert rows[0].startswith("▾ sim-host-2")
        assert not any(row.startswith(("▾ sim-host-1", "▾ sim-host-3")) for row in rows)
        assert all(key.startswith(("sim-host-2/", HOST_KEY)) for key in app.table._ordered_keys)


async def test_an_action_goes_to_the_domains_own_host_and_is_audited_with_it(tmp_path):
    app, clock, members = pool_app(tmp_path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        target = next(key for key in app.table._ordered_keys
                      if key.startswith("sim-host-2/") and (d := app.sample.domain(key)) is not None
                      and not d.is_dom0 and d.state is not DomainState.PAUSED)
        app.table.select(target)
        name = app.table.selected.name
        await pilot.press("p")
        for _ in range(100):
            if not app.busy and app.action_log and app.action_log[-1][3] == "ok":
                break
            await pilot.pause(0.02)
        own = await members["sim-host-2"].sample()
        assert next(d for d in own.domains if d.name == name).state is DomainState.PAUSED
        assert app.action_log[-1][1:4] == (f"{name} on sim-host-2", "pause", "ok")
        record = app.audit.read()[-1]
        assert (record["host"], record["domain"], record["result"]) == ("sim-host-2", name, "ok")


async def test_a_host_that_goes_down_is_said_down_while_the_others_refresh(tmp_path):
    app, clock, members = pool_app(tmp_path, flaky=True)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        members["sim-host-3"].mode = "fail"
        await poll(pilot, app, clock)
        rows = table_rows(app)
        down = next(row for row in rows if "sim-host-3" in row and row.startswith("▾"))
        assert "DOWN since" in down and "Connection refused" in down and "last seen" in down
        assert "hosts: 2 up, 1 down (sim-host-3)" in app.main.header.render().plain
        cpu_before = app.rates.column("cpu_pct", app.sample.keys())
        await poll(pilot, app, clock, 2.0)
        assert app.rates.column("cpu_pct", app.sample.keys()) != cpu_before  # the others still move
        members["sim-host-3"].mode = "ok"
        for _ in range(60):  # back after its back-off (3 s: the pool's refresh period before it is told one)
            await pilot.pause(0.1)
            await poll(pilot, app, clock)
            if app.sample.hosts[2].error is None:
                break
        assert app.main.header.render().plain.splitlines()[2].endswith("   hosts: 3 up")


async def movable_to(member: SimBackend, target: str) -> list[str]:
    """The domUs of a simulated host whose migration checks to ``target`` pass."""
    names = []
    for domain in (await member.sample()).domains:
        if domain.is_dom0 or domain.state not in (DomainState.RUNNING, DomainState.BLOCKED):
            continue
        checks = await member.migrate_preflight(domain.name, target)
        if all(check.ok is not False for check in checks):
            names.append(domain.name)
    return names


async def test_migrate_offers_the_pools_hosts_and_the_guest_then_shows_under_its_new_host(tmp_path):
    app, clock, members = pool_app(tmp_path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        name = (await movable_to(members["sim-host-1"], "sim-host-2"))[0]
        app.table.select(next(domain.key for domain in app.sample.domains
                              if domain.host == "sim-host-1" and domain.name == name))
        await pilot.press("g")
        screen = app.screen
        assert type(screen).__name__ == "MigrateScreen"
        field = screen.query_one("#target")
        assert field.value == "sim-host-2"  # the pool host with the most free memory
        offered = str(screen.query_one("#pool-targets").render())
        assert "sim-host-2" in offered and "sim-host-3" in offered and "sim-host-1" not in offered
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.checked_target == "sim-host-2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.main and not app.busy)
        await poll(pilot, app, clock)
        hosts = {domain.host for domain in app.sample.domains if domain.name == name}
        assert hosts == {"sim-host-2"}
        assert app.audit.read()[-1]["host"] == "sim-host-1"  # the action is the source host's


async def test_evacuate_places_a_hosts_domains_on_the_others_by_free_memory(tmp_path):
    clock = ManualClock()
    cluster = SimCluster(seed=5, domains=5, clock=clock, hosts=4)  # sim-host-4: a twin of sim-host-2
    members = {name: SimBackend(cluster, name) for name in cluster.hosts}
    app = XentuiApp(PoolBackend(list(members.items())), StartOptions(delay=NEVER, theme="xentui-dark"))
    gib = 1024 * 1024
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        app.table.select(host_key("sim-host-2"))
        await pilot.press("E")
        screen = app.screen
        assert type(screen).__name__ == "EvacuateScreen" and "sim-host-2" in str(screen.query_one(".title").render())
        assert {d.host for d in screen.domains} == {"sim-host-2"} and screen.domains
        offered = screen.query_one("#target").value.split(", ")
        assert sorted(offered) == ["sim-host-1", "sim-host-3", "sim-host-4"]
        # free memory close enough that the biggest domains fill the emptiest target past the other
        screen.targets = [PoolTarget("sim-host-1", "sim-host-1", 10 * gib), PoolTarget("sim-host-4", "sim-host-4",
                                                                                      9 * gib)]
        screen.query_one("#target").value = "sim-host-1, sim-host-4"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.checked_target == "sim-host-1, sim-host-4")
        movable = {name for name in await movable_to(members["sim-host-2"], "sim-host-1")}
        assert {d.name for d in screen.movable} == movable and len(movable) >= 2
        free, expected = {"sim-host-1": 10 * gib, "sim-host-4": 9 * gib}, {}
        for domain in sorted(screen.movable, key=lambda d: (-d.mem_kib, d.name)):
            target = max(free, key=lambda t: (free[t], t == "sim-host-1"))
            expected[domain.name], free[target] = target, free[target] - domain.mem_kib
        plan = {d.name: screen.plan[d.key] for d in screen.movable}
        assert plan == expected and set(plan.values()) == {"sim-host-1", "sim-host-4"}
        await pilot.press("enter", "y")
        await wait_for(pilot, lambda: "moved, " in str(screen.query_one(".problem").render()))
        await poll(pilot, app, clock)
        assert {d.name: d.host for d in app.sample.domains if d.name in plan} == plan


async def test_shift_g_gives_one_list_across_the_pool_with_a_host_column(tmp_path):
    app, clock, _members = pool_app(tmp_path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("G")
        header = app.table.render_line(0).text
        rows = table_rows(app)
        assert header.split()[1] == "HOST"  # first after NAME
        assert not any(row.startswith(("▾", "▸")) for row in rows)
        assert len(rows) == len(app.sample.domains)
        cpu = [round(value, 1) for value in app.rates.column("cpu_pct", app.table.shown_keys)]  # as shown
        assert cpu == sorted(cpu, reverse=True)  # sorted across the pool, not per host
        app.sort_by("host")
        hosts = [app.sample.domain(key).host for key in app.table.shown_keys]
        assert hosts == sorted(hosts)
        assert rows[0].split()[1] in {"sim-host-1", "sim-host-2", "sim-host-3"}
        await pilot.press("G")
        assert table_rows(app)[0].startswith("▾ sim-host-1")


async def test_save_and_restore_go_to_the_host_of_the_selection(tmp_path):
    clock = ManualClock()
    cluster = SimCluster(seed=5, domains=4, clock=clock, hosts=3)
    members = {name: SimBackend(cluster, name) for name in cluster.hosts}
    app = XentuiApp(PoolBackend(list(members.items())),
                    StartOptions(delay=NEVER, theme="xentui-dark", save_dir=tmp_path / "saves"))
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        target = next(d for d in app.sample.domains if d.host == "sim-host-2" and not d.is_dom0
                      and d.state in (DomainState.RUNNING, DomainState.BLOCKED))
        app.table.select(target.key)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SaveScreen")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.busy and app.screen is app.main)
        assert all(d.name != target.name for d in (await members["sim-host-2"].sample()).domains)
        assert app.action_log[-1][1:4] == (f"{target.name} on sim-host-2", "save", "ok")
        await poll(pilot, app, clock)
        app.table.select(host_key("sim-host-2"))  # restore lists and acts on the host under the cursor
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RestoreScreen")
        await wait_for(pilot, lambda: bool(app.screen.query("OptionList"))
                       and app.screen.query_one("OptionList").option_count > 0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.busy and app.screen is app.main)
        assert any(d.name == target.name for d in (await members["sim-host-2"].sample()).domains)
        assert all(d.name != target.name for d in (await members["sim-host-1"].sample()).domains)
        assert app.action_log[-1][2:4] == ("restore", "ok") and "on sim-host-2" in app.action_log[-1][1]


async def test_a_pool_host_managed_by_xapi_says_so_on_its_line():
    """A pool member whose domains xapi owns (XCP-ng): its line says it, as the one host's header does; the others'
    lines do not."""
    def status(managed_by):
        host = Host(hostname="dom0c", hypervisor="Xen", version="4.17.5", nr_cpus=8, cpu_mhz=2400,
                    total_kib=16 << 20, free_kib=4 << 20, managed_by=managed_by)
        return HostStatus("dom0c", "xl", host, domains=3, states={DomainState.RUNNING: 3})

    line = host_line_text(status("xapi"))
    assert line.startswith("Xen 4.17.5  managed by xapi: read-only  8 CPUs"), line
    assert "managed by" not in host_line_text(status(None))
    assert "\x1b" not in host_line_text(status("xapi\x1b[31m"))  # the toolstack's name is shown as text
