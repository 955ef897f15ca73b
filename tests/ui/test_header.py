"""The host summary: what a backend does not know is shown as unknown, and counts read as English."""

from __future__ import annotations

import pytest

from xentui.backends.replay import ReplayBackend
from xentui.model import Domain, DomainFlag, DomainType, Host, Sample, Vcpu

from .helpers import make_app, make_sim, wait_polls

pytestmark = pytest.mark.asyncio

ONE_DOMAIN = (
    "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS NETTX(k) NETRX(k)"
    " VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID\n"
    "  Domain-0 -----r       1234    3.2    4194304    6.2   no limit       n/a     1    0        0        0"
    "    0        0        0        0          0          0    0\n"
)


async def test_a_replay_shows_the_cpus_it_does_not_know_as_unknown_and_one_domain_in_the_singular(tmp_path):
    log_file = tmp_path / "one.log"
    log_file.write_text(ONE_DOMAIN)
    app, _ = make_app(ReplayBackend(log_file, interval=1.0))
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        header = str(app.query_one("#host").render())
        assert "CPUs: ?" in header and "0 @ 0MHz" not in header and "CPUs: 0" not in header
        assert "1 domain: " in header and "1 domains" not in header
        assert "1 vCPU" in header and "1 vCPUs" not in header


async def test_a_known_cpu_count_with_an_unknown_clock():
    sim, _ = make_sim()
    app, _ = make_app(sim)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        header = app.query_one("#host")
        host = Host("h", "Xen", "4.17", 8, 0, 4 << 20, 1 << 20)
        dom0 = Domain(0, "Domain-0", "", DomainType.PV, DomainFlag.RUNNING, 0, 1 << 20, None,
                      vcpus=[Vcpu(0, True, 0), Vcpu(1, True, 0)], vcpus_max=2)
        header.show(Sample(monotonic=1.0, wall=0.0, host=host, domains=[dom0, dom0]), {}, backend="x", delay=3,
                    view="")
        text = str(header.render())
        assert "CPUs: 8 @ ?MHz" in text and "2 domains: " in text and "2 vCPUs" in text
