from __future__ import annotations

import dataclasses
import itertools

from hypothesis import given
from hypothesis import strategies as st

from tests.rates_paths import assert_same_rates, with_columns
from xentui.model import (
    NO_RATE,
    Domain,
    DomainFlag,
    DomainState,
    DomainType,
    Host,
    Rates,
    Sample,
    Vbd,
    Vcpu,
    Vif,
    compute_rates,
    counter_delta,
    flags_string,
    parse_flags,
    state_of,
)

HOST = Host("h", "Xen", "4.17.3", 4, 2000, 16 * 1024 * 1024, 8 * 1024 * 1024)


def domain(**changes) -> Domain:
    base = dict(
        id=3, name="web", uuid="u-1", type=DomainType.PV, flags=DomainFlag.BLOCKED, cpu_ns=0,
        mem_kib=1024, maxmem_kib=2048,
        vcpus=[Vcpu(0, True, 0), Vcpu(1, True, 0)], vcpus_max=2,
        vifs=[Vif(0, "vif3.0", rx_bytes=0, tx_bytes=0, rx_packets=0, tx_packets=0)],
        vbds=[Vbd(51712, "xvda", rd_reqs=0, wr_reqs=0, rd_sectors=0, wr_sectors=0)],
    )
    base.update(changes)
    return Domain(**base)


def sample(t: float, *domains: Domain) -> Sample:
    return Sample(monotonic=t, wall=1e9 + t, host=HOST, domains=list(domains))


def test_flags_round_trip_in_xentop_order():
    flags = DomainFlag.SHUTDOWN | DomainFlag.CRASHED
    assert flags_string(flags) == "-s-c--"
    assert parse_flags("-s-c--") == flags
    assert flags_string(DomainFlag.RUNNING) == "-----r"
    assert parse_flags("d-----") == DomainFlag.DYING


def test_state_picks_the_most_serious_condition():
    assert state_of(DomainFlag.SHUTDOWN | DomainFlag.CRASHED) is DomainState.CRASHED
    assert state_of(DomainFlag.DYING | DomainFlag.SHUTDOWN) is DomainState.DYING
    assert state_of(DomainFlag.PAUSED | DomainFlag.BLOCKED) is DomainState.PAUSED
    assert state_of(DomainFlag.BLOCKED) is DomainState.BLOCKED
    # no bit set: runnable, waiting for a pCPU
    assert state_of(DomainFlag.NONE) is DomainState.RUNNING


def test_rates_over_one_interval():
    before = domain()
    after = domain(
        cpu_ns=3 * 10**9,  # 3 s of CPU in 2 s: 150 %
        vcpus=[Vcpu(0, True, 2 * 10**9), Vcpu(1, True, 10**9)],
        vifs=[Vif(0, "vif3.0", rx_bytes=4000, tx_bytes=2000, rx_packets=10, tx_packets=4)],
        vbds=[Vbd(51712, "xvda", rd_reqs=20, wr_reqs=10, rd_sectors=400, wr_sectors=80, oo_reqs=2)],
    )
    rates = compute_rates(sample(10.0, before), sample(12.0, after))["u-1"]
    assert rates.cpu_pct == 150.0
    assert rates.vcpu_pct == {0: 100.0, 1: 50.0}
    assert rates.net_rx_bytes_s == 2000.0
    assert rates.net_tx_bytes_s == 1000.0
    assert rates.vifs[0].rx_packets_s == 5.0
    assert rates.vbd_rd_reqs_s == 10.0
    assert rates.vbd_oo_reqs_s == 1.0
    assert rates.vbd_rd_bytes_s == 200 * 512
    assert rates.vbd_wr_bytes_s == 40 * 512


def test_no_rates_without_a_previous_sample_or_interval():
    assert compute_rates(None, sample(1.0, domain())) == {}
    assert compute_rates(sample(5.0, domain()), sample(5.0, domain(cpu_ns=10))) == {}
    assert compute_rates(sample(6.0, domain()), sample(5.0, domain(cpu_ns=10))) == {}


def test_new_domain_has_no_rates_until_its_second_sample():
    other = domain(uuid="u-2", name="db", id=4)
    rates = compute_rates(sample(0.0, domain()), sample(1.0, domain(), other))
    assert set(rates) == {"u-1"}


def test_counter_wrap_at_32_bits():
    assert counter_delta(2**32 - 100, 50) == 150


def test_counter_wrap_at_64_bits():
    assert counter_delta(2**64 - 10, 5) == 15


def test_counter_reset_counts_only_the_new_value():
    # 5e12 ns of CPU before, 1e9 after: the counter restarted, it did not wrap
    assert counter_delta(5 * 10**12, 10**9) == 10**9
    assert counter_delta(3_000_000_000, 2_000_000_000) == 2_000_000_000


def test_restored_domain_with_new_domid_is_a_reset_even_when_it_looks_like_a_wrap():
    before = domain(id=3, cpu_ns=2**32 - 1000)
    after = domain(id=9, cpu_ns=10**9)  # same uuid, new domid: counters started again
    rates = compute_rates(sample(0.0, before), sample(1.0, after))["u-1"]
    assert rates.cpu_pct == 100.0


def test_errored_vbd_gives_no_vbd_rates_and_no_totals():
    bad = domain(vbds=[Vbd(51712, "xvda", error=True)])
    assert bad.vbd_totals() is None
    rates = compute_rates(sample(0.0, bad), sample(1.0, bad))["u-1"]
    assert rates.vbds == {}
    assert domain(vbds=[]).vbd_totals() is not None


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_counter_delta_is_never_negative_nor_larger_than_the_range(previous, current):
    delta = counter_delta(previous, current)
    assert 0 <= delta < 2**64
    if current >= previous:
        assert delta == current - previous


@given(st.lists(st.integers(0, 10**12), min_size=2, max_size=30))
def test_rates_are_never_negative_whatever_the_counters_do(values):
    samples = [sample(float(i), domain(cpu_ns=v, vcpus=[Vcpu(0, True, v)])) for i, v in enumerate(values)]
    for previous, current in itertools.pairwise(samples):
        rates = compute_rates(previous, current)["u-1"]
        assert rates.cpu_pct >= 0
        assert all(p >= 0 for p in rates.vcpu_pct.values())


def test_hot_plugged_devices_count_only_from_their_second_sample():
    before = domain(vifs=[Vif(0, "vif3.0", rx_bytes=1000)])
    after = domain(vifs=[Vif(0, "vif3.0", rx_bytes=3000), Vif(1, "vif3.1", rx_bytes=10**9)])
    rates = compute_rates(sample(0.0, before), sample(1.0, after))["u-1"]
    assert rates.net_rx_bytes_s == 2000.0
    assert set(rates.vifs) == {0}
    swapped = domain(vifs=[Vif(2, "vif3.2", rx_bytes=5)])  # one vif unplugged, another plugged
    rates = compute_rates(sample(0.0, before), sample(1.0, swapped))["u-1"]
    assert rates.net_rx_bytes_s == 0.0 and rates.vifs == {}


def test_a_device_record_the_backend_kept_counts_zero_and_a_restart_counts_everything():
    """A backend may hand over the same Vif/Vbd object when its counters stood still: that is zero
    traffic. A domain back under a new domid counts its counters from zero, shared or not."""
    vif = Vif(0, "vif3.0", rx_bytes=5000, tx_bytes=3000)
    vbd = Vbd(51712, "xvda", rd_reqs=40, wr_reqs=20, rd_sectors=800, wr_sectors=160)
    before = domain(vifs=[vif], vbds=[vbd])
    after = domain(cpu_ns=10**9, vifs=[vif], vbds=[vbd])
    rates = compute_rates(sample(0.0, before), sample(1.0, after))["u-1"]
    assert (rates.net_rx_bytes_s, rates.net_tx_bytes_s, rates.vbd_rd_reqs_s, rates.vbd_wr_bytes_s) == (0, 0, 0, 0)
    assert rates.cpu_pct == 100.0
    restarted = domain(id=9, cpu_ns=10**9, vifs=[Vif(0, "vif9.0", rx_bytes=100, tx_bytes=50)],
                       vbds=[Vbd(51712, "xvda", rd_reqs=4, wr_reqs=2, rd_sectors=32, wr_sectors=16)])
    rates = compute_rates(sample(0.0, before), sample(2.0, restarted))["u-1"]
    assert (rates.net_rx_bytes_s, rates.vbd_rd_reqs_s, rates.vbd_wr_bytes_s) == (50.0, 2.0, 16 * 512 / 2)
    # back under a new domid but handed over the very same records: still counted from zero
    same_records = domain(id=9, cpu_ns=10**9, vifs=[vif], vbds=[vbd])
    rates = compute_rates(sample(0.0, before), sample(1.0, same_records))["u-1"]
    assert (rates.net_rx_bytes_s, rates.net_tx_bytes_s, rates.vbd_rd_reqs_s) == (5000.0, 3000.0, 40.0)


def test_domains_that_change_places_are_paired_by_key_not_by_position():
    web, db = domain(), domain(uuid="u-2", name="db", id=4, cpu_ns=5 * 10**9)
    later_web, later_db = domain(cpu_ns=10**9), domain(uuid="u-2", name="db", id=4, cpu_ns=5 * 10**9 + 2 * 10**8)
    rates = compute_rates(sample(0.0, web, db), sample(1.0, later_db, later_web))
    assert (rates["u-1"].cpu_pct, rates["u-2"].cpu_pct) == (100.0, 20.0)
    # and the same domains in the same order (paired by position) give the same figures
    rates = compute_rates(sample(0.0, web, db), sample(1.0, later_web, later_db))
    assert (rates["u-1"].cpu_pct, rates["u-2"].cpu_pct) == (100.0, 20.0)


def test_a_restarted_domain_counts_every_device_and_vcpu_from_zero():
    before = domain(id=3, cpu_ns=9 * 10**9, vifs=[Vif(0, "vif3.0", rx_bytes=10**9)])
    after = domain(id=8, cpu_ns=10**9, vcpus=[Vcpu(0, True, 6 * 10**8), Vcpu(1, True, 4 * 10**8)],
                   vifs=[Vif(0, "vif8.0", rx_bytes=400), Vif(1, "vif8.1", rx_bytes=600)])
    rates = compute_rates(sample(0.0, before), sample(2.0, after))["u-1"]
    assert rates.net_rx_bytes_s == 500.0  # both vifs, from zero, over 2 s
    assert rates.vcpu_pct == {0: 30.0, 1: 20.0}
    assert set(rates.vifs) == {0, 1}


# --- rates from counter columns ---------------------------------------------------------------


def _grown(d: Domain, draw: st.DrawFn) -> Domain:
    """The domain one interval later: every counter grew (by zero or more), as the columns' promise says."""
    grow = st.integers(0, 10**7)
    vifs = [dataclasses.replace(v, rx_bytes=v.rx_bytes + draw(grow), tx_bytes=v.tx_bytes + draw(grow),
                                rx_packets=v.rx_packets + draw(grow)) for v in d.vifs]
    vbds = [dataclasses.replace(v, rd_reqs=v.rd_reqs + draw(grow), wr_reqs=v.wr_reqs + draw(grow),
                                oo_reqs=v.oo_reqs + draw(st.integers(0, 3)), rd_sectors=v.rd_sectors + draw(grow),
                                wr_sectors=v.wr_sectors + draw(grow)) for v in d.vbds]
    vcpus = [Vcpu(v.index, v.online, v.cpu_ns + draw(grow)) for v in d.vcpus]
    return dataclasses.replace(d, cpu_ns=d.cpu_ns + draw(st.integers(0, 4 * 10**9)), vcpus=vcpus, vifs=vifs,
                               vbds=vbds)


@st.composite
def fleets(draw: st.DrawFn) -> list[Sample]:
    """A few samples of a few domains that change in every way a backend may report between two samples."""
    count = draw(st.integers(1, 6))
    read_one_by_one = draw(st.booleans())  # a backend that reads domain after domain says when (`Domain.read_at`)
    current = [domain(id=i + 1, uuid=f"u-{i}", name=f"d{i}", cpu_ns=draw(st.integers(0, 2**32)),
                      vifs=[Vif(0, f"vif{i + 1}.0", rx_bytes=draw(st.integers(0, 2**40)))],
                      vbds=[Vbd(51712, "xvda", rd_reqs=draw(st.integers(0, 2**40)))])
               for i in range(count)]
    if read_one_by_one:
        current = [dataclasses.replace(d, read_at=-draw(st.floats(0.0, 0.2))) for d in current]
    samples = [sample(0.0, *current)]
    for step in range(1, draw(st.integers(2, 5))):
        later = []
        for d in current:
            change = draw(st.sampled_from(["grow", "grow", "grow", "restart", "hot-plug", "unplug", "vbd-error",
                                           "vbd-back", "gone", "cpu-wrap", "reset"]))
            if change == "gone":
                continue
            new = _grown(d, draw)
            if change == "restart":  # a new domid: counters from zero
                new = dataclasses.replace(d, id=d.id + 100, cpu_ns=draw(st.integers(0, 10**9)),
                                          vifs=[Vif(v.devid, v.ifname, rx_bytes=draw(st.integers(0, 10**6)))
                                                for v in d.vifs])
            elif change == "hot-plug":
                devid = max((vif.devid for vif in new.vifs), default=0) + 1
                new.vifs = [*new.vifs, Vif(devid, "vifX", rx_bytes=draw(st.integers(0, 10**9)))]
            elif change == "unplug" and new.vifs:
                new.vifs = new.vifs[1:]
            elif change == "vbd-error" and new.vbds:
                new.vbds = [dataclasses.replace(new.vbds[0], error=True), *new.vbds[1:]]
            elif change == "vbd-back" and new.vbds:
                new.vbds = [dataclasses.replace(new.vbds[0], error=False), *new.vbds[1:]]
            elif change == "cpu-wrap":  # a 32-bit counter that wrapped
                new = dataclasses.replace(new, cpu_ns=draw(st.integers(0, 10**6)))
            elif change == "reset":  # the NIC counters back to zero, under the same layout: their total goes back
                new.vifs = [dataclasses.replace(vif, rx_bytes=0) for vif in new.vifs]
            later.append(new)
        for _ in range(draw(st.integers(0, 2))):  # newcomers
            n = draw(st.integers(50, 60))
            if all(d.uuid != f"u-{n}" for d in later):
                later.append(domain(id=n, uuid=f"u-{n}", name=f"d{n}", cpu_ns=draw(st.integers(0, 10**9))))
        if draw(st.booleans()):
            later.reverse()
        at = float(step) + draw(st.sampled_from([0.0, 0.5]))
        if read_one_by_one:  # each domain's counters read a little before the sample was taken
            later = [dataclasses.replace(d, read_at=at - draw(st.floats(0.0, 0.2))) for d in later]
        samples.append(sample(at, *later))
        current = later
    return samples


@given(fleets())
def test_rates_from_counter_columns_equal_rates_from_records(samples):
    """Restarts, hot-plugs, unreadable vbds, newcomers, domains gone or reordered, a wrapped CPU counter,
    counters reset (a total that goes back): every total still equals the device-by-device figure."""
    for previous, current in itertools.pairwise(samples):
        from_records = compute_rates(previous, current)
        from_columns = compute_rates(with_columns(previous), with_columns(current))
        assert_same_rates(from_columns, from_records, current.keys())


def test_a_domain_read_on_its_own_has_rates_over_its_own_interval():
    """Two domains each busy on one CPU, read 0.1 s apart within a refresh whose reads started later the second
    time: each is 100 % over its own interval, where the samples' interval would make one 90 %, one 110 %.
    Without a read time (read at once), the samples' interval; from the columns as from the records."""
    first = sample(0.0, domain(id=1, uuid="a", cpu_ns=0, read_at=-0.5), domain(id=2, uuid="b", cpu_ns=0, read_at=-0.4),
                   domain(id=3, uuid="c", cpu_ns=0))
    second = sample(1.0, domain(id=1, uuid="a", cpu_ns=10**9, read_at=0.5),
                    domain(id=2, uuid="b", cpu_ns=9 * 10**8, read_at=0.5), domain(id=3, uuid="c", cpu_ns=10**9))
    rates = compute_rates(first, second)
    assert [rates[key].cpu_pct for key in ("a", "b", "c")] == [100.0, 100.0, 100.0]
    assert rates["b"].interval_s == 0.9 and rates["c"].interval_s == 1.0
    # columns carry the read times only where every domain has one (a backend times all its domains or none)
    assert with_columns(second).columns.read_at is None
    both_timed = [sample(s.monotonic, *s.domains[:2]) for s in (first, second)]
    assert with_columns(both_timed[1]).columns.read_at == [0.5, 0.5]
    assert_same_rates(compute_rates(*map(with_columns, both_timed)), compute_rates(*both_timed),
                      both_timed[1].keys())


def test_rates_is_a_mapping_of_the_domains_with_rates_and_columns_in_sample_order():
    web, db = domain(cpu_ns=0), domain(uuid="u-2", name="db", id=4, cpu_ns=0)
    newcomer = domain(uuid="u-3", name="new", id=5, cpu_ns=10**9)
    later = sample(1.0, domain(cpu_ns=5 * 10**8), newcomer, domain(uuid="u-2", name="db", id=4, cpu_ns=10**9))
    for rates in (compute_rates(sample(0.0, web, db), later),
                  compute_rates(with_columns(sample(0.0, web, db)), with_columns(later))):
        assert list(rates) == ["u-1", "u-2"] and len(rates) == 2
        assert "u-3" not in rates and "u-2" in rates and rates.get("u-3") is None
        assert rates.column("cpu_pct", later.keys()) == [50.0, NO_RATE, 100.0]
        assert rates.column("cpu_pct", ["u-2", "nobody", "u-1"]) == [100.0, NO_RATE, 50.0]
        assert [point[:2] for point in rates.points()] == [("u-1", 50.0), ("u-2", 100.0)]
    assert compute_rates(None, later) == {} and list(Rates().points()) == []
    assert Rates().column("cpu_pct", ["u-1"]) == [NO_RATE]


def test_a_device_total_that_goes_back_is_worked_out_device_by_device():
    """A backend's columns promise counters that never go back under one layout; one that did anyway (a
    reset) is caught when its total shrinks, and that domain's figures come from its records."""
    before = domain(vifs=[Vif(0, "vif3.0", rx_bytes=10**9), Vif(1, "vif3.1", rx_bytes=10)])
    after = domain(vifs=[Vif(0, "vif3.0", rx_bytes=300), Vif(1, "vif3.1", rx_bytes=1010)])
    rates = compute_rates(with_columns(sample(0.0, before)), with_columns(sample(1.0, after)))
    assert rates["u-1"].net_rx_bytes_s == 300 + 1000  # the reset vif counts its 300 since, the other its 1000


def test_two_domains_with_one_key_count_once_as_before():
    """A uuid twice (the incoming copy of a local migration): the later domain's rates, listed once."""
    twin = domain(id=4, cpu_ns=0)
    later = sample(1.0, domain(cpu_ns=10**9), domain(id=4, cpu_ns=5 * 10**8))
    for rates in (compute_rates(sample(0.0, domain(), twin), later),
                  compute_rates(with_columns(sample(0.0, domain(), twin)), with_columns(later))):
        assert list(rates) == ["u-1"] and len(rates) == 1 and dict(rates).keys() == {"u-1"}
        assert rates["u-1"].cpu_pct == 50.0
        assert [point[:2] for point in rates.points()] == [("u-1", 50.0)]
