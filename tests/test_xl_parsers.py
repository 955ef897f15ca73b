"""xentui.backends.xl_parsers against real xl output, layouts computed from xl's printf formats, and fuzzing.

Real samples live in tests/fixtures/xl-*.txt with their provenance in leading '#' lines, which the
tests strip (the parsers know nothing about comments). Rows quoted inline below are computed from the
printf formats in shared/reference/xl-formats.txt, not captured.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xentui.backends.xl_parsers import (
    ParseError,
    XlDiskConfig,
    XlSched,
    XlVifConfig,
    parse_xl_info,
    parse_xl_list,
    parse_xl_list_long,
    parse_xl_sched_credit,
    parse_xl_vcpu_list,
    xl_info_host,
)
from xentui.errors import BackendError
from xentui.model import DomainFlag, DomainType

FIXTURES = Path(__file__).parent / "fixtures"


def sample(name: str) -> str:
    """A fixture without its leading provenance comments."""
    lines = (FIXTURES / name).read_text().split("\n")
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "\n".join(lines)


LIST = sample("xl-list.txt")
LIST_MANPAGE = sample("xl-list-manpage.txt")
LIST_V_SPACES = sample("xl-list-v-spaces.txt")
VCPU_LIST = sample("xl-vcpu-list.txt")
INFO_OPENSUSE = sample("xl-info-opensuse.txt")
INFO_INTEL = sample("xl-info-intel.txt")
LIST_LONG = (FIXTURES / "xl-list-l.json").read_text()

LIST_HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)"
# Computed from xl-formats.txt ("%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f"), not captured.
LIST_COMPUTED = f"""{LIST_HEADER}
Domain-0                                     0  4096     4     r-----    1234.5
web-frontend-01                              3  2048     2     -b----      56.7
crashy                                       7  1024     1     ---sc-       0.3
paused-vm                                    9   512     1     --p---       0.0
"""
SCHED_HEADER = "Name                                ID Weight  Cap"
# Computed from xl-formats.txt (pool line formats, "%-33s %4d %6d %4d"), not captured.
SCHED_CREDIT = f"""Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us
{SCHED_HEADER}
Domain-0                             0    256    0
web01                                7    512   50
"""
SCHED_CREDIT2_OLD = """Cpupool Pool-0: ratelimit=1000us
Name                                ID Weight
Domain-0                             0    256
my vm                               12    128
"""


def list_row(name: str, domid: int, mem: int, vcpus: int, state: str, seconds: float) -> str:
    return f"{name:<40} {domid:5d} {mem:5d} {vcpus:5d}     {state}  {seconds:8.1f}"


def vcpu_row(name: str, domid: int, vcpu: int, cpu: int | None, state: str, seconds: float, hard: str,
             soft: str) -> str:
    cpu_text = f"{'-':>5}" if cpu is None else f"{cpu:5d}"
    return f"{name:<32} {domid:5d} {vcpu:5d}{cpu_text} {state[0]:>3}{state[1:]} {seconds:9.1f}  {hard} / {soft}"


# --- xl list ------------------------------------------------------------------------------------


def test_xl_list_real_sample():
    assert "\t" in LIST.split("\n")[0]  # the capture keeps xl's TABs in the header
    dom0, win10 = parse_xl_list(LIST)
    assert (dom0.name, dom0.domid, dom0.mem_mib, dom0.vcpus, dom0.cpu_s) == ("Domain-0", 0, 16384, 8, 468.8)
    assert dom0.flags == DomainFlag.RUNNING
    assert dom0.shutdown_reason is None
    assert dom0.uuid is None
    assert (win10.name, win10.domid, win10.mem_mib, win10.vcpus, win10.cpu_s) == ("win10", 2, 8192, 4, 75.8)


def test_xl_list_man_page_sample_with_spaces_instead_of_tabs():
    entries = parse_xl_list(LIST_MANPAGE)
    assert [(e.name, e.domid, e.mem_mib, e.vcpus, e.cpu_s) for e in entries] == [
        ("Domain-0", 0, 750, 4, 11794.3), ("win", 1, 1019, 1, 0.3), ("linux", 2, 2048, 2, 5624.2),
    ]


def test_xl_list_v_with_spaces_in_names_and_wide_times():
    entries = parse_xl_list(LIST_V_SPACES)
    assert len(entries) == 7
    assert [e.name for e in entries[1:3]] == ["SQL LUBSS227", "SQL LUBSS239"]
    dom0 = entries[0]
    assert (dom0.cpu_s, dom0.mem_mib, dom0.uuid) == (3438256.3, 738, "8f778ca0-54be-4542-9116-c4218b5f210a")
    iis = entries[5]
    assert (iis.name, iis.domid, iis.vcpus, iis.flags, iis.cpu_s) == ("IIS LUBSIIS12", 20, 4, DomainFlag.BLOCKED,
                                                                      173538.5)


def test_xl_list_computed_rows_crashed_and_paused():
    entries = {e.name: e for e in parse_xl_list(LIST_COMPUTED)}
    assert entries["crashy"].flags == DomainFlag.CRASHED | DomainFlag.SHUTDOWN
    assert entries["crashy"].shutdown_reason == "crash"
    assert entries["paused-vm"].flags == DomainFlag.PAUSED
    assert entries["paused-vm"].cpu_s == 0.0
    assert entries["web-frontend-01"].flags == DomainFlag.BLOCKED


@pytest.mark.parametrize(
    ("state", "flags", "reason"),
    [
        ("r-----", DomainFlag.RUNNING, None),
        ("------", DomainFlag.NONE, None),
        ("---s--", DomainFlag.SHUTDOWN, "poweroff"),  # reason 0 is printed as '-'
        ("---sr-", DomainFlag.SHUTDOWN, "reboot"),
        ("---ss-", DomainFlag.SHUTDOWN, "suspend"),
        ("---sc-", DomainFlag.SHUTDOWN | DomainFlag.CRASHED, "crash"),
        ("---sw-", DomainFlag.SHUTDOWN, "watchdog"),
        ("---sS-", DomainFlag.SHUTDOWN, "soft_reset"),
        ("---s?-", DomainFlag.SHUTDOWN, "unknown"),
        ("--ps-d", DomainFlag.PAUSED | DomainFlag.SHUTDOWN | DomainFlag.DYING, "poweroff"),
        ("rb----", DomainFlag.RUNNING | DomainFlag.BLOCKED, None),
    ],
)
def test_xl_list_state_letters_by_meaning(state: str, flags: DomainFlag, reason: str | None):
    (entry,) = parse_xl_list(f"{LIST_HEADER}\n{list_row('vm', 4, 512, 1, state, 1.5)}\n")
    assert entry.flags == flags
    assert entry.shutdown_reason == reason


def test_xl_list_names_with_spaces_and_longer_than_the_column():
    long_name = "a-domain-name-much-longer-than-forty-characters-x"
    text = "\n".join([LIST_HEADER, list_row("my  odd vm 2", 5, 256, 1, "-b----", 2.0),
                      list_row(long_name, 6, 1024, 2, "r-----", 12345678.9)])
    spaced, long_entry = parse_xl_list(text)
    assert (spaced.name, spaced.domid) == ("my  odd vm 2", 5)
    assert (long_entry.name, long_entry.domid, long_entry.cpu_s) == (long_name, 6, 12345678.9)


def test_xl_list_accepts_crlf_and_blank_lines():
    text = LIST.replace("\n", "\r\n") + "\r\n\r\n"
    assert [e.name for e in parse_xl_list(text)] == ["Domain-0", "win10"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no output"),
        ("Domain-0   0 16384     8     r-----     468.8", "header"),
        (f"{LIST_HEADER}\nDomain-0   0 16384     8     x-----     468.8", "State"),
        (f"{LIST_HEADER}\nDomain-0   0 16384     8     dsbcpr     468.8", "State"),  # xentop's order
        (f"{LIST_HEADER}\nDomain-0   0 16384     8     r-----", "columns"),
        (f"{LIST_HEADER}\nDomain-0   0 16,384    8     r-----     468.8", "Mem"),
        (f"{LIST_HEADER}\nDomain-0   0 16384     8     r-----       nan", "Time"),
        (f"{LIST_HEADER}\nDomain-0   -1 16384     8     r-----   1.0", "ID"),
    ],
)
def test_xl_list_errors_name_the_command_and_line(text: str, fragment: str):
    with pytest.raises(ParseError, match=fragment) as caught:
        parse_xl_list(text)
    assert "`xl list`" in str(caught.value)
    assert isinstance(caught.value, BackendError)
    if text.count("\n"):
        assert "(line 2)" in str(caught.value)
        assert caught.value.detail == text.split("\n")[1]


# --- xl list -l ---------------------------------------------------------------------------------


def test_xl_list_long_fixture():
    dom0, pv, hvm = parse_xl_list_long(LIST_LONG)
    assert (dom0.domid, dom0.name, dom0.type) == (0, "Domain-0", DomainType.PV)
    assert [dom0.uuid, dom0.max_memkb, dom0.target_memkb, dom0.max_vcpus, dom0.avail_vcpus] == [None] * 5
    assert (dom0.vifs, dom0.disks, dom0.sched_weight, dom0.sched_cap) == ([], [], None, None)

    assert (pv.domid, pv.name, pv.uuid, pv.type) == (3, "test-pv", "039e9ee6-4a84-3055-4c81-8ba426ae2656",
                                                     DomainType.PV)
    assert (pv.max_memkb, pv.target_memkb, pv.max_vcpus, pv.avail_vcpus) == (524288, 524288, 4, [0, 1, 2, 3])
    assert pv.vifs == [XlVifConfig(devid=0, mac="00:16:3e:3e:86:60", bridge="br0", backend_domid=None)]
    assert pv.disks == [XlDiskConfig(vdev="xvda", target="/var/lib/xen/images/test-pv.img", backend="qdisk",
                                     format="raw")]
    assert (pv.sched, pv.sched_weight, pv.sched_cap) == ("credit", 512, 50)

    assert (hvm.name, hvm.type, hvm.max_vcpus, hvm.avail_vcpus) == ("win2022 build box", DomainType.HVM, 8,
                                                                    [0, 1, 2, 3])
    assert (hvm.max_memkb, hvm.target_memkb) == (8388608, 6291456)
    assert [(d.vdev, d.backend, d.format, d.target) for d in hvm.disks] == [
        ("hda", "phy", "raw", "/dev/vg0/win2022-root"),
        ("hdb", "qdisk", "qcow2", "/srv/xen/images/win2022-data.qcow2"),
        ("hdc", "qdisk", "empty", None),
    ]
    assert [(v.devid, v.bridge, v.backend_domid) for v in hvm.vifs] == [(0, "xenbr0", None), (1, "xenbr1", 2)]
    assert (hvm.sched, hvm.sched_weight, hvm.sched_cap) == ("credit2", 256, None)


def one_domain(**b_info: Any) -> str:
    return json.dumps([{"domid": 5, "config": {"c_info": {"type": "pvh", "name": "x"}, "b_info": b_info}}])


@pytest.mark.parametrize(
    ("avail", "expected"),
    [
        ("0-3", [0, 1, 2, 3]),
        ("0-1,4,6-7", [0, 1, 4, 6, 7]),
        ("all", [0, 1, 2, 3, 4, 5]),
        ("none", []),
        ([3, 1, 1], [1, 3]),
        ([], []),
    ],
)
def test_xl_list_long_avail_vcpus_list_or_bitmap_text(avail: Any, expected: list[int]):
    (domain,) = parse_xl_list_long(one_domain(max_vcpus=6, avail_vcpus=avail))
    assert domain.avail_vcpus == expected
    assert domain.type == DomainType.PVH


def test_xl_list_long_small_details():
    text = json.dumps([
        {"domid": 1, "config": {"c_info": {"type": "PVHVM?"}, "b_info": {"sched_params": {"weight": -1, "cap": -1}},
                                "disks": [{"target": "/dev/sdb", "vdev": "xvdb"}]}},
        {"domid": 2},
    ])
    odd, bare = parse_xl_list_long(text)
    assert odd.type == DomainType.UNKNOWN
    assert (odd.sched_weight, odd.sched_cap) == (None, None)  # -1: libxl's "default"
    assert odd.disks == [XlDiskConfig(vdev="xvdb", target="/dev/sdb", backend=None, format=None)]
    assert (bare.domid, bare.name, bare.type) == (2, None, None)
    assert parse_xl_list_long("[]") == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not valid JSON"),
        ('[\n  {"domid": 0,\n  "config": {]\n', r"\(line 3\): not valid JSON"),
        ('{"domid": 0}', "expected a JSON array"),
        ("[1]", "element 0"),
        ('[{"config": {}}]', "no domid"),
        ('[{"domid": true}]', "domid should be int"),
        ('[{"domid": 1, "config": {"c_info": {"name": 7}}}]', r"config\.c_info\.name should be str"),
        ('[{"domid": 1, "config": {"b_info": {"max_memkb": 1.5}}}]', "max_memkb should be int"),
        ('[{"domid": 1, "config": {"nics": {}}}]', "nics should be list"),
        ('[{"domid": 1, "config": {"disks": ["xvda"]}}]', r"disks\[0\] should be an object"),
        ('[{"domid": 1, "config": {"b_info": {"avail_vcpus": "0-99999999"}}}]', "avail_vcpus"),
        ('[{"domid": 1, "config": {"b_info": {"avail_vcpus": "3-1"}}}]', "bad range"),
        ('[{"domid": 1, "config": {"b_info": {"avail_vcpus": [true]}}}]', "avail_vcpus"),
        ("(domain (domid 0) (create_info (name Domain-0)))", "SXP"),
        ("[" * 100_000, "JSON"),
        ("[" + "9" * 5000 + "]", "JSON"),
    ],
)
def test_xl_list_long_errors(text: str, fragment: str):
    with pytest.raises(ParseError, match=fragment) as caught:
        parse_xl_list_long(text)
    assert "`xl list -l`" in str(caught.value)


# --- xl info ------------------------------------------------------------------------------------


def test_xl_info_opensuse_sample():
    info = parse_xl_info(INFO_OPENSUSE)
    assert info["xen_changeset"] == ""
    assert info["cc_compile_date"] == ""
    assert info["xen_caps"] == "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64"  # trailing space gone
    assert info["version"] == "#1 SMP PREEMPT_DYNAMIC Thu Aug  7 07:54:52 UTC 2025 (49fcd7f)"
    assert len(info) == 34
    host = xl_info_host(info)
    assert host == {
        "hostname": "xensrv",
        "release": "6.16.0-1-default",
        "nr_cpus": 24,
        "cpu_mhz": 3693,
        "total_memory_mib": 32677,
        "free_memory_mib": 28057,
        "xen_version": "4.20.1_02-1",
        "xen_scheduler": "credit2",
        "virt_caps": ["pv", "hvm", "hvm_directio", "pv_directio", "hap", "shadow", "gnttab-v1", "gnttab-v2"],
        "hw_caps": "178bf3ff:76f8320b:2e500800:644037ff:0000000f:219c97a9:0040068c:00000780",
    }


def test_xl_info_intel_sample_without_hw_caps():
    info = parse_xl_info(INFO_INTEL)
    assert "hw_caps" not in info
    assert info["xen_changeset"] == ""  # printed without the trailing space here
    assert info["xen_commandline"].endswith("cpufreq=hwp:hdc=0;xen:performance,verbose no-real-mode edd=off")
    host = xl_info_host(info)
    assert host["hw_caps"] is None
    assert (host["hostname"], host["nr_cpus"], host["cpu_mhz"]) == ("abc.intel.com", 56, 2494)
    assert (host["total_memory_mib"], host["free_memory_mib"], host["xen_version"]) == (522954, 507728, "4.18.0")
    assert "vmtrace" in host["virt_caps"]


def test_xl_info_version_from_major_minor_extra_when_xen_version_is_absent():
    old = "\n".join(line for line in INFO_OPENSUSE.split("\n") if not line.startswith(("xen_version", "hw_caps")))
    host = xl_info_host(parse_xl_info(old))
    assert host["xen_version"] == "4.20.1_02-1"
    assert host["hw_caps"] is None


def test_xl_info_numa_tables_become_the_value_of_their_key():
    numa = (
        "cpu_topology           :\n"
        "cpu:    core    socket     node\n"
        "  0:       0        0        0\n"
        "  1:       0        0        0\n"
        "device topology        :\n"
        "device           node\n"
        "0000:00:00.0      0\n"
        "numa_info              :\n"
        "node:    memsize    memfree    distances\n"
        "   0:     32677      28057      10\n"
    )
    text = INFO_OPENSUSE.replace("xen_major              :", numa + "xen_major              :")
    info = parse_xl_info(text)
    assert info["cpu_topology"].split("\n") == ["cpu:    core    socket     node", "  0:       0        0        0",
                                                "  1:       0        0        0"]
    assert info["device topology"] == "device           node\n0000:00:00.0      0"
    assert info["numa_info"].endswith("10")
    assert info["xen_major"] == "4"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no output"),
        ("host: xensrv", "column 24"),  # not xl's layout
        ("some random words", "column 24"),
        ("host                   : x\n  0:       0        0        0", "line 2"),
    ],
)
def test_xl_info_errors(text: str, fragment: str):
    with pytest.raises(ParseError, match=fragment) as caught:
        parse_xl_info(text)
    assert "`xl info`" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"host": ""}, "no host"),
        ({"nr_cpus": None}, "no nr_cpus"),
        ({"total_memory": "32 GiB"}, "total_memory is not a number"),
        ({"cpu_mhz": "fast"}, "cpu_mhz is not a number"),
    ],
)
def test_xl_info_host_errors(change: dict[str, str | None], fragment: str):
    info = parse_xl_info(INFO_OPENSUSE)
    for key, value in change.items():
        if value is None:
            del info[key]
        else:
            info[key] = value
    with pytest.raises(ParseError, match=fragment):
        xl_info_host(info)


# --- xl vcpu-list -------------------------------------------------------------------------------


def test_xl_vcpu_list_real_sample():
    vcpus = parse_xl_vcpu_list(VCPU_LIST)
    assert len(vcpus) == 9
    first = vcpus[0]
    assert (first.name, first.domid, first.vcpu, first.cpu, first.state, first.online) == ("Domain-0", 0, 0, 14,
                                                                                           "r--", True)
    assert (first.time_s, first.affinity_hard, first.affinity_soft) == (37.9, "12-19", "all")
    offline = [v for v in vcpus if not v.online]
    assert [(v.vcpu, v.cpu, v.state, v.time_s) for v in offline] == [(8, None, "--p", 20.1), (9, None, "--p", 4.3)]
    win10 = [v for v in vcpus if v.name == "win10"]
    assert [(v.vcpu, v.cpu, v.affinity_hard) for v in win10] == [(0, 0, "0"), (1, 2, "2"), (2, 4, "4"), (3, 6, "6")]
    assert all(v.state == "-b-" and v.domid == 2 for v in win10)


def test_xl_vcpu_list_names_with_spaces_and_offline_rows_computed_from_the_format():
    header = VCPU_LIST.split("\n")[0]
    rows = [vcpu_row("web  front / 1", 3, 0, 5, "r--", 1.0, "0-3,8", "all"),
            vcpu_row("web  front / 1", 3, 1, None, "--p", 0.0, "none", "all")]
    online, offline = parse_xl_vcpu_list("\n".join([header, *rows]))
    assert (online.name, online.cpu, online.online, online.affinity_hard) == ("web  front / 1", 5, True, "0-3,8")
    assert (offline.cpu, offline.state, offline.online, offline.affinity_hard) == (None, "--p", False, "none")


def test_xl_vcpu_list_pre_4_5_layout():
    text = ("Name                                ID  VCPU   CPU State   Time(s) CPU Affinity\n"
            "Domain-0                             0     0    3   r--      15.9  any cpu\n"
            "Domain-0                             0     1    1   -b-      10.0  1\n")
    first, second = parse_xl_vcpu_list(text)
    assert (first.affinity_hard, first.affinity_soft) == ("all", "all")
    assert (second.cpu, second.affinity_hard) == (1, "1")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no output"),
        ("Name ID VCPU CPU State Time(s) Whatever", "header"),
        (VCPU_LIST.split("\n")[0] + "\nDomain-0  0  0  14  r--  37.9  12-19 all", "Hard / Soft"),
        (VCPU_LIST.split("\n")[0] + "\nDomain-0  0  0  14  rbp!  37.9  12-19 / all", "State"),
        (VCPU_LIST.split("\n")[0] + "\nDomain-0  0  0  x  r--  37.9  12-19 / all", "CPU"),
    ],
)
def test_xl_vcpu_list_errors(text: str, fragment: str):
    with pytest.raises(ParseError, match=fragment) as caught:
        parse_xl_vcpu_list(text)
    assert "`xl vcpu-list`" in str(caught.value)


# --- xl sched-credit / sched-credit2 -----------------------------------------------------------


def test_xl_sched_credit_computed_sample():
    assert parse_xl_sched_credit(SCHED_CREDIT) == [
        XlSched(name="Domain-0", domid=0, weight=256, cap=0, cpupool="Pool-0"),
        XlSched(name="web01", domid=7, weight=512, cap=50, cpupool="Pool-0"),
    ]


def test_xl_sched_credit2_without_cap_and_names_with_spaces():
    assert parse_xl_sched_credit(SCHED_CREDIT2_OLD) == [
        XlSched(name="Domain-0", domid=0, weight=256, cap=None, cpupool="Pool-0"),
        XlSched(name="my vm", domid=12, weight=128, cap=None, cpupool="Pool-0"),
    ]


def test_xl_sched_several_pools_single_domain_and_nothing():
    text = (SCHED_CREDIT + "Cpupool fast pool: [sched params unavailable]\n" + SCHED_HEADER + "\n"
            + "Cpupool x:                          9    100    0\n")
    *_, last = parse_xl_sched_credit(text)
    assert last == XlSched(name="Cpupool x:", domid=9, weight=100, cap=0, cpupool="fast pool")
    (only,) = parse_xl_sched_credit(SCHED_HEADER + "\nweb01                                7    512   50\n")
    assert (only.name, only.cpupool) == ("web01", None)
    assert parse_xl_sched_credit("") == []  # no cpupool runs this scheduler
    assert parse_xl_sched_credit("Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us\n") == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Domain-0                             0    256    0", "header"),
        (SCHED_HEADER + "\nDomain-0      0    heavy    0", "Weight"),
        (SCHED_HEADER + "\nDomain-0    256    0", "ID"),
        (SCHED_HEADER + "\n0", "name then ID Weight Cap"),
    ],
)
def test_xl_sched_credit_errors(text: str, fragment: str):
    with pytest.raises(ParseError, match=fragment) as caught:
        parse_xl_sched_credit(text)
    assert "`xl sched-credit`" in str(caught.value)


# --- properties: whatever the input, a result or a ParseError -----------------------------------

fuzz = settings(max_examples=150, deadline=None)


def info_and_host(text: str) -> object:
    return xl_info_host(parse_xl_info(text))


Parser = Callable[[str], object]
PARSERS: list[tuple[Parser, list[str]]] = [
    (parse_xl_list, [LIST, LIST_MANPAGE, LIST_V_SPACES, LIST_COMPUTED]),
    (parse_xl_vcpu_list, [VCPU_LIST]),
    (parse_xl_info, [INFO_OPENSUSE, INFO_INTEL]),
    (info_and_host, [INFO_OPENSUSE, INFO_INTEL]),
    (parse_xl_sched_credit, [SCHED_CREDIT, SCHED_CREDIT2_OLD]),
    (parse_xl_list_long, [LIST_LONG]),
]
PARSER_IDS = [parser.__name__ for parser, _ in PARSERS]

# Characters that matter to these formats, plus a few that str.split() or int() treat specially.
TRICKY = st.sampled_from([*" \t\n\r-:/.,0123456789rbpscwSd?#{}[]\"x_", "\u00a0", "\u2028", "٣", "é", "\x00"])


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """The sample after one to three edits: truncation, a line deleted or duplicated, characters inserted."""
    for _ in range(draw(st.integers(1, 3))):
        lines = text.split("\n")
        edit = draw(st.sampled_from(["truncate", "delete", "duplicate", "insert", "swap"]))
        if edit == "truncate":
            text = text[:draw(st.integers(0, len(text)))]
        elif edit == "delete":
            del lines[draw(st.integers(0, len(lines) - 1))]
            text = "\n".join(lines)
        elif edit == "duplicate":
            index = draw(st.integers(0, len(lines) - 1))
            lines.insert(draw(st.integers(0, len(lines))), lines[index])
            text = "\n".join(lines)
        elif edit == "swap":
            first, second = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[first], lines[second] = lines[second], lines[first]
            text = "\n".join(lines)
        else:
            at = draw(st.integers(0, len(text)))
            inserted = draw(st.one_of(st.text(TRICKY, min_size=1, max_size=4), st.text(min_size=1, max_size=3)))
            text = text[:at] + inserted + text[at:]
    return text


def result_or_parse_error(parser: Parser, text: str) -> None:
    try:
        parser(text)
    except ParseError as error:
        assert str(error).startswith("Unexpected `xl ")


@pytest.mark.parametrize(("parser", "samples"), PARSERS, ids=PARSER_IDS)
@fuzz
@given(data=st.data())
def test_any_text_gives_a_result_or_a_parse_error(parser: Parser, samples: list[str], data: st.DataObject):
    text = data.draw(st.one_of(st.text(), st.text(TRICKY)))
    result_or_parse_error(parser, text)


@pytest.mark.parametrize(("parser", "samples"), PARSERS, ids=PARSER_IDS)
@fuzz
@given(data=st.data())
def test_mutated_samples_give_a_result_or_a_parse_error(parser: Parser, samples: list[str], data: st.DataObject):
    text = data.draw(st.sampled_from(samples).flatmap(mutated))
    result_or_parse_error(parser, text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(TRICKY, max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def json_paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a JSON document, as a key/index path from the root."""
    paths = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += json_paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += json_paths(child, (*path, index))
    return paths


LIST_LONG_PATHS = json_paths(json.loads(LIST_LONG))


@fuzz
@given(path=st.sampled_from(LIST_LONG_PATHS), replacement=JSON_VALUES)
def test_list_long_with_any_value_anywhere_gives_a_result_or_a_parse_error(path: tuple, replacement: Any):
    document = json.loads(LIST_LONG)
    if not path:
        document = replacement
    else:
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = replacement
    result_or_parse_error(parse_xl_list_long, json.dumps(document))


@fuzz
@given(info=st.dictionaries(st.sampled_from(["host", "nr_cpus", "cpu_mhz", "total_memory", "free_memory",
                                             "xen_version", "xen_major", "xen_minor", "xen_extra", "virt_caps"]),
                            st.text(TRICKY, max_size=6)))
def test_xl_info_host_on_any_values_gives_a_result_or_a_parse_error(info: dict[str, str]):
    result_or_parse_error(xl_info_host, info)  # type: ignore[arg-type]


# --- properties: what xl's printf formats produce parses back ----------------------------------

NAME_CHARACTERS = st.characters(codec="utf-8", categories=("L", "N", "P", "S"))
# Inner spaces only: xl pads the name column with spaces, so a trailing one cannot be told from the padding.
NAMES = st.builds(lambda head, middle, tail: (head + middle + tail).rstrip(" "),
                  st.text(NAME_CHARACTERS, min_size=1, max_size=5),
                  st.text(st.one_of(NAME_CHARACTERS, st.just(" ")), max_size=40), st.text(NAME_CHARACTERS, max_size=1))
TENTHS = st.integers(0, 10**9).map(lambda tenths: tenths / 10)


@fuzz
@given(name=NAMES, domid=st.integers(0, 32767), mem=st.integers(0, 10**7), vcpus=st.integers(0, 512),
       letters=st.tuples(*(st.sampled_from(["-", letter]) for letter in "rbps"),
                         st.sampled_from(list("-rscwS?")), st.sampled_from(["-", "d"])),
       seconds=TENTHS)
def test_xl_list_rows_round_trip(name: str, domid: int, mem: int, vcpus: int, letters: tuple[str, ...],
                                 seconds: float):
    state = "".join(letters)
    (entry,) = parse_xl_list(f"{LIST_HEADER}\n{list_row(name, domid, mem, vcpus, state, seconds)}\n")
    assert (entry.name, entry.domid, entry.mem_mib, entry.vcpus) == (name, domid, mem, vcpus)
    assert entry.cpu_s == float(f"{seconds:.1f}")
    assert (DomainFlag.SHUTDOWN in entry.flags) == (state[3] == "s")
    assert (DomainFlag.CRASHED in entry.flags) == (state[4] == "c")


@fuzz
@given(name=NAMES, domid=st.integers(0, 32767), vcpu=st.integers(0, 511), cpu=st.none() | st.integers(0, 4095),
       running=st.booleans(), seconds=TENTHS,
       hard=st.sampled_from(["all", "none", "0-3,8", "12-19"]), soft=st.sampled_from(["all", "none", "1"]))
def test_xl_vcpu_list_rows_round_trip(name: str, domid: int, vcpu: int, cpu: int | None, running: bool,
                                      seconds: float, hard: str, soft: str):
    state = "--p" if cpu is None else ("r--" if running else "-b-")
    header = VCPU_LIST.split("\n")[0]
    (parsed,) = parse_xl_vcpu_list(f"{header}\n{vcpu_row(name, domid, vcpu, cpu, state, seconds, hard, soft)}\n")
    assert (parsed.name, parsed.domid, parsed.vcpu, parsed.cpu, parsed.state) == (name, domid, vcpu, cpu, state)
    assert parsed.online == (cpu is not None)
    assert (parsed.affinity_hard, parsed.affinity_soft) == (hard, soft)
