"""OpenMetrics and Prometheus text: parsed back with prometheus_client's own parsers, hostile names round-trip,
unknown figures left out, counters that never go back across a restart, and the exporter over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from xentui.backends.base import BackendError
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.metrics import exposition, parse_listen, serve
from xentui.model import Sample
from xentui.model.records import UNKNOWN_CPU

pytestmark = pytest.mark.asyncio


def families(text: str) -> dict:
    return {family.name: family for family in parse_openmetrics(text)}


def values(family, **match) -> dict[tuple, float]:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples
            if all(s.labels.get(k) == v for k, v in match.items()) and not s.name.endswith("_created")}


@pytest.fixture
def sim():
    return SimBackend(SimCluster(seed=7, domains=12, clock=ManualClock()))


async def test_every_domain_as_the_model_has_it_with_units_in_the_names(sim):
    sample = await sim.sample()
    parsed = families(exposition(sample))
    cpu_family = parsed["xentui_domain_cpu_seconds"]
    assert cpu_family.type == "counter" and cpu_family.unit == "seconds"
    cpu = {s.labels["domain"]: s.value for s in parsed["xentui_domain_cpu_seconds"].samples
           if s.name == "xentui_domain_cpu_seconds_total"}
    assert cpu == pytest.approx({d.name: d.cpu_ns / 1e9 for d in sample.domains})
    memory = {s.labels["domain"]: s.value for s in parsed["xentui_domain_memory_bytes"].samples}
    assert memory == {d.name: d.mem_kib * 1024 for d in sample.domains}
    states = parsed["xentui_domain_state"].samples
    for domain in sample.domains:
        ones = [s.labels["state"] for s in states if s.labels["domain"] == domain.name and s.value == 1]
        assert ones == [domain.state.value]
    db = next(d for d in sample.domains if d.name == "db-primary")
    read = values(parsed["xentui_domain_block_read_bytes"], domain="db-primary", device="xvdb")
    assert list(read.values()) == [db.vbds[1].rd_sectors * 512]
    sent = values(parsed["xentui_domain_network_transmit_bytes"], domain="db-primary", vif="1")
    assert list(sent.values()) == [db.vifs[1].tx_bytes]
    assert values(parsed["xentui_host_memory_total_bytes"]) == {(("host", sample.host.hostname),):
                                                                sample.host.total_kib * 1024}
    assert {s.labels["host"] for s in parsed["xentui_domain_cpu_seconds"].samples} == {sample.host.hostname}


HOSTILE = ['quote " and \\ backslash', "new\nline", 'brace} {and="x"}', "[red]markup[/]", "ünïcödé ✓", "#EOF"]


async def test_hostile_domain_names_are_escaped_and_come_back_exactly(sim):
    sample = await sim.sample()
    renamed = [dataclasses.replace(d, name=HOSTILE[i % len(HOSTILE)] + str(i)) for i, d in enumerate(sample.domains)]
    hostile = Sample(sample.monotonic, sample.wall, sample.host, renamed)
    for text, parse in ((exposition(hostile), parse_openmetrics),
                        (exposition(hostile, openmetrics=False), parse_prometheus)):
        names = {s.labels["domain"] for f in parse(text) for s in f.samples if "domain" in s.labels}
        assert names == {d.name for d in renamed}


async def test_a_figure_the_backend_could_not_read_is_left_out_not_zero(sim):
    sample = await sim.sample()
    first = dataclasses.replace(sample.domains[1], unknown=frozenset({UNKNOWN_CPU}))
    text = exposition(Sample(sample.monotonic, sample.wall, sample.host, [first, *sample.domains[2:]]))
    cpu_domains = {s.labels["domain"] for s in families(text)["xentui_domain_cpu_seconds"].samples}
    assert first.name not in cpu_domains and sample.domains[2].name in cpu_domains


async def test_counters_never_go_back_a_restarted_guest_is_a_new_series(sim):
    seen: dict[tuple, float] = {}
    domids = set()
    for step in range(6):
        if step == 3:
            await sim.sysrq("web-frontend-01", "b")  # it reboots: a new domid, its counters from 0
        sim.clock.advance(1.0)
        parsed = families(exposition(await sim.sample()))
        for family in ("xentui_domain_cpu_seconds", "xentui_domain_network_receive_bytes",
                       "xentui_domain_block_read_requests", "xentui_domain_vcpu_seconds"):
            for key, value in values(parsed[family]).items():
                assert value >= seen.get((family, key), 0.0), (family, key)
                seen[(family, key)] = value
        domids |= {s.labels["domid"] for s in parsed["xentui_domain_cpu_seconds"].samples
                   if s.labels["domain"] == "web-frontend-01"}
    assert len(domids) == 2  # before and after the reboot: two series, each only growing


async def test_the_prometheus_text_format_parses_too(sim):
    text = exposition(await sim.sample(), openmetrics=False)
    names = {f.name for f in parse_prometheus(text)}
    assert {"xentui_domain_cpu_seconds", "xentui_domain_memory_bytes", "xentui_host_info"} <= names
    assert "# EOF" not in text


@pytest.mark.parametrize(("typed", "expected"), [
    ("127.0.0.1:9731", ("127.0.0.1", 9731)), ("[::1]:9731", ("::1", 9731)), (":9731", ("0.0.0.0", 9731)),
])
async def test_listen_addresses(typed, expected):
    assert parse_listen(typed) == expected


@pytest.mark.parametrize("typed", ["9731", "host:0", "localhost:9731", "1.2.3.4:99999", "1.2.3.4:80;rm"])
async def test_a_listen_address_that_cannot_be_is_refused(typed):
    with pytest.raises(BackendError):
        parse_listen(typed)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def scrape(port: int, openmetrics: bool) -> str:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    return await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).read().decode())


async def test_the_exporter_serves_the_latest_sample_and_says_when_the_backend_fails(sim, capsys):
    port = free_port()
    ready = asyncio.Event()
    task = asyncio.create_task(serve(sim, ("127.0.0.1", port), 0.05, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        text = await scrape(port, openmetrics=True)
        parsed = families(text)
        assert values(parsed["xentui_up"]) == {(): 1.0}
        assert len(parsed["xentui_domain_cpu_seconds"].samples) >= 13
        assert "xentui_domain_cpu_seconds_total" in await scrape(port, openmetrics=False)

        async def broken():
            raise BackendError("xl: the toolstack did not answer")

        sim.sample = broken  # type: ignore[method-assign]
        await asyncio.sleep(0.3)
        parsed = families(await scrape(port, openmetrics=True))
        assert values(parsed["xentui_up"]) == {(): 0.0}
        assert len(parsed["xentui_domain_cpu_seconds"].samples) >= 13  # the last good figures stay
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    said = capsys.readouterr().err
    assert said.count("the toolstack did not answer") == 1 and f"127.0.0.1:{port}/metrics" in said
