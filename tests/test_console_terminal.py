"""The terminal core: pyte plus the guards for what a guest's console may send."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xentui.console.terminal import DEFAULT_ATTRS, Attrs, TerminalCore, cell_width

ESC = "\x1b"
CSI = "\x1b["


def make(columns: int = 40, rows: int = 10, **kwargs) -> TerminalCore:
    return TerminalCore(columns, rows, **kwargs)


def feed(core: TerminalCore, *chunks: str | bytes) -> TerminalCore:
    for chunk in chunks:
        core.feed(chunk.encode() if isinstance(chunk, str) else chunk)
    return core


def row(core: TerminalCore, y: int, *, scroll: int = 0) -> str:
    return "".join(text for text, _ in core.line(y, scroll=scroll)).rstrip()


def attrs_at(core: TerminalCore, y: int, x: int) -> Attrs:
    """Attributes of the cell at (x, y), walking the runs by cell width."""
    position = 0
    for text, attrs in core.line(y):
        position += cell_width(text)
        if x < position:
            return attrs
    raise AssertionError("beyond the line")


def eaw_width(text: str) -> int:
    """The brief's rich-free measure: East Asian Wide/Fullwidth count 2, combining marks 0."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text
    )


def assert_well_formed(core: TerminalCore) -> None:
    for y in range(core.rows):
        assert sum(cell_width(text) for text, _ in core.line(y)) == core.columns, (y, core.line(y))
    x, y = core.cursor
    assert 0 <= x < core.columns
    assert 0 <= y < core.rows


# -- decoding -------------------------------------------------------------------------------------


def test_plain_text_and_newlines() -> None:
    core = feed(make(), "hello\r\nworld")
    assert row(core, 0) == "hello"
    assert row(core, 1) == "world"
    assert core.cursor == (5, 1)


def test_multibyte_character_split_across_feeds() -> None:
    data = "é中😀".encode()
    core = make()
    for byte in data:
        core.feed(bytes([byte]))
    assert row(core, 0) == "é中😀"


def test_invalid_bytes_become_replacement_characters() -> None:
    core = feed(make(), b"a\xffb\xc3(c\xed\xa0\x80d")
    text = row(core, 0)
    assert text.startswith("a\ufffdb\ufffd(c")
    assert text.endswith("d")
    assert "\ufffd" in text[6:]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=12), st.integers(1, 30), st.integers(1, 12))
def test_arbitrary_bytes_never_raise(chunks: list[bytes], columns: int, rows: int) -> None:
    core = TerminalCore(columns, rows, scrollback=50)
    for chunk in chunks:
        core.feed(chunk)
    assert core.columns == columns and core.rows == rows
    assert len(core.screen_text()) == rows
    assert_well_formed(core)
    assert core.internal_errors == 0


# Fragments that make escape sequences, odd characters and wide text likely.
FRAGMENTS = [
    ESC,
    *["[", "]", "?", ">", "<", "=", ":", ";", "0", "1", "5", "38", "2", "255", "999999", "4", "#8", "!p", "$p"],
    *["m", "h", "l", "H", "J", "K", "A", "r", "S", "T", "b", "s", "u", "c", "n", "P", "X", "^", "_", "\\", "("],
    *["?1049", "?47", "?1047", "?6", "?25", "?3", "?7", "0;title", "x"],
    *["\x07", "\x18", "\x1a", "\x00", "\x7f", "\x85", "\x9b", "\x9d", "\r", "\n", "\t", "\x08", "\x0e", "\x0f"],
    *[" q", "hello ", "中文", "😀", "\u0301", "\u200b", "\ufe0f", "\u0e31", "\u1100\u1161", "²"],
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join), max_size=8),
    st.integers(1, 25),
    st.integers(1, 8),
    st.lists(st.tuples(st.integers(1, 30), st.integers(1, 10)), max_size=2),
)
def test_escape_soup_never_raises_and_lines_keep_their_width(
    chunks: list[str], columns: int, rows: int, resizes: list[tuple[int, int]]
) -> None:
    core = TerminalCore(columns, rows, scrollback=20)
    for index, chunk in enumerate(chunks):
        core.feed(chunk.encode("utf-8", errors="surrogatepass"))
        if index < len(resizes):
            core.resize(*resizes[index])
    assert core.internal_errors == 0
    assert_well_formed(core)
    for y in range(core.rows):
        width = sum(cell_width(text) for text, _ in core.line(y, scroll=core.history_size))
        assert width == core.columns
    core.resize(40, 5)
    feed(core, f"{ESC}c", "after")  # still usable
    assert "after" in core.screen_text()[0]


# -- characters pyte's draw() loses the rest of the line after --------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("ab\u200bcd", "abcd"),  # zero-width space (Cf): dropped
        ("a\u200db", "ab"),  # zero-width joiner
        ("a\ufeffb", "ab"),  # BOM
        ("x\u2028y", "xy"),  # line separator
        ("e\u0301x", "éx"),  # combining acute: composed with its base
        ("q\u0301x", "q\u0301x"),  # nothing to compose with: kept as a mark on the cell
        ("❤\ufe0fz", "❤z"),  # variation selector 16: dropped
        ("a\u0e31b", "a\u0e31b"),  # Thai mark with combining class 0: attached
        ("a\u093fb", "a\u093fb"),  # Devanagari vowel sign (Mc, width 0): attached
        ("\u1100\u1161z", "가z"),  # Hangul conjoining jamo: composed into the syllable
        ("a\x00b", "ab"),  # NUL: ignored, as terminals do
        ("a\x7fb", "ab"),  # DEL: ignored
        ("a\x01b", "a\ufffdb"),  # a C0 control no terminal acts on
        ("a\x1cb", "a\ufffdb"),
        ("a\x18b", "a\ufffdb"),  # CAN outside a sequence
        ("a\x85b", "a\ufffdb"),  # C1 NEL
        ("a\x9bb", "a\ufffdb"),  # C1 CSI (UTF-8 encoded): not a sequence introducer here
        ("\u0301abc", "abc"),  # a mark at column 0 has nothing to attach to
    ],
)
def test_odd_characters_do_not_eat_the_rest_of_the_line(data: str, expected: str) -> None:
    core = feed(make(), data + "END")
    assert row(core, 0) == expected + "END"
    assert_well_formed(core)


def test_every_zero_width_code_point_is_guarded() -> None:
    """Every character pyte's wcwidth measures at 0 or less (except the controls pyte handles)
    keeps the text after it."""
    from pyte.screens import wcwidth

    passed = set("\x00\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x1b\x7f")
    zero = [
        chr(code)
        for code in range(0x110000)
        if not 0xD800 <= code < 0xE000 and chr(code) not in passed and wcwidth(chr(code)) <= 0
    ]
    assert len(zero) > 1000
    core = TerminalCore(400, 3, scrollback=0)
    for start in range(0, len(zero), 150):
        batch = zero[start : start + 150]
        core.feed(("\x1b[H\x1b[2K[" + "#".join(batch) + "]").encode())  # "#" composes with no mark
        text = core.screen_text()[0].rstrip()
        assert text.startswith("[") and text.endswith("]"), batch
        assert text.count("#") == len(batch) - 1, batch


def test_marks_after_a_wide_character_join_it() -> None:
    core = feed(make(), "中\u0301x")
    assert row(core, 0) == "中\u0301x"
    assert_well_formed(core)


def test_wide_characters_take_two_cells_and_lines_keep_their_width() -> None:
    core = feed(make(columns=11), "a中b文字")
    runs = core.line(0)
    text = "".join(text for text, _ in runs)
    assert text.rstrip() == "a中b文字"
    assert eaw_width(text) == 11  # the brief's East Asian Width arithmetic
    assert cell_width(text) == 11


def test_a_wide_character_at_the_last_column_wraps() -> None:
    core = feed(make(columns=5), "abcd中")
    assert row(core, 0) == "abcd"
    assert row(core, 1) == "中"
    assert_well_formed(core)


def test_dec_line_drawing() -> None:
    core = feed(make(), f"{ESC}(0lqk{ESC}(B lqk")
    assert row(core, 0) == "┌─┐ lqk"


# -- malformed and unknown escape sequences ---------------------------------------------------------


@pytest.mark.parametrize(
    "chunks",
    [
        [f"{CSI}999999999m"],
        [f"{CSI}?1049h{CSI}?1049h{CSI}?1049l{CSI}?1049l{CSI}?1049l"],
        [f"{ESC}]0;title\x07"],
        [f"{ESC}]2;title{ESC}\\"],
        [f"{ESC}P1$r0m{ESC}\\"],
        [f"{ESC}_apc payload{ESC}\\", f"{ESC}^pm{ESC}\\", f"{ESC}Xsos{ESC}\\"],
        [f"{CSI}" + ";".join(["1"] * 100) + "m"],
        [f"{CSI}" + ";".join(str(n) for n in range(100)) + "H"],
        [f"{CSI}99999;99999H{CSI}H"],
        [f"{CSI}5K", f"{CSI}9J", f"{CSI}?5n", f"{CSI}?6A", f"{CSI}1;2;3A", f"{CSI}?1m"],
        [f"{CSI}?6h{CSI}5d{CSI}6n{CSI}?6l"],
        [f"{CSI}1²m"],
        [f"{CSI}>4;2m", f"{CSI}=1u", f"{CSI}<u", f"{CSI}!p", f"{CSI}2 q", f"{CSI}?2026$p"],
        [f"{CSI}31{ESC}[0m"],
        [ESC, "[", "3", "1", "m"],
        [f"{CSI}?10", "49h", f"{CSI}?1049l"],
        [f"{ESC}]0;ti", "tle\x07"],
        [f"{ESC}", "]", "0;x", "\x1b", "\\"],
        [f"{ESC}#8{CSI}2J{CSI}H"],
        [f"{CSI}9999S{CSI}9999T{CSI}9999Z{CSI}9999b{CSI}9999@{CSI}9999P{CSI}9999X{CSI}9999L{CSI}9999M"],
        [f"{CSI}38;5;300m{CSI}38;2;1m{CSI}48;2;999;999;999m{CSI}38:2::1:2:3m{CSI}4:3m{CSI}m"],
        [f"{ESC}]P0aabbcc{ESC}]R"],
        [f"{ESC}c"],
        ["\x9b31m", "\x9d0;x\x07"],
        [f"{CSI}" + "1;" * 2000],
    ],
)
def test_malformed_sequences_do_not_break_the_screen(chunks: list[str]) -> None:
    core = make()
    feed(core, *chunks)
    feed(core, f"{CSI}0m{CSI}H{CSI}2K", "\r\nvisible")
    assert core.internal_errors == 0
    assert any("visible" in text for text in core.screen_text())
    assert not core.in_alternate_screen or "?1049h" in "".join(chunks)
    assert_well_formed(core)


def test_osc_sets_the_title_and_prints_nothing() -> None:
    core = feed(make(), f"a{ESC}]0;my guest\x07b{ESC}]2;other{ESC}\\c")
    assert row(core, 0) == "abc"
    assert core.title == "other"


def test_dcs_payload_is_not_printed() -> None:
    core = feed(make(), f"a{ESC}Pq#0;2;0;0;0#0!10~{ESC}\\b")
    assert row(core, 0) == "ab"


def test_unterminated_dcs_ends_at_the_next_escape() -> None:
    core = feed(make(), f"{ESC}Pjunk with no end", "more junk", f"{CSI}0mvisible")
    assert row(core, 0) == "visible"


def test_unterminated_osc_ends_at_the_next_escape() -> None:
    """pyte alone would swallow everything until a BEL."""
    core = feed(make(), f"{ESC}]0;never ends", f"{CSI}1mshown")
    assert row(core, 0) == "shown"


def test_private_sgr_variants_do_not_change_attributes() -> None:
    core = feed(make(), f"{CSI}>4;2m{CSI}?4;1mplain")
    assert row(core, 0) == "plain"
    assert attrs_at(core, 0, 0) == DEFAULT_ATTRS


def test_sequence_split_at_every_byte() -> None:
    data = f"{CSI}1;31mred{CSI}0m {ESC}]0;t\x07{CSI}?1049h{CSI}?1049l中{CSI}38:2::1:2:3mx".encode()
    whole = feed(make(), data)
    split = make()
    for index in range(len(data)):
        split.feed(data[index : index + 1])
    assert split.screen_text() == whole.screen_text()
    assert split.line(0) == whole.line(0)
    assert row(split, 0) == "red 中x"
    assert split.title == "t"


def test_device_status_report_is_answered() -> None:
    core = feed(make(), f"ab{CSI}6n{CSI}c")
    assert core.take_replies() == b"\x1b[1;3R\x1b[?6c"
    assert core.take_replies() == b""


# -- alternate screen -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["1049", "1047", "47"])
def test_alternate_screen_restores_the_main_screen(mode: str) -> None:
    core = feed(make(rows=5), "main\r\nline 2")
    before = core.screen_text()
    feed(core, f"{CSI}?{mode}h")
    assert core.in_alternate_screen
    assert row(core, 0) == ""  # the alternate screen starts empty
    feed(core, f"{CSI}H{CSI}2Jvi stuff" + "\r\n" * 20 + "more vi")
    assert any("vi" in text for text in core.screen_text())
    feed(core, f"{CSI}?{mode}l")
    assert not core.in_alternate_screen
    assert core.screen_text() == before
    assert core.history_size == 0  # nothing scrolled in the alternate screen reaches the scrollback
    assert "vi stuff" not in core.log_text()


def test_1049_restores_the_cursor() -> None:
    core = feed(make(), "main\r\nab")
    feed(core, f"{CSI}?1049h{CSI}5;5Hxx")
    assert core.cursor == (6, 4)
    feed(core, f"{CSI}?1049l")
    assert core.cursor == (2, 1)
    feed(core, "c")
    assert row(core, 1) == "abc"


def test_alternate_screen_marks_every_row_dirty() -> None:
    core = make(rows=6)
    core.take_dirty()
    feed(core, f"{CSI}?1049h")
    assert core.take_dirty() == set(range(6))
    feed(core, f"{CSI}?1049l")
    assert core.take_dirty() == set(range(6))


def test_resize_in_the_alternate_screen_keeps_the_main_screen() -> None:
    core = feed(make(columns=20, rows=5), "main")
    feed(core, f"{CSI}?1049hvi")
    core.resize(10, 3)
    feed(core, f"{CSI}?1049l")
    assert row(core, 0) == "main"
    assert_well_formed(core)


# -- colours and attributes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sgr", "expected"),
    [
        ("31", {"fg": "red"}),
        ("37", {"fg": "white"}),
        ("91", {"fg": "brightred"}),
        ("42", {"bg": "green"}),
        ("104", {"bg": "brightblue"}),
        ("38;5;208", {"fg": "ff8700"}),
        ("48;5;21", {"bg": "0000ff"}),
        ("38;2;1;2;3", {"fg": "010203"}),
        ("48;2;255;128;0", {"bg": "ff8000"}),
        ("38;2;300;0;0", {"fg": "ff0000"}),  # clamped, not a 7-digit colour
        ("38:2::10:20:30", {"fg": "0a141e"}),  # colon form
        ("38:5:196", {"fg": "ff0000"}),
        ("1", {"bold": True}),
        ("3", {"italics": True}),
        ("4", {"underline": True}),
        ("4:3", {"underline": True}),
        ("7", {"reverse": True}),
        ("9", {"strikethrough": True}),
        ("1;4;31;44", {"bold": True, "underline": True, "fg": "red", "bg": "blue"}),
    ],
)
def test_sgr_is_reflected_in_attrs(sgr: str, expected: dict[str, object]) -> None:
    core = feed(make(), f"{CSI}{sgr}mX{CSI}0mY")
    assert attrs_at(core, 0, 0) == DEFAULT_ATTRS._replace(**expected)
    assert attrs_at(core, 0, 1) == DEFAULT_ATTRS


def test_runs_group_equal_attributes() -> None:
    core = feed(make(columns=12), f"ab{CSI}31mcd{CSI}0mef")
    assert core.line(0) == [
        ("ab", DEFAULT_ATTRS),
        ("cd", DEFAULT_ATTRS._replace(fg="red")),
        ("ef      ", DEFAULT_ATTRS),
    ]


# -- scrollback -------------------------------------------------------------------------------------


def test_scrollback_keeps_lines_and_scroll_shows_them() -> None:
    core = make(columns=20, rows=5, scrollback=100)
    feed(core, "\r\n".join(f"line {n}" for n in range(30)))
    assert row(core, 4) == "line 29"
    assert core.history_size == 25
    assert row(core, 0, scroll=25) == "line 0"
    assert row(core, 4, scroll=25) == "line 4"
    assert row(core, 0, scroll=3) == "line 22"
    assert row(core, 4, scroll=3) == "line 26"
    assert row(core, 0, scroll=1000) == "line 0"  # clamped to what there is


def test_scrollback_is_bounded_and_keeps_attributes() -> None:
    core = make(columns=20, rows=5, scrollback=10)
    feed(core, "\r\n".join(f"{CSI}32mline {n}{CSI}0m" for n in range(50)))
    assert core.history_size == 10
    assert row(core, 0, scroll=10) == "line 35"
    assert core.line(0, scroll=10)[0] == ("line 35", DEFAULT_ATTRS._replace(fg="green"))
    assert sum(cell_width(text) for text, _ in core.line(0, scroll=10)) == 20


def test_scrollback_holds_at_least_5000_lines_of_a_flood() -> None:
    core = TerminalCore(80, 24)
    feed(core, "".join(f"{n}\r\n" for n in range(20000)))
    assert core.history_size == 5000
    assert row(core, 0, scroll=5000) == str(20000 - 5000 - 23)


def test_scrollback_lines_fit_a_narrower_or_wider_screen() -> None:
    core = make(columns=20, rows=2)
    feed(core, "abcdefghij中klmnopq\r\n\r\n\r\n")
    core.resize(11, 2)
    text = "".join(t for t, _ in core.line(0, scroll=core.history_size))
    assert cell_width(text) == 11
    assert text == "abcdefghij "  # the wide character no longer fits
    core.resize(30, 2)
    assert row(core, 0, scroll=core.history_size) == "abcdefghij中klmnopq"


def test_erase_saved_lines() -> None:
    core = feed(make(rows=3), "a\r\nb\r\nc\r\nd\r\ne")
    assert core.history_size == 2
    feed(core, f"{CSI}3J")
    assert core.history_size == 0
    assert row(core, 2) == "e"  # ED 3 leaves the screen alone


def test_scrolling_region_does_not_feed_the_scrollback_unless_it_starts_at_the_top() -> None:
    core = feed(make(rows=5), f"{CSI}2;4r{CSI}4H" + "x\r\n" * 10)
    assert core.history_size == 0
    feed(core, f"{CSI}1;4r{CSI}4H" + "y\r\n" * 3)
    assert core.history_size == 3


def test_log_text_and_save_log(tmp_path: Path) -> None:
    core = make(columns=20, rows=3)
    feed(core, "first  \r\nsecond\r\nthird\r\n\r\nlast")
    assert core.log_text() == "first\nsecond\nthird\n\nlast"
    path = tmp_path / "console.log"
    core.save_log(path)
    assert path.read_text(encoding="utf-8") == core.log_text()


def test_log_text_of_wide_and_marked_text() -> None:
    core = feed(make(columns=10, rows=2), "中文e\u0301")
    assert core.log_text() == "中文é"


# -- resize -----------------------------------------------------------------------------------------


def test_resize_smaller_keeps_text_at_top_left() -> None:
    core = feed(make(columns=40, rows=10), "hello\r\nworld")
    core.resize(20, 5)
    assert (core.columns, core.rows) == (20, 5)
    assert row(core, 0) == "hello" and row(core, 1) == "world"
    assert core.cursor == (5, 1)
    assert core.history_size == 0
    assert_well_formed(core)


def test_resize_smaller_keeps_the_cursor_line_on_screen() -> None:
    core = feed(make(columns=40, rows=10), "\r\n".join(f"l{n}" for n in range(10)))
    core.resize(40, 4)
    assert core.cursor == (2, 3)
    assert row(core, 3) == "l9"
    assert core.history_size == 6
    assert row(core, 0, scroll=6) == "l0"


def test_resize_narrower_cuts_lines_and_clamps_the_cursor() -> None:
    core = feed(make(columns=40, rows=5), "x" * 30)
    core.resize(10, 5)
    assert row(core, 0) == "x" * 10
    assert core.cursor == (9, 0)
    assert_well_formed(core)
    feed(core, "\ty")  # tab stops beyond the new width are gone
    assert core.cursor[0] == 9


def test_resize_larger_keeps_text_and_widens_lines() -> None:
    core = feed(make(columns=10, rows=3), "abc\r\ndef")
    core.take_dirty()
    core.resize(30, 8)
    assert row(core, 0) == "abc" and row(core, 1) == "def"
    assert core.cursor == (3, 1)
    assert core.take_dirty() == set(range(8))
    assert all(sum(cell_width(t) for t, _ in core.line(y)) == 30 for y in range(8))
    feed(core, "\t!")
    assert core.cursor[0] == 9  # new tab stops in the new columns


def test_resize_to_nothing_is_clamped() -> None:
    core = make()
    core.resize(0, 0)
    assert (core.columns, core.rows) == (1, 1)
    feed(core, "abc")
    assert_well_formed(core)


# -- dirty rows -------------------------------------------------------------------------------------


def test_writing_one_line_marks_only_that_row() -> None:
    core = make(rows=10)
    assert core.take_dirty() == set(range(10))  # a new screen is all dirty
    assert core.take_dirty() == set()
    feed(core, f"{CSI}4Hhello")
    assert core.take_dirty() == {3}
    feed(core, "\r\n")
    assert core.take_dirty() == set()


def test_scroll_and_clear_mark_every_row() -> None:
    core = make(rows=4)
    core.take_dirty()
    feed(core, "\n" * 3)
    core.take_dirty()
    feed(core, "\n")  # scrolls
    assert core.take_dirty() == set(range(4))
    feed(core, f"{CSI}2J")
    assert core.take_dirty() == set(range(4))


# -- cursor -----------------------------------------------------------------------------------------


def test_cursor_visibility_and_modes() -> None:
    core = make()
    assert core.cursor_visible
    feed(core, f"{CSI}?25l")
    assert not core.cursor_visible
    feed(core, f"{CSI}?25h{CSI}?1h{CSI}?2004h")
    assert core.cursor_visible and core.application_cursor and core.bracketed_paste


def test_cursor_stays_in_range_after_the_last_column() -> None:
    core = feed(make(columns=5), "abcde")
    assert core.cursor == (4, 0)


def test_repeat_scroll_and_back_tab() -> None:
    core = feed(make(columns=20, rows=4), f"a{CSI}3b")
    assert row(core, 0) == "aaaa"
    feed(core, f"\r\nsecond{CSI}1S")
    assert row(core, 0) == "second"
    feed(core, f"{CSI}1T")
    assert row(core, 0) == "" and row(core, 1) == "second"
    feed(core, f"{CSI}1;12H{CSI}Z!")
    assert row(core, 0) == "        !"


def test_line_out_of_range_is_blank() -> None:
    core = make(columns=7)
    assert core.line(99) == [(" " * 7, DEFAULT_ATTRS)]


def test_large_burst() -> None:
    core = TerminalCore(160, 50)
    core.feed(b"".join(b"\x1b[3%dmline %d\x1b[0m\r\n" % (n % 8, n) for n in range(60000))[: 1 << 20])
    assert core.internal_errors == 0
    assert core.history_size == 5000
    assert_well_formed(core)


def test_delete_and_insert_lines_on_a_sparse_screen() -> None:
    """pyte's DL/IL leave a row alone when the row that should replace it was never written."""
    core = feed(make(rows=4), f"B{CSI}H{CSI}M")
    assert row(core, 0) == ""
    core = feed(make(rows=4), f"top{CSI}3Hthird{CSI}H{CSI}2L")
    assert [row(core, y) for y in range(4)] == ["", "", "top", ""]
