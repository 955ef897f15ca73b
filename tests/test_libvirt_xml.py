"""Pure parts of the libvirt backend against captured documents: domain XML, capabilities, stats records
with keys left out, and how an unknown figure is shown. No libvirt needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xentui.backends.libvirt import LibvirtBackend
from xentui.backends.libvirt_xml import (
    DiskConfig,
    DomainConfig,
    disk_devid,
    host_from,
    parse_capabilities,
    parse_domain_xml,
    parse_version,
    saved_image_name,
)
from xentui.batch import BatchFormat, BatchOptions, make_formatter
from xentui.model import (
    UNKNOWN_CPU,
    UNKNOWN_MAXMEM,
    UNKNOWN_MEM,
    UNKNOWN_NET,
    UNKNOWN_VBD,
    Domain,
    DomainFlag,
    DomainType,
    Host,
    Sample,
    VbdBackend,
)
from xentui.ui.columns import BY_ID

FIXTURES = Path(__file__).parent / "fixtures"
QEMU_XML = (FIXTURES / "libvirt-qemu-domain.xml").read_text()
CAPS_XML = (FIXTURES / "libvirt-qemu-capabilities.xml").read_text()
RECORD = json.loads((FIXTURES / "libvirt-qemu-domstats.json").read_text())


def never(_call):
    raise AssertionError("a per-domain call was made although the bulk record had the group")


def test_qemu_domain_xml():
    config = parse_domain_xml(QEMU_XML)
    assert (config.hypervisor, config.type) == ("qemu", DomainType.HVM)
    assert (config.max_memory_kib, config.current_memory_kib) == (262144, 262144)
    assert (config.vcpus_max, config.vcpus_current) == (2, 1)
    assert [(n.kind, n.target, n.devid) for n in config.interfaces] == [("user", "", 0), ("ethernet", "vnet5", 1)]
    assert all(n.mac.startswith("52:54:00:") for n in config.interfaces)
    (disk,) = config.disks
    assert (disk.target, disk.device, disk.backend) == ("vda", "disk", VbdBackend.QDISK)
    assert disk.path.endswith("/disk.img")
    assert config.balloon is True
    assert "pty" in config.consoles


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        ("<domain type='xen'><os><type>xen</type></os></domain>", DomainType.PV),
        ("<domain type='xen'><os><type>xenpvh</type></os></domain>", DomainType.PVH),
        ("<domain type='xen'><os><type arch='x86_64'>hvm</type></os></domain>", DomainType.HVM),
        ("<domain type='lxc'><os><type>exe</type></os></domain>", DomainType.UNKNOWN),
        ("<domain/>", DomainType.UNKNOWN),
    ],
)
def test_domain_types(xml, expected):
    assert parse_domain_xml(xml).type is expected


def test_a_bare_domain_yields_defaults_not_errors():
    config = parse_domain_xml("<domain><name>x</name><memory unit='GiB'>2</memory><devices/></domain>")
    assert (config.name, config.max_memory_kib, config.vcpus_max, config.disks) == ("x", 2 * 1024 * 1024, None, ())


def test_xen_disks_sources_and_devids():
    xml = """<domain type='xen'><devices>
      <disk type='block' device='disk'><driver name='phy'/><source dev='/dev/vg0/web'/><target dev='xvda'/></disk>
      <disk type='volume' device='disk'><source pool='pool1' volume='data'/><target dev='xvdb'/></disk>
      <disk type='network' device='disk'><source protocol='rbd' name='rbd/img'/><target dev='sda'/></disk>
      <disk type='file' device='cdrom'><target dev='hdc'/></disk>
    </devices></domain>"""
    disks = parse_domain_xml(xml).disks
    assert [(d.target, d.path, d.backend) for d in disks] == [
        ("xvda", "/dev/vg0/web", VbdBackend.BLKBACK),
        ("xvdb", "pool1/data", VbdBackend.UNKNOWN),
        ("sda", "rbd:rbd/img", VbdBackend.UNKNOWN),
        ("hdc", "", VbdBackend.UNKNOWN),
    ]
    assert [d.devid for d in disks] == [51712, 51728, 2048, 5632]


def test_disk_devids_are_xens_where_the_name_has_one():
    assert disk_devid("xvda", 0) == 51712
    assert disk_devid("hda", 0) == 768
    assert disk_devid("vda", 0) == 0x10000 and disk_devid("vdb", 1) == 0x10001
    assert disk_devid("xvdaa", 0) == (1 << 28) | (26 << 8)


def test_capabilities_and_host():
    caps = parse_capabilities(CAPS_XML)
    assert caps.uuid == "a5eacacb-4919-460f-ac79-61f7d9e4ae4c"
    assert caps.cpu_vendor == "AMD" and "ssse3" in caps.cpu_features
    assert caps.cpu_xml.startswith("<cpu>") and "<feature" in caps.cpu_xml
    assert caps.migration_transports == ("tcp", "rdma")
    host = host_from(hostname="vm", driver="QEMU", hypervisor_version=7002022, info=RECORD["info"],
                     free_bytes=1024 * 1024 * 1024, caps=caps)
    assert (host.hypervisor, host.version, host.cpu_vendor) == ("QEMU", "7.2.22", "AuthenticAMD")
    assert host.total_kib == RECORD["info"][1] * 1024 and host.free_kib == 1024 * 1024
    assert host.nr_cpus == RECORD["info"][2]


def test_versions_and_saved_image_names():
    assert parse_version(9000000) == "9.0.0" and parse_version(0) == "unknown"
    assert saved_image_name(QEMU_XML) == "xt-try"


# --- a real stats record, and records with keys left out ----------------------------------------------


def test_a_real_qemu_record_fills_vcpus_vifs_vbds_without_per_domain_calls():
    stats, config, unknown = RECORD["stats"], parse_domain_xml(QEMU_XML), set()
    vcpus, maximum = LibvirtBackend._vcpus(None, stats, config, never, lambda: None, unknown)
    assert maximum == 2 and [(v.index, v.online) for v in vcpus] == [(0, True), (1, False)]
    assert vcpus[0].cpu_ns == stats["vcpu.0.time"]
    user, tap = LibvirtBackend._vifs(None, stats, config, never, unknown)
    assert tap.rx_bytes == stats["net.1.rx.bytes"] and tap.ifname == "vnet5"
    assert user.rx_bytes == 0 and unknown == {UNKNOWN_NET}  # net.0 has a count but no counters
    (vda,) = LibvirtBackend._vbds(None, stats, config, never, unknown)
    assert (vda.rd_reqs, vda.rd_sectors, vda.error) == (stats["block.0.rd.reqs"], stats["block.0.rd.bytes"] // 512,
                                                        False)


def _virsh_domstats(text: str) -> dict[str, dict[str, object]]:
    records: dict[str, dict[str, object]] = {}
    current: dict[str, object] = {}
    for line in text.splitlines():
        if line.startswith("Domain: '"):
            current = records.setdefault(line[9:-1], {})
        elif line.startswith("  ") and "=" in line:
            key, value = line.strip().split("=", 1)
            current[key] = int(value) if value.isdigit() else value
    return records


def test_block_keys_left_out_make_the_vbd_unreadable_not_zero():
    records = _virsh_domstats((FIXTURES / "libvirt-domstats-omitted.txt").read_text())
    stats = records["erplibre-ubuntu-2404-MIGRATION"]
    config = DomainConfig(disks=(DiskConfig(0x10000, "vda"), DiskConfig(0x10001, "vdb")))
    unknown: set[str] = set()
    vda, vdb = LibvirtBackend._vbds(None, stats, config, never, unknown)
    assert vda.error and vdb.error  # rd.reqs left out of both
    assert vda.path.endswith("erplibre-ubuntu-2404.qcow2")
    assert unknown == {UNKNOWN_VBD}


# --- unknown figures on the screen and in batch output ---------------------------------------------------


def _domain(unknown: frozenset[str]) -> Domain:
    return Domain(3, "vm", "u-1", DomainType.HVM, DomainFlag.RUNNING, 5_000_000_000, 1024, 2048, unknown=unknown)


HOST = Host("h", "QEMU", "7.2.22", 2, 2000, 4 * 1024 * 1024, 1024 * 1024)


def test_unknown_figures_show_as_unknown_in_the_table():
    known, blind = _domain(frozenset()), _domain(frozenset({UNKNOWN_CPU, UNKNOWN_MEM, UNKNOWN_MAXMEM, UNKNOWN_NET}))
    for column in ("cpu_s", "mem", "mem_pct", "maxmem", "maxmem_pct", "nettx", "netrx", "cpu_pct"):
        assert BY_ID[column].text(blind, None, HOST) == "?"
        assert BY_ID[column].xentop_text(blind, None, HOST) == "?"
        assert BY_ID[column].text(known, None, HOST) != "?"


def test_unknown_figures_are_null_in_json_and_dashes_in_xentop_format():
    blind = _domain(frozenset({UNKNOWN_CPU, UNKNOWN_MEM}))
    sample = Sample(1.0, 0.0, HOST, [blind])
    record = json.loads(make_formatter(BatchOptions(format=BatchFormat.JSON)).format(sample, {}))["domains"][0]
    assert (record["cpu_s"], record["mem_kib"], record["mem_pct"]) == (None, None, None)
    assert record["unknown"] == [UNKNOWN_CPU, UNKNOWN_MEM]
    assert record["maxmem_kib"] == 2048
    row = make_formatter(BatchOptions(format=BatchFormat.XENTOP)).format(sample, {}).splitlines()[1].split()
    assert row[2:6] == ["-", "-", "-", "-"] and row[6] == "2048"
    known = json.loads(make_formatter(BatchOptions(format=BatchFormat.JSON)).format(
        Sample(1.0, 0.0, HOST, [_domain(frozenset())]), {}))["domains"][0]
    assert "unknown" not in known and known["cpu_s"] == 5.0
