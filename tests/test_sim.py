"""The simulated host behaves like xl on a real one: what it refuses, how long things take, what changes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import uuid
from itertools import pairwise

import pytest

from tests.rates_paths import assert_same_rates, with_columns, without_columns
from xentui.backends.base import (
    BackendError,
    ConsoleBusy,
    DomainNotFound,
    InvalidArgument,
    MigratePhase,
)
from xentui.backends.sim import MAX_DOMAINS, SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.model import DomainState, DomainType, compute_rates

GIB = 1024 * 1024
pytestmark = pytest.mark.asyncio


async def domain(sim: SimBackend, name: str):
    return {d.name: d for d in (await sim.sample()).domains}.get(name)


async def test_default_host_has_dom0_a_dozen_domus_and_every_state(sim):
    s = await sim.sample()
    names = [d.name for d in s.domains]
    assert names[0] == "Domain-0" and s.domains[0].id == 0
    assert len(names) == 13
    assert {d.type for d in s.domains} >= {DomainType.PV, DomainType.HVM, DomainType.PVH}
    assert {d.state for d in s.domains} == set(DomainState)
    assert any(" " in n for n in names) and any("[" in n and "]" in n for n in names)
    assert max(len(n) for n in names) > 30
    assert any(d.maxmem_kib is None for d in s.domains)  # "no limit"
    for d in s.domains:
        if d.id:
            assert d.vifs and all(v.ifname == f"vif{d.id}.{v.devid}" for v in d.vifs)
            assert d.vbds and all(v.path for v in d.vbds)


async def test_cpu_load_is_varied_and_the_runaway_is_pegged(sim, clock):
    first = await sim.sample()
    clock.advance(3)
    rates = compute_rates(first, await sim.sample())
    by_name = {d.name: rates[d.key] for d in first.domains}
    assert by_name["batch-cruncher"].cpu_pct == pytest.approx(400.0, abs=0.5)
    assert by_name["mail-relay"].cpu_pct < 5
    assert 30 < by_name["db-primary"].cpu_pct < 400
    assert by_name["backup-old"].cpu_pct == 0  # paused
    assert by_name["kernel-dev"].cpu_pct == 0  # crashed
    assert by_name["web-frontend-01"].net_rx_bytes_s > 0
    assert by_name["db-primary"].vbd_wr_reqs_s > 0


async def test_same_seed_same_figures():
    async def figures(seed: int):
        clock = ManualClock()
        sim = SimBackend(SimCluster(seed=seed, clock=clock))
        await sim.sample()
        clock.advance(2.5)
        s = await sim.sample()
        return [(d.name, d.uuid, d.cpu_ns, d.mem_kib, [v.rx_bytes for v in d.vifs]) for d in s.domains]

    assert await figures(3) == await figures(3)
    assert await figures(3) != await figures(4)


async def test_mem_set_balloon_approaches_target_over_a_few_seconds(sim, clock):
    await sim.mem_set("web-frontend-01", 3 * GIB)
    mem = [(await domain(sim, "web-frontend-01")).mem_kib]
    for _ in range(10):
        clock.advance(0.5)
        mem.append((await domain(sim, "web-frontend-01")).mem_kib)
    assert mem[0] == 2 * GIB
    assert mem[1] > mem[0] and mem[1] < 3 * GIB  # moving, not there at once
    assert mem == sorted(mem)
    assert mem[-1] == 3 * GIB  # there after 5 s
    assert (await domain(sim, "web-frontend-01")).target_kib == 3 * GIB


async def test_mem_set_above_maxmem_is_refused_with_the_way_out(sim):
    with pytest.raises(InvalidArgument, match="raise maxmem first"):
        await sim.mem_set("web-frontend-01", 8 * GIB)
    assert (await domain(sim, "web-frontend-01")).target_kib == 2 * GIB
    await sim.mem_max("web-frontend-01", 8 * GIB)
    await sim.mem_set("web-frontend-01", 8 * GIB)
    assert (await domain(sim, "web-frontend-01")).mem_ceiling_kib == 8 * GIB


async def test_mem_max_below_target_is_refused(sim):
    with pytest.raises(InvalidArgument, match="lower the target first"):
        await sim.mem_max("db-primary", 4 * GIB)
    assert (await domain(sim, "db-primary")).mem_ceiling_kib == 12 * GIB


async def test_xen_limit_follows_the_target_as_libxl_sets_it_and_mem_set_may_rise_to_the_static_max(sim):
    """libxl at mem-set: Xen's limit (xentop's MAXMEM) becomes the target + 1 MiB; the ceiling of the next
    mem-set stays the configured static maximum (seen on Xen 4.17: guest2, maxmem 192, mem-set 100m then 150m)."""
    before = await domain(sim, "web-frontend-01")
    assert before.maxmem_kib == 2 * GIB + 1024 and before.static_maxmem_kib == 4 * GIB
    await sim.mem_set("web-frontend-01", 1 * GIB)
    lowered = await domain(sim, "web-frontend-01")
    assert lowered.maxmem_kib == 1 * GIB + 1024  # what xentop would print now
    assert lowered.mem_ceiling_kib == 4 * GIB  # what the operator may still ask for
    await sim.mem_set("web-frontend-01", 3 * GIB)  # above Xen's current limit, below the static maximum
    raised = await domain(sim, "web-frontend-01")
    assert raised.target_kib == 3 * GIB and raised.maxmem_kib == 3 * GIB + 1024
    with pytest.raises(InvalidArgument, match="raise maxmem first"):
        await sim.mem_set("web-frontend-01", 5 * GIB)
    assert (await domain(sim, "web-frontend-01")).target_kib == 3 * GIB
    await sim.mem_max("web-frontend-01", 6 * GIB)  # mem-max sets Xen's limit to the new maximum + 1 MiB
    assert (await domain(sim, "web-frontend-01")).maxmem_kib == 6 * GIB + 1024


async def test_mem_set_more_than_the_host_has_free(sim):
    await sim.mem_max("Domain-0", 60 * GIB)
    with pytest.raises(InvalidArgument, match="free"):
        await sim.mem_set("Domain-0", 60 * GIB)


async def test_balloon_does_not_move_while_paused(sim, clock):
    await sim.mem_set("backup-old", 512 * 1024)
    clock.advance(10)
    assert (await domain(sim, "backup-old")).mem_kib == GIB
    await sim.unpause("backup-old")
    clock.advance(10)
    assert (await domain(sim, "backup-old")).mem_kib == 512 * 1024


async def test_vcpu_set_within_and_over_max(sim, clock):
    await sim.vcpu_set("web-frontend-01", 4)
    d = await domain(sim, "web-frontend-01")
    assert d.vcpus_online == 4 and d.vcpus_max == 4
    with pytest.raises(InvalidArgument, match="at most 4"):
        await sim.vcpu_set("web-frontend-01", 5)
    await sim.vcpu_set("web-frontend-01", 1)
    clock.advance(2)
    d = await domain(sim, "web-frontend-01")
    assert d.vcpus_online == 1
    assert [v.online for v in d.vcpus] == [True, False, False, False]


async def test_vcpu_set_over_host_cpus_needs_the_override():
    sim = SimBackend(SimCluster(seed=1, domains=40, clock=ManualClock()))
    s = await sim.sample()
    big = next(d for d in s.domains if d.vcpus_max >= 8)
    await sim.vcpu_set(big.name, 8)  # 8 <= 16 host CPUs
    host = sim.host
    host.nr_cpus = 4
    with pytest.raises(InvalidArgument, match="physical CPUs"):
        await sim.vcpu_set(big.name, 6)
    await sim.vcpu_set(big.name, 6, allow_overcommit=True)
    assert (await domain(sim, big.name)).vcpus_online == 6


async def test_pause_unpause_show_in_the_state_at_once(sim):
    await sim.pause("web-frontend-01")
    assert (await domain(sim, "web-frontend-01")).state is DomainState.PAUSED
    with pytest.raises(InvalidArgument, match="already paused"):
        await sim.pause("web-frontend-01")
    await sim.unpause("web-frontend-01")
    assert (await domain(sim, "web-frontend-01")).state in (DomainState.RUNNING, DomainState.BLOCKED)
    with pytest.raises(InvalidArgument, match="not paused"):
        await sim.unpause("web-frontend-01")


async def test_dom0_is_protected(sim):
    for action in (sim.pause, sim.destroy, sim.shutdown, sim.reboot):
        with pytest.raises(InvalidArgument, match="Domain-0"):
            await action("Domain-0")


async def test_unknown_domain(sim):
    with pytest.raises(DomainNotFound, match="no-such"):
        await sim.pause("no-such")


async def test_sched_credit(sim):
    await sim.set_sched("db-primary", weight=512, cap=150)
    d = await domain(sim, "db-primary")
    assert (d.sched_weight, d.sched_cap) == (512, 150)
    with pytest.raises(InvalidArgument):
        await sim.set_sched("db-primary", weight=0)
    with pytest.raises(InvalidArgument):
        await sim.set_sched("db-primary", cap=100 * 8 + 1)
    assert (await domain(sim, "db-primary")).sched_weight == 512


async def test_cap_limits_cpu(sim, clock):
    await sim.set_sched("batch-cruncher", cap=50)
    first = await sim.sample()
    clock.advance(4)
    rates = compute_rates(first, await sim.sample())
    cruncher = next(d for d in first.domains if d.name == "batch-cruncher")
    assert rates[cruncher.key].cpu_pct == pytest.approx(50.0, abs=0.5)


async def test_weight_decides_who_wins_when_cpus_run_out(sim, clock):
    sim.host.nr_cpus = 2
    await sim.set_sched("batch-cruncher", weight=1024)
    first = await sim.sample()
    clock.advance(4)
    rates = compute_rates(first, await sim.sample())
    by = {d.name: rates[d.key].cpu_pct for d in first.domains}
    assert sum(by.values()) == pytest.approx(200.0, abs=1)
    assert by["batch-cruncher"] > by["db-primary"]


async def test_save_takes_time_in_proportion_to_memory_and_removes_the_domain(sim, clock, tmp_path):
    start = clock.monotonic()
    await sim.save("mail-relay", tmp_path / "mail.save")  # 512 MiB
    small = clock.monotonic() - start
    start = clock.monotonic()
    await sim.save("db-primary", tmp_path / "db.save")  # 8 GiB
    large = clock.monotonic() - start
    assert large > 8 * small
    names = {d.name for d in (await sim.sample()).domains}
    assert "mail-relay" not in names and "db-primary" not in names
    assert (tmp_path / "db.save").read_bytes().startswith(b"xentui-sim saved domain")


async def test_save_refuses_to_overwrite_unless_told(sim, tmp_path):
    target = tmp_path / "x.save"
    target.write_text("precious")
    with pytest.raises(InvalidArgument, match="already exists"):
        await sim.save("mail-relay", target)
    assert target.read_text() == "precious"
    assert await domain(sim, "mail-relay") is not None
    await sim.save("mail-relay", target, overwrite=True)
    assert target.read_bytes().startswith(b"xentui-sim")


async def test_save_keep_running_then_restore_conflicts(sim, tmp_path):
    image = tmp_path / "api.save"
    await sim.save("[staging] api", image, keep_running=True)
    assert (await domain(sim, "[staging] api")).state is not DomainState.PAUSED
    with pytest.raises(InvalidArgument, match="already running"):
        await sim.restore(image)


async def test_restore_brings_it_back_with_a_new_domid(sim, clock, tmp_path):
    before = await domain(sim, "web-frontend-01")
    await sim.mem_set("web-frontend-01", 3 * GIB)
    clock.advance(10)
    image = tmp_path / "web.save"
    await sim.save("web-frontend-01", image)
    assert await domain(sim, "web-frontend-01") is None
    assert await sim.restore(image) == "web-frontend-01"
    after = await domain(sim, "web-frontend-01")
    assert after.uuid == before.uuid and after.id != before.id
    assert after.mem_kib == 3 * GIB


async def test_restore_refuses_a_file_that_is_not_an_image(sim, tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\xffnot a domain")
    with pytest.raises(InvalidArgument, match="not a saved domain"):
        await sim.restore(junk)
    with pytest.raises(InvalidArgument, match="cannot read"):
        await sim.restore(tmp_path / "missing")


async def test_destroy_removes_it_and_a_zombie_cannot_be_destroyed(sim):
    await sim.destroy("kernel-dev")  # crashed, preserved
    assert await domain(sim, "kernel-dev") is None
    with pytest.raises(BackendError, match="already dying"):
        await sim.destroy("zombie-7")


async def test_shutdown_takes_a_moment_then_the_domain_is_gone(sim, clock):
    await sim.shutdown("mail-relay")
    assert (await domain(sim, "mail-relay")).state is not DomainState.SHUTDOWN
    clock.advance(1.6)
    assert (await domain(sim, "mail-relay")).state is DomainState.SHUTDOWN
    clock.advance(1)
    assert await domain(sim, "mail-relay") is None


async def test_shutdown_without_pv_drivers_is_refused(sim):
    with pytest.raises(BackendError, match="PV control interface"):
        await sim.shutdown("win2019-legacy")
    assert (await domain(sim, "win2019-legacy")).state is not DomainState.SHUTDOWN


async def test_reboot_gives_a_new_domid_and_fresh_counters(sim, clock):
    before = await domain(sim, "web-frontend-01")
    await sim.reboot("web-frontend-01")
    clock.advance(2)
    after = await domain(sim, "web-frontend-01")
    assert after.id != before.id and after.uuid == before.uuid
    assert after.cpu_ns < before.cpu_ns


async def read_until(console, needle: bytes, limit: int = 50) -> bytes:
    seen = b""
    for _ in range(limit):
        seen += await asyncio.wait_for(console.read(), 1)
        if needle in seen:
            return seen
    raise AssertionError(f"{needle!r} not in {seen!r}")


async def test_console_shell_answers_with_figures_that_follow_the_actions(sim, clock):
    console = await sim.open_console("web-frontend-01")
    await console.write(b"uname -a\r")
    out = await read_until(console, b"GNU/Linux")
    assert b"Linux web-frontend-01 6.1" in out
    await console.write(b"nproc\r")
    assert b"\r\n2\r\n" in await read_until(console, b"# ")
    await sim.vcpu_set("web-frontend-01", 3)
    await console.write(b"nproc\r")
    assert b"\r\n3\r\n" in await read_until(console, b"3\r\n")
    await console.write(b"cat /proc/meminfo\r")
    out = await read_until(console, b"VmallocTotal")
    total_before = int(out.split(b"MemTotal:")[1].split()[0])
    await sim.mem_set("web-frontend-01", 1 * GIB)
    clock.advance(10)
    await console.write(b"free\r")
    out = await read_until(console, b"Swap:")
    total_after = int(out.split(b"Mem:")[1].split()[0])
    assert total_after < total_before / 1.9
    await console.write(b"bogus\r")
    assert b"command not found" in await read_until(console, b"not found")
    await console.close()


async def test_console_backspace_and_ctrl_c(sim):
    console = await sim.open_console("mail-relay")
    await console.write(b"nprocX\x7f\r")
    assert b"\r\n1\r\n" in await read_until(console, b"# ")
    await console.write(b"uname\x03")
    assert b"^C" in await read_until(console, b"^C")


async def test_console_keys_that_print_nothing_leave_it_open(sim):
    """A function key's sequence, NUL, Ctrl-A, Escape alone: the shell shows nothing for them, and the
    console must stay open (an empty read is end-of-file; one used to close it). The letter typed after
    a lone Escape is typed, not taken as the end of an escape sequence."""
    console = await sim.open_console("mail-relay")
    for quiet in (b"\x1b[15~", b"\x00\x01", b"\x1b"):
        await console.write(quiet)
    await console.write(b"nproc\r")
    assert b"\r\n1\r\n" in await read_until(console, b"# ")
    assert not console.closed


async def test_console_is_exclusive_like_xenconsole(sim):
    first = await sim.open_console("mail-relay")
    with pytest.raises(ConsoleBusy, match="already in use"):
        await sim.open_console("mail-relay")
    await first.close()
    second = await sim.open_console("mail-relay")
    await second.close()


async def test_console_of_a_paused_guest_answers_after_unpause(sim):
    console = await sim.open_console("backup-old")
    await console.write(b"nproc\r")
    await asyncio.sleep(0)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(console.read(), 0.05)
    await sim.unpause("backup-old")
    assert b"1\r\n" in await read_until(console, b"# ")


async def test_sysrq_answers_on_the_console_like_linux(sim):
    console = await sim.open_console("db-primary")
    await sim.sysrq("db-primary", "m")
    out = await read_until(console, b"pages RAM")
    assert b"sysrq: Show Memory" in out and b"Mem-Info:" in out
    await sim.sysrq("db-primary", "h")
    assert b"sysrq: HELP" in await read_until(console, b"HELP")
    with pytest.raises(InvalidArgument, match="valid keys"):
        await sim.sysrq("db-primary", "!")


async def test_sysrq_crash_and_reboot_and_poweroff(sim, clock):
    console = await sim.open_console("[staging] api")
    await sim.sysrq("[staging] api", "c")
    out = await read_until(console, b"")
    assert b"Kernel panic" in out
    assert await console.read() == b""  # the console hung up
    assert (await domain(sim, "[staging] api")).state is DomainState.CRASHED
    before = await domain(sim, "web-frontend-01")
    await sim.sysrq("web-frontend-01", "b")
    clock.advance(1)
    assert (await domain(sim, "web-frontend-01")).id != before.id
    await sim.sysrq("mail-relay", "o")
    clock.advance(1)
    assert await domain(sim, "mail-relay") is None


async def test_sysrq_logs_go_to_dmesg_when_no_console_is_open(sim):
    await sim.sysrq("db-primary", "s")
    console = await sim.open_console("db-primary")
    await console.write(b"dmesg\r")
    assert b"Emergency Sync complete" in await read_until(console, b"complete")


async def test_migrate_to_a_good_peer_moves_the_domain(sim):
    checks = await sim.migrate_preflight("db-primary", "sim-host-2")
    assert all(check.ok for check in checks), checks
    events = [event async for event in sim.migrate("db-primary", "sim-host-2")]
    assert events[0].phase is MigratePhase.PREFLIGHT
    assert events[-1].phase is MigratePhase.DONE and events[-1].fraction == 1.0
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and len(events) > 5
    assert await domain(sim, "db-primary") is None
    peer = SimBackend(sim.cluster, "sim-host-2")
    assert await domain(peer, "db-primary") is not None


async def test_preflight_shows_the_classic_mistakes(sim):
    checks = {c.name: c for c in await sim.migrate_preflight("web-frontend-01", "sim-host-3")}
    assert checks["reachable"].ok
    assert not checks["hypervisor version"].ok and "4.16.5" in checks["hypervisor version"].detail
    assert not checks["CPU"].ok and "avx512f" in checks["CPU"].detail
    assert not checks["storage"].ok and "/dev/vg0/" in checks["storage"].detail
    checks = {c.name: c for c in await sim.migrate_preflight("db-primary", "sim-host-3")}
    assert not checks["free memory"].ok


async def test_migrate_to_an_older_xen_fails_and_the_domain_stays(sim):
    with pytest.raises(BackendError, match="keeps running here"):
        async for _ in sim.migrate("mail-relay", "sim-host-3"):
            pass
    d = await domain(sim, "mail-relay")
    assert d is not None and d.state is not DomainState.PAUSED


async def test_migrate_with_local_disks_fails_at_the_end(sim):
    with pytest.raises(BackendError, match="could not attach"):
        async for _ in sim.migrate("web-frontend-01", "sim-host-2"):
            pass
    assert await domain(sim, "web-frontend-01") is not None


async def test_migrate_cancelled_leaves_the_domain_running_here(sim):
    progress = sim.migrate("db-primary", "sim-host-2")
    async for event in progress:
        if event.fraction > 0.2:
            break
    await progress.aclose()
    d = await domain(sim, "db-primary")
    assert d is not None and d.state is not DomainState.PAUSED
    await sim.pause("db-primary")  # no longer busy


@pytest.mark.parametrize("target", ["sim-host-1", "nowhere", "host;reboot"])
async def test_migrate_target_refusals(sim, target):
    with pytest.raises(BackendError):
        await sim.migrate_preflight("db-primary", target)


async def test_action_on_a_domain_being_saved_is_refused(sim, tmp_path):
    saving = asyncio.create_task(sim.save("db-primary", tmp_path / "db.save"))
    await asyncio.sleep(0)
    with pytest.raises(BackendError, match="busy saving"):
        await sim.pause("db-primary")
    await saving


async def test_sim_domains_bounds_and_scale():
    with pytest.raises(InvalidArgument):
        SimCluster(domains=MAX_DOMAINS + 1)
    empty = await SimBackend(SimCluster(domains=0, clock=ManualClock())).sample()
    assert [d.name for d in empty.domains] == ["Domain-0"]
    big = await SimBackend(SimCluster(domains=MAX_DOMAINS, clock=ManualClock())).sample()
    assert len(big.domains) == MAX_DOMAINS + 1
    assert len({d.name for d in big.domains}) == len(big.domains)
    assert big.host.free_kib > 0


async def test_no_vcpu_runs_above_one_physical_cpu(sim, clock):
    first = await sim.sample()
    clock.advance(2)
    rates = compute_rates(first, await sim.sample())
    for domain in first.domains:
        rate = rates[domain.key]
        assert all(pct <= 100.0 + 1e-6 for pct in rate.vcpu_pct.values()), (domain.name, rate.vcpu_pct)
        assert sum(rate.vcpu_pct.values()) == pytest.approx(rate.cpu_pct, abs=0.01)


async def test_a_quiet_guest_does_io_in_bursts_a_busy_one_every_second(sim, clock):
    """As on a real host: an idle guest's disk writes come with the filesystem's commits (every 5 s),
    its network every few seconds; between them the device's counters stand still."""
    await sim.sample()
    history: dict[str, list] = {"mail-relay": [], "batch-cruncher": []}
    for _ in range(10):
        clock.advance(1)
        sample = await sim.sample()
        for d in sample.domains:
            if d.name in history:
                history[d.name].append(d.vbds[0])
    quiet, busy = history["mail-relay"], history["batch-cruncher"]
    quiet_moves = [b.wr_reqs > a.wr_reqs for a, b in pairwise(quiet)]
    assert sum(quiet_moves) in (1, 2), quiet_moves  # one burst every 5 s over 9 intervals
    assert all(b == a for (a, b), moved in zip(pairwise(quiet), quiet_moves, strict=True) if not moved)
    assert all(b.wr_reqs > a.wr_reqs for a, b in pairwise(busy))
    # the bursts carry what the quiet seconds did not: over 10 s the quiet disk still wrote something
    assert quiet[-1].wr_reqs > quiet[0].wr_reqs


async def test_device_records_follow_a_new_domid(sim, clock):
    """A reused vif record must not keep the old domid in its name once the domain is back as another."""
    first = await domain(sim, "mail-relay")
    await sim.reboot("mail-relay")
    for _ in range(30):
        clock.advance(1)
        mail = await domain(sim, "mail-relay")
        if mail is not None and mail.id != first.id:
            break
    assert mail is not None and mail.id != first.id and mail.vifs
    assert all(vif.ifname == f"vif{mail.id}.{vif.devid}" for vif in mail.vifs)


async def test_vcpus_that_ran_between_two_samples_show_their_time_when_offline_again(sim, clock):
    """vcpu-set up, some time, vcpu-set down, then a sample: the vCPUs now offline ran meanwhile,
    and the per-vCPU times must still add up to the domain's."""
    first = await domain(sim, "web-frontend-01")
    assert [v.online for v in first.vcpus] == [True, True, False, False]
    await sim.vcpu_set("web-frontend-01", 4)
    clock.advance(1)
    await sim.vcpu_set("web-frontend-01", 2)
    later = await domain(sim, "web-frontend-01")
    assert [v.online for v in later.vcpus] == [True, True, False, False]
    assert later.vcpus[2].cpu_ns > first.vcpus[2].cpu_ns
    assert abs(sum(v.cpu_ns for v in later.vcpus) - later.cpu_ns) <= len(later.vcpus)


async def test_vcpu_times_only_grow_and_add_up_through_vcpu_set_changes(clock):
    """Per-vCPU times follow from two per-domain integrals (VcpuSplit): through random vcpu-set changes,
    every vCPU's time never goes back, online ones move, offline ones stand still, and they add up."""
    sim = SimBackend(SimCluster(seed=5, domains=40, clock=clock))
    draws = random.Random(5)
    before = {d.name: d for d in (await sim.sample()).domains}
    for _ in range(25):
        guest = draws.choice([d for d in before.values() if d.id != 0 and d.state in ("running", "blocked")])
        await sim.vcpu_set(guest.name, draws.randint(1, guest.vcpus_max))
        clock.advance(draws.uniform(0.3, 2.0))
        after = {d.name: d for d in (await sim.sample()).domains}
        for name, new in after.items():
            old = before.get(name)
            if old is None or old.id != new.id:
                continue
            assert len(new.vcpus) == new.vcpus_max
            assert abs(sum(v.cpu_ns for v in new.vcpus) - new.cpu_ns) <= len(new.vcpus), name
            for was, now in zip(old.vcpus, new.vcpus, strict=True):
                assert now.cpu_ns >= was.cpu_ns - 1, (name, was, now)
                if not was.online and not now.online:
                    assert abs(now.cpu_ns - was.cpu_ns) <= 1, (name, was, now)
        before = after


async def test_an_idle_guests_vcpus_run_unevenly_a_busy_guests_evenly(clock):
    sim = SimBackend(SimCluster(seed=1, domains=12, clock=clock))
    first = await sim.sample()
    clock.advance(5)
    rates = compute_rates(first, await sim.sample())
    by_name = {d.name: rates[d.key] for d in first.domains}
    busy = by_name["batch-cruncher"].vcpu_pct  # pinned at 100% of its vCPUs
    assert max(busy.values()) - min(busy.values()) < 0.5, busy
    idle = by_name["win2019-legacy"].vcpu_pct  # two vCPUs, about 6% each
    assert len(idle) > 1 and max(idle.values()) > min(idle.values()) > 0, idle


async def test_a_sample_makes_no_vcpu_vif_or_vbd_records_until_they_are_read(clock, monkeypatch):
    """Scale: a refresh of a thousand domains reads the counter columns; records are made for what is shown."""
    from xentui.backends.sim import _Records

    made: list[str] = []
    real = _Records._made

    def counted(self):  # counts reads: a domain's records are made at the first
        made.append(type(self).__name__)
        return real(self)

    monkeypatch.setattr(_Records, "_made", counted)
    sim = SimBackend(SimCluster(seed=2, domains=500, clock=clock))
    first = await sim.sample()
    clock.advance(1)
    second = await sim.sample()
    rates = compute_rates(first, second)
    assert len(rates) == 501 and not made
    assert [v.online for v in second.domains[1].vcpus].count(True) == second.domains[1].vcpus_online
    assert len(rates[second.domains[1].key].vcpu_pct) == second.domains[1].vcpus_total
    assert 1 <= len(made) <= 4 and set(made) == {"VcpuTimes"}  # that one domain's, in the two samples
    made.clear()
    assert rates[second.domains[1].key].vifs and rates[second.domains[1].key].vbds
    assert set(made) == {"VifRecords", "VbdRecords"} and len(made) <= 8


async def test_the_simulators_counter_columns_agree_with_its_records_through_every_action(clock, tmp_path):
    """The columns a sample carries are its records' totals, and rates from them are the rates from the
    records device by device, exactly: through pause, mem-set, vcpu-set, reboot, save and restore,
    migration (both hosts), destroy and plain time, with quiet guests' bursts and busy ones' drops."""
    sim = SimBackend(SimCluster(seed=4, domains=30, clock=clock))
    peer = SimBackend(sim.cluster, "sim-host-2")
    image = tmp_path / "web.save"

    async def migrate() -> None:
        async for _ in sim.migrate("db-primary", "sim-host-2"):
            pass

    steps = [
        lambda: sim.pause("[staging] api"), lambda: sim.mem_set("web-frontend-01", 3 * GIB),
        lambda: sim.vcpu_set("analytics-warehouse-reporting-cluster-node-03", 4), lambda: sim.reboot("mail-relay"),
        lambda: sim.save("web-frontend-01", image), lambda: sim.restore(image), migrate,
        lambda: sim.destroy("build runner 7"), lambda: sim.unpause("[staging] api"),
    ]
    previous = {sim: await sim.sample(), peer: await peer.sample()}
    moved_by_records = 0
    for step in [*steps, *[None] * 6]:
        if step is not None:
            await step()
        clock.advance(1.3)
        for backend in (sim, peer):
            current = await backend.sample()
            expected = with_columns(current).columns
            for name in ("keys", "names", "ids", "flags", "cpu_ns", "net_rx_bytes", "net_tx_bytes", "vbd_rd_reqs",
                         "vbd_wr_reqs", "vbd_oo_reqs", "vbd_rd_sectors", "vbd_wr_sectors", "mem_kib"):
                assert list(getattr(current.columns, name)) == list(getattr(expected, name)), name
            from_columns = compute_rates(previous[backend], current)
            from_records = compute_rates(without_columns(previous[backend]), without_columns(current))
            assert_same_rates(from_columns, from_records, current.keys())
            moved_by_records += sum(rate.net_rx_bytes_s > 0 for rate in from_records.values())
            previous[backend] = current
    assert moved_by_records > 100  # the comparison saw traffic, not only zeros


async def test_simulated_uuids_are_spelled_as_the_uuid_module_spells_version_4():
    cluster = SimCluster(seed=3, domains=0)
    draws = random.Random(11)
    cluster.rng = random.Random(11)
    for _ in range(2000):
        expected = str(uuid.UUID(int=draws.getrandbits(128), version=4))
        assert cluster._uuid() == expected


async def test_a_samples_records_show_the_domain_as_it_was_when_sampled(sim, clock):
    """Records are made when first read, maybe after an action: they still show the sampled domain, and
    the next sample shows the change (weight, memory target, vCPUs, counters)."""
    before = await sim.sample()
    await sim.set_sched("db-primary", weight=512)
    await sim.mem_set("db-primary", 6 * GIB)
    await sim.vcpu_set("db-primary", 2)
    clock.advance(3)
    after = await sim.sample()
    was, now = before.domain(before.keys()[2]), after.domain(before.keys()[2])  # read only now
    assert was.name == now.name == "db-primary"
    assert (was.sched_weight, was.target_kib, was.vcpus_online) == (256, 8 * GIB, 4)
    assert (now.sched_weight, now.target_kib, now.vcpus_online) == (512, 6 * GIB, 2)
    assert now.cpu_ns > was.cpu_ns and now.vbds[0].rd_reqs > was.vbds[0].rd_reqs


async def test_batch_output_after_a_mem_set_down_json_has_the_ceiling_xentop_has_xens_limit(sim):
    """The xentop layout prints what xentop prints (Xen's limit: the target + 1 MiB after a mem-set down);
    JSON and CSV give the ceiling an operator works against, with Xen's limit beside it."""
    from xentui.batch import BatchFormat, BatchOptions, make_formatter

    await sim.mem_set("web-frontend-01", 1 * GIB)
    sample = await sim.sample()
    rates = compute_rates(None, sample)
    record = next(d for d in json.loads(make_formatter(BatchOptions(format=BatchFormat.JSON)).format(sample, rates))
                  ["domains"] if d["name"] == "web-frontend-01")
    assert record["maxmem_kib"] == 4 * GIB and record["xen_maxmem_kib"] == 1 * GIB + 1024
    assert record["maxmem_pct"] == round(4 * GIB / sample.host.total_kib * 100, 1)
    xentop_line = next(line for line in make_formatter(BatchOptions()).format(sample, rates).splitlines()
                       if "web-fronte" in line)
    assert f" {1 * GIB + 1024} " in xentop_line and f" {4 * GIB} " not in xentop_line
    rows = list(csv.DictReader(io.StringIO(make_formatter(BatchOptions(format=BatchFormat.CSV)).format(sample, rates))))
    row = next(r for r in rows if r["name"] == "web-frontend-01")
    assert (row["maxmem_kib"], row["xen_maxmem_kib"]) == (str(4 * GIB), str(1 * GIB + 1024))
