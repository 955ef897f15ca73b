"""The lab's two libvirtd daemons as one pool, built as ``xentui -c qemu:///system -c <second daemon's URI>`` builds
it: both hosts in one sample (each host's domains what that daemon lists), then a guest live-migrated from the first
daemon to the second by the screen itself (its row under the first host, `g`, the second daemon offered as the
target, Enter checks, Enter migrates); the guest then shows under the second host, libvirt lists it running there
and not on the first, and the audit log has the move as the first host's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.ui.helpers import refreshed, until
from xentui.audit import AuditLog
from xentui.backends.pool import PoolBackend
from xentui.cli import build_parser, make_backend
from xentui.model import Domain, DomainState, Sample

from .conftest import LAB_URI, LabGuest

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh)")

pytestmark = pytest.mark.libvirtlab

POOL_TIMEOUT = 120.0  # a loaded machine: libvirt's first connection and a sample may take a while
MIGRATION_TIMEOUT = 300.0


def make_pool(second_uri: str) -> PoolBackend:
    """The pool the command line makes of two -c options."""
    pool = make_backend(build_parser().parse_args(["-c", LAB_URI, "-c", second_uri]))
    assert isinstance(pool, PoolBackend), pool
    return pool


def by_host(sample: Sample) -> dict[str, dict[str, Domain]]:
    """Each host's domains in the sample, by UUID."""
    hosts: dict[str, dict[str, Domain]] = {status.label: {} for status in sample.hosts}
    for domain in sample.domains:
        hosts[domain.host][domain.uuid] = domain
    return hosts


def both_up(sample: Sample) -> bool:
    return len(sample.hosts) == 2 and all(status.error is None and status.host is not None
                                          for status in sample.hosts)


def running_uuids(uri: str, *, running: bool = False) -> set[str]:
    """What that daemon lists active (``running``: running, not paused), asked through libvirt-python directly."""
    flags = libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING if running else libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE
    conn = libvirt.openReadOnly(uri)
    try:
        return {dom.UUIDString() for dom in conn.listAllDomains(flags)}
    finally:
        conn.close()


def remove_everywhere(guest: LabGuest, uris: list[str]) -> None:
    """The guest destroyed (and undefined, were it made persistent) on every daemon it may be on."""
    for uri in uris:
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError:
            continue
        try:
            with contextlib.suppress(libvirt.libvirtError):
                dom = conn.lookupByUUIDString(guest.uuid)
                with contextlib.suppress(libvirt.libvirtError):
                    dom.destroy()
                with contextlib.suppress(libvirt.libvirtError):
                    dom.undefine()
        finally:
            conn.close()


def test_a_libvirt_hosts_migration_target_is_its_uri_not_its_label():
    """No daemon needed: the pool's members connect at their first sample, their addresses are known at once."""
    pool = make_pool("qemu+ssh://root@kvm2/system")
    assert pool.labels == ["qemu:system", "kvm2:system"]
    assert [pool.address_of(label) for label in pool.labels] == [LAB_URI, "qemu+ssh://root@kvm2/system"]


@pytest.mark.asyncio
async def test_the_pool_of_two_libvirtds_shows_each_hosts_own_domains(lab, second_libvirtd):
    guest = lab.start(disk=False)
    pool = make_pool(second_libvirtd)
    first, second = pool.labels
    uris = {first: LAB_URI, second: second_libvirtd}
    try:
        deadline = time.monotonic() + POOL_TIMEOUT
        while True:  # other tests may start or stop guests meanwhile: compare when libvirt's lists hold still
            before = {label: await asyncio.to_thread(running_uuids, uri) for label, uri in uris.items()}
            sample = await pool.sample()
            after = {label: await asyncio.to_thread(running_uuids, uri) for label, uri in uris.items()}
            if both_up(sample) and before == after:
                shown = {label: set(domains) for label, domains in by_host(sample).items()}
                if shown == after:
                    break
            assert time.monotonic() < deadline, (
                f"the pool's sample never matched what each daemon lists: {sample.hosts}; shown "
                f"{ {label: sorted(d) for label, d in by_host(sample).items()} }, libvirt {after}")
            await asyncio.sleep(1.0)
        print(f"\npool hosts: {[(status.label, status.host.hostname) for status in sample.hosts]}; "
              f"domains: { {label: len(domains) for label, domains in shown.items()} }")
        assert [status.backend for status in sample.hosts] == ["libvirt", "libvirt"]
        assert guest.uuid in shown[first] and guest.uuid not in shown[second]
        assert by_host(sample)[first][guest.uuid].name == guest.name
    finally:
        await pool.close()


@pytest.mark.asyncio
async def test_the_pool_view_migrates_a_guest_from_the_first_libvirtd_to_the_second(lab, second_libvirtd, tmp_path):
    from xentui.ui.app import StartOptions, XentuiApp

    guest = lab.start(disk=False)  # a local disk is "unsafe" to migrate: libvirt wants shared storage
    pool = make_pool(second_libvirtd)
    first, second = pool.labels
    audit = AuditLog(tmp_path / "audit.log")
    app = XentuiApp(pool, StartOptions(delay=3600.0, theme="xentui-dark", audit=audit))

    def shown_on(label: str) -> bool:
        if app.sample is None or not both_up(app.sample):
            return False
        hosts = by_host(app.sample)
        other = second if label == first else first
        return guest.uuid in hosts[label] and guest.uuid not in hosts[other]

    try:
        async with app.run_test(size=(160, 50)) as pilot:
            try:
                await until(pilot, "the first refresh", lambda: app.polls_done > 0, POOL_TIMEOUT)
                for _ in range(60):
                    if shown_on(first):
                        break
                    await refreshed(pilot, app, POOL_TIMEOUT)
                assert shown_on(first), app.sample.hosts
                assert app.table.select(by_host(app.sample)[first][guest.uuid].key)
                assert app.table.selected.host == first and app.table.selected.name == guest.name
                await pilot.press("g")
                screen = app.screen
                assert type(screen).__name__ == "MigrateScreen"
                offered = screen.query_one("#target").value
                print(f"\nthe migrate dialog offers {offered!r} for {second!r}")
                assert offered == second_libvirtd  # the other daemon's URI: what libvirt's migrate takes
                await pilot.press("enter")  # the pre-flight
                await until(pilot, "the pre-flight", lambda: screen.checked_target == second_libvirtd, 180)
                checks = str(screen.query_one("#checks").render())
                print("pre-flight on the screen:\n" + checks)
                assert screen.failures == 0, checks
                started = time.monotonic()
                await pilot.press("enter")  # the migration
                await until(pilot, "the migration", lambda: screen.running or app.screen is app.main, 60)
                await until(pilot, "the migration", lambda: app.screen is app.main and not app.busy,
                            MIGRATION_TIMEOUT)
                took = time.monotonic() - started
                record = audit.read()[-1]
                assert (record["host"], record["domain"], record["action"], record["result"]) == (
                    first, guest.name, "migrate", "ok"), record
                assert record["arguments"]["target"] == second_libvirtd, record
                for _ in range(60):
                    await refreshed(pilot, app, POOL_TIMEOUT)
                    if shown_on(second):
                        break
                assert shown_on(second), {label: sorted(d) for label, d in by_host(app.sample).items()}
                assert by_host(app.sample)[second][guest.uuid].state in (DomainState.RUNNING, DomainState.BLOCKED)
                print(f"the screen migrated {guest.name} {first} -> {second} in {took:.1f} s")
            finally:
                await pool.close()
        assert guest.uuid in running_uuids(second_libvirtd, running=True)
        assert guest.uuid not in running_uuids(LAB_URI)
    finally:
        remove_everywhere(guest, [LAB_URI, second_libvirtd])
