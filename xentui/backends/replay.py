"""Play a recorded `xentop -b` log back as if it were live: one recorded iteration per sample.

xentop prints whole CPU seconds and a CPU % per domain; the replay rebuilds nanosecond counters
whose differences over the recorded interval give back exactly the recorded CPU %, and a host
memory size that gives back every MEM(%) — so `xentui --replay LOG -b` with the recording's flags
prints the recording's domain lines again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator
from pathlib import Path

from xentui.backends.base import (
    Action,
    Backend,
    BackendUnavailable,
    Capabilities,
    ConsoleChannel,
    InvalidArgument,
    MigrateProgress,
    PreflightCheck,
    Unsupported,
)
from xentui.backends.xentop_parser import NS, XentopLog, XentopRow, parse_xentop_log, rebuild_cpu_ns
from xentui.model import Domain, DomainType, Host, Sample, Vbd, VbdBackend, Vcpu, Vif, parse_flags

_KINDS = {"BlkBack": VbdBackend.BLKBACK, "BlkTap": VbdBackend.BLKTAP, "Tapdisk3": VbdBackend.TAPDISK3}
REASON = "a replay of a recorded log cannot act on domains"


def _host_total_kib(log: XentopLog) -> int:
    """A host size that reproduces every recorded MEM(%) (xentop rounds to one decimal)."""
    low, high = 1.0, math.inf
    largest = 1
    for iteration in log.iterations:
        for row in iteration:
            largest = max(largest, row.mem_kib)
            if row.mem_pct > 0.05 and row.mem_kib:
                low = max(low, row.mem_kib * 100 / (row.mem_pct + 0.05))
                high = min(high, row.mem_kib * 100 / (row.mem_pct - 0.05))
    if math.isinf(high) or low > high:
        return max(largest, 1) * 10  # no usable percentages: any plausible size
    return int((low + high) / 2)


class ReplayBackend(Backend):
    name = "replay"

    def __init__(self, path: Path, *, interval: float = 3.0, loop: bool = False) -> None:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            raise BackendUnavailable(f"cannot read {path}: {error.strerror}") from error
        if interval <= 0:
            raise InvalidArgument("the recorded interval must be more than 0 seconds")
        self.path = Path(path)
        self.log = parse_xentop_log(text)
        if not self.log.iterations:
            raise InvalidArgument(f"{path} holds no `xentop -b` domain lines")
        self.interval = interval
        self.loop = loop
        self.position = 0
        self._domids: dict[str, int] = {}
        self._host = Host(
            hostname=f"replay of {self.path.name}", hypervisor="Xen", version="unknown", nr_cpus=0, cpu_mhz=0,
            total_kib=_host_total_kib(self.log), free_kib=0,
        )
        self.samples = self._build_samples()

    @property
    def iterations(self) -> int:
        return len(self.samples)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities({action: REASON for action in Action})

    # building the samples ----------------------------------------------------------------------------

    def _domid(self, name: str) -> int:
        if name not in self._domids:
            self._domids[name] = 0 if name == "Domain-0" else len([n for n in self._domids if n != "Domain-0"]) + 1
        return self._domids[name]

    def _build_samples(self) -> list[Sample]:
        samples = []
        cpu_ns: dict[str, int] = {}
        try:
            base_wall = self.path.stat().st_mtime - self.interval * (len(self.log.iterations) - 1)
        except OSError:
            base_wall = 0.0
        for index, rows in enumerate(self.log.iterations):
            domains = []
            for row in rows:
                previous = cpu_ns.get(row.name)
                ns = rebuild_cpu_ns(row, previous, self.interval)
                cpu_ns[row.name] = ns
                domains.append(self._domain(row, ns))
            used = sum(d.mem_kib for d in domains)
            host = dataclasses.replace(self._host, free_kib=max(0, self._host.total_kib - used))
            samples.append(Sample(monotonic=index * self.interval, wall=base_wall + index * self.interval,
                                  host=host, domains=domains))
        return samples

    def _domain(self, row: XentopRow, cpu_ns: int) -> Domain:
        domid = self._domid(row.name)
        if row.vcpu_s:
            vcpus = [Vcpu(i, i in row.vcpu_s, row.vcpu_s.get(i, 0) * NS) for i in range(row.vcpus)]
        else:
            share = cpu_ns // max(1, row.vcpus)
            vcpus = [Vcpu(i, True, share) for i in range(row.vcpus)]
        if row.vifs:
            vifs = [Vif(v.index, f"vif{domid}.{v.index}", "", None, v.rx_bytes, v.rx_packets, v.rx_errors, v.rx_drops,
                        v.tx_bytes, v.tx_packets, v.tx_errors, v.tx_drops) for v in row.vifs]
        else:
            vifs = [Vif(i, f"vif{domid}.{i}") for i in range(row.nets)]
            if vifs:
                vifs[0].rx_bytes, vifs[0].tx_bytes = row.net_rx_kib * 1024, row.net_tx_kib * 1024
        if row.vbd_rows:
            vbds = [Vbd(v.devid, str(v.devid), _KINDS.get(v.kind, VbdBackend.UNKNOWN), "", v.oo or 0, v.rd or 0,
                        v.wr or 0, v.rsect or 0, v.wsect or 0, error=v.oo is None) for v in row.vbd_rows]
        else:
            unreadable = row.vbd_oo is None
            vbds = [Vbd(i, f"vbd{i}", error=unreadable) for i in range(row.vbds)]
            if vbds and not unreadable:
                first = vbds[0]
                first.oo_reqs, first.rd_reqs, first.wr_reqs = row.vbd_oo or 0, row.vbd_rd or 0, row.vbd_wr or 0
                first.rd_sectors, first.wr_sectors = row.vbd_rsect or 0, row.vbd_wsect or 0
        return Domain(
            id=domid, name=row.name, uuid="", type=DomainType.UNKNOWN, flags=parse_flags(row.state), cpu_ns=cpu_ns,
            mem_kib=row.mem_kib, maxmem_kib=row.maxmem_kib, vcpus=vcpus, vcpus_max=row.vcpus, vifs=vifs,
            vbds=vbds, ssid=row.ssid,
        )

    # the interface --------------------------------------------------------------------------------

    async def sample(self) -> Sample:
        """The next recorded iteration; at the end, the last one again (or the first, with loop)."""
        if self.position >= len(self.samples):
            self.position = 0 if self.loop else len(self.samples) - 1
        sample = self.samples[self.position]
        self.position += 1
        return sample

    async def host_info(self) -> Host:
        return self.samples[max(0, self.position - 1)].host

    def _refuse(self, what: str) -> Unsupported:
        return Unsupported(f"{what}: {REASON}")

    async def mem_set(self, domain: str, kib: int) -> None:
        raise self._refuse("mem-set")

    async def mem_max(self, domain: str, kib: int) -> None:
        raise self._refuse("mem-max")

    async def vcpu_set(self, domain: str, count: int, *, allow_overcommit: bool = False) -> None:
        raise self._refuse("vcpu-set")

    async def pause(self, domain: str) -> None:
        raise self._refuse("pause")

    async def unpause(self, domain: str) -> None:
        raise self._refuse("unpause")

    async def save(self, domain: str, path: Path, *, keep_running: bool = False, overwrite: bool = False) -> None:
        raise self._refuse("save")

    async def restore(self, path: Path, *, paused: bool = False) -> str:
        raise self._refuse("restore")

    async def sysrq(self, domain: str, key: str) -> None:
        raise self._refuse("sysrq")

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]:
        raise self._refuse("migrate")

    async def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]:
        raise self._refuse("migrate")
        yield  # pragma: no cover - an async generator like the others

    async def shutdown(self, domain: str) -> None:
        raise self._refuse("shutdown")

    async def reboot(self, domain: str) -> None:
        raise self._refuse("reboot")

    async def destroy(self, domain: str) -> None:
        raise self._refuse("destroy")

    async def set_sched(self, domain: str, *, weight: int | None = None, cap: int | None = None) -> None:
        raise self._refuse("scheduler")

    async def open_console(self, domain: str) -> ConsoleChannel:
        raise self._refuse("console")
