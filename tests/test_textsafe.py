from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xentui.textsafe import printable

UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"}


@pytest.mark.parametrize(
    "name",
    ["Domain-0", "web-01", "s-vm 007", "a_b.c:d@e", "~!#$%^&*()[]{}<>|\\/'\"`", "", " "],
)
def test_printable_ascii_unchanged(name: str) -> None:
    assert printable(name) is name


@pytest.mark.parametrize("name", ["café", "Ωmega", "数据库-01", "vm-🚀", "tab\u00a0nbsp", "private\ue000"])
def test_printable_non_ascii_unchanged(name: str) -> None:
    assert printable(name) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("\x1b[2J\x1b[31mevil", "\\x1b[2J\\x1b[31mevil"),
        ("vm\rDomain-0", "vm\\x0dDomain-0"),
        ("two\nlines", "two\\x0alines"),
        ("nul\x00", "nul\\x00"),
        ("tab\there", "tab\\x09here"),
        ("del\x7f", "del\\x7f"),
        ("csi\x9b31m", "csi\\x9b31m"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("\ufeffbom", "\\ufeffbom"),
        ("soft\u00adhyphen", "soft\\u00adhyphen"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("bad\udcffbyte", "bad\\udcffbyte"),
        ("unassigned\u0378", "unassigned\\u0378"),
        ("数据\x1b库\u2067", "数据\\x1b库\\u2067"),
    ],
)
def test_printable_escapes(name: str, expected: str) -> None:
    assert printable(name) == expected


@pytest.mark.parametrize(
    "char",
    ["\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))],
)
def test_every_bidi_control_escaped(char: str) -> None:
    assert printable(f"a{char}b") == f"a\\u{ord(char):04x}b"


DANGEROUS = "\x00\x07\x1b\r\n\x7f\x9b\u061c\u200b\u200e\u202e\u2066\u2028\u2029\ufeff\udcff\U000e0001"


# codec=None: any code point, surrogates included; DANGEROUS makes the interesting ones frequent.
@given(st.text(alphabet=st.one_of(st.characters(codec=None), st.sampled_from(DANGEROUS))))
def test_output_has_no_control_or_invisible_characters(text: str) -> None:
    result = printable(text)
    assert not any(unicodedata.category(char) in UNSAFE_CATEGORIES for char in result)


@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cf", "Zl", "Zp", "Cs", "Cn"))))
def test_safe_text_unchanged(text: str) -> None:
    assert printable(text) == text
