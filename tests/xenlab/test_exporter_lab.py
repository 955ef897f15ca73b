"""The exporter in the real dom0: `xentui export --listen` over xl, scraped from this machine through an ssh
tunnel to its port, parsed with prometheus_client's own parser; a running guest's CPU counter grows (issue 22)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

pytestmark = pytest.mark.xenlab

PORT = 9731


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    text = urllib.request.urlopen(request, timeout=20).read().decode()
    cpu = {}
    for family in text_string_to_metric_families(text):
        if family.name == "xentui_domain_cpu_seconds":
            cpu.update({s.labels["domain"]: s.value for s in family.samples if s.name.endswith("_total")})
        if family.name == "xentui_up" and family.samples[0].value != 1.0:
            return {}  # not sampled yet (or the last sample failed): no figures to trust
    return cpu


def test_the_exporter_in_dom0_serves_a_growing_cpu_counter_of_a_running_guest(xenlab):
    # the exporter in the foreground of its own ssh session, on a terminal: ending that ssh hangs it up
    serve = (f"cd /tmp && exec /root/venv/bin/xentui export --listen 127.0.0.1:{PORT} --backend xl -d 1 "
             "2>/tmp/exporter.log")
    exporter = subprocess.Popen(xenlab.lab.ssh_command(["sh", "-c", serve], tty=True), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    local = free_port()
    command = xenlab.lab.ssh_command([])
    at = command.index("root@127.0.0.1")
    tunnel = subprocess.Popen([*command[:at], "-N", "-o", "ControlPath=none", "-L", f"{local}:127.0.0.1:{PORT}",
                               command[at]], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        first: dict[str, float] = {}
        while time.monotonic() < deadline:
            try:
                first = scrape(local)
            except OSError:
                time.sleep(1)
                continue
            if "guest1" in first:
                break
            time.sleep(1)
        assert "guest1" in first and "Domain-0" in first, xenlab.ssh("cat /tmp/exporter.log").stdout
        time.sleep(5)
        second = scrape(local)
        print(f"\nguest1's CPU: {first['guest1']:.3f} s, then {second['guest1']:.3f} s; Domain-0's "
              f"{first['Domain-0']:.3f} s, then {second['Domain-0']:.3f} s")
        assert second["guest1"] > first["guest1"] and second["Domain-0"] > first["Domain-0"]
        real = xenlab.ssh(["xl", "list", "guest1"]).stdout.split()
        assert float(real[-1]) == pytest.approx(second["guest1"], abs=60)  # xl list's Time(s) column
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)
        exporter.terminate()
        exporter.wait(timeout=10)
