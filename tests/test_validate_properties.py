"""Property tests for xentui.validate: whatever an operator types, the answer is a value or an InvalidArgument.

The explicit examples are inputs these properties once caught: a zero size returned as 0, a 400-digit size
overflowing float(), an IPv6 scope id carried through verbatim, a newline ending an inner label.
"""

from __future__ import annotations

import string

from hypothesis import example, given, settings
from hypothesis import strategies as st

from xentui.errors import InvalidArgument
from xentui.validate import check_host, format_kib, parse_memory

UNIT_KIB = {"K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}
SHELL_CHARACTERS = " ;|&$`'\"\\<>(){}[]*?!~#\n\r\t"

moderate = settings(max_examples=300, deadline=None)

# --- strategies ---------------------------------------------------------------------------------

digits = st.one_of(st.text(string.digits, max_size=12), st.integers(300, 320).map(lambda count: "9" * count))
fraction = st.one_of(st.just(""), st.text(string.digits, max_size=6).map(lambda tail: "." + tail))
blank = st.sampled_from(["", "", " ", "  ", "\t", "\n", "\u00a0"])
unit_letters = st.sampled_from(["k", "K", "m", "M", "g", "G", "t", "T", "b", "B", "x", "", "e3M", "kib", "MiB",
                                "Gb", "gIB", "tb", "KB", "ki", "M M"])
junk = st.one_of(st.just(""), st.just(""), st.text(max_size=3), st.sampled_from(["-", "+", ",", ".", "0x", "ー"]))

size_like = st.tuples(blank, junk, digits, fraction, blank, unit_letters, junk, blank).map("".join)
"""Text shaped like a size, with every part sometimes wrong: no digits, a bad unit, junk either side."""

any_text = st.one_of(st.text(), size_like)


@st.composite
def exact_sizes(draw: st.DrawFn) -> str:
    """Sizes parse_memory must accept: whole numbers, or fractions that come to whole KiB, any case and spacing."""
    unit = draw(st.sampled_from(list(UNIT_KIB)))
    number = str(draw(st.integers(1, 10**6)))
    if unit != "K":
        number += draw(st.sampled_from(["", "", ".0", ".5", ".25", ".75", ".125", ".0625"]))
    letter = unit if draw(st.booleans()) else unit.lower()
    suffix = draw(st.sampled_from(["", "B", "iB", "b", "ib"]))
    return draw(blank) + number + draw(st.sampled_from(["", " "])) + letter + suffix + draw(blank)


label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(label, min_size=1, max_size=5).map(".".join).filter(lambda name: len(name) <= 253)

host_alphabet = string.ascii_letters + string.digits + ".-:%" + SHELL_CHARACTERS + "\x00\x1b\u00e9\u0131"
host_like = st.one_of(
    st.text(host_alphabet, max_size=40),
    st.tuples(hostnames, st.text(host_alphabet, max_size=3)).map("".join),
    st.tuples(st.text(host_alphabet, max_size=3), hostnames).map("".join),
    st.tuples(st.ip_addresses().map(str), st.text(host_alphabet, max_size=4)).map("".join),
    # an IPv6 literal with a zone index ('fe80::1%eth0'), and labels with a character glued on either side
    st.tuples(st.ip_addresses(v=6).map(str), st.just("%"), st.text(host_alphabet, min_size=1, max_size=6)).map(
        "".join
    ),
    st.lists(st.tuples(label, st.one_of(st.just("\n"), st.text(host_alphabet, max_size=1))).map("".join),
             min_size=2, max_size=4).map(".".join),
)

# --- helpers ------------------------------------------------------------------------------------


def parse_or_refuse(text: str) -> int | None:
    """The parse_memory contract: a positive int, or InvalidArgument with a message. Anything else propagates."""
    try:
        value = parse_memory(text)
    except InvalidArgument as error:
        assert str(error).strip()
        return None
    assert type(value) is int
    assert value > 0, f"parse_memory({text!r}) returned {value}"
    return value


def check_or_refuse(text: str) -> str | None:
    """The check_host contract: a string safe on an ssh command line, or InvalidArgument."""
    try:
        host = check_host(text)
    except InvalidArgument as error:
        assert str(error).strip()
        return None
    assert isinstance(host, str)
    assert not (set(host) & set(SHELL_CHARACTERS)), f"check_host({text!r}) returned {host!r}"
    assert not host.startswith("-")
    return host


# --- parse_memory -------------------------------------------------------------------------------


@example("0M")
@example("0.0G")
@example("9" * 400 + "M")
@moderate
@given(any_text)
def test_parse_memory_gives_a_positive_int_or_invalid_argument(text):
    parse_or_refuse(text)


@moderate
@given(st.integers(1, 10**6), st.sampled_from(list(UNIT_KIB)), st.booleans())
def test_parse_memory_value_is_number_times_unit(number, unit, lower):
    letter = unit.lower() if lower else unit
    assert parse_memory(f"{number}{letter}") == number * UNIT_KIB[unit]


@moderate
@given(exact_sizes())
def test_format_kib_round_trips_through_parse_memory(text):
    kib = parse_memory(text)
    assert kib > 0
    shown = format_kib(kib)
    assert shown[-1] in UNIT_KIB
    assert parse_memory(shown) == kib


# --- check_host ---------------------------------------------------------------------------------


@example("::1%$(reboot)")
@example("fe80::1%eth0;reboot")
@example("web\n.example.com")
@moderate
@given(st.one_of(st.text(), host_like))
def test_check_host_gives_a_safe_string_or_invalid_argument(text):
    check_or_refuse(text)


@moderate
@given(hostnames)
def test_check_host_accepts_valid_hostnames_unchanged(name):
    assert check_host(name) == name


@moderate
@given(st.ip_addresses())
def test_check_host_accepts_ip_addresses(address):
    assert check_host(str(address)) == str(address)
    assert check_host(address.exploded) == str(address)
