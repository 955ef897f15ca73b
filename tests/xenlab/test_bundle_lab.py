"""The offline bundle in the real dom0: copied in, installed with no package index reachable, and
`xentui --backend xl` run there against the real Xen (issue 22)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.xenlab

REPO = Path(__file__).resolve().parents[2]


def test_the_offline_bundle_installs_in_dom0_and_watches_the_real_xen(xenlab, tmp_path):
    version = xenlab.ssh(["python3", "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"]
                         ).stdout.strip()
    made = subprocess.run(["bash", str(REPO / "bundle" / "make.sh"), "--python", version, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    (tarball,) = tmp_path.glob("xentui-offline-*.tar.gz")
    # no index from dom0: not PyPI, not this machine's
    reach = xenlab.ssh(["python3", "-c", "import urllib.request as u; u.urlopen('https://pypi.org/simple/', "
                        "timeout=5)"], check=False)
    assert reach.returncode != 0
    xenlab.ssh("rm -rf /tmp/bundle /opt/xentui-bundle && mkdir /tmp/bundle && cat > /tmp/bundle/b.tar.gz",
               input=tarball.read_bytes(), text=False)
    installed = xenlab.ssh("cd /tmp/bundle && tar xzf b.tar.gz && PIP_CONFIG_FILE=/dev/null "
                           "xentui-offline-*/install.sh --prefix /opt/xentui-bundle --bin /opt/xentui-bundle-bin",
                           timeout=600)
    print(f"\n{installed.stdout.strip()}")
    assert "installed in /opt/xentui-bundle" in installed.stdout
    ran = xenlab.ssh("cd / && /opt/xentui-bundle-bin/xentui --backend xl -b -i 2 -d 1", timeout=300)
    print(ran.stdout)
    lines = ran.stdout.splitlines()
    assert lines[0].split()[:2] == ["NAME", "STATE"]
    assert any(line.split()[0] == "Domain-0" for line in lines[1:])
    assert any(line.split()[0] == "guest1" for line in lines[1:])
    xenlab.ssh("/tmp/bundle/xentui-offline-*/install.sh --uninstall --prefix /opt/xentui-bundle "
               "--bin /opt/xentui-bundle-bin && rm -rf /tmp/bundle")
