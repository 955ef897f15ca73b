"""A counter's change becomes a rate in one place (`xentui.model.rates`): its scalar and column forms agree to the
last bit, so a domain's totals and its devices' figures say the same thing."""

from __future__ import annotations

from itertools import repeat

from hypothesis import given
from hypothesis import strategies as st

from xentui.model import Domain, DomainFlag, DomainType, Host, Sample, Vbd, Vcpu, Vif, compute_rates
from xentui.model.rates import _COUNT, _CPU, _SECTORS, _per_second, _rate

HOST = Host("h", "Xen", "4.17.3", 4, 2000, 16 * 1024 * 1024, 8 * 1024 * 1024)
COUNTER = st.integers(min_value=0, max_value=2**64 - 1)
SECONDS = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False)


@given(st.lists(COUNTER, max_size=20), SECONDS, st.sampled_from([_CPU, _COUNT, _SECTORS]))
def test_a_change_gives_the_same_rate_alone_or_in_a_column(changes, seconds, unit):
    assert _per_second(changes, repeat(seconds), unit) == [_rate(change, seconds, unit) for change in changes]


def one_device_domain(cpu: int, vcpu: int, vif: tuple[int, int], vbd: tuple[int, int, int, int, int]) -> Domain:
    rx, tx = vif
    rd, wr, oo, rsect, wsect = vbd
    return Domain(1, "web", "u-1", DomainType.PV, DomainFlag.RUNNING, cpu, 1024, 2048,
                  vcpus=[Vcpu(0, True, vcpu)], vifs=[Vif(0, "vif1.0", rx_bytes=rx, tx_bytes=tx)],
                  vbds=[Vbd(51712, "xvda", rd_reqs=rd, wr_reqs=wr, oo_reqs=oo, rd_sectors=rsect, wr_sectors=wsect)])


@given(COUNTER, st.tuples(COUNTER, COUNTER), st.tuples(COUNTER, COUNTER, COUNTER, COUNTER, COUNTER), SECONDS)
def test_one_device_s_figures_are_its_domain_s_totals(cpu, vif, vbd, seconds):
    before = one_device_domain(0, 0, (0, 0), (0, 0, 0, 0, 0))
    after = one_device_domain(cpu, cpu, vif, vbd)
    rates = compute_rates(Sample(10.0, 0.0, HOST, [before]), Sample(10.0 + seconds, 0.0, HOST, [after]))["u-1"]
    assert rates.vcpu_pct[0] == rates.cpu_pct
    nic, disk = rates.vifs[0], rates.vbds[51712]
    assert (nic.rx_bytes_s, nic.tx_bytes_s) == (rates.net_rx_bytes_s, rates.net_tx_bytes_s)
    assert (disk.rd_reqs_s, disk.wr_reqs_s, disk.oo_reqs_s, disk.rd_bytes_s, disk.wr_bytes_s) == (
        rates.vbd_rd_reqs_s, rates.vbd_wr_reqs_s, rates.vbd_oo_reqs_s, rates.vbd_rd_bytes_s, rates.vbd_wr_bytes_s)
