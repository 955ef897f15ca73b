"""Throughput of the console's terminal core.

Run: .venv/bin/python bench/bench_console.py
Prints bytes/s through TerminalCore.feed for 1 MiB of (a) plain ASCII lines like `seq`, (b) SGR-heavy
output like `ls --color`, (c) mixed UTF-8 with CJK, fed in 4 KiB chunks at 160x50 (best of a few runs),
then the time of one take_dirty() + line() pass over every row.
"""

from __future__ import annotations

import statistics
import time

from xentui.console.terminal import TerminalCore

MIB = 1 << 20
CHUNK = 4096
COLUMNS, ROWS = 160, 50
REPEATS = 3


def plain_lines() -> bytes:
    out = bytearray()
    n = 1
    while len(out) < MIB:
        out += b"%d\r\n" % n
        n += 1
    return bytes(out[:MIB])


def coloured_listing() -> bytes:
    names = [b"bin", b"boot", b"etc", b"home", b"lib", b"usr", b"var", b"vmlinuz", b"initrd.img", b"README.md"]
    colours = [b"01;34", b"01;36", b"01;32", b"00", b"01;31", b"38;5;208", b"38;2;255;128;0", b"40;33;01"]
    out = bytearray()
    n = 0
    while len(out) < MIB:
        for _ in range(6):
            name = names[n % len(names)]
            colour = colours[n % len(colours)]
            out += b"\x1b[0m\x1b[%sm%s-%d\x1b[0m  " % (colour, name, n)
            n += 1
        out += b"\r\n"
    return bytes(out[:MIB])


def mixed_utf8() -> bytes:
    samples = [
        "日本語のテキストと English words 混在しています。",
        "中文字符和 ASCII 混合输出，包括标点符号：「」、。",
        "한국어 텍스트도 포함됩니다 — café, naïve, Ærøskøbing",
        "box drawing ┌──┬──┐ │ok│ok│ └──┴──┘ arrows ← ↑ → ↓",
        "Ελληνικά και Русский текст, emoji 😀🚀 and symbols ±≠≤≥",
    ]
    out = bytearray()
    n = 0
    while len(out) < MIB:
        out += (samples[n % len(samples)] + f" {n}\r\n").encode()
        n += 1
    return bytes(out[:MIB])  # may end inside a character: the decoder carries it


def feed_rate(data: bytes) -> tuple[float, TerminalCore]:
    runs = []
    core = TerminalCore(COLUMNS, ROWS)
    for _ in range(REPEATS):
        core = TerminalCore(COLUMNS, ROWS)
        start = time.perf_counter()
        for offset in range(0, len(data), CHUNK):
            core.feed(data[offset : offset + CHUNK])
        runs.append(time.perf_counter() - start)
    return len(data) / min(runs), core


def redraw_time(core: TerminalCore) -> tuple[float, float]:
    """Median ms for take_dirty() + line() over all rows: live screen, and scrolled back."""
    live, scrolled = [], []
    for _ in range(20):
        start = time.perf_counter()
        core.take_dirty()
        for y in range(core.rows):
            core.line(y)
        live.append(time.perf_counter() - start)
        start = time.perf_counter()
        for y in range(core.rows):
            core.line(y, scroll=core.history_size // 2)
        scrolled.append(time.perf_counter() - start)
    return statistics.median(live) * 1000, statistics.median(scrolled) * 1000


def main() -> None:
    print(f"TerminalCore.feed, 1 MiB in {CHUNK // 1024} KiB chunks at {COLUMNS}x{ROWS} (best of {REPEATS})")
    for label, data in (
        ("plain ASCII lines (seq)", plain_lines()),
        ("SGR-heavy (ls --color)", coloured_listing()),
        ("mixed UTF-8 with CJK", mixed_utf8()),
    ):
        rate, core = feed_rate(data)
        live, scrolled = redraw_time(core)
        print(
            f"  {label:26} {rate / MIB:6.2f} MiB/s ({rate / 1000:8.0f} kB/s)"
            f"   redraw of {core.rows} rows: {live:5.2f} ms live, {scrolled:5.2f} ms scrolled back"
        )


if __name__ == "__main__":
    main()
