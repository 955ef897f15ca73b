"""The layering of DESIGN.md holds, and the package ships what it needs at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}, timeout=120,
    )


def test_import_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_contract_catches_a_backend_importing_textual(tmp_path):
    shutil.copytree(ROOT / "xentui", tmp_path / "xentui")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    sim = tmp_path / "xentui" / "backends" / "sim" / "__init__.py"  # a package since the backends were split
    sim.write_text("import textual.widgets  # noqa\n" + sim.read_text())
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "xentui.backends.sim -> textual" in result.stdout


def test_the_contract_keeps_the_console_strictly_below_the_backends(tmp_path):
    shutil.copytree(ROOT / "xentui", tmp_path / "xentui")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    pty = tmp_path / "xentui" / "console" / "pty.py"
    pty.write_text("import xentui.backends.base  # noqa\n" + pty.read_text())
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "xentui.console.pty -> xentui.backends.base" in result.stdout


def test_the_wheel_ships_the_themes_and_they_load_from_it(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next(tmp_path.glob("xentui-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {"xentui/themes/xentui-dark.toml", "xentui/themes/xentui-light.toml",
            "xentui/themes/xentui-plain.toml"} <= set(names)
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = subprocess.run(
        [sys.executable, "-c",
         "import xentui.themefiles as t, sys; print(t.theme_dir()); print(sorted(t.load_theme_specs()))"],
        cwd=tmp_path, env={"PYTHONPATH": str(target)}, capture_output=True, text=True, check=True,
    )
    location, themes = probe.stdout.splitlines()
    assert location.startswith(str(target))
    assert themes == "['xentui-dark', 'xentui-light', 'xentui-plain']"


@pytest.mark.parametrize("module", ["xentui.model", "xentui.backends.sim", "xentui.batch", "xentui.cli"])
def test_core_modules_import_without_loading_textual(module):
    probe = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print('textual' in sys.modules)"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    assert probe.stdout.strip() == "False"


def test_the_wheel_ships_every_module_of_the_source_tree(tmp_path):
    """The package list in pyproject.toml is written by hand: a new subpackage left out of it would be missing
    from every install while every test here, run from the source tree, still passed."""
    source = tmp_path / "source"  # a clean copy: a build/ directory left in the tree would hide what is missing
    source.mkdir()
    for part in ("xentui", "themes"):
        shutil.copytree(ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(source)],
        check=True, capture_output=True, timeout=300,
    )
    names = set(zipfile.ZipFile(next(tmp_path.glob("xentui-*.whl"))).namelist())
    sources = {str(path.relative_to(ROOT)) for path in (ROOT / "xentui").rglob("*.py")
               if "__pycache__" not in path.parts}
    assert sources - names == set()
