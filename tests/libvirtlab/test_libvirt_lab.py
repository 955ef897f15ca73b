"""The libvirt backend against a real libvirtd and real QEMU guests (TCG): what the test driver cannot show.

Stats that move, the serial console, SysRq, vCPU hotplug, the balloon, pause, save/restore, shutdown,
destroy, events from another client, and libvirtd killed and started again under a running backend.
Everything is checked from both sides where it can be: what libvirt reports and what the guest sees.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
import pytest_asyncio

from xentui.backends.base import MigratePhase
from xentui.errors import BackendUnavailable, InvalidArgument
from xentui.model import UNKNOWN_NET, DomainState, DomainType, compute_rates

from .conftest import LAB_URI, LabGuest

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh)")

from xentui.backends.libvirt import LibvirtBackend  # noqa: E402

pytestmark = [pytest.mark.libvirtlab, pytest.mark.asyncio]

MIB = 1024


@pytest_asyncio.fixture
async def backend():
    backend = LibvirtBackend(LAB_URI, backoff=(0.2, 1.0))
    yield backend
    await backend.close()


async def find(backend: LibvirtBackend, guest: LabGuest):
    for domain in (await backend.sample()).domains:
        if domain.uuid == guest.uuid:
            return domain
    return None


async def eventually(check, *, within: float = 60.0, every: float = 0.25):
    """Await ``check()`` until it returns something true; that value. Deadlines, not timing assertions."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {within:.0f}s")
        await asyncio.sleep(every)


async def read_until(console, pattern: bytes, *, within: float = 30.0) -> re.Match[bytes]:
    """Read the console until ``pattern`` (a regex) matches what came; the match."""
    seen = b""

    async def loop() -> re.Match[bytes]:
        nonlocal seen
        while True:
            match = re.search(pattern, seen)
            if match:
                return match
            chunk = await console.read()
            if not chunk:
                raise AssertionError(f"the console closed; it said: {seen[-500:]!r}")
            seen += chunk

    try:
        return await asyncio.wait_for(loop(), within)
    except TimeoutError:
        raise AssertionError(f"{pattern!r} not on the console after {within:.0f}s; it said: {seen[-800:]!r}") from None


async def run(console, command: str, answer: bytes, *, within: float = 30.0) -> re.Match[bytes]:
    await console.write(command.encode() + b"\r")
    return await read_until(console, answer, within=within)


async def guest_memtotal_kib(console) -> int:
    # the markers make the answer differ from the echo of the command
    match = await run(console, "awk '/MemTotal/ {print \"MT=\" $2 \"=MT\"}' /proc/meminfo", rb"MT=(\d+)=MT")
    return int(match.group(1))


# --- reading --------------------------------------------------------------------------------------


async def test_stats_move_and_what_the_driver_lacks_is_unknown(backend, lab_guest):
    first = await eventually(lambda: find(backend, lab_guest))
    assert first.type is DomainType.HVM
    assert first.state is DomainState.RUNNING
    assert (first.mem_kib, first.maxmem_kib) == (256 * MIB, 256 * MIB)
    assert (first.vcpus_online, first.vcpus_total) == (1, 2)
    assert [vbd.device for vbd in first.vbds] == ["vda"] and not first.vbds[0].error
    assert first.vbds[0].rd_reqs > 0  # the kernel probed the disk
    user_nic, tap_nic = first.vifs
    assert tap_nic.ifname.startswith("vnet") and tap_nic.mac.startswith("52:54:00")
    assert user_nic.ifname == "-"  # user-mode networking has no host device: libvirt gives no counters
    assert UNKNOWN_NET in first.unknown  # so they are unknown, not zero
    sample1 = await backend.sample()

    async def grown():
        sample2 = await backend.sample()
        domain = next(d for d in sample2.domains if d.uuid == lab_guest.uuid)
        return (sample2, domain) if domain.cpu_ns > first.cpu_ns else None

    sample2, later = await eventually(grown)
    assert later.vcpus[0].cpu_ns > 0  # vcpu.0.time, in ns
    rates = compute_rates(sample1, sample2)
    assert rates[later.key].cpu_pct >= 0
    assert sample2.host.hypervisor == "QEMU" and sample2.host.nr_cpus >= 1 and sample2.host.total_kib > 0


async def test_a_pause_elsewhere_wakes_the_watcher(backend, lab_guest):
    woken = asyncio.Event()
    backend.watch_changes(woken.set)
    await backend.sample()  # connected, events subscribed
    other = libvirt.open(LAB_URI)  # as `virsh suspend` would, from another client
    try:
        dom = other.lookupByUUIDString(lab_guest.uuid)
        await asyncio.to_thread(dom.suspend)
        await asyncio.wait_for(woken.wait(), 30)
        assert (await find(backend, lab_guest)).state is DomainState.PAUSED
        woken.clear()
        await asyncio.to_thread(dom.resume)
        await asyncio.wait_for(woken.wait(), 30)
        assert (await find(backend, lab_guest)).state is DomainState.RUNNING
    finally:
        other.close()


# --- the console, sysrq ---------------------------------------------------------------------------


async def test_the_console_answers_a_typed_command_and_sysrq(backend, lab_guest):
    console = await backend.open_console(lab_guest.name)
    try:
        await run(console, "echo xentui-$((6*7))-ok", rb"xentui-42-ok")
        await backend.sysrq(lab_guest.name, "h")  # Alt+SysRq+H on the guest's keyboard
        await read_until(console, rb"sysrq: HELP")
        await run(console, "echo after-sysrq-$((1+1))", rb"after-sysrq-2")
    finally:
        await console.close()
    assert await console.read() == b""


async def test_a_second_console_is_refused_while_one_is_open(backend, lab_guest):
    from xentui.errors import ConsoleBusy

    console = await backend.open_console(lab_guest.name)
    try:
        with pytest.raises(ConsoleBusy, match="already in use"):
            await backend.open_console(lab_guest.name)
    finally:
        await console.close()


# --- vCPUs, memory --------------------------------------------------------------------------------


async def test_vcpu_set_live_one_to_two(backend, lab_guest):
    with pytest.raises(InvalidArgument, match="at most 2"):
        await backend.vcpu_set(lab_guest.name, 3, allow_overcommit=True)
    await backend.vcpu_set(lab_guest.name, 2, allow_overcommit=True)  # the lab host may have fewer CPUs
    domain = await find(backend, lab_guest)
    assert (domain.vcpus_online, domain.vcpus_total) == (2, 2)
    console = await backend.open_console(lab_guest.name)
    try:  # the guest sees the new CPU (busybox has no udev to online it: present is what changed)
        await run(console, "echo CPUS=$(cat /sys/devices/system/cpu/present)=", rb"CPUS=0-1=")
    finally:
        await console.close()


async def test_balloon_mem_set_changes_the_guests_memory(backend, lab_guest):
    console = await backend.open_console(lab_guest.name)
    try:
        before = await guest_memtotal_kib(console)
        with pytest.raises(InvalidArgument, match="raise maxmem first"):
            await backend.mem_set(lab_guest.name, 512 * MIB)
        await backend.mem_set(lab_guest.name, 192 * MIB)

        async def ballooned():
            domain = await find(backend, lab_guest)
            return domain.mem_kib == 192 * MIB

        await eventually(ballooned)

        async def guest_shrank():
            return await guest_memtotal_kib(console) <= before - 48 * MIB

        await eventually(guest_shrank)
        await backend.mem_set(lab_guest.name, 256 * MIB)

        async def guest_grew():
            return await guest_memtotal_kib(console) >= before - 8 * MIB

        await eventually(guest_grew)
    finally:
        await console.close()


# --- pause, save/restore ----------------------------------------------------------------------------


async def test_pause_and_resume(backend, lab_guest):
    await backend.pause(lab_guest.name)
    assert (await find(backend, lab_guest)).state is DomainState.PAUSED
    with pytest.raises(InvalidArgument, match="already paused"):
        await backend.pause(lab_guest.name)
    await backend.unpause(lab_guest.name)
    assert (await find(backend, lab_guest)).state is DomainState.RUNNING


async def test_save_and_restore(backend, lab_guest, tmp_path):
    path = tmp_path / "guest.save"
    await backend.save(lab_guest.name, path)
    assert path.stat().st_size > 0
    assert await find(backend, lab_guest) is None
    assert await backend.restore(path) == lab_guest.name
    restored = await find(backend, lab_guest)
    assert restored.state is DomainState.RUNNING
    console = await backend.open_console(lab_guest.name)
    try:  # the same guest, its shell still there
        await run(console, "echo back-$((40+2))", rb"back-42")
    finally:
        await console.close()


# --- libvirtd dies ----------------------------------------------------------------------------------


def _libvirtd_pid() -> int | None:
    try:
        pid = int(Path("/run/libvirtd.pid").read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


async def test_libvirtd_killed_and_restarted_under_a_running_backend(backend, lab_guest):
    pid = _libvirtd_pid()
    if pid is None:
        pytest.skip("libvirtd was not started by tests/libvirtlab/setup.sh (no /run/libvirtd.pid)")
    assert await find(backend, lab_guest) is not None
    os.kill(pid, signal.SIGTERM)
    try:
        async def gone():
            return _libvirtd_pid() is None

        await eventually(gone, within=30)
        with pytest.raises(BackendUnavailable):
            await backend.sample()
        with pytest.raises(BackendUnavailable):  # and again: no crash, no hang, the same clear error
            await backend.sample()
    finally:
        restart = await asyncio.create_subprocess_exec("libvirtd", "-d")
        assert await restart.wait() == 0

    async def back():
        try:
            return await find(backend, lab_guest)
        except BackendUnavailable:
            return None

    domain = await eventually(back, within=60)
    assert domain.state is DomainState.RUNNING  # QEMU ran on while libvirtd was away
    console = await backend.open_console(lab_guest.name)
    try:
        await run(console, "echo still-$((2*21))", rb"still-42")
    finally:
        await console.close()


# --- the end of a guest -----------------------------------------------------------------------------


async def test_shutdown_powers_the_guest_off(backend, fresh_guest):
    guest = fresh_guest()
    await backend.shutdown(guest.name)  # the ACPI power button; the guest's acpid powers off

    async def gone():
        return await find(backend, guest) is None

    await eventually(gone)
    assert "reboot: Power down" in guest.log_text()


async def test_destroy(backend, fresh_guest):
    guest = fresh_guest()
    await backend.destroy(guest.name)
    assert await find(backend, guest) is None


# --- migration between two libvirtd on this machine --------------------------------------------------


async def test_live_migration_to_a_second_libvirtd_with_progress(lab, second_libvirtd):
    guest = lab.start(disk=False)  # a local disk is "unsafe" to migrate: libvirt wants shared storage
    source = LibvirtBackend(LAB_URI, migrate_data_uri="tcp://127.0.0.1",
                            migrate_params={libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 4})  # MiB/s: progress to see
    target = LibvirtBackend(second_libvirtd)
    try:
        checks = {check.name: check for check in await source.migrate_preflight(guest.name, second_libvirtd)}
        assert checks["reachable"].ok and checks["hypervisor version"].ok and checks["free memory"].ok
        assert checks["CPU"].ok and checks["storage"].ok and checks["name"].ok
        assert "another host" not in checks  # its own host UUID
        events = [event async for event in source.migrate(guest.name, second_libvirtd)]
        phases = [event.phase for event in events]
        assert phases[0] is MigratePhase.PREFLIGHT and phases[-1] is MigratePhase.DONE
        assert MigratePhase.COPYING in phases or MigratePhase.STOP_AND_COPY in phases
        fractions = [event.fraction for event in events]
        assert fractions == sorted(fractions) or fractions[-1] == 1.0
        assert await find(source, guest) is None
        moved = await find(target, guest)
        assert moved is not None and moved.state is DomainState.RUNNING
        console = await target.open_console(guest.name)
        try:  # the same guest, running there
            await run(console, "echo moved-$((40+2))", rb"moved-42")
        finally:
            await console.close()
        await target.destroy(guest.name)
    finally:
        await source.close()
        await target.close()


async def test_closing_a_migration_aborts_it_and_the_guest_stays(lab, second_libvirtd):
    guest = lab.start(disk=False, memory_mib=512)
    source = LibvirtBackend(LAB_URI, migrate_data_uri="tcp://127.0.0.1",
                            migrate_params={libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 1})  # 1 MiB/s: still running
    target = LibvirtBackend(second_libvirtd)
    try:
        console = await source.open_console(guest.name)  # dirty the guest's memory so there is work left
        await run(console, "dd if=/dev/urandom of=/tmp/fill bs=1M count=64 2>/dev/null; echo FILL-$((1+1))",
                  rb"FILL-2", within=120)
        await console.close()
        progress = source.migrate(guest.name, second_libvirtd)
        async for event in progress:
            if event.phase is MigratePhase.COPYING:
                break
        else:
            pytest.fail("the migration ended before any progress came")
        await progress.aclose()  # the operator pressed Stop
        domain = await find(source, guest)
        assert domain is not None and domain.state is DomainState.RUNNING
        assert await find(target, guest) is None
        console = await source.open_console(guest.name)
        try:
            await run(console, "echo stayed-$((40+2))", rb"stayed-42")
        finally:
            await console.close()
    finally:
        await source.close()
        await target.close()
