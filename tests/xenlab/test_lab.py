"""Smoke tests of the Xen lab itself: the hypervisor, dom0's tools and the two guests are really there."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.xenlab


def test_xl_list_shows_dom0_and_both_guests_running(xenlab):
    out = xenlab.ssh(["xl", "list"]).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    assert {"Domain-0", "guest1", "guest2"} <= rows.keys(), out
    for name in ("guest1", "guest2"):
        state = rows[name][4]
        assert not set(state) & set("pscd"), f"{name} is {state}: {out}"
        assert rows[name][2] == "128", out  # memory = 128


def test_hypervisor_is_xen_417_with_dom0_control(xenlab):
    caps = xenlab.ssh(["cat", "/proc/xen/capabilities"]).stdout.strip()
    assert caps == "control_d"
    info = xenlab.ssh(["xl", "info"]).stdout
    assert re.search(r"^xen_major\s*:\s*4$", info, re.M) and re.search(r"^xen_minor\s*:\s*17$", info, re.M), info


def test_xentop_shows_guest1_with_a_net_and_a_vbd_row(xenlab):
    out = xenlab.ssh(["xentop", "-b", "-i", "2", "-d", "1", "-n", "-x"]).stdout
    # the second iteration: everything after the last header line
    last = out[out.rindex("NAME"):]
    lines = last.splitlines()
    i = next(n for n, line in enumerate(lines) if line.split() and line.split()[0] == "guest1")
    following = []
    for line in lines[i + 1:]:
        if line.startswith(("Net", "VBD")):
            following.append(line)
        else:
            break
    assert any(line.startswith("Net0") for line in following), last
    assert any(line.startswith("VBD BlkBack") for line in following), last


def test_guest_consoles_are_logged_and_guests_answer_on_the_bridge(xenlab):
    log = xenlab.ssh(["cat", "/var/log/xen/console/guest-guest1.log"]).stdout
    assert "XENTUI-GUEST-READY guest1" in log
    assert "disks: xvda" in log
    for ip in ("10.99.0.11", "10.99.0.12"):
        xenlab.ssh(["ping", "-c", "1", "-W", "5", ip], timeout=30)


def test_dom0_can_ssh_to_localhost_for_xl_migrate(xenlab):
    # xl migrate HOST runs `ssh HOST xl migrate-receive`: root must get in without a prompt
    assert xenlab.ssh(["ssh", "localhost", "echo", "in"], timeout=60).stdout.strip() == "in"


def test_venv_imports_xentui_and_textual(xenlab):
    out = xenlab.ssh(["/root/venv/bin/python", "-c",
                      "import xentui, textual; print(xentui.__file__, textual.__version__)"]).stdout.split()
    assert out == ["/root/xentui/xentui/__init__.py", "8.2.8"]
    # also from another directory than /root, and through the console script
    xenlab.ssh("cd /tmp && /root/venv/bin/xentui --version")


def test_libxenstat_is_in_dom0(xenlab):
    xenlab.ssh(["test", "-e", "/usr/lib/x86_64-linux-gnu/libxenstat.so.4.17"])
    out = xenlab.ssh(["/root/venv/bin/python", "-c",
                      "import ctypes; h = ctypes.CDLL('libxenstat.so.4.17'); print(bool(h.xenstat_init))"]).stdout
    assert out.strip() == "True"
