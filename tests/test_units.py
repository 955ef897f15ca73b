from __future__ import annotations

import pytest

from xentui.units import human_bytes, human_count, human_kib, human_seconds


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (999, "999"), (1000, "1.0K"), (1536, "1.5K"),
                                             (10 * 1024**2, "10M"), (-5, "0"), (3 * 1024**4, "3.0T")])
def test_human_bytes(value, text):
    assert human_bytes(value) == text


def test_human_kib_and_count_and_seconds():
    assert human_kib(4 * 1024 * 1024) == "4.0G"
    assert [human_count(v) for v in (0, 0.4, 12, 1200, 340_000)] == ["0", "0.4", "12", "1.2K", "340K"]
    assert [human_seconds(v) for v in (59, 720, 11_520, 3_542_400)] == ["59", "12m", "3.2h", "41d"]
