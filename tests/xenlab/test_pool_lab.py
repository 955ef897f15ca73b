"""Two real Xen hosts in one pool, watched from this machine as from an operator's jump host: lab a and lab b
(tests/xenlab/lab.py instances from the same build, so the same Xen), joined by a private link on which dom0 a is
10.98.0.1 and dom0 b 10.98.0.2. xentui's pool has a member per dom0 (the xl backend over ssh, `SshHost`);
the PVH guest3 is live-migrated from a to b over that link by the member backend's pre-flight and `migrate()`
(what the migrate dialog calls through `pool.for_domain`), then back from b to a by the screen itself (the
pool's app, `g`, Enter twice), and checked with xl on both hosts, a ping and its console on its new host. Last, b
dies (its QEMU stopped): the pool calls it down while a keeps refreshing, and b comes back by itself once it
boots again.

Under full emulation a live migration fails now and then on Xen's side (see test_xl_backend_lab's
test_migrate_to_localhost_with_progress); the guest then stays on its source (checked) and the move is tried once
more, as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from tests.ui.helpers import refreshed, until
from xentui.audit import AuditLog
from xentui.backends.base import BackendError, MigratePhase, MigrateProgress
from xentui.backends.pool import PoolBackend
from xentui.backends.ssh import SshHost
from xentui.backends.xl import XlBackend
from xentui.backends.xl_parsers import parse_xl_info
from xentui.model import Domain, DomainFlag, Sample
from xentui.ui.lines import host_key

from . import lab as labmod
from .dom0_calls import wait_for, xl_list

pytestmark = pytest.mark.xenlab

A, B = "lab-a", "lab-b"  # the hosts' names in the pool
ADDRESS = {A: labmod.LINK["a"][0], B: labmod.LINK["b"][0]}  # how each dom0 reaches the other
GUEST = "guest3"  # PVH: the guest this Xen can migrate live (PV guests need shadow paging, which it lacks)
GUEST_IP = "10.99.0.13"  # on the xenbr0 of whichever dom0 it runs on (no uplink: only that dom0 reaches it)
MIGRATION_TIMEOUT = 900.0
BIG = "big"  # a paused guest that takes b's free memory
EVACUEES = ("guest3", "guest4")  # PVH guests whose disks (none; one on the shared storage) b can see
STAYING_PVH = ("guest5",)  # a PVH guest whose disk is in a's dom0 only


def lab_host(lab) -> SshHost:
    return SshHost("root@127.0.0.1", options=["-p", str(lab.port), "-i", str(lab.key_path),
                                               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                               "-o", "LogLevel=ERROR"])


def make_pool(pair, *, timeout: float = 30.0) -> PoolBackend:
    return PoolBackend([(A, XlBackend(host=lab_host(pair.a), delay=1.0)),
                        (B, XlBackend(host=lab_host(pair.b), delay=1.0))],
                       addresses=ADDRESS, timeout=timeout)


def by_host(sample: Sample) -> dict[str, dict[str, Domain]]:
    hosts: dict[str, dict[str, Domain]] = {status.label: {} for status in sample.hosts}
    for domain in sample.domains:
        hosts[domain.host][domain.name] = domain
    return hosts


async def sample_until(pool: PoolBackend, what: str, check: Callable[[Sample], bool],
                       within: float = 120.0) -> Sample:
    deadline = time.monotonic() + within
    while True:
        sample = await pool.sample()
        if check(sample):
            return sample
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:g} s; hosts: {sample.hosts}")
        await asyncio.sleep(1.0)


def both_up(sample: Sample) -> bool:
    return all(status.error is None and status.host is not None for status in sample.hosts)


def only_on(label: str, name: str = GUEST) -> Callable[[Sample], bool]:
    def check(sample: Sample) -> bool:
        hosts = by_host(sample)
        return both_up(sample) and name in hosts[label] and all(
            name not in domains for host, domains in hosts.items() if host != label)
    return check


def place_guest(pair, on: str) -> None:
    """guest3 running on lab ON ("a" or "b") and not on the other: destroyed there, created here if missing."""
    here, there = (pair.a, pair.b) if on == "a" else (pair.b, pair.a)
    if GUEST in xl_list(there):
        there.ssh(["xl", "destroy", GUEST], check=False, timeout=120)
    if GUEST not in xl_list(here):
        # its console log there says XENTUI-GUEST-READY once the new guest is up, not from an earlier one
        here.ssh(["rm", "-f", f"/var/log/xen/console/guest-{GUEST}.log"])
        here.lab.create_guests([GUEST])
        time.sleep(10)  # let the fresh guest finish settling its memory before its pages are tracked


def running(lab, name: str) -> bool:
    entry = xl_list(lab).get(name)
    return entry is not None and not entry.flags & (DomainFlag.PAUSED | DomainFlag.SHUTDOWN | DomainFlag.CRASHED
                                                    | DomainFlag.DYING)


def answers_ping(lab, address: str, timeout: float = 60.0) -> None:
    wait_for(f"{address} answers a ping from {lab.lab.hostname}", lambda: lab.ssh(
        ["ping", "-c", "1", "-W", "3", address], check=False, timeout=30).returncode == 0, timeout=timeout, every=2)


async def console_answers(lab, name: str) -> None:
    """The guest's console, opened by the xl backend over ssh on that dom0, runs a command."""
    await console_says(lab, name, "echo moved-$((6*7))-here", b"moved-42-here")


async def console_says(lab, name: str, command: str, expect: bytes) -> None:
    """COMMAND typed on the guest's console (opened by the xl backend over ssh on that dom0) prints EXPECT."""
    backend = XlBackend(host=lab_host(lab), delay=1.0)
    try:
        await backend.sample()
        channel = await backend.open_console(name)
        seen = b""
        try:
            await asyncio.sleep(0.5)
            await channel.write(b"\x15" + command.encode() + b"\r")
            deadline = time.monotonic() + 60
            while expect not in seen and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    seen += await asyncio.wait_for(channel.read(), 1.0)
        finally:
            await channel.close()
        assert expect in seen, seen[-400:]
    finally:
        await backend.close()


async def twice(what: str, move: Callable[[], Awaitable[object]], source, name: str = GUEST) -> object:
    """MOVE, and once more if Xen failed it under emulation with the guest still running at its source."""
    try:
        return await move()
    except BackendError as error:
        print(f"{what}: first attempt failed ({error}); the guest must still run at its source")
        assert running(source, name), f"{what} failed and {name} is not running at its source: {error}"
        return await move()


# --- the pool's app, driven as an operator drives it -------------------------------------------------------

def pool_app(pool: PoolBackend, audit: AuditLog):
    """The app on POOL, refreshed only when a test asks (`refreshed`), every action audited in AUDIT."""
    from xentui.ui.app import StartOptions, XentuiApp

    return XentuiApp(pool, StartOptions(delay=3600.0, theme="xentui-dark", audit=audit))


async def refreshed_until(app, pilot, what: str, check: Callable[[], bool], tries: int = 60) -> None:
    """Refresh the screen until CHECK holds (the first refresh waited for too)."""
    await until(pilot, "the first refresh", lambda: app.polls_done > 0, 120)
    for _ in range(tries):
        if check():
            return
        await refreshed(pilot, app)
    assert check(), (what, {label: sorted(domains) for label, domains in by_host(app.sample).items()},
                     app.sample.hosts)


def shown_on(app, label: str, name: str = GUEST) -> bool:
    """Both hosts up on the screen, NAME under LABEL and under no other."""
    return app.sample is not None and both_up(app.sample) and only_on(label, name)(app.sample)


@pytest.fixture(scope="module")
def pair(xenlab_pair) -> Iterator:
    yield xenlab_pair
    for lab in (xenlab_pair.a, xenlab_pair.b):  # leave both as the other tests expect them: no guest3
        with contextlib.suppress(Exception):
            if GUEST in xl_list(lab):
                lab.ssh(["xl", "destroy", GUEST], check=False, timeout=120)


@pytest.mark.asyncio
async def test_the_pool_shows_both_dom0s_as_xl_lists_them(pair):
    pool = make_pool(pair)
    try:
        sample = await sample_until(pool, "both hosts answer", both_up)
        sample = await pool.sample()  # a second: rates, and what each xentop stream says now
        statuses = {status.label: status for status in sample.hosts}
        assert list(statuses) == [A, B] and all(status.error is None for status in statuses.values())
        host_a, host_b = statuses[A].host, statuses[B].host
        assert (host_a.hostname, host_b.hostname) == (pair.a.lab.hostname, pair.b.lab.hostname)
        assert host_a.hypervisor == host_b.hypervisor == "Xen"
        assert host_a.version == host_b.version and host_a.version.startswith("4.17")
        shown = by_host(sample)
        for label, lab in ((A, pair.a), (B, pair.b)):
            listed = {name: entry.domid for name, entry in xl_list(lab).items()}
            assert {name: domain.id for name, domain in shown[label].items()} == listed, label
            assert statuses[label].domains == len(listed)
        assert sample.host.hostname == "pool of 2"
        assert pool.address_of(A) == "10.98.0.1" and pool.address_of(B) == "10.98.0.2"
        print(f"pool: {A} {host_a.hostname} Xen {host_a.version} {sorted(shown[A])}, "
              f"{B} {host_b.hostname} Xen {host_b.version} {sorted(shown[B])}")
    finally:
        await pool.close()


@pytest.mark.asyncio
async def test_live_migration_from_a_to_b_through_the_pool(pair):
    """The pre-flight from dom0 a to b's link address, then `migrate()` of the member the pool gives for the
    domain: guest3 runs on b afterwards (xl list on both, the pool, a ping and its console on b)."""
    place_guest(pair, "a")
    pool = make_pool(pair)
    try:
        sample = await sample_until(pool, f"{GUEST} on {A} only", only_on(A))
        domain = by_host(sample)[A][GUEST]
        member = pool.for_domain(domain)
        assert member is pool.member(A) and member is not pool.member(B)
        target = pool.address_of(B)

        checks = await member.migrate_preflight(GUEST, target)
        print("pre-flight, a -> b:\n" + "\n".join(f"  {c.name}: {c.ok} ({c.detail})" for c in checks))
        named = {check.name: check for check in checks}
        assert all(check.ok is not False for check in checks), checks
        assert named["reachable"].ok and pair.b.lab.hostname in named["reachable"].detail  # b answered, not a
        assert named["xen version"].ok and named["memory"].ok
        assert named["cpu"].ok is True  # the same QEMU CPU model on both
        free_b = next(status.host.free_kib for status in sample.hosts if status.label == B) // 1024
        assert f"{free_b} MiB free there" in named["memory"].detail  # b's free memory, not a's

        events: list[MigrateProgress] = []

        async def move() -> None:
            events.clear()
            async for event in member.migrate(GUEST, target):
                events.append(event)

        started = time.monotonic()
        await twice("migrate a -> b", move, pair.a)
        took = time.monotonic() - started
        fractions = [event.fraction for event in events]
        assert fractions == sorted(fractions) and len(events) >= 4, events
        assert events[-1].phase is MigratePhase.DONE and target in events[-1].message
        assert {"target ready to receive", "transfer complete"} <= {event.message for event in events}
        # between "sending memory" and "guest suspended" xl prints nothing: the bar moves with what b holds
        arriving = [event for event in events if event.message.startswith("sending memory: ")]
        assert len(arriving) >= 2 and arriving[-1].fraction > arriving[0].fraction, events
        assert all(0.05 < event.fraction < 0.85 for event in arriving), arriving

        assert GUEST not in xl_list(pair.a)
        assert running(pair.b, GUEST), xl_list(pair.b)
        sample = await sample_until(pool, f"{GUEST} under {B} and not {A}", only_on(B), within=60)
        assert by_host(sample)[B][GUEST].id == xl_list(pair.b)[GUEST].domid
        answers_ping(pair.b, GUEST_IP)
        await console_answers(pair.b, GUEST)
        print(f"migrated {GUEST} a -> b over the link in {took:.1f} s; "
              + ", ".join(f"{e.fraction:.2f} {e.message}" for e in events))
    finally:
        await pool.close()


@pytest.mark.asyncio
async def test_the_screen_migrates_the_guest_back_from_b_to_a(pair, tmp_path):
    """The pool's app: guest3's row under lab-b, `g`, the target offered is a's link address, Enter checks, Enter
    migrates; guest3 then shows under lab-a, and the audit log has the move as b's."""
    place_guest(pair, "b")
    pool = make_pool(pair)
    audit = AuditLog(tmp_path / "audit.log")
    app = pool_app(pool, audit)

    async with app.run_test(size=(160, 50)) as pilot:
        try:
            await until(pilot, "the first refresh", lambda: app.polls_done > 0, 120)
            await refreshed_until(app, pilot, f"{GUEST} under {B}", lambda: shown_on(app, B))
            app.table.select(by_host(app.sample)[B][GUEST].key)
            assert app.table.selected.host == B and app.table.selected.name == GUEST
            await pilot.press("g")
            screen = app.screen
            assert type(screen).__name__ == "MigrateScreen"
            assert screen.query_one("#target").value == ADDRESS[A]  # the pool's other host, by its link address
            await pilot.press("enter")
            await until(pilot, "the pre-flight", lambda: screen.checked_target == ADDRESS[A], 180)
            checks = str(screen.query_one("#checks").render())
            print("pre-flight on the screen, b -> a:\n" + checks)
            assert screen.failures == 0 and pair.a.lab.hostname in checks, checks
            started = time.monotonic()
            await pilot.press("enter")
            await until(pilot, "the migration", lambda: screen.running or app.screen is app.main, 60)
            await until(pilot, "the migration", lambda: app.screen is app.main and not app.busy, MIGRATION_TIMEOUT)
            took = time.monotonic() - started
            record = audit.read()[-1]
            if record["result"] != "ok":  # Xen failed it under emulation: the guest must still run on b
                print(f"the screen's migration failed once: {record}")
                assert running(pair.b, GUEST), record
                await pilot.press("g")
                screen = app.screen
                await pilot.press("enter")
                await until(pilot, "the pre-flight", lambda: screen.checked_target == ADDRESS[A], 180)
                await pilot.press("enter")
                await until(pilot, "the migration", lambda: app.screen is app.main and not app.busy,
                            MIGRATION_TIMEOUT)
                record = audit.read()[-1]
            assert (record["host"], record["domain"], record["action"], record["result"]) == (
                B, GUEST, "migrate", "ok"), record
            await refreshed_until(app, pilot, f"{GUEST} under {A}", lambda: shown_on(app, A))
            print(f"the screen migrated {GUEST} b -> a in {took:.1f} s")
        finally:
            await pool.close()
    assert GUEST not in xl_list(pair.b) and running(pair.a, GUEST)
    answers_ping(pair.a, GUEST_IP)


@pytest.mark.asyncio
async def test_a_migration_whose_preflight_fails_on_the_screen_moves_nothing(pair, tmp_path):
    """b's memory taken by a big guest (created paused: it holds its memory and costs no CPU): the screen's
    pre-flight for guest3 from a to b fails on memory, Enter checks again and never starts, and guest3 keeps
    running on a; nothing arrives on b."""
    place_guest(pair, "a")
    free_mib = int(parse_xl_info(pair.b.ssh(["xl", "info"]).stdout)["free_memory"])
    big_mib = free_mib - 96  # leaves b less than guest3's 128 MiB
    pair.b.ssh(["sh", "-c", f"sed -e 's/^name = .*/name = \"{BIG}\"/' -e 's/^memory = .*/memory = {big_mib}/' "
                            f"-e 's/^maxmem = .*/maxmem = {big_mib}/' -e '/^vif\\|^disk/d' "
                            f"/etc/xen/guest2.cfg > /tmp/{BIG}.cfg && xl create -p /tmp/{BIG}.cfg"], timeout=300)
    pool = make_pool(pair)
    audit = AuditLog(tmp_path / "audit.log")
    app = pool_app(pool, audit)
    member, preflights = pool.member(A), []
    real_preflight = member.migrate_preflight

    async def counted_preflight(domain: str, target: str):  # the real one, counted
        preflights.append((domain, target))
        return await real_preflight(domain, target)

    member.migrate_preflight = counted_preflight
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            try:
                await refreshed_until(app, pilot, f"{GUEST} under {A}, {BIG} under {B}", lambda: shown_on(app, A)
                                      and BIG in by_host(app.sample)[B])
                app.table.select(by_host(app.sample)[A][GUEST].key)
                await pilot.press("g")
                screen = app.screen
                assert screen.query_one("#target").value == ADDRESS[B]
                await pilot.press("enter")
                await until(pilot, "the pre-flight", lambda: screen.checked_target == ADDRESS[B], 180)
                assert preflights == [(GUEST, ADDRESS[B])]
                checks = str(screen.query_one("#checks").render())
                print(f"pre-flight on the screen, a -> b with {BIG} ({big_mib} MiB) on b:\n{checks}")
                memory = next(line for line in checks.splitlines() if "memory" in line)
                assert screen.failures == 1 and "✗" in memory and f"{GUEST} needs 1" in memory, checks
                assert "1 check failed: Enter checks again" in str(screen.query_one("#status").render())
                await pilot.press("enter")  # again: the checks run again, nothing starts
                await until(pilot, "the second pre-flight", lambda: len(preflights) == 2
                            and screen.checked_target == ADDRESS[B], 180)
                assert screen.failures == 1 and not screen.running and not app.busy
                await pilot.press("escape")
                await until(pilot, "the dialog closed", lambda: app.screen is app.main, 10)
            finally:
                await pool.close()
        assert audit.read() == []  # no migration was started, so none was recorded
        assert running(pair.a, GUEST) and GUEST not in xl_list(pair.b)
        assert set(xl_list(pair.b)) == {"Domain-0", BIG}
    finally:
        pair.b.ssh(["xl", "destroy", BIG], check=False, timeout=120)


@pytest.mark.asyncio
async def test_evacuating_a_moves_the_guests_that_can_move_and_says_why_the_others_stay(pair, tmp_path):
    """`E` on a's host line: the plan moves guest3 (PVH) and guest4 (PVH, its disk on the storage both dom0s
    share) to b; guest1 and guest2 stay (PV: this Xen has no shadow paging to track their pages, and guest1's
    disk is in a's dom0 only), guest5 stays (PVH, its disk in a's dom0 only). Asked, then moved one by one: both
    run on b afterwards, under b on the screen, guest4 seeing its disk there; the audit log has both moves."""
    place_guest(pair, "a")
    for name in EVACUEES[1:] + STAYING_PVH:
        pair.b.ssh(["xl", "destroy", name], check=False, timeout=120)
    pair.a.lab.create_guests(["guest1", "guest2", *EVACUEES[1:], *STAYING_PVH])
    pool = make_pool(pair)
    audit = AuditLog(tmp_path / "audit.log")
    app = pool_app(pool, audit)

    def on_b(app) -> bool:
        return all(shown_on(app, B, name) for name in EVACUEES)

    async with app.run_test(size=(160, 50)) as pilot:
        try:
            await refreshed_until(app, pilot, f"{EVACUEES + STAYING_PVH} under {A}",
                                  lambda: all(shown_on(app, A, name) for name in EVACUEES + STAYING_PVH))
            for attempt in range(2):  # Xen fails a live migration now and then under emulation: once more
                app.table.select(host_key(A))
                await pilot.press("E")
                screen = app.screen
                assert type(screen).__name__ == "EvacuateScreen"
                assert screen.query_one("#target").value == ADDRESS[B]
                await pilot.press("enter")
                await until(pilot, "the plan", lambda screen=screen: screen.checked_target == ADDRESS[B], 600)
                rows = str(screen.query_one("#rows").render())
                print(f"the plan to empty {A}:\n{rows}")
                moving = {domain.name for domain in screen.movable}
                state = {domain.name: screen.state[domain.key] for domain in screen.domains}
                assert moving == {name for name in EVACUEES if name in state}, state
                if attempt == 0:
                    assert moving == set(EVACUEES), state
                    for name in ("guest1", "guest2"):
                        assert state[name].startswith("stays") and "dirty pages" in state[name], state
                    assert "disk xvda" in state["guest1"] and "missing on 10.98.0.2" in state["guest1"]
                    assert "dirty pages" not in state["guest5"], state
                    assert "/var/lib/xentui-lab/guest5-disk.img is missing on 10.98.0.2" in state["guest5"]
                    assert all(state[name] == f"→ {ADDRESS[B]} ✓" for name in EVACUEES), state
                started = time.monotonic()
                await pilot.press("enter")
                await until(pilot, "the question", lambda: type(app.screen).__name__ == "ConfirmScreen", 10)
                await pilot.press("y")
                await until(pilot, "the evacuation", lambda screen=screen: " moved, " in str(
                    screen.query_one(".problem").render()), MIGRATION_TIMEOUT * 2)
                summary = str(screen.query_one(".problem").render())
                print(f"evacuation {attempt + 1} took {time.monotonic() - started:.1f} s: {summary}\n"
                      + str(screen.query_one("#rows").render()))
                await pilot.press("escape")
                await until(pilot, "the dialog closed", lambda: app.screen is app.main and not app.busy, 30)
                await refreshed(pilot, app)
                if " 0 failed" in summary:
                    break
                lost = [name for name in EVACUEES if not (running(pair.a, name) or running(pair.b, name))]
                if lost:
                    # Seen once under emulation: "domain did not respond to suspend request" in time, and xl's
                    # resume at the sender then left the guest not running. That is Xen's, not the evacuation's:
                    # said here, the guest started again on a, and the evacuation tried once more.
                    print(f"not running on either host after the failed move: {lost}; "
                          f"a: {xl_list(pair.a)}; b: {xl_list(pair.b)}")
                    for name in lost:
                        for lab in (pair.a, pair.b):
                            lab.ssh(["xl", "destroy", name], check=False, timeout=120)
                    pair.a.lab.create_guests(lost)
                    await refreshed_until(app, pilot, f"{lost} under {A} again",
                                          lambda lost=lost: all(shown_on(app, A, name) for name in lost))
            await refreshed_until(app, pilot, f"{EVACUEES} under {B}", lambda: on_b(app))
            assert all(shown_on(app, A, name) for name in ("guest1", "guest2", *STAYING_PVH))
        finally:
            await pool.close()
    for name in EVACUEES:
        assert name not in xl_list(pair.a) and running(pair.b, name), name
    moves = [(r["host"], r["domain"], r["action"], r["result"], r["arguments"]["evacuate"]) for r in audit.read()]
    assert {move for move in moves if move[3] == "ok"} == {(A, name, "migrate", "ok", True) for name in EVACUEES}
    # guest4's disk is the same file on b: the guest sees it there (xvda, 32 MiB = 32768 blocks of 1 KiB)
    await console_says(pair.b, "guest4", "grep -c ' 32768 xvda$' /proc/partitions | sed s/^/disks-/",
                       b"disks-1")
    for name in EVACUEES:
        pair.b.ssh(["xl", "destroy", name], check=False, timeout=120)
    for name in STAYING_PVH:
        pair.a.ssh(["xl", "destroy", name], check=False, timeout=120)


@pytest.mark.asyncio
async def test_a_migration_stopped_while_memory_is_sent_leaves_the_guest_running_on_its_source(pair):
    """The operator's Stop (the dialog cancels the worker, which closes `migrate()`) while guest3's memory is on
    its way to b, over ssh: xl migrate in dom0 a ends with the connection, b drops what it had received, and
    guest3 runs on a as before."""
    place_guest(pair, "a")
    pool = make_pool(pair)
    try:
        sample = await sample_until(pool, f"{GUEST} on {A} only", only_on(A))
        member = pool.for_domain(by_host(sample)[A][GUEST])
        events: list[MigrateProgress] = []
        async with contextlib.aclosing(member.migrate(GUEST, pool.address_of(B))) as moving:
            async for event in moving:
                events.append(event)
                if event.message.startswith("sending memory: "):
                    break  # Stop, with pages on the wire
        stopped = time.monotonic()
        assert events[-1].message.startswith("sending memory: "), events

        def back_to_before() -> bool:
            listed = xl_list(pair.b)
            return running(pair.a, GUEST) and not any(name.startswith(GUEST) for name in listed)

        wait_for("guest3 running on a alone, nothing of it on b", back_to_before, timeout=120, every=2)
        print(f"stopped at {events[-1].fraction:.2f} ({events[-1].message}); back as before "
              f"{time.monotonic() - stopped:.1f} s later: a {sorted(xl_list(pair.a))}, b {sorted(xl_list(pair.b))}")
        assert not pair.a.ssh(["pgrep", "-f", "xl migrate"], check=False).stdout.strip()
        await console_answers(pair.a, GUEST)
    finally:
        await pool.close()


@pytest.mark.asyncio
async def test_a_host_that_dies_is_down_while_the_other_refreshes_and_comes_back(pair):
    """b's QEMU stopped: within seconds the pool calls b down (its error, since when) while a's figures keep
    coming; b booted again on the same ssh port comes back in the same pool, nothing restarted."""
    # b's refusal says it is down, not the timeout: the timeout is for a, whose dom0 b's emulated boot slows down
    # on this machine's two CPUs (once past 15 s, with other work running beside)
    pool = make_pool(pair, timeout=30.0)
    await pool.set_poll_interval(1.0)  # the back-off starts at the refresh period: 1, 2, 4 ... s

    def status(sample: Sample, label: str):
        return next(s for s in sample.hosts if s.label == label)

    async def refreshes_of_a(until: Callable[[], bool]) -> tuple[int, float]:
        """Sample the pool every second until UNTIL: how many new figures a gave, and over how long."""
        started, count, last = time.monotonic(), 0, None
        while not until():
            sample = await pool.sample()
            assert status(sample, A).error is None
            if status(sample, A).last_seen != last:
                count, last = count + 1, status(sample, A).last_seen
            await asyncio.sleep(1.0)
        return max(count - 1, 0), time.monotonic() - started  # the first one seen is not a refresh

    try:
        await sample_until(pool, "both hosts answer", both_up)
        deadline = time.monotonic() + 15
        before, before_for = await refreshes_of_a(lambda: time.monotonic() > deadline)
        port = pair.b.port
        pair.stop_b()
        stopped = time.monotonic()

        def b_down(sample: Sample) -> bool:
            return status(sample, B).error is not None

        sample = await sample_until(pool, f"{B} said down", b_down, within=60)
        down_after = time.monotonic() - stopped
        down = status(sample, B)
        assert down.failing_since is not None and down.last_seen is not None and down.host is not None
        assert status(sample, A).error is None
        print(f"{B} down after {down_after:.1f} s: {down.error}")

        booting = asyncio.ensure_future(asyncio.to_thread(pair.boot_b_again, port))
        during, during_for = await refreshes_of_a(booting.done)  # a refreshes all along, b down and booting
        boot_took = await booting
        assert during >= 5, during
        sample = await sample_until(pool, f"{B} back", both_up, within=180)
        back_after = time.monotonic() - stopped
        assert {domain.name for domain in sample.domains if domain.host == B} == set(xl_list(pair.b))
        # the machine's two CPUs run both labs' emulation: b's boot slows a's dom0 itself, not the pool
        print(f"{B} down in {down_after:.1f} s; a refreshed every {before_for / max(before, 1):.1f} s before, "
              f"every {during_for / max(during, 1):.1f} s while b was down and booting ({boot_took:.1f} s); "
              f"b back in the pool {back_after:.1f} s after it stopped")
    finally:
        await pool.close()
