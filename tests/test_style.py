"""ruff is part of the test run, so CI and the README's one test command check style too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_theme_file_is_skipped_and_said_not_raised(tmp_path, monkeypatch):
    """The docstring said so; tomllib raised, and xentui did not start."""
    import shutil

    from xentui import themefiles

    for good in themefiles.theme_dir().iterdir():
        if good.name.endswith(".toml"):
            shutil.copy(str(good), tmp_path / good.name)
    (tmp_path / "broken.toml").write_text('name = "broken"\nprimary = "#12\n')
    (tmp_path / "nameless.toml").write_text('primary = "#123456"\n')
    (tmp_path / "latin1.toml").write_bytes(b'name = "caf\xe9"\n')
    monkeypatch.setattr(themefiles, "theme_dir", lambda: tmp_path)
    errors: dict[str, str] = {}
    specs = themefiles.load_theme_specs(errors)
    assert sorted(specs) == ["xentui-dark", "xentui-light", "xentui-plain"]
    assert sorted(errors) == ["broken.toml", "latin1.toml", "nameless.toml"]
    assert "no name" in errors["nameless.toml"]
