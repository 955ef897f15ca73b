from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest

from xentui.backends.base import Backend
from xentui.batch import (
    CSV_COLUMNS,
    BatchFormat,
    BatchOptions,
    CsvFormatter,
    JsonFormatter,
    XentopFormatter,
    make_formatter,
    run_batch,
    sort_domains,
)
from xentui.errors import BackendError
from xentui.model import (
    UNKNOWN_VBD_SECTORS,
    Domain,
    DomainFlag,
    DomainRates,
    DomainType,
    Host,
    Sample,
    Vbd,
    VbdBackend,
    Vcpu,
    Vif,
    compute_rates,
)

FIXTURES = Path(__file__).parent / "fixtures"
SECOND = 1_000_000_000
B = DomainFlag.BLOCKED
R = DomainFlag.RUNNING
# Back-computed from the MEM(%) column: every percentage of the capture rounds the same.
HOST = Host(
    hostname="xcp-ng-83",
    hypervisor="Xen",
    version="4.17.6",
    nr_cpus=12,
    cpu_mhz=2100,
    total_kib=99_864_000,
    free_kib=40_000_000,
)
HEADER = (
    "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS NETTX(k) NETRX(k)"
    " VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID\n"
)


def read_fixture(name: str) -> str:
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("#"))


def iterations_of(text: str) -> list[str]:
    """Split batch output at each header line (without -r: one per iteration)."""
    chunks: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("NAME "):
            chunks.append("")
        chunks[-1] += line
    return chunks


def uuid_of(domid: int) -> str:
    return f"6c1f7b2e-0000-4000-8000-{domid:012d}"


def split_vbds(count: int, rd: int, wr: int, rsect: int, wsect: int) -> list[Vbd]:
    """``count`` tapdisk3 vbds (xvda, xvdb...) whose counts add up to the given totals."""
    vbds = []
    remaining = [rd, wr, rsect, wsect]
    for position in range(count):
        share = remaining if position == count - 1 else [value // 3 for value in remaining]
        remaining = [left - part for left, part in zip(remaining, share, strict=True)]
        vbds.append(
            Vbd(
                devid=768 + 64 * position,
                device=f"xvd{'abcd'[position]}",
                backend=VbdBackend.TAPDISK3,
                rd_reqs=share[0],
                wr_reqs=share[1],
                rd_sectors=share[2],
                wr_sectors=share[3],
            )
        )
    return vbds


def make_domain(
    domid: int,
    name: str,
    flags: DomainFlag,
    cpu_ns: int,
    mem_kib: int,
    maxmem_kib: int | None,
    vcpus: Sequence[Vcpu] | int,
    vbds: list[Vbd] | None = None,
    vifs: list[Vif] | None = None,
    vcpus_max: int | None = None,
) -> Domain:
    if isinstance(vcpus, int):
        vcpus = [Vcpu(index, True, cpu_ns // vcpus) for index in range(vcpus)]
    return Domain(
        id=domid,
        name=name,
        uuid=uuid_of(domid),
        type=DomainType.PV if domid == 0 else DomainType.HVM,
        flags=flags,
        cpu_ns=cpu_ns,
        mem_kib=mem_kib,
        maxmem_kib=maxmem_kib,
        vcpus=list(vcpus),
        vcpus_max=len(vcpus) if vcpus_max is None else vcpus_max,
        vbds=vbds or [],
        vifs=vifs or [],
    )


def i_vm04_vcpus(seconds: Sequence[int]) -> list[Vcpu]:
    """i-vm04 runs 4 of its 8 vCPUs: xentop counts 8 in VCPUS (max_vcpu_id + 1) but lists 4 with -v."""
    return [Vcpu(index, True, secs * SECOND + 1) for index, secs in enumerate(seconds)] + [
        Vcpu(index, False, 0) for index in range(len(seconds), 8)
    ]


# The capture of `xentop -b -i 2 -d 1`. Names are the real ones as far as xentop shows them;
# two are longer here, as their 10 characters suggest, to exercise the truncation.
# (domid, name, flags, CPU seconds, CPU(%) in iteration 2, MEM(k), MAXMEM(k), vcpus, vbds,
#  VBD_RD, VBD_WR, VBD_RSECT, VBD_WSECT)
CAPTURE = [
    (1, "b-vm-01", B, 30479, 1.6, 8388596, 8389620, 4, 2, 1333757, 8634521, 112690741, 87614100),
    (0, "Domain-0", R, 330256, 10.6, 6078464, 6078464, 12, 0, 0, 0, 0, 0),
    (2, "f-vm-02", B, 38107, 0.5, 4194292, 4195316, 2, 2, 9093848, 13998648, 685047429, 424867416),
    (3, "h-vm-03-sandbox", B, 4069, 2.9, 4196328, 4197352, 2, 1, 317002, 347156, 9036992, 8414025),
    (4, "i-vm04", B, 19, 1.3, 8390632, 8391656, 4, 1, 24163, 1357, 1008055, 28920),
    (5, "n-vm-05-x", B, 10482, 0.3, 4194292, 4195316, 2, 2, 1603173, 2990090, 33136282, 29349388),
    (6, "r-vm-06 prod", B, 13749, 0.4, 2097140, 2098164, 2, 1, 19961, 1436385, 858542, 19087516),
    (7, "s-vm 007", B, 40174, 1.6, 8388596, 8389620, 4, 2, 1206680, 3036137, 64463369, 220737261),
    (8, "xvm", B, 76038, 2.2, 2097140, 2098164, 2, 1, 169903, 4889382, 5231610, 66013056),
]
# What changed in the second iteration: domid -> (WR, WSECT).
CAPTURE_WRITES_2 = {3: (347166, 8414737), 7: (3036140, 220737293), 8: (4889431, 66013528)}


def capture_sample(iteration: int) -> Sample:
    domains = []
    for domid, name, flags, secs, pct, mem, maxmem, vcpus, nvbds, rd, wr, rsect, wsect in CAPTURE:
        # Sub-second part, so that CPU(sec) must be an integer division; the second sample
        # adds exactly pct % of one CPU over its 1 s interval.
        cpu_ns = secs * SECOND + 123_456_789
        if iteration == 2:
            cpu_ns += round(pct * 10_000_000)
            wr, wsect = CAPTURE_WRITES_2.get(domid, (wr, wsect))
        vcpu_list: list[Vcpu] | int = i_vm04_vcpus([7, 4, 4, 3]) if name == "i-vm04" else vcpus
        domains.append(
            make_domain(
                domid, name, flags, cpu_ns, mem, maxmem, vcpu_list, split_vbds(nvbds, rd, wr, rsect, wsect)
            )
        )
    # The backend's order is not xentop's: the formatter sorts.
    domains.sort(key=lambda domain: domain.id)
    return Sample(monotonic=1000.0 + iteration, wall=1_714_564_800.0 + iteration, host=HOST, domains=domains)


def tapdisk(devid: int, rd: int, wr: int, rsect: int, wsect: int) -> Vbd:
    return Vbd(devid, "xvda", VbdBackend.TAPDISK3, rd_reqs=rd, wr_reqs=wr, rd_sectors=rsect, wr_sectors=wsect)


def vcpus_of(seconds: Sequence[int]) -> list[Vcpu]:
    return [Vcpu(index, True, secs * SECOND + 999_999_999) for index, secs in enumerate(seconds)]


def nxv_sample() -> Sample:
    """The first five domains of the `xentop -b -i 1 -n -x -v` reference."""
    domains = [
        make_domain(
            1,
            "b-vm-01",
            B,
            30479 * SECOND,
            8388596,
            8389620,
            vcpus_of([5674, 9495, 6266, 9041]),
            [
                tapdisk(768, 1005218, 8634509, 84687195, 87613628),
                tapdisk(832, 328539, 19, 28003546, 552),
            ],
        ),
        make_domain(
            0,
            "Domain-0",
            R,
            330258 * SECOND,
            6078464,
            6078464,
            vcpus_of([35561, 28451, 28624, 27217, 27311, 27001, 26425, 25828, 25779, 26134, 25617, 26306]),
        ),
        make_domain(
            2,
            "f-vm-02",
            B,
            38107 * SECOND,
            4194292,
            4195316,
            vcpus_of([18969, 19138]),
            [
                tapdisk(768, 1627926, 166175, 104674856, 1669872),
                tapdisk(832, 7465922, 13832473, 580372573, 423197544),
            ],
        ),
        make_domain(
            3,
            "h-vm-03-sandbox",
            B,
            4070 * SECOND,
            4196328,
            4197352,
            vcpus_of([2117, 1952]),
            [tapdisk(768, 317002, 347204, 9036992, 8415073)],
        ),
        make_domain(
            4,
            "i-vm04",
            B,
            20 * SECOND,
            8390632,
            8391656,
            i_vm04_vcpus([7, 4, 4, 3]),
            [tapdisk(768, 26361, 1532, 1084455, 37544)],
        ),
    ]
    return Sample(monotonic=5.0, wall=1_714_564_800.0, host=HOST, domains=domains[::-1])


def simple_domain(domid: int, name: str, **changes: object) -> Domain:
    domain = make_domain(domid, name, B, 5 * SECOND, 1024, 2048, 1, [Vbd(51712, "xvda")])
    for attribute, value in changes.items():
        setattr(domain, attribute, value)
    return domain


def sample_of(*domains: Domain, monotonic: float = 10.0) -> Sample:
    return Sample(monotonic=monotonic, wall=0.0, host=HOST, domains=list(domains))


def xentop(sample: Sample, rates: dict[str, DomainRates] | None = None, **options: bool) -> str:
    return XentopFormatter(BatchOptions(**options)).format(sample, rates or {})  # type: ignore[arg-type]


def cell(line: str, title: str, header: str = HEADER) -> str:
    """The cell of ``line`` under ``title``: cells are right-aligned under right-aligned titles."""
    start = header.index(title)
    return line[len(header[:start].rstrip(" ")) : start + len(title)].strip()


# --- byte for byte against real xentop output ---------------------------------------------------


def test_first_iteration_matches_real_xentop() -> None:
    expected = iterations_of(read_fixture("xentop-b-i2-d1.txt"))[0]
    assert xentop(capture_sample(1)) == expected


def test_second_iteration_with_cpu_percent_matches_real_xentop() -> None:
    first, second = capture_sample(1), capture_sample(2)
    expected = iterations_of(read_fixture("xentop-b-i2-d1.txt"))[1]
    assert xentop(second, compute_rates(first, second)) == expected


def test_both_iterations_from_one_formatter_match_real_xentop() -> None:
    formatter = XentopFormatter(BatchOptions())
    first, second = capture_sample(1), capture_sample(2)
    text = formatter.format(first, compute_rates(None, first)) + formatter.format(
        second, compute_rates(first, second)
    )
    assert text == read_fixture("xentop-b-i2-d1.txt")


def test_vcpus_networks_vbds_match_real_xentop() -> None:
    output = xentop(nxv_sample(), networks=True, vbds=True, vcpus=True)
    assert output == read_fixture("xentop-b-nxv.txt")


# --- xentop layout ---------------------------------------------------------------------------------


def test_header_is_the_xentop_header() -> None:
    assert xentop(capture_sample(1)).splitlines(keepends=True)[0] == HEADER


def test_no_domains_prints_nothing() -> None:
    assert xentop(sample_of()) == ""


def test_repeat_header_before_every_domain() -> None:
    plain = xentop(capture_sample(1)).splitlines(keepends=True)
    lines = xentop(capture_sample(1), repeat_header=True).splitlines(keepends=True)
    assert lines[0::2] == [HEADER] * len(CAPTURE)
    assert lines[1::2] == plain[1:]
    # Sub-rows stay with their domain, after it and before the next header.
    lines = xentop(capture_sample(1), repeat_header=True, vcpus=True).splitlines(keepends=True)
    assert lines.count(HEADER) == len(CAPTURE)
    assert [lines[lines.index(row) - 1] for row in plain[1:]] == [HEADER] * len(CAPTURE)


def test_sort_is_case_insensitive_by_name() -> None:
    domains = [simple_domain(3, "charlie"), simple_domain(1, "Beta"), simple_domain(0, "Domain-0")]
    domains.append(simple_domain(2, "alpha"))
    assert [d.name for d in sort_domains(domains, dom0_first=False)] == [
        "alpha",
        "Beta",
        "charlie",
        "Domain-0",
    ]
    assert [d.name for d in sort_domains(domains, dom0_first=True)] == [
        "Domain-0",
        "alpha",
        "Beta",
        "charlie",
    ]


def test_dom0_first_in_output() -> None:
    rows = xentop(capture_sample(1), dom0_first=True).splitlines()[1:]
    names = [row[:10].strip() for row in rows]
    assert names == [
        "Domain-0",
        "b-vm-01",
        "f-vm-02",
        "h-vm-03-sa",
        "i-vm04",
        "n-vm-05-x",
        "r-vm-06 pr",
        "s-vm 007",
        "xvm",
    ]


def test_names_truncated_to_ten_characters() -> None:
    output = xentop(sample_of(simple_domain(1, "a-very-long-domain-name-25")))
    assert output.splitlines()[1].startswith("a-very-lon --b---")


def test_full_name_widens_and_keeps_the_width() -> None:
    formatter = XentopFormatter(BatchOptions(full_name=True))
    long_name = "a-domain-name-of-25-chars"
    assert len(long_name) == 25
    first = formatter.format(sample_of(simple_domain(1, long_name), simple_domain(2, "web")), {})
    header, long_row, short_row = first.splitlines()
    assert header == " " * 21 + "NAME" + HEADER.rstrip("\n")[10:]
    assert long_row.startswith(long_name + " --b---")
    assert short_row.startswith(" " * 22 + "web --b---")
    # The long-named domain is gone: the column keeps its width, as xentop's does.
    second = formatter.format(sample_of(simple_domain(2, "web")), {})
    assert second.splitlines()[0] == header
    assert second.splitlines()[1] == short_row
    assert formatter.name_width == 25


def test_full_name_keeps_short_names_at_ten() -> None:
    assert (
        xentop(sample_of(simple_domain(1, "web")), full_name=True).splitlines()[1].startswith("       web ")
    )


def test_no_memory_limit() -> None:
    output = xentop(sample_of(simple_domain(1, "web", maxmem_kib=None)))
    row = output.splitlines()[1]
    assert "1024    0.0   no limit       n/a     1" in row
    assert (cell(row, "MAXMEM(k)"), cell(row, "MAXMEM(%)")) == ("no limit", "n/a")
    assert len(row) == len(HEADER) - 1


def test_all_vbds_errored_prints_dashes() -> None:
    broken = [Vbd(768, "xvda", error=True), Vbd(832, "xvdb", error=True)]
    row = xentop(sample_of(simple_domain(1, "web", vbds=broken))).splitlines()[1]
    assert row.endswith("    2        -        -        -          -          -    0")
    assert len(row) == len(HEADER) - 1


def test_errored_vbd_left_out_of_the_totals() -> None:
    vbds = [tapdisk(768, 10, 20, 30, 40), Vbd(832, "xvdb", rd_reqs=99, error=True)]
    row = xentop(sample_of(simple_domain(1, "web", vbds=vbds))).splitlines()[1]
    assert row.endswith("    2        0       10       20         30         40    0")


def test_no_vbds_prints_zeros() -> None:
    row = xentop(sample_of(simple_domain(1, "web", vbds=[]))).splitlines()[1]
    assert row.endswith("    0        0        0        0          0          0    0")


def test_counter_columns_widen_to_fit_and_reset_next_iteration() -> None:
    huge = simple_domain(
        1,
        "web",
        vifs=[Vif(0, "vif1.0", rx_bytes=123_456_789_012_345 * 1024)],  # xentop's NETTX: what the guest received
        vbds=[tapdisk(768, 99_999_999, 1, 12_345_678_901, 1)],
    )
    formatter = XentopFormatter(BatchOptions())
    header, row = formatter.format(sample_of(huge, simple_domain(2, "x")), {}).splitlines()[:2]
    # NETTX(k) holds 15 digits; VBD_RD widens to 9 for an 8-digit value, as xentop's
    # floor(log10(value + 1)) + 1 does at 99999999; VBD_RSECT to 11.
    assert "        NETTX(k) NETRX(k)" in header
    assert "    1    1 123456789012345        0    1" in row
    assert "    VBD_RD   VBD_WR   VBD_RSECT  VBD_WSECT" in header
    assert " 99999999        1 12345678901          1    0" in row
    assert len(row) == len(header)
    small = formatter.format(sample_of(simple_domain(2, "x")), {})
    assert small.splitlines()[0] == HEADER.rstrip("\n")


def test_vcpu_row_skips_offline_but_keeps_indices() -> None:
    vcpus = [Vcpu(0, True, 3 * SECOND), Vcpu(1, False, 0), Vcpu(2, True, 2_999_999_999)]
    vcpus += [Vcpu(index, False, 0) for index in (3, 4)] + [Vcpu(5, True, 12_345_678 * SECOND)]
    output = xentop(sample_of(simple_domain(1, "web", vcpus=vcpus, vcpus_max=6)), vcpus=True)
    row, vcpu_row, wrapped = output.splitlines()[1:]
    assert cell(row, "VCPUS") == "6"  # every vCPU, as xentop counts them
    assert vcpu_row == "VCPUs(sec):   0:          3s  2:          2s"
    assert wrapped == "          5:   12345678s"


def test_network_rows() -> None:
    vifs = [
        Vif(0, "vif1.0", rx_bytes=1, rx_packets=2, rx_errors=3, rx_drops=4, tx_bytes=5, tx_packets=6),
        Vif(1, "vif1.1", tx_errors=7, tx_drops=123_456_789),
    ]
    output = xentop(sample_of(simple_domain(1, "web", vifs=vifs)), networks=True)
    # xentop's RX is dom0's end of the vif: what the guest sent (`Vif` counts from the guest's side)
    assert output.splitlines()[2:] == [
        "Net0 RX:        5bytes        6pkts        0err        0drop  "
        "TX:        1bytes        2pkts        3err        4drop",
        "Net1 RX:        0bytes        0pkts        7err 123456789drop  "
        "TX:        0bytes        0pkts        0err        0drop",
    ]
    assert cell(output.splitlines()[1], "NETS") == "2"


def test_vbd_rows_types_and_errors() -> None:
    vbds = [
        Vbd(51712, "xvda", VbdBackend.BLKBACK, oo_reqs=1, rd_reqs=2, wr_reqs=3, rd_sectors=4, wr_sectors=5),
        Vbd(2049, "hda1", VbdBackend.BLKTAP),
        Vbd(51728, "xvdb", VbdBackend.QDISK, error=True),
    ]
    output = xentop(sample_of(simple_domain(1, "web", vbds=vbds)), vbds=True)
    assert output.splitlines()[2:] == [
        "VBD BlkBack 51712 [ca: 0]  OO:        1   RD:        2   WR:        3   RSECT:          4   "
        "WSECT:          5",
        "VBD BlkTap 2049 [ 8: 1]  OO:        0   RD:        0   WR:        0   RSECT:          0   "
        "WSECT:          0",
        "VBD Unidentified 51728 [ca:10]  OO:        -   RD:        -   WR:        -   RSECT:          -   "
        "WSECT:          -",
    ]


def test_subrow_order_is_vcpus_networks_vbds() -> None:
    domain = simple_domain(1, "web", vifs=[Vif(0, "vif1.0")])
    lines = xentop(sample_of(domain), vcpus=True, networks=True, vbds=True).splitlines()
    assert [line[:4] for line in lines[2:]] == ["VCPU", "Net0", "VBD "]


# --- untrusted names ----------------------------------------------------------------------------

EVIL = "\x1b]0;pwned\x07evil\u202e\r\n\u200bvm"


def test_control_characters_never_reach_xentop_or_csv_output() -> None:
    sample = sample_of(simple_domain(1, EVIL), simple_domain(2, "web"))
    for output in (
        xentop(sample),
        xentop(sample, full_name=True),
        CsvFormatter(BatchOptions()).format(sample, {}),
    ):
        assert not any(char in output for char in "\x1b\x07\u202e\r\u200b")
        assert output.count("\n") == 3
    assert "\\x1b]0;pwned\\x07evil\\u202e\\x0d\\x0a\\u200bvm" in xentop(sample, full_name=True)
    assert xentop(sample).splitlines()[1].startswith("\\x1b]0;pwn ")


def test_json_carries_the_exact_name() -> None:
    sample = sample_of(simple_domain(1, EVIL), simple_domain(2, "web"))
    line = JsonFormatter(BatchOptions()).format(sample, {})
    assert line.isascii() and line.count("\n") == 1 and line.endswith("\n")
    names = [domain["name"] for domain in json.loads(line)["domains"]]
    assert EVIL in names


# --- CSV --------------------------------------------------------------------------------------------


def test_csv_parses_back() -> None:
    formatter = CsvFormatter(BatchOptions(dom0_first=True))
    first, second = capture_sample(1), capture_sample(2)
    rows = list(csv.reader(io.StringIO(formatter.format(first, compute_rates(None, first)))))
    assert tuple(rows[0]) == CSV_COLUMNS
    records = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    assert [record["name"] for record in records][:3] == ["Domain-0", "b-vm-01", "f-vm-02"]
    dom0 = records[0]
    assert dom0["id"] == "0" and dom0["uuid"] == uuid_of(0) and dom0["flags"] == "-----r"
    assert dom0["state"] == "running" and dom0["type"] == "pv" and dom0["time"] == "2024-05-01T12:00:01.000Z"
    assert dom0["cpu_pct"] == "" and dom0["net_tx_bps"] == ""
    assert (dom0["mem_kib"], dom0["vcpus"], dom0["vbds"], dom0["vbd_rd"]) == ("6078464", "12", "0", "0")
    assert float(dom0["cpu_s"]) == pytest.approx(330256.123, abs=1e-3)
    i_vm04 = next(record for record in records if record["name"] == "i-vm04")
    assert (i_vm04["vcpus"], i_vm04["vcpus_max"]) == ("4", "8")
    # Later calls add rows only.
    rows = list(csv.reader(io.StringIO(formatter.format(second, compute_rates(first, second)))))
    assert len(rows) == len(CAPTURE)
    assert rows[0][1:3] == ["0", "Domain-0"] and rows[0][CSV_COLUMNS.index("cpu_pct")] == "10.6"


def test_csv_empty_cells_for_nulls() -> None:
    domain = simple_domain(1, "web", maxmem_kib=None, vbds=[Vbd(768, "xvda", error=True)])
    rows = list(csv.reader(io.StringIO(CsvFormatter(BatchOptions()).format(sample_of(domain), {}))))
    record = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert record["maxmem_kib"] == "" and record["vbd_rd"] == "" and record["vbd_wsect"] == ""


# --- JSON ---------------------------------------------------------------------------------------------


def test_json_lines_with_rates_from_the_second_sample() -> None:
    formatter = JsonFormatter(BatchOptions())
    first, second = capture_sample(1), capture_sample(2)
    line1 = formatter.format(first, compute_rates(None, first))
    line2 = formatter.format(second, compute_rates(first, second))
    doc1, doc2 = json.loads(line1), json.loads(line2)
    assert doc1["time"] == "2024-05-01T12:00:01.000Z"
    assert [domain["cpu_pct"] for domain in doc1["domains"]] == [None] * len(CAPTURE)
    assert [domain["cpu_pct"] for domain in doc2["domains"]] == [1.6, 10.6, 0.5, 2.9, 1.3, 0.3, 0.4, 1.6, 2.2]
    host = doc2["host"]
    assert host["total_kib"] == HOST.total_kib and host["used_kib"] == HOST.total_kib - HOST.free_kib
    assert host["domains_by_state"]["blocked"] == 8 and host["domains_by_state"]["running"] == 1
    h_vm = doc2["domains"][3]
    assert h_vm["name"] == "h-vm-03-sandbox"
    assert (h_vm["vbd_rd"], h_vm["vbd_wr"], h_vm["vbd_rsect"], h_vm["vbd_wsect"]) == (
        317002,
        347166,
        9036992,
        8414737,
    )
    assert h_vm["vbd_wr_bps"] == (8414737 - 8414025) * 512 and h_vm["vbd_rd_bps"] == 0
    assert h_vm["mem_pct"] == 4.2 and h_vm["maxmem_pct"] == 4.2 and h_vm["cpu_s"] == 4069.152
    assert "vifs" not in h_vm and "vbd_devices" not in h_vm and "vcpu_s" not in h_vm


def test_json_nulls() -> None:
    domain = simple_domain(1, "web", maxmem_kib=None, vbds=[Vbd(768, "xvda", error=True)])
    record = json.loads(JsonFormatter(BatchOptions()).format(sample_of(domain), {}))["domains"][0]
    assert record["maxmem_kib"] is None and record["maxmem_pct"] is None
    assert [record[key] for key in ("vbd_oo", "vbd_rd", "vbd_wr", "vbd_rsect", "vbd_wsect")] == [None] * 5
    assert record["net_tx_bps"] is None and record["vbd_rd_bps"] is None


def test_json_details_with_n_x_v() -> None:
    def domain(tx: int, rd_sectors: int, cpu_ns: int) -> Domain:
        return simple_domain(
            1,
            "web",
            vifs=[Vif(0, "vif1.0", mac="00:16:3e:00:00:01", bridge="xenbr0", tx_bytes=tx)],
            vbds=[
                Vbd(51712, "xvda", path="/dev/vg/web", rd_sectors=rd_sectors),
                Vbd(51728, "xvdb", error=True),
            ],
            vcpus=[Vcpu(0, True, cpu_ns), Vcpu(1, False, 0)],
        )

    before = sample_of(domain(1000, 10, SECOND), monotonic=10.0)
    after = sample_of(domain(3000, 14, 2 * SECOND), monotonic=12.0)
    options = BatchOptions(format=BatchFormat.JSON, networks=True, vbds=True, vcpus=True)
    record = json.loads(make_formatter(options).format(after, compute_rates(before, after)))["domains"][0]
    assert record["vifs"] == [
        {
            "devid": 0,
            "ifname": "vif1.0",
            "mac": "00:16:3e:00:00:01",
            "bridge": "xenbr0",
            "rx_bytes": 0,
            "rx_packets": 0,
            "rx_errors": 0,
            "rx_drops": 0,
            "tx_bytes": 3000,
            "tx_packets": 0,
            "tx_errors": 0,
            "tx_drops": 0,
            "rx_bps": 0.0,
            "tx_bps": 1000.0,
        }
    ]
    assert record["vbd_devices"][0] == {
        "devid": 51712,
        "device": "xvda",
        "backend": "blkback",
        "path": "/dev/vg/web",
        "oo": 0,
        "rd": 0,
        "wr": 0,
        "rsect": 14,
        "wsect": 0,
        "rd_bps": 1024.0,
        "wr_bps": 0.0,
    }
    assert record["vbd_devices"][1]["rsect"] is None and record["vbd_devices"][1]["rd_bps"] is None
    assert record["vcpu_s"] == [
        {"index": 0, "online": True, "cpu_s": 2.0, "cpu_pct": 50.0},
        {"index": 1, "online": False, "cpu_s": 0.0, "cpu_pct": 0.0},
    ]
    assert (record["vcpus"], record["vcpus_max"], record["net_tx_bps"]) == (1, 2, 1000.0)


# --- make_formatter and run_batch ----------------------------------------------------------------------


def test_make_formatter() -> None:
    assert isinstance(make_formatter(BatchOptions()), XentopFormatter)
    assert isinstance(make_formatter(BatchOptions(format=BatchFormat.CSV)), CsvFormatter)
    assert isinstance(make_formatter(BatchOptions(format=BatchFormat("json"))), JsonFormatter)


class FakeBackend:
    """Just enough of a Backend for run_batch: prepared samples, in order."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = list(samples)
        self.calls = 0

    async def sample(self) -> Sample:
        self.calls += 1
        return self.samples.pop(0)


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.mark.asyncio
async def test_run_batch_two_iterations() -> None:
    backend = FakeBackend([capture_sample(1), capture_sample(2), capture_sample(2)])
    out = io.StringIO()
    sleep = RecordingSleep()
    await run_batch(cast(Backend, backend), BatchOptions(iterations=2, delay=1.0), out, sleep=sleep)
    assert out.getvalue() == read_fixture("xentop-b-i2-d1.txt")
    assert sleep.delays == [1.0]
    assert backend.calls == 2


@pytest.mark.asyncio
async def test_run_batch_json_lines() -> None:
    backend = FakeBackend([capture_sample(1), capture_sample(2)])
    out = io.StringIO()
    options = BatchOptions(format=BatchFormat.JSON, iterations=2, delay=0.5)
    await run_batch(cast(Backend, backend), options, out, sleep=RecordingSleep())
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["domains"][0]["cpu_pct"] is None
    assert json.loads(lines[1])["domains"][0]["cpu_pct"] == 1.6


class BrokenPipe(io.StringIO):
    def __init__(self, on: str) -> None:
        super().__init__()
        self.on = on

    def write(self, text: str) -> int:
        if self.on == "write":
            raise BrokenPipeError
        return super().write(text)

    def flush(self) -> None:
        if self.on == "flush":
            raise BrokenPipeError


@pytest.mark.asyncio
@pytest.mark.parametrize("on", ["write", "flush"])
async def test_run_batch_stops_quietly_on_broken_pipe(on: str) -> None:
    backend = FakeBackend([capture_sample(1), capture_sample(2)])
    sleep = RecordingSleep()
    await run_batch(cast(Backend, backend), BatchOptions(iterations=None), BrokenPipe(on), sleep=sleep)
    assert backend.calls == 1 and sleep.delays == []


@pytest.mark.asyncio
async def test_run_batch_lets_backend_errors_through() -> None:
    class Failing:
        async def sample(self) -> Sample:
            raise BackendError("xl list failed")

    with pytest.raises(BackendError, match="xl list failed"):
        await run_batch(
            cast(Backend, Failing()), BatchOptions(iterations=1), io.StringIO(), sleep=RecordingSleep()
        )


# --- figures a backend could not give -------------------------------------------------------------


def _no_sector_counts(monotonic: float, rd: int, rsect: int) -> Sample:
    """A domain from an old xentop log (no VBD_RSECT/VBD_WSECT columns): its sectors are unknown."""
    domain = simple_domain(
        1, "old", vbds=[Vbd(768, "xvda", VbdBackend.BLKBACK, rd_reqs=rd, rd_sectors=rsect)],
        unknown=frozenset({UNKNOWN_VBD_SECTORS}),
    )
    return sample_of(domain, monotonic=monotonic)


def test_unknown_sector_counts_are_null_in_json_and_empty_in_csv() -> None:
    first, second = _no_sector_counts(10.0, 5, 0), _no_sector_counts(11.0, 9, 0)
    rates = compute_rates(first, second)
    record = json.loads(JsonFormatter(BatchOptions(vbds=True)).format(second, rates))["domains"][0]
    assert (record["vbd_rd"], record["vbd_oo"]) == (9, 0)  # what the old layout has stays
    assert [record[key] for key in ("vbd_rsect", "vbd_wsect", "vbd_rd_bps", "vbd_wr_bps")] == [None] * 4
    assert record["unknown"] == ["vbd_sectors"]
    device = record["vbd_devices"][0]
    assert (device["rd"], device["rsect"], device["wsect"], device["rd_bps"]) == (9, None, None, None)
    rows = list(csv.reader(io.StringIO(CsvFormatter(BatchOptions()).format(second, rates))))
    cells = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert (cells["vbd_rd"], cells["vbd_rsect"], cells["vbd_wsect"]) == ("9", "", "")


def test_unknown_sector_counts_print_dashes_in_the_xentop_layout() -> None:
    text = xentop(_no_sector_counts(10.0, 5, 0), vbds=True)
    header, row, vbd_row = text.splitlines()
    assert cell(row, "VBD_RD") == "5" and cell(row, "VBD_RSECT") == "-" and cell(row, "VBD_WSECT") == "-"
    assert len(row) == len(header)
    assert vbd_row.endswith("RD:        5   WR:        0   RSECT:          -   WSECT:          -")


def test_host_figures_not_reported_are_null_in_json() -> None:
    host = Host("h", "Xen", "unknown", 0, 0, HOST.total_kib, HOST.free_kib)
    sample = Sample(monotonic=1.0, wall=0.0, host=host, domains=[simple_domain(1, "web")])
    document = json.loads(JsonFormatter(BatchOptions()).format(sample, {}))
    assert document["host"]["nr_cpus"] is None and document["host"]["cpu_mhz"] is None
    assert json.loads(JsonFormatter(BatchOptions()).format(sample_of(simple_domain(1, "web")), {}))["host"][
        "nr_cpus"] == 12


class EndingBackend(FakeBackend):
    """A backend that says, as a replay does, when it has nothing more to give."""

    finished: str | None = None

    async def sample(self) -> Sample:
        if len(self.samples) == 1:
            self.finished = "the recording ended"
            return self.samples[0]
        return await super().sample()


@pytest.mark.asyncio
async def test_run_batch_stops_when_the_backend_finished() -> None:
    backend = EndingBackend([capture_sample(1), capture_sample(2), capture_sample(2)])
    out = io.StringIO()
    await run_batch(cast(Backend, backend), BatchOptions(iterations=10, delay=1.0), out, sleep=RecordingSleep())
    assert out.getvalue() == read_fixture("xentop-b-i2-d1.txt")  # the repeated last sample is not printed
