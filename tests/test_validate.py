from __future__ import annotations

import pytest

from xentui.errors import InvalidArgument
from xentui.validate import (
    MAX_DELAY_S,
    MIN_DELAY_S,
    check_host,
    check_memory_target,
    check_sched,
    check_sysrq,
    check_vcpu_count,
    format_kib,
    parse_memory,
    parse_seconds,
)

GIB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "kib"),
    [("512M", 512 * 1024), ("2G", 2 * GIB), ("1048576K", 1048576), ("1.5G", 1536 * 1024), ("256m", 262144),
     ("4GiB", 4 * GIB), (" 1T ", 1024 * GIB), ("512MB", 512 * 1024)],
)
def test_parse_memory_accepts_sizes_with_units(text, kib):
    assert parse_memory(text) == kib


@pytest.mark.parametrize("text", ["512", "-1G", "", "G", "1.5.5G", "12X", "1e3M", "0x10M", "1,5G", "512 M M"])
def test_parse_memory_refuses_nonsense_with_a_reason(text):
    with pytest.raises(InvalidArgument) as caught:
        parse_memory(text)
    assert "512M" in str(caught.value)  # the message shows what would be accepted


def test_parse_memory_refuses_fractions_of_a_kib():
    with pytest.raises(InvalidArgument, match="whole number"):
        parse_memory("1.5K")


def test_format_kib_keeps_an_explicit_unit():
    assert format_kib(512 * 1024) == "512M"
    assert format_kib(2 * GIB) == "2G"
    assert format_kib(1536 * 1024) == "1536M"
    assert format_kib(1000) == "1000K"


def test_memory_target_limits():
    ok = dict(maxmem_kib=4 * GIB, host_total_kib=64 * GIB, name="web")
    assert check_memory_target(2 * GIB, **ok) == 2 * GIB
    with pytest.raises(InvalidArgument, match="raise maxmem first"):
        check_memory_target(8 * GIB, **ok)
    with pytest.raises(InvalidArgument, match="below the floor"):
        check_memory_target(1024, **ok)
    with pytest.raises(InvalidArgument, match="more than zero"):
        check_memory_target(0, **ok)
    with pytest.raises(InvalidArgument, match="more than the host has"):
        check_memory_target(128 * GIB, maxmem_kib=None, host_total_kib=64 * GIB, name="Domain-0")


def test_vcpu_count_limits():
    ok = dict(max_vcpus=8, host_cpus=4, name="db")
    assert check_vcpu_count(2, allow_overcommit=False, **ok) == 2
    with pytest.raises(InvalidArgument, match="at most 8"):
        check_vcpu_count(9, allow_overcommit=True, **ok)
    with pytest.raises(InvalidArgument, match="at least 1"):
        check_vcpu_count(0, allow_overcommit=False, **ok)
    with pytest.raises(InvalidArgument, match="-i"):
        check_vcpu_count(6, allow_overcommit=False, **ok)
    assert check_vcpu_count(6, allow_overcommit=True, **ok) == 6


def test_sched_ranges():
    check_sched(256, 0, max_vcpus=2)
    check_sched(None, 200, max_vcpus=2)
    for weight, cap in ((0, None), (65536, None), (None, -1), (None, 201)):
        with pytest.raises(InvalidArgument):
            check_sched(weight, cap, max_vcpus=2)


@pytest.mark.parametrize("host", ["sim-host-2", "xen02.example.org", "10.0.0.7", "fe80::1", "a", "h-1.b-2.c"])
def test_host_names_and_addresses_accepted(host):
    assert check_host(host) == host


@pytest.mark.parametrize(
    "host",
    ["host; rm -rf /", "$(reboot)", "`id`", "-oProxyCommand=x", "a b", "host|nc", "h&&x", "", "x" * 64,
     "host\nother", "-host", "host-", "a..b", "ho'st", 'ho"st', "ho*st", "~root"],
)
def test_host_names_a_shell_could_interpret_are_refused(host):
    with pytest.raises(InvalidArgument):
        check_host(host)


def test_sysrq_keys():
    assert check_sysrq("m") == "m"
    for bad in ("", "mm", "X", ";", "\n"):
        with pytest.raises(InvalidArgument, match="valid keys"):
            check_sysrq(bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "0 is too short: at least 0.5 s"),
        ("-1", "-1 is too short: at least 0.5 s"),
        ("0.01", "0.01 is too short: at least 0.5 s"),  # 44 % of a core in the outside report
        ("1e-9", "1e-9 is too short: at least 0.5 s"),  # polls stopped, "every 1e-09s" shown
        ("0.49", "0.49 is too short: at least 0.5 s"),
        ("1e9", "1e9 is too long: at most 3600 s"),
        ("3601", "3601 is too long: at most 3600 s"),
        ("abc", "'abc' is not a number: 0.5 to 3600 s"),
        ("", "'' is not a number: 0.5 to 3600 s"),
        ("inf", "'inf' is not a number: 0.5 to 3600 s"),
        ("nan", "'nan' is not a number: 0.5 to 3600 s"),
    ],
)
def test_parse_seconds_says_what_is_wrong_and_what_is_allowed(text, message):
    with pytest.raises(InvalidArgument) as caught:
        parse_seconds(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(("text", "seconds"), [("0.5", 0.5), (" 2 ", 2.0), ("0.75", 0.75), ("3600", 3600.0)])
def test_parse_seconds_takes_fractions_from_the_floor_to_the_ceiling(text, seconds):
    assert parse_seconds(text) == seconds
    assert (MIN_DELAY_S, MAX_DELAY_S) == (0.5, 3600.0)


def test_parse_seconds_cuts_a_long_input_in_its_message():
    with pytest.raises(InvalidArgument) as caught:
        parse_seconds("1" * 200)
    assert len(str(caught.value)) < 70 and str(caught.value).endswith("is too long: at most 3600 s")
