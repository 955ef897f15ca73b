"""Pure parts of the libvirt backend against captured documents: domain XML, capabilities, stats records
with keys left out, and how an unknown figure is shown. No libvirt needed."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.rates_paths import assert_same_rates, without_columns
from xentui.backends.libvirt.stats import StatsMixin, _columns, _record
from xentui.backends.libvirt_xml import (
    DomainConfig,
    disk_devid,
    host_from,
    parse_capabilities,
    parse_domain_xml,
    parse_domain_xmls,
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
    LazyDomains,
    Sample,
    VbdBackend,
    compute_rates,
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


def test_many_documents_parse_in_one_pass_as_they_do_one_by_one_and_a_bad_one_spoils_only_itself():
    documents = [QEMU_XML, "<domain><name>x</name><memory unit='GiB'>2</memory><devices/></domain>",
                 "<domain type='xen'><name>y</name><os><type>xen</type></os></domain>"]
    assert parse_domain_xmls(documents) == [parse_domain_xml(document) for document in documents]
    assert parse_domain_xmls([]) == []
    declared = "<?xml version='1.0'?>\n<domain><name>z</name></domain>"  # would stop a joined document
    with_bad = [documents[0], "<domain><name>half", declared, documents[2]]
    parsed = parse_domain_xmls(with_bad)
    assert isinstance(parsed[1], ET.ParseError) and parsed[2].name == "z"
    assert [parsed[0], parsed[3]] == [parse_domain_xml(documents[0]), parse_domain_xml(documents[2])]
    # a document that closes its neighbour's element does not make two halves one domain
    assert [type(c).__name__ for c in parse_domain_xmls(["<domain><name>a", "</name></domain>"])] == [
        "ParseError", "ParseError"]
    assert parse_domain_xml("<capabilities/>") == DomainConfig()  # not a domain: the defaults
    many = [f"<domain><name>d{i}</name><vcpu>{i % 4 + 1}</vcpu></domain>" for i in range(120)]  # several passes
    many[75] = "<domain><name>d75</domain>"
    parsed = parse_domain_xmls(many)
    assert isinstance(parsed[75], ET.ParseError)
    assert [(c.name, c.vcpus_max) for i, c in enumerate(parsed) if i != 75] == [
        (f"d{i}", i % 4 + 1) for i in range(120) if i != 75]


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


class CapturedDomain:
    """A domain as getAllDomainStats hands it over, for a record captured beside its XML: its identity, XML and
    scheduler figures. Any other call (a per-domain call for a figure) fails the test: the record has them."""

    def __init__(self, xml: str, domid: int = 1) -> None:
        config = parse_domain_xml(xml)
        self.xml, self.domid, self.uuid, self.domain_name = xml, domid, config.uuid, config.name

    def ID(self) -> int:  # noqa: N802 - libvirt's names
        return self.domid

    def UUIDString(self) -> str:  # noqa: N802
        return self.uuid

    def name(self) -> str:
        return self.domain_name

    def XMLDesc(self, _flags: int) -> str:  # noqa: N802
        return self.xml

    def schedulerType(self) -> tuple[str, int]:  # noqa: N802
        return ("credit", 2)

    def schedulerParameters(self) -> dict[str, int]:  # noqa: N802
        return {"weight": 256, "cap": 0}

    def __getattr__(self, call: str):
        raise AssertionError(f"{call}(): a per-domain call was made although the bulk record had the group")


class Reader(StatsMixin):
    """The backend's reading part alone: a refresh's reads from records, without a connection."""

    def __init__(self) -> None:
        self._configs, self._dirty, self._lock, self._learned = {}, set(), threading.RLock(), {}
        self._parsed_ahead = {}
        self._foci = (None, None)
        self.current = SimpleNamespace(running={}, scheduler="", vcpus_call=True)

    def read(self, dom: CapturedDomain, stats: dict) -> Domain:
        return _record(self._read(self.current, dom, stats))

    def sample(self, records: list[tuple[CapturedDomain, dict]], at: float) -> Sample:
        reads = [self._read(self.current, dom, stats) for dom, stats in records]
        columns = _columns(reads)
        timed = columns.read_at is not None  # as the backend's refresh
        return Sample(at, at, HOST, LazyDomains(len(reads), lambda i: _record(reads[i], timed)), columns=columns)


def test_a_real_qemu_record_fills_vcpus_vifs_vbds_without_per_domain_calls():
    stats = RECORD["stats"]
    domain = Reader().read(CapturedDomain(QEMU_XML), stats)
    assert domain.vcpus_max == 2 and [(v.index, v.online) for v in domain.vcpus] == [(0, True), (1, False)]
    assert domain.vcpus[0].cpu_ns == stats["vcpu.0.time"]
    user, tap = domain.vifs
    assert tap.rx_bytes == stats["net.1.rx.bytes"] and tap.ifname == "vnet5"
    assert user.rx_bytes == 0 and domain.unknown == {UNKNOWN_NET}  # net.0 has a count but no counters
    (vda,) = domain.vbds
    assert (vda.rd_reqs, vda.rd_sectors, vda.error) == (stats["block.0.rd.reqs"], stats["block.0.rd.bytes"] // 512,
                                                        False)
    assert (domain.cpu_ns, domain.mem_kib, domain.maxmem_kib) == (stats["cpu.time"], stats["balloon.current"],
                                                                  stats["balloon.maximum"])
    assert (domain.sched_weight, domain.sched_cap) == (256, 0)


def test_columns_and_records_of_a_qemu_record_give_the_same_rates():
    """Two refreshes of the captured record, every counter grown (and a vbd unreadable in the second for one
    domain, a NIC's counters gone back for another): the columns path and the records path agree."""
    reader = Reader()
    first = [(CapturedDomain(QEMU_XML.replace("1c58dd5a", f"{i:08x}"), domid=i + 1), dict(RECORD["stats"]))
             for i in range(3)]
    second = []
    for i, (dom, stats) in enumerate(first):
        grown = {key: value * (i + 2) if isinstance(value, int) and key.endswith(("bytes", "reqs", "time", "pkts"))
                 else value for key, value in stats.items()}
        if i == 1:
            del grown["block.0.rd.reqs"]
        if i == 2:
            grown["net.1.rx.bytes"] = 0
        second.append((dom, grown))
    previous, current = reader.sample(first, 1.0), reader.sample(second, 3.0)
    assert current.columns is not None and previous.columns is not None
    from_columns = compute_rates(previous, current)
    from_records = compute_rates(without_columns(previous), without_columns(current))
    assert_same_rates(from_columns, from_records, current.keys())
    assert from_columns.column("cpu_pct", current.keys())[0] > 0


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
    xml = ("<domain type='kvm'><name>erplibre-ubuntu-2404-MIGRATION</name>"
           "<uuid>5a4e0d8e-3c43-4f5e-9f53-4a0e7f1c2b10</uuid><devices>"
           "<disk type='file' device='disk'><target dev='vda' bus='virtio'/></disk>"
           "<disk type='file' device='disk'><target dev='vdb' bus='virtio'/></disk></devices></domain>")
    dom = CapturedDomain(xml)
    dom.__dict__["vcpus"] = dom.__dict__["info"] = lambda: None  # the subset has no vcpu or cpu figures
    domain = Reader().read(dom, stats)
    vda, vdb = domain.vbds
    assert vda.error and vdb.error  # rd.reqs left out of both
    assert vda.path.endswith("erplibre-ubuntu-2404.qcow2")
    assert UNKNOWN_VBD in domain.unknown


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
