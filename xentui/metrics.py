"""Every domain's counters and gauges in the Prometheus/OpenMetrics text format, as the model has them.

``xentui -b --format openmetrics`` prints one exposition per iteration (for node_exporter's textfile collector
and cron: ``xentui -b -i 1 --format openmetrics > /var/lib/node_exporter/xentui.prom.$$ && mv ...``);
``xentui export --listen ADDR:PORT`` serves the latest sample over HTTP while it keeps sampling.

Names carry their units (``_seconds_total``, ``_bytes_total``, ``_bytes``). Labels: ``host`` (the dom0's name,
or its name in a pool), ``domain``, ``uuid`` and ``domid``. A counter is one domain's since it started: a guest
that restarts, is restored or migrates in gets a new domid, so its counters start again from 0 in a new series
(the old one goes stale) and no series ever goes back; add them up with ``sum without (domid)``. A figure the
backend could not read is left out, never shown as 0. Label values are escaped by prometheus_client (a
domain's name is whatever its creator typed: quotes, backslashes, newlines, markup).
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TextIO

from prometheus_client import exposition as prometheus_text
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from xentui.backends.base import Backend, BackendError
from xentui.errors import InvalidArgument
from xentui.model import Domain, DomainState, HostStatus, Sample
from xentui.model.rates import DomainRates, compute_rates
from xentui.model.records import (
    UNKNOWN_CPU,
    UNKNOWN_MAXMEM,
    UNKNOWN_MEM,
    UNKNOWN_NET,
    UNKNOWN_VBD_SECTORS,
    UNKNOWN_VCPU_TIMES,
    UNKNOWN_VCPUS,
)
from xentui.textsafe import printable

SECTOR_BYTES = 512
DOMAIN_LABELS = ("host", "domain", "uuid", "domid")


def _host_name(sample: Sample, domain: Domain) -> str:
    return domain.host or sample.host.hostname


class SampleCollector(Collector):
    """The metric families of the latest sample given to it (`update`); collected by prometheus_client."""

    def __init__(self, *, exporter: bool = False) -> None:
        self.sample: Sample | None = None
        self.exporter = exporter  # a long-running exporter says whether its last sample worked, and when
        self.error: str | None = None
        self.sampled_at: float | None = None

    def update(self, sample: Sample, rates: Mapping[str, DomainRates] | None = None) -> None:
        self.sample = sample  # one reference swapped: the HTTP thread reads a whole sample, old or new
        self.error, self.sampled_at = None, time.time()

    def failed(self, error: str) -> None:
        self.error = error

    def collect(self) -> Iterator[Metric]:
        sample = self.sample
        if self.exporter:
            up = GaugeMetricFamily("xentui_up", "1 when xentui's last sample of the backend worked, else 0 "
                                   "(the figures are then the last good ones)")
            up.add_metric([], 0.0 if self.error or sample is None else 1.0)
            yield up
            if self.sampled_at is not None:
                at = GaugeMetricFamily("xentui_last_sample_timestamp_seconds", "when the figures were sampled",
                                       unit="seconds")
                at.add_metric([], self.sampled_at)
                yield at
        if sample is None:
            return
        yield from _host_metrics(sample)
        yield from _domain_metrics(sample)


def _host_metrics(sample: Sample) -> Iterator[Metric]:
    statuses: list[HostStatus] = list(sample.hosts)
    hosts = [(s.label, s.host, s.error is None) for s in statuses] or [(sample.host.hostname, sample.host, True)]
    up = GaugeMetricFamily("xentui_host_up", "1 while the host answers, 0 while it does not", labels=["host"])
    total = GaugeMetricFamily("xentui_host_memory_total_bytes", "the host's memory", labels=["host"])
    free = GaugeMetricFamily("xentui_host_memory_free_bytes", "the host's memory no domain holds", labels=["host"])
    cpus = GaugeMetricFamily("xentui_host_cpus", "the host's physical CPUs", labels=["host"])
    info = InfoMetricFamily("xentui_host", "the hypervisor and its version", labels=["host"])
    for label, host, answering in hosts:
        up.add_metric([label], 1.0 if answering else 0.0)
        if host is None:
            continue
        total.add_metric([label], host.total_kib * 1024.0)
        free.add_metric([label], host.free_kib * 1024.0)
        cpus.add_metric([label], float(host.nr_cpus))
        info.add_metric([label], {"hypervisor": host.hypervisor, "version": host.version})
    yield from (up, total, free, cpus, info)


def _domain_metrics(sample: Sample) -> Iterator[Metric]:
    labels = list(DOMAIN_LABELS)
    cpu = CounterMetricFamily("xentui_domain_cpu_seconds", "CPU time the domain used, all its vCPUs",
                              labels=labels, unit="seconds")
    vcpu = CounterMetricFamily("xentui_domain_vcpu_seconds", "CPU time of one vCPU", labels=[*labels, "vcpu"],
                               unit="seconds")
    memory = GaugeMetricFamily("xentui_domain_memory_bytes", "memory the domain holds now", labels=labels,
                               unit="bytes")
    maxmem = GaugeMetricFamily("xentui_domain_memory_max_bytes", "Xen's limit on the domain's memory",
                               labels=labels, unit="bytes")
    target = GaugeMetricFamily("xentui_domain_memory_target_bytes", "the balloon target", labels=labels,
                               unit="bytes")
    vcpus = GaugeMetricFamily("xentui_domain_vcpus_online", "vCPUs online", labels=labels)
    vcpus_max = GaugeMetricFamily("xentui_domain_vcpus_max", "vCPUs the domain may bring online", labels=labels)
    state = GaugeMetricFamily("xentui_domain_state", "1 for the domain's state (running, blocked, paused, "
                              "shutdown, crashed, dying), 0 for the others", labels=[*labels, "state"])
    info = InfoMetricFamily("xentui_domain", "the domain's type", labels=labels)
    nic = [*labels, "vif"]
    net = {
        name: CounterMetricFamily(f"xentui_domain_network_{name}", f"network {text}, as the guest counts it",
                                  labels=nic, unit=unit)
        for name, text, unit in (
            ("receive_bytes", "bytes received", "bytes"), ("transmit_bytes", "bytes sent", "bytes"),
            ("receive_packets", "packets received", ""), ("transmit_packets", "packets sent", ""),
            ("receive_errors", "receive errors", ""), ("transmit_errors", "transmit errors", ""),
            ("receive_drops", "received packets dropped", ""), ("transmit_drops", "sent packets dropped", ""),
        )
    }
    disk = [*labels, "device"]
    block = {
        name: CounterMetricFamily(f"xentui_domain_block_{name}", text, labels=disk, unit=unit)
        for name, text, unit in (
            ("read_requests", "read requests", ""), ("write_requests", "write requests", ""),
            ("read_bytes", "bytes read", "bytes"), ("written_bytes", "bytes written", "bytes"),
            ("out_of_requests", "times the ring was full (xentop's VBD_OO)", ""),
        )
    }
    for domain in sample.domains:
        values = [_host_name(sample, domain), domain.name, domain.uuid, str(domain.id)]
        unknown = domain.unknown
        if UNKNOWN_CPU not in unknown:
            cpu.add_metric(values, domain.cpu_ns / 1e9)
        if UNKNOWN_MEM not in unknown:
            memory.add_metric(values, domain.mem_kib * 1024.0)
        if domain.maxmem_kib is not None and UNKNOWN_MAXMEM not in unknown:
            maxmem.add_metric(values, domain.maxmem_kib * 1024.0)
        if domain.target_kib is not None:
            target.add_metric(values, domain.target_kib * 1024.0)
        if UNKNOWN_VCPUS not in unknown:
            vcpus.add_metric(values, float(domain.vcpus_online))
            vcpus_max.add_metric(values, float(domain.vcpus_total))
        current = domain.state
        for each in DomainState:
            state.add_metric([*values, each.value], 1.0 if each is current else 0.0)
        info.add_metric(values, {"type": domain.type.value})
        if UNKNOWN_VCPU_TIMES not in unknown and UNKNOWN_VCPUS not in unknown:
            for one in domain.vcpus:
                vcpu.add_metric([*values, str(one.index)], one.cpu_ns / 1e9)
        for vif in domain.vifs:
            if vif.error or (UNKNOWN_NET in unknown and not any(v.error for v in domain.vifs)):
                continue
            at = [*values, str(vif.devid)]
            for name, value in (("receive_bytes", vif.rx_bytes), ("transmit_bytes", vif.tx_bytes),
                                ("receive_packets", vif.rx_packets), ("transmit_packets", vif.tx_packets),
                                ("receive_errors", vif.rx_errors), ("transmit_errors", vif.tx_errors),
                                ("receive_drops", vif.rx_drops), ("transmit_drops", vif.tx_drops)):
                net[name].add_metric(at, float(value))
        for vbd in domain.vbds:
            if vbd.error:
                continue
            at = [*values, vbd.device]
            figures = [("read_requests", vbd.rd_reqs), ("write_requests", vbd.wr_reqs),
                       ("out_of_requests", vbd.oo_reqs)]
            if UNKNOWN_VBD_SECTORS not in unknown:
                figures += [("read_bytes", vbd.rd_sectors * SECTOR_BYTES),
                            ("written_bytes", vbd.wr_sectors * SECTOR_BYTES)]
            for name, value in figures:
                block[name].add_metric(at, float(value))
    yield from (cpu, vcpu, memory, maxmem, target, vcpus, vcpus_max, state, info, *net.values(), *block.values())


def exposition(sample: Sample, *, openmetrics: bool = True) -> str:
    """One sample in the OpenMetrics text format (ending with ``# EOF``), or in Prometheus' classic text format
    (what node_exporter's textfile collector reads)."""
    registry = CollectorRegistry(auto_describe=False)
    collector = SampleCollector()
    collector.update(sample)
    registry.register(collector)
    return (generate_latest(registry) if openmetrics else prometheus_text.generate_latest(registry)).decode()


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` (``127.0.0.1:9731``, ``[::1]:9731``, ``:9731`` for every address) -> (address, port)."""
    shown = printable(text.strip())
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"{shown!r} is not ADDR:PORT: e.g. 127.0.0.1:9731, [::1]:9731, or :9731 for every "
                              "address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host or "0.0.0.0"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InvalidArgument(f"{shown!r}: {printable(host)!r} is not an IP address to listen on") from None
    return host, int(port)


async def serve(backend: Backend, listen: tuple[str, int], delay: float, *, log: TextIO | None = None,
                ready: asyncio.Event | None = None) -> None:
    """Sample every ``delay`` seconds and serve the latest figures at ``listen`` (OpenMetrics to a scraper that
    asks for it, Prometheus' text format otherwise), until cancelled. A failed sample is said once on ``log``
    and served as ``xentui_up 0`` with the last good figures; the next good one ends it."""
    from prometheus_client import start_http_server

    log = log or sys.stderr
    registry = CollectorRegistry(auto_describe=False)
    collector = SampleCollector(exporter=True)
    registry.register(collector)
    try:
        server, thread = start_http_server(listen[1], listen[0], registry=registry)
    except OSError as error:
        raise InvalidArgument(f"cannot listen on {listen[0]}:{listen[1]}: {error.strerror or error}") from error
    print(f"xentui: serving metrics at http://{listen[0]}:{listen[1]}/metrics", file=log, flush=True)
    previous: Sample | None = None
    said: str | None = None
    try:
        while True:
            try:
                sample = await backend.sample()
            except BackendError as error:
                collector.failed(str(error))
                if str(error) != said:
                    said = str(error)
                    print(f"xentui: {printable(said)}", file=log, flush=True)
            else:
                collector.update(sample, compute_rates(previous, sample))
                previous, said = sample, None
            if ready is not None:
                ready.set()
            await asyncio.sleep(delay)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
