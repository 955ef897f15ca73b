"""The libvirt backend against libvirt's own test driver: a real libvirt library and driver, no daemon.

The node file tests/fixtures/libvirt-testnode.xml holds 36 domains in every state libvirt has,
with odd names. The test driver answers getAllDomainStats with the state group only, so every
other figure comes through the per-domain fallback calls, as on a driver without bulk stats.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_asyncio

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh)")

from tests.rates_paths import assert_same_rates, without_columns  # noqa: E402
from xentui.backends.base import Action, MigratePhase  # noqa: E402
from xentui.backends.libvirt import LibvirtBackend  # noqa: E402
from xentui.errors import (  # noqa: E402
    BackendUnavailable,
    DomainNotFound,
    InvalidArgument,
    ReadOnlyError,
    Unsupported,
)
from xentui.model import DomainFlag, DomainState, DomainType, compute_rates  # noqa: E402

pytestmark = pytest.mark.asyncio

NODE = Path(__file__).parent / "fixtures" / "libvirt-testnode.xml"
URI = f"test://{NODE.resolve()}"
GIB = 1024 * 1024
MARKUP = "[red]x [bold]y"


@pytest_asyncio.fixture
async def backend():
    backend = LibvirtBackend(URI)
    yield backend
    await backend.close()


async def domains(backend: LibvirtBackend) -> dict:
    return {d.name: d for d in (await backend.sample()).domains}


# --- reading ------------------------------------------------------------------------------------


async def test_every_running_domain_with_its_state_and_odd_names(backend):
    found = await domains(backend)
    assert len(found) == 35  # 36 defined, stopped-vm is shut off: not a running domain, as in xentop
    assert "stopped-vm" not in found
    assert {MARKUP, "build runner 7", "ünïcødé-vm", "analytics-warehouse-reporting-cluster-node-03"} <= set(found)
    assert found["web-frontend-01"].state is DomainState.RUNNING
    assert found["build runner 7"].state is DomainState.BLOCKED
    assert found["paused-vm"].state is DomainState.PAUSED
    assert found["suspended-vm"].state is DomainState.PAUSED  # pmsuspended: asleep in the guest
    assert found["shutting-down-vm"].state is DomainState.SHUTDOWN
    assert found["crashed-vm"].flags == DomainFlag.SHUTDOWN | DomainFlag.CRASHED
    assert found["crashed-vm"].state is DomainState.CRASHED
    assert len({d.uuid for d in found.values()}) == 35


async def test_domain_xml_gives_type_devices_memory_and_vcpus(backend):
    found = await domains(backend)
    db = found["db-primary"]
    assert db.type is DomainType.HVM
    assert found["web-frontend-01"].type is DomainType.PV  # <os><type>xen</type>
    assert (db.mem_kib, db.maxmem_kib) == (8 * GIB, 12 * GIB)
    assert (db.vcpus_online, db.vcpus_total) == (4, 8)
    assert [vif.mac for vif in db.vifs] == ["52:54:00:00:00:02", "52:54:00:00:00:03"]
    assert [vif.bridge for vif in db.vifs] == ["br0", "br1"]
    assert [vbd.device for vbd in db.vbds] == ["vda", "vdb"]
    assert db.vbds[0].path == "/var/lib/libvirt/images/db-primary-0.img"
    web = found["web-frontend-01"]
    assert web.vbds[0].devid == 51712  # xvda: the number xentop prints
    assert found["no-devices"].vifs == [] and found["no-devices"].vbds == []


async def test_stats_the_bulk_call_lacks_come_from_per_domain_calls(backend):
    """The test driver's bulk stats carry only the state: CPU, memory, vCPUs, vifs and vbds are still there."""
    conn = libvirt.open(URI)
    try:
        bulk = dict(conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_CPU_TOTAL, 0)[0:1])
        assert not any(key.startswith("cpu.") for stats in bulk.values() for key in stats)
    finally:
        conn.close()
    db = (await domains(backend))["db-primary"]
    assert db.unknown == frozenset()
    assert db.cpu_ns > 0
    assert all(vcpu.cpu_ns > 0 for vcpu in db.vcpus if vcpu.online)
    assert all(vif.rx_bytes > 0 and vif.tx_packets > 0 for vif in db.vifs)
    assert all(vbd.rd_reqs > 0 and not vbd.error for vbd in db.vbds)
    assert db.sched_weight == 50  # the test driver's fair scheduler


async def test_two_samples_make_rates_and_the_host(backend):
    first = await backend.sample()
    second = await backend.sample()
    assert second.monotonic > first.monotonic
    host = second.host
    assert (host.hypervisor, host.nr_cpus, host.cpu_mhz, host.total_kib) == ("TEST", 16, 2400, 64 * GIB)
    assert (await backend.host_info()).nr_cpus == 16


async def test_the_refresh_reads_columns_that_give_the_records_rates(backend):
    """The table sorts by the sample's columns and draws from the records: both give the same figures."""
    first = await backend.sample()
    await asyncio.sleep(0.01)
    second = await backend.sample()
    assert second.columns is not None
    assert list(second.columns.keys) == [domain.key for domain in second.domains]
    assert list(second.columns.cpu_ns) == [domain.cpu_ns for domain in second.domains]
    assert list(second.columns.net_rx_bytes) == [domain.net_rx_bytes for domain in second.domains]
    assert list(second.columns.mem_kib) == [domain.mem_kib for domain in second.domains]
    assert_same_rates(compute_rates(first, second),
                      compute_rates(without_columns(first), without_columns(second)), second.keys())


def calls_to(monkeypatch, *names: str, on: type | None = None) -> list[str]:
    """The names of these methods of ``on`` (virDomain's unless said), each time one is called (the call itself
    still made)."""
    owner = libvirt.virDomain if on is None else on
    asked: list[str] = []
    for name in names:
        original = getattr(owner, name)
        monkeypatch.setattr(owner, name,
                            lambda self, *args, _name=name, _original=original: (asked.append(_name),
                                                                                   _original(self, *args))[1])
    return asked


async def test_the_domain_xml_is_read_once_per_domain_until_it_changes(backend, monkeypatch):
    """A refresh asks each domain for its id only; its XML, uuid and name are read again after a change."""
    await backend.sample()
    asked = calls_to(monkeypatch, "XMLDesc", "UUIDString", "name")
    for _ in range(3):
        await backend.sample()
    assert asked == []
    await backend.vcpu_set("db-primary", 2)  # an action that changes the XML: read again, for that domain only
    asked.clear()
    await backend.sample()
    assert asked.count("XMLDesc") == 1


async def test_the_first_refresh_parses_every_domains_xml_in_one_pass_and_shows_what_one_by_one_shows(
        backend, monkeypatch):
    """The screen's first frame waits for the first refresh, which meets every domain at once: their XML goes
    through one parser (a count, whatever the number of domains), and the domains come out as parsed one by one."""
    import xentui.backends.libvirt.stats as stats_module

    batches: list[int] = []
    singles: list[str] = []
    batch, single = stats_module.parse_domain_xmls, stats_module.parse_domain_xml
    monkeypatch.setattr(stats_module, "parse_domain_xmls", lambda xmls: (batches.append(len(xmls)), batch(xmls))[1])
    monkeypatch.setattr(stats_module, "parse_domain_xml", lambda xml: (singles.append(xml), single(xml))[1])
    first = {d.name: d for d in (await backend.sample()).domains}
    assert len(batches) == 1 and batches[0] == len(first) > 1 and singles == []
    assert backend._parsed_ahead == {}  # nothing kept past the refresh: a later change is read anew
    monkeypatch.setattr(stats_module, "parse_domain_xmls", lambda xmls: [ValueError("not parsed ahead")] * len(xmls))
    one_by_one = LibvirtBackend(URI)
    try:
        alone = {d.name: d for d in (await one_by_one.sample()).domains}
        assert len(singles) == len(first) and alone.keys() == first.keys()
        assert {uuid: known.config for uuid, known in backend._configs.items()} == {
            uuid: known.config for uuid, known in one_by_one._configs.items()}
    finally:
        await one_by_one.close()
    assert [(d.type, d.mem_ceiling_kib, d.vcpus_max, len(d.vifs), len(d.vbds)) for d in first.values()] == [
        (d.type, d.mem_ceiling_kib, d.vcpus_max, len(d.vifs), len(d.vbds)) for d in alone.values()]
    batches.clear()
    await backend.sample()
    assert batches == []  # later refreshes know their domains


async def test_out_of_focus_the_per_device_calls_are_not_made_and_their_figures_are_unknown(backend, monkeypatch):
    """The test driver's records lack devices: per-device calls only for the domains looked at. A domain coming
    into focus gets rates from its second read on, never a jump from the zeros it had."""
    first = await backend.sample()
    db = first.domain(next(d.key for d in first.domains if d.name == "db-primary"))
    asked = calls_to(monkeypatch, "interfaceStats", "blockStats", "vcpus")
    backend.focus([db.key])
    out_of_focus = await backend.sample()
    # db-primary's, and no other domain's
    assert sorted(asked) == sorted(["vcpus"] + ["interfaceStats"] * len(db.vifs) + ["blockStats"] * len(db.vbds))
    web = next(d for d in out_of_focus.domains if d.name == "web-frontend-01")
    assert web.vifs and all(vif.error for vif in web.vifs) and all(vbd.error for vbd in web.vbds)
    assert {"net", "vbd", "vcpu_times"} <= web.unknown and web.cpu_ns > 0  # CPU from info(): still read
    assert not out_of_focus.domain(db.key).unknown
    backend.focus(None)
    await asyncio.sleep(0.01)
    back = await backend.sample()
    rates = compute_rates(out_of_focus, back)
    entering = rates[web.key]
    assert entering.net_rx_bytes_s == entering.net_tx_bytes_s == entering.vbd_rd_reqs_s == 0
    assert entering.vcpu_pct == {} and entering.cpu_pct >= 0
    assert_same_rates(rates, compute_rates(without_columns(out_of_focus), without_columns(back)), back.keys())


async def test_each_refresh_makes_the_same_calls_per_domain_and_per_device_and_no_more(backend, monkeypatch):
    """The test driver's records carry the state only: once its domains are listed by id instead, a refresh asks
    each domain for info() and vcpus(), and each named device for its counters, refresh after refresh; what is
    kept (the domain object, XML, uuid, name, scheduler) is not asked again."""
    for _ in range(4):  # the bulk call three times, then the listing (see the test below)
        first = await backend.sample()
    asked = calls_to(monkeypatch, "ID", "info", "vcpus", "interfaceStats", "blockStats", "XMLDesc", "UUIDString",
                     "name", "schedulerType", "schedulerParameters", "state", "isActive", "memoryStats")
    refreshes = 3
    for _ in range(refreshes):
        await backend.sample()
    domains = len(first.domains)
    vifs = sum(1 for d in first.domains for vif in d.vifs if vif.ifname != "-" or vif.mac)
    vbds = sum(1 for d in first.domains for vbd in d.vbds if vbd.device)
    assert vifs and vbds
    expected = {"info": domains, "vcpus": domains, "interfaceStats": vifs, "blockStats": vbds}
    assert {name: asked.count(name) for name in set(asked)} == {name: n * refreshes for name, n in expected.items()}


async def test_per_vcpu_times_are_read_only_for_the_domains_whose_vcpus_are_looked_at(backend, monkeypatch):
    """The screen asks for the selected domain's vCPUs only: vcpus() for it alone, the devices of all; the others
    keep their vCPU counts (from info()) and say their per-vCPU times are unknown."""
    first = await backend.sample()
    db = next(d for d in first.domains if d.name == "db-primary")
    asked = calls_to(monkeypatch, "vcpus", "interfaceStats", "info")
    backend.focus(None, [db.key])
    sample = await backend.sample()
    assert asked.count("vcpus") == 1 and asked.count("info") == len(first.domains)
    assert asked.count("interfaceStats") == sum(len(d.vifs) for d in first.domains if d.vifs)
    assert sample.domain(db.key).unknown == frozenset()
    assert all(vcpu.cpu_ns > 0 for vcpu in sample.domain(db.key).vcpus if vcpu.online)
    for before in first.domains:
        after = sample.domain(before.key)
        assert (after.vcpus_online, after.vcpus_total) == (before.vcpus_online, before.vcpus_total)
        if after.key != db.key and after.vcpus:
            assert after.unknown == {"vcpu_times"}
    backend.focus(None)
    asked.clear()
    await backend.sample()
    assert asked.count("vcpus") == len(first.domains)


async def test_bulk_records_with_the_state_only_give_way_to_the_listing_and_are_asked_again_later(
        backend, monkeypatch):
    """Three refreshes whose records carry nothing but the state (the test driver's), then the domains are listed
    instead: the same domains and figures, for `LIST_BEFORE_ASKING_AGAIN` refreshes; then the bulk call again."""
    monkeypatch.setattr(backend, "LIST_BEFORE_ASKING_AGAIN", 4)
    asked = calls_to(monkeypatch, "getAllDomainStats", "listDomainsID", "lookupByID", "listAllDomains",
                     on=libvirt.virConnect)
    samples = [await backend.sample() for _ in range(3 + 4 + 2)]
    # each domain looked up by its id once, at the first listing: its object is kept while its id is listed;
    # asked again, one thin answer is enough to list again
    assert asked == (["getAllDomainStats"] * 3 + ["listDomainsID"] + ["lookupByID"] * len(samples[0].domains)
                     + ["listDomainsID"] * 3 + ["getAllDomainStats", "listDomainsID"])
    bulk, listed = samples[2], samples[3]
    assert listed.keys() == bulk.keys()
    for one in bulk.domains:
        other = listed.domain(one.key)
        assert (one.name, one.flags, one.mem_kib, one.maxmem_kib, one.unknown) == \
            (other.name, other.flags, other.mem_kib, other.maxmem_kib, other.unknown)
        assert [vcpu.online for vcpu in one.vcpus] == [vcpu.online for vcpu in other.vcpus]
        assert [vif.mac for vif in one.vifs] == [vif.mac for vif in other.vifs]
        assert other.cpu_ns >= one.cpu_ns
    assert_same_rates(compute_rates(bulk, listed), compute_rates(without_columns(bulk), without_columns(listed)),
                      listed.keys())


async def test_a_listed_domain_out_of_focus_reads_as_a_recorded_one_does(backend, monkeypatch):
    """Listed and out of focus, a domain is read by a shorter path (info() only): its record, columns and layout
    are those the full path gives from a state-only record, but for the CPU time, which moves on."""
    asked = calls_to(monkeypatch, "getAllDomainStats", "listDomainsID", on=libvirt.virConnect)
    backend.focus([], [])
    samples = [await backend.sample() for _ in range(4)]
    assert asked[2:] == ["getAllDomainStats", "listDomainsID"]
    recorded, listed = samples[2], samples[3]
    assert recorded.columns is not None and listed.columns is not None
    assert listed.keys() == recorded.keys()
    for name in ("flags", "mem_kib", "net_rx_bytes", "net_tx_bytes", "vbd_rd_reqs", "vbd_wr_reqs", "vbd_oo_reqs",
                 "vbd_rd_sectors", "vbd_wr_sectors", "layouts"):
        assert list(getattr(listed.columns, name)) == list(getattr(recorded.columns, name)), name
    assert all(new >= old for old, new in zip(recorded.columns.cpu_ns, listed.columns.cpu_ns, strict=True))
    for one in recorded.domains:
        other = listed.domain(one.key)
        assert (one.name, one.id, one.flags, one.mem_kib, one.maxmem_kib, one.unknown, one.vcpus, one.vifs,
                one.vbds, one.sched_weight) == \
            (other.name, other.id, other.flags, other.mem_kib, other.maxmem_kib, other.unknown, other.vcpus,
             other.vifs, other.vbds, other.sched_weight)
    assert any(d.unknown == {"net", "vbd", "vcpu_times"} for d in listed.domains)
    assert_same_rates(compute_rates(recorded, listed),
                      compute_rates(without_columns(recorded), without_columns(listed)), listed.keys())


async def test_the_listing_follows_domains_that_go_and_come_back_with_a_new_id(backend, tmp_path, monkeypatch):
    """While the domains are listed by id, their objects kept: one destroyed leaves the table, one saved and
    restored comes back under its new id with its figures, looked up once."""
    for _ in range(4):
        before = await backend.sample()
    by_name = {d.name: d for d in before.domains}
    asked = calls_to(monkeypatch, "listDomainsID", "lookupByID", "getAllDomainStats", on=libvirt.virConnect)
    await backend.destroy("web-frontend-01")
    path = tmp_path / "app-0005.save"
    await backend.save("app-0005", path)
    assert await backend.restore(path) == "app-0005"
    after = {d.name: d for d in (await backend.sample()).domains}
    assert set(by_name) - set(after) == {"web-frontend-01"}
    restored = after["app-0005"]
    assert restored.id != by_name["app-0005"].id and restored.key == by_name["app-0005"].key
    assert restored.unknown == frozenset() and restored.cpu_ns > 0
    assert (restored.mem_kib, len(restored.vifs), len(restored.vbds)) == \
        (by_name["app-0005"].mem_kib, len(by_name["app-0005"].vifs), len(by_name["app-0005"].vbds))
    assert asked == ["listDomainsID", "lookupByID"]


async def test_a_listed_domain_whose_info_is_refused_is_asked_once_and_one_that_went_away_is_looked_up_again(
        backend, monkeypatch):
    """Listed and out of focus: an info() the driver refuses is not asked again in the same refresh (its CPU and
    time is then unknown); a domain gone between the listing and its call is left out, and its kept object
    dropped, so the id is looked up afresh if it is listed again (a domid handed out again)."""
    backend.focus([], [])
    for _ in range(4):
        before = await backend.sample()
    by_name = {d.name: d for d in before.domains}
    info = libvirt.virDomain.info
    refused, gone, calls = by_name["db-primary"], by_name["web-frontend-01"], []

    def answer(dom):
        calls.append(dom.name())
        if dom.name() == refused.name:
            raise libvirt.libvirtError("refused")
        if dom.name() == gone.name and calls.count(gone.name) == 1:
            error = libvirt.libvirtError("gone")
            error.err = (libvirt.VIR_ERR_NO_DOMAIN, 0, "gone", 2, "", None, None, -1, -1)
            raise error
        return info(dom)

    monkeypatch.setattr(libvirt.virDomain, "info", answer)
    asked = calls_to(monkeypatch, "lookupByID", on=libvirt.virConnect)
    sample = await backend.sample()
    assert calls.count(refused.name) == 1
    assert "cpu_ns" in sample.domain(refused.key).unknown  # memory: the XML's
    assert sample.domain(gone.key) is None and asked == []
    again = await backend.sample()
    assert again.domain(gone.key) is not None and asked == ["lookupByID"]


async def test_bulk_records_with_more_than_the_state_are_kept(backend, monkeypatch):
    """A driver whose records carry any other group for any domain (QEMU's, libxl's) keeps the bulk call."""
    real = libvirt.virConnect.getAllDomainStats

    def richer(conn, *args):
        records = real(conn, *args)
        records[-1][1]["balloon.maximum"] = records[-1][1].get("balloon.maximum", 1)  # one domain's, one more key
        return records

    monkeypatch.setattr(libvirt.virConnect, "getAllDomainStats", richer)
    asked = calls_to(monkeypatch, "getAllDomainStats", "listDomainsID", on=libvirt.virConnect)
    for _ in range(6):
        await backend.sample()
    assert asked == ["getAllDomainStats"] * 6


async def test_a_domain_read_by_calls_of_its_own_has_rates_over_its_own_interval(backend):
    """The test driver's CPU time is its clock read at the call: over each domain's own interval (from just
    before its info() call to the next) every domain is at 100 %, where the samples' interval would spread
    them by how long each refresh took to reach it. The columns and the records carry the same times."""
    first = await backend.sample()
    await asyncio.sleep(0.2)
    second = await backend.sample()
    assert second.columns is not None and second.columns.read_at is not None
    assert [domain.read_at for domain in second.domains] == list(second.columns.read_at)
    assert all(first.monotonic - 1 < at <= second.monotonic for at in second.columns.read_at)
    rates = compute_rates(first, second)
    shares = [rates[key].cpu_pct for key in rates]
    assert sum(abs(share - 100) < 0.5 for share in shares) >= 0.9 * len(shares), shares
    assert_same_rates(rates, compute_rates(without_columns(first), without_columns(second)), second.keys())


async def test_the_layouts_stay_the_same_objects_while_nothing_changes(backend):
    """`compute_rates` compares each domain's layout with `is` first: a refresh that finds every device as it was
    hands over the very layout of the refresh before, not an equal copy."""
    first = await backend.sample()
    second = await backend.sample()
    assert first.columns is not None and second.columns is not None
    assert list(first.columns.keys) == list(second.columns.keys)
    assert all(old is new for old, new in zip(first.columns.layouts, second.columns.layouts, strict=True))


async def test_a_device_that_cannot_be_read_is_marked_and_leaves_the_others_counted(backend, monkeypatch):
    """blockStats refused for one of db-primary's disks, and a negative counter from one of web-frontend-01's
    vifs: those devices are unreadable (the figure unknown, never zero in a rate), the others still count, the
    layouts change; read again, both come back."""
    before = await backend.sample()
    keys = {d.name: d.key for d in before.domains}
    block_stats, interface_stats = libvirt.virDomain.blockStats, libvirt.virDomain.interfaceStats
    broken_disk = ("db-primary", before.domain(keys["db-primary"]).vbds[1].device)
    broken_vif = ("web-frontend-01", before.domain(keys["web-frontend-01"]).vifs[0].ifname)  # others' have its name
    monkeypatch.setattr(libvirt.virDomain, "blockStats",  # the test driver refuses a path it does not know
                        lambda dom, path: block_stats(dom, "no-such-disk" if (dom.name(), path) == broken_disk
                                                      else path))
    monkeypatch.setattr(libvirt.virDomain, "interfaceStats",
                        lambda dom, device: (-1, *interface_stats(dom, device)[1:])
                        if (dom.name(), device) == broken_vif else interface_stats(dom, device))
    broken = await backend.sample()
    db, web = broken.domain(keys["db-primary"]), broken.domain(keys["web-frontend-01"])
    assert [vbd.error for vbd in db.vbds] == [False, True] and db.unknown == {"vbd"}
    assert broken.columns is not None and before.columns is not None
    at = list(broken.columns.keys).index(db.key)
    assert (db.vbds[1].rd_reqs, broken.columns.vbd_rd_reqs[at]) == (0, db.vbds[0].rd_reqs)
    assert web.vifs[0].error and web.vifs[0].rx_bytes == 0 and web.unknown == {"net"}
    assert not any(d.unknown for d in broken.domains if d.key not in (db.key, web.key))
    changed = {key for key, old, new in zip(broken.columns.keys, before.columns.layouts, broken.columns.layouts,
                                            strict=True) if old != new}
    assert changed == {db.key, web.key}
    monkeypatch.undo()
    again = await backend.sample()
    assert again.domain(db.key) and not again.domain(db.key).unknown and not again.domain(web.key).unknown
    assert again.columns is not None and list(again.columns.layouts) == list(before.columns.layouts)
    assert_same_rates(compute_rates(broken, again), compute_rates(without_columns(broken), without_columns(again)),
                      again.keys())


async def test_the_default_uri_is_libvirts(monkeypatch):
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "test:///default")
    backend = LibvirtBackend(None)
    try:
        assert [d.name for d in (await backend.sample()).domains] == ["test"]
    finally:
        await backend.close()


async def test_an_unreachable_daemon_is_unavailable_and_retried_later(tmp_path):
    uri = f"qemu+unix:///system?socket={tmp_path}/no-such-socket"
    backend = LibvirtBackend(uri, backoff=(60.0, 60.0))
    with pytest.raises(BackendUnavailable, match="cannot connect to libvirt"):
        await backend.sample()
    with pytest.raises(BackendUnavailable, match="trying again in"):  # within the backoff: not even tried
        await backend.sample()
    await backend.close()


async def test_warm_up_connects_before_the_first_sample_and_a_failure_waits_for_it(tmp_path):
    backend = LibvirtBackend(URI)
    backend.warm_up()
    for _ in range(200):
        if backend._current is not None:
            break
        await asyncio.sleep(0.01)
    assert backend._current is not None  # connected while nothing asked for a sample
    assert (await backend.sample()).domains
    await backend.close()
    unreachable = LibvirtBackend(f"qemu+unix:///system?socket={tmp_path}/no-such-socket", backoff=(60.0, 60.0))
    unreachable.warm_up()
    await asyncio.sleep(0.3)
    with pytest.raises(BackendUnavailable, match="cannot connect to libvirt"):  # tried again, not "in 60 s"
        await unreachable.sample()
    await unreachable.close()


# --- actions ------------------------------------------------------------------------------------


async def test_mem_set_changes_the_memory(backend):
    await backend.mem_set("db-primary", 7 * GIB)
    assert (await domains(backend))["db-primary"].mem_kib == 7 * GIB


async def test_mem_set_growth_is_checked_against_the_free_memory_libvirt_reports(backend):
    # A test-driver node file has no NUMA cells, so getFreeMemory() says 0: any growth is more than is free.
    with pytest.raises(InvalidArgument, match="would grow db-primary by 1G, but the host has only 0K free"):
        await backend.mem_set("db-primary", 9 * GIB)
    assert (await domains(backend))["db-primary"].mem_kib == 8 * GIB


@pytest.mark.parametrize(
    ("kib", "message"),
    [(13 * GIB, "raise maxmem first"), (1024, "floor"), (100 * GIB, "more than the host")],
)
async def test_mem_set_refusals_change_nothing(backend, kib, message):
    with pytest.raises(InvalidArgument, match=message):
        await backend.mem_set("db-primary", kib)
    assert (await domains(backend))["db-primary"].mem_kib == 8 * GIB


async def test_mem_max_below_the_memory_is_refused_and_libvirts_own_refusal_is_carried(backend):
    with pytest.raises(InvalidArgument, match="lower the target first"):
        await backend.mem_max("db-primary", 4 * GIB)
    with pytest.raises(InvalidArgument, match="cannot resize the maximum memory on an active domain"):
        await backend.mem_max("db-primary", 16 * GIB)  # the test driver, as QEMU, only changes it when stopped
    assert (await domains(backend))["db-primary"].maxmem_kib == 12 * GIB


async def test_vcpu_set_live_and_over_the_maximum(backend):
    await backend.vcpu_set(MARKUP, 2)
    assert (await domains(backend))[MARKUP].vcpus_online == 2
    with pytest.raises(InvalidArgument, match="at most 2 vCPUs"):
        await backend.vcpu_set(MARKUP, 3)
    with pytest.raises(InvalidArgument, match="at least 1"):
        await backend.vcpu_set(MARKUP, 0)
    assert (await domains(backend))[MARKUP].vcpus_online == 2


async def test_pause_and_unpause_and_their_refusals(backend):
    await backend.pause("web-frontend-01")
    assert (await domains(backend))["web-frontend-01"].state is DomainState.PAUSED
    with pytest.raises(InvalidArgument, match="already paused"):
        await backend.pause("web-frontend-01")
    with pytest.raises(InvalidArgument, match="cannot react"):
        await backend.shutdown("web-frontend-01")
    await backend.unpause("web-frontend-01")
    assert (await domains(backend))["web-frontend-01"].state is DomainState.RUNNING
    with pytest.raises(InvalidArgument, match="not paused"):
        await backend.unpause("web-frontend-01")


async def test_shutdown_reboot_destroy(backend):
    await backend.reboot("app-0002")
    assert "app-0002" in await domains(backend)
    await backend.shutdown("app-0003")
    await backend.destroy("app-0004")
    found = await domains(backend)
    assert "app-0003" not in found and "app-0004" not in found


async def test_save_then_restore_returns_the_name(backend, tmp_path):
    path = tmp_path / "app-0005.save"
    await backend.save("app-0005", path)
    assert path.exists()
    assert "app-0005" not in await domains(backend)
    with pytest.raises(InvalidArgument, match="already exists"):
        await backend.save("app-0006", path)
    assert await backend.restore(path) == "app-0005"
    assert (await domains(backend))["app-0005"].state is DomainState.RUNNING


async def test_save_keep_running_leaves_it_running(backend, tmp_path):
    path = tmp_path / "cp.save"
    await backend.save("app-0007", path, keep_running=True)
    assert path.exists()
    assert (await domains(backend))["app-0007"].state is DomainState.RUNNING


async def test_restore_refusals(backend, tmp_path):
    with pytest.raises(InvalidArgument, match="no such file"):
        await backend.restore(tmp_path / "missing")
    with pytest.raises(InvalidArgument, match="does not exist"):
        await backend.save("app-0008", tmp_path / "no-dir" / "x.save")
    assert "app-0008" in await domains(backend)


async def test_sysrq_sends_a_key_and_refuses_a_bad_one(backend):
    await backend.sysrq("web-frontend-01", "h")
    with pytest.raises(InvalidArgument, match="not a SysRq key"):
        await backend.sysrq("web-frontend-01", "%")


async def test_scheduler_weight_and_the_missing_cap(backend):
    await backend.set_sched("web-frontend-01", weight=300)  # accepted; the test driver keeps its 50 (it stores none)
    assert (await domains(backend))["web-frontend-01"].sched_weight == 50
    with pytest.raises(Unsupported, match="no cap"):
        await backend.set_sched("web-frontend-01", cap=10)
    with pytest.raises(InvalidArgument, match="out of range"):
        await backend.set_sched("web-frontend-01", weight=0)


async def test_a_missing_domain_is_domain_not_found_with_libvirts_message(backend):
    with pytest.raises(DomainNotFound, match="pause ghost: Domain not found"):
        await backend.pause("ghost")


async def test_what_the_driver_lacks_is_learnt_into_capabilities(backend):
    assert backend.capabilities.supports(Action.CONSOLE)
    with pytest.raises(Unsupported, match="virDomainOpenConsole"):
        await backend.open_console("db-primary")
    assert "virDomainOpenConsole" in backend.capabilities.why_not(Action.CONSOLE)
    progress = backend.migrate("db-primary", "test:///default")
    first = await anext(progress)
    assert first.phase is MigratePhase.PREFLIGHT
    with pytest.raises(Unsupported, match="keeps running here"):
        await anext(progress)
    assert backend.capabilities.why_not(Action.MIGRATE)
    assert "db-primary" in await domains(backend)


async def test_migrate_targets_are_checked(backend):
    with pytest.raises(InvalidArgument, match="not a host name"):
        await backend.migrate_preflight("db-primary", "host; rm -rf /")
    with pytest.raises(InvalidArgument, match="not a libvirt URI"):
        await backend.migrate_preflight("db-primary", "qemu+ssh://a b/system")
    checks = await backend.migrate_preflight("db-primary", "qemu+unix:///system?socket=/nonexistent/sock")
    assert [(c.name, c.ok) for c in checks] == [("reachable", False)]


async def test_read_only_refuses_every_action_before_libvirt():
    backend = LibvirtBackend(URI, read_only=True)
    try:
        assert len((await backend.sample()).domains) == 35
        for action in (Action.MEM_SET, Action.PAUSE, Action.CONSOLE, Action.MIGRATE):
            assert not backend.capabilities.supports(action)
        with pytest.raises(ReadOnlyError):
            await backend.pause("web-frontend-01")
        with pytest.raises(ReadOnlyError):
            await backend.open_console("web-frontend-01")
        assert (await domains(backend))["web-frontend-01"].state is DomainState.RUNNING
    finally:
        await backend.close()


# --- events -------------------------------------------------------------------------------------


async def test_a_domain_paused_elsewhere_wakes_the_watcher():
    """test:///default is one shared host per process: a second connection plays 'virsh suspend'."""
    backend = LibvirtBackend("test:///default")
    woken = asyncio.Event()
    backend.watch_changes(woken.set)
    other = libvirt.open("test:///default")
    try:
        assert (await domains(backend))["test"].state is DomainState.RUNNING
        dom = other.lookupByName("test")
        await asyncio.to_thread(dom.suspend)
        await asyncio.wait_for(woken.wait(), 10)
        assert (await domains(backend))["test"].state is DomainState.PAUSED
        woken.clear()
        await asyncio.to_thread(dom.resume)
        await asyncio.wait_for(woken.wait(), 10)
        assert (await domains(backend))["test"].state is DomainState.RUNNING
    finally:
        other.close()
        await backend.close()


async def test_a_closed_console_reads_end_of_file_even_with_output_left_unread():
    """Seen in the libvirt lab: the guest's prompt arrived between the last read and close(), and
    read() after close() returned it instead of b''. The stream here stands in for libvirt's: the
    test driver has no console; the lab test drives a real one."""
    from xentui.backends.libvirt import LibvirtConsole

    class Stream:  # libvirt's names
        def eventRemoveCallback(self) -> None:  # noqa: N802
            pass

        def abort(self) -> None:
            pass

    class Owner:
        def __init__(self) -> None:
            self._consoles: set = set()

    console = LibvirtConsole(Owner(), asyncio.get_running_loop(), Stream(), "guest")  # type: ignore[arg-type]
    console._arrived(b"\r\nlabguest# ")
    await console.close()
    assert await console.read() == b""
