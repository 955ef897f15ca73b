"""What the sdist and the wheel carry: every test or none, the licence, the themes; and the test command's pins.

The sdist is built from a copy of the working tree (as `python -m build` does, without build isolation: the
setuptools of this venv, so offline), then the wheel from the unpacked sdist, as pip would build it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
# what a checkout holds that is no part of the source: .gitignore's entries, and git's own directory
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache",
    ".import_linter_cache", ".hypothesis", "snapshot_report.html",
)
BUILD = """\
import sys
from setuptools import build_meta
print(getattr(build_meta, "build_" + sys.argv[1])(sys.argv[2]))
"""


def build(kind: str, source: Path, out: Path) -> Path:
    result = subprocess.run([sys.executable, "-c", BUILD, kind, str(out)], cwd=source, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"building the {kind} failed:\n{result.stdout}\n{result.stderr}"
    return out / result.stdout.strip().splitlines()[-1]


class Built:
    def __init__(self, base: Path) -> None:
        self.source = base / "source"
        shutil.copytree(ROOT, self.source, ignore=NOT_SOURCE, symlinks=True)
        (base / "dist").mkdir()
        self.sdist = build("sdist", self.source, base / "dist")
        with tarfile.open(self.sdist) as tar:
            top = tar.getnames()[0].split("/")[0]
            self.sdist_files = {name.split("/", 1)[1] for name in tar.getnames()
                                if "/" in name and tar.getmember(name).isfile()}
            tar.extractall(base / "unpacked", filter="data")
        self.unpacked = base / "unpacked" / top
        self.wheel = build("wheel", self.unpacked, base / "dist")
        self.wheel_files = set(zipfile.ZipFile(self.wheel).namelist())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    return Built(tmp_path_factory.mktemp("packaging"))


def source_files(top: Path, under: str) -> set[str]:
    return {str(path.relative_to(top)) for path in (top / under).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}


def test_the_sdist_ships_every_test_or_none(built):
    shipped = {name for name in built.sdist_files if name.startswith("tests/")}
    if not shipped:
        return
    assert "tests/conftest.py" in shipped
    assert any(name.startswith("tests/fixtures/") for name in shipped)
    assert any(name.startswith("tests/ui/__snapshots__/") for name in shipped)
    missing = source_files(built.source, "tests") - shipped
    assert not missing, f"the sdist ships some tests but not these: {sorted(missing)}"


def test_the_sdist_carries_the_licence_and_no_build_litter(built):
    assert "LICENSE" in built.sdist_files
    assert "GNU GENERAL PUBLIC LICENSE" in (built.unpacked / "LICENSE").read_text()
    assert "Version 2, June 1991" in (built.unpacked / "LICENSE").read_text()
    assert "constraints/tests.txt" in built.sdist_files  # the README's test command reads it
    litter = {name for name in built.sdist_files
              if name.endswith(".pyc") or "__pycache__" in name or name.startswith((".venv/", ".git/", "build/"))}
    assert not litter


def test_the_metadata_says_the_licence_as_an_spdx_expression(built):
    metadata = (built.unpacked / "PKG-INFO").read_text()
    headers = metadata.split("\n\n", 1)[0].splitlines()
    assert "License-Expression: GPL-2.0-only" in headers
    assert "License-File: LICENSE" in headers
    assert not [line for line in headers if line.startswith("License:")]  # the deprecated free-text field
    assert not [line for line in headers if line.startswith("Classifier: License ::")]  # superseded by SPDX


def test_the_wheel_carries_the_themes_the_stylesheet_and_the_licence(built):
    names = built.wheel_files
    assert {"xentui/themes/xentui-dark.toml", "xentui/themes/xentui-light.toml",
            "xentui/themes/xentui-plain.toml"} <= names
    assert any(name.startswith("xentui/ui/") and name.endswith(".tcss") for name in names)
    assert any(re.fullmatch(r"xentui-[^/]+\.dist-info/licenses/LICENSE", name) for name in names)
    assert not [name for name in names if name.startswith("tests/")]


def test_the_tests_of_the_sdist_collect_without_errors(built):
    """The sdist's tests (conftest.py, fixtures, tests/ui) are enough to collect them, against its own xentui."""
    if not any(name.startswith("tests/") for name in built.sdist_files):
        pytest.skip("the sdist ships no tests")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts="],
        cwd=built.unpacked, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"\d+ tests collected", result.stdout), result.stdout[-3000:]


def dependency(name: str) -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return next(r for r in map(Requirement, project["dependencies"]) if r.name == name)


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            found[name.strip()] = version.strip()
    return found


def test_the_package_asks_a_range_of_textual_and_the_tests_pin_one_inside_it():
    textual = dependency("textual")
    assert not any(spec.operator in ("==", "===") for spec in textual.specifier), textual
    pinned = pins(ROOT / "constraints" / "tests.txt")
    assert pinned["textual"] in textual.specifier


def test_the_test_command_is_one_in_the_readme_and_ci_and_uses_the_constraints():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("python3 -m venv") and "pytest" in line)
    assert "-c constraints/tests.txt" in command
    assert f'bash -c "{command}"' in ci, "the README's test command and .ci/run's differ"
