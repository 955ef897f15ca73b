"""The parsers on real output captured in the project's Xen lab (Xen 4.17.7, Debian 12 dom0, PV guests):
what xl and xentop print there, not only what other hosts printed."""

from __future__ import annotations

from pathlib import Path

from xentui.backends.xen_vdev import vdev_name
from xentui.backends.xentop_parser import parse_xentop_log
from xentui.backends.xl_parsers import (
    parse_xl_info,
    parse_xl_list,
    parse_xl_list_long,
    parse_xl_sched_credit,
    parse_xl_vcpu_list,
    xl_info_host,
)
from xentui.model import DomainFlag, DomainType

FIXTURES = Path(__file__).parent / "fixtures"


def capture(name: str) -> str:
    return "\n".join(line for line in (FIXTURES / name).read_text().splitlines() if not line.startswith("#"))


def test_xl_list():
    rows = {row.name: row for row in parse_xl_list(capture("xenlab-xl-list.txt"))}
    assert rows.keys() == {"Domain-0", "guest1", "guest2"}
    assert (rows["Domain-0"].mem_mib, rows["Domain-0"].vcpus, rows["Domain-0"].flags) == (1536, 2, DomainFlag.RUNNING)
    assert rows["guest1"].mem_mib == 128 and rows["guest1"].flags == DomainFlag.BLOCKED


def test_xl_list_long():
    configs = {config.name: config for config in parse_xl_list_long(capture("xenlab-xl-list-l.json.txt"))}
    guest1 = configs["guest1"]
    assert guest1.type is DomainType.PV and guest1.max_memkb == 256 * 1024 and guest1.max_vcpus == 2
    assert guest1.vifs[0].bridge == "xenbr0" and guest1.vifs[0].mac == "00:16:3e:58:00:11"
    assert guest1.disks[0].vdev == "xvda" and guest1.disks[0].target.endswith("guest1-disk.img")
    assert configs["Domain-0"].type is DomainType.PV and configs["Domain-0"].sched == "credit2"


def test_xl_info():
    host = xl_info_host(parse_xl_info(capture("xenlab-xl-info.txt")))
    assert host["hostname"] == "xenlab-dom0" and host["nr_cpus"] == 2 and host["total_memory_mib"] == 3071
    assert host["xen_version"].startswith("4.17") and host["xen_scheduler"] == "credit2"
    assert "hvm" in host["virt_caps"] and host["cpu_mhz"] == 2596


def test_xl_vcpu_list_and_sched_credit2():
    vcpus = parse_xl_vcpu_list(capture("xenlab-xl-vcpu-list.txt"))
    assert {v.name for v in vcpus} >= {"Domain-0", "guest1", "guest2"}
    sched = {row.name: row for row in parse_xl_sched_credit(capture("xenlab-xl-sched-credit.txt"))}
    assert (sched["guest2"].weight, sched["guest2"].cap, sched["guest2"].cpupool) == (256, 0, "Pool-0")


def test_xentop_with_every_subrow():
    log = parse_xentop_log(capture("xenlab-xentop-batch.txt"))
    assert len(log.iterations) == 2 and log.networks and log.vbds and log.vcpus and not log.skipped
    guest1 = next(row for row in log.iterations[-1] if row.name == "guest1")
    assert guest1.nets == 1 and guest1.vifs[0].rx_bytes > 0
    assert [(v.kind, vdev_name(v.devid)) for v in guest1.vbd_rows] == [("BlkBack", "xvda")]
