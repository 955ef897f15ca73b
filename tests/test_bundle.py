"""The offline bundle (bundle/make.sh): built here from the package index, installed with no network at all
(a network namespace with only a loopback that is down, where one can be made) by both of install.sh's routes."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    made = subprocess.run(["bash", str(REPO / "bundle" / "make.sh"), "--out", str(out)], capture_output=True,
                          text=True, timeout=600)
    if made.returncode != 0 and ("No matching distribution" in made.stderr or "Could not find" in made.stderr):
        pytest.skip(f"no package index reachable to build the bundle from: {made.stderr.strip()[-300:]}")
    assert made.returncode == 0, made.stderr
    (tarball,) = out.glob("xentui-offline-*.tar.gz")
    return tarball


def offline(command: list[str]) -> list[str]:
    """The command with no network: in a new network namespace when this machine lets us make one."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n", *command]
    return command


def test_the_bundle_holds_every_wheel_and_an_install_script(bundle):
    with tarfile.open(bundle) as archive:
        names = archive.getnames()
    wheels = {Path(n).name.split("-")[0].lower() for n in names if n.endswith(".whl")}
    assert {"xentui", "textual", "rich", "psutil", "pyte", "xmltodict", "prometheus_client"} <= wheels
    assert any(n.endswith("/install.sh") for n in names) and any(n.endswith("/SHA256SUMS") for n in names)


@pytest.mark.parametrize("route", ["venv", "unpacked"])
def test_it_installs_and_runs_with_no_network(bundle, tmp_path, route):
    with tarfile.open(bundle) as archive:
        archive.extractall(tmp_path, filter="data")
    (install,) = tmp_path.glob("xentui-offline-*/install.sh")
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}  # not this machine's find-links or local index either
    if route == "unpacked":
        env["XENTUI_NO_VENV"] = "1"
    done = subprocess.run(offline([str(install), "--prefix", str(tmp_path / "opt"), "--bin", str(tmp_path / "bin")]),
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert ("a venv" if route == "venv" else "unpacked") in done.stdout
    ran = subprocess.run(offline([str(tmp_path / "bin" / "xentui"), "--demo", "--sim-hosts", "1", "-b", "-i", "1"]),
                         capture_output=True, text=True, timeout=120, env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[0].split()[:3] == ["NAME", "STATE", "CPU(sec)"]
    removed = subprocess.run([str(install), "--uninstall", "--prefix", str(tmp_path / "opt"), "--bin",
                              str(tmp_path / "bin")], capture_output=True, text=True, timeout=60)
    assert removed.returncode == 0 and not (tmp_path / "opt").exists() and not (tmp_path / "bin" / "xentui").exists()


def test_a_damaged_copy_is_refused(bundle, tmp_path):
    with tarfile.open(bundle) as archive:
        archive.extractall(tmp_path, filter="data")
    (wheel,) = tmp_path.glob("xentui-offline-*/wheels/pyte-*.whl")
    wheel.write_bytes(wheel.read_bytes()[:-10])
    (install,) = tmp_path.glob("xentui-offline-*/install.sh")
    done = subprocess.run([str(install), "--prefix", str(tmp_path / "opt"), "--bin", str(tmp_path / "bin")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "does not match SHA256SUMS" in done.stderr and not (tmp_path / "opt").exists()
