"""Run inside the lab's dom0 (by tests/xenlab/test_*_lab.py over ssh): one backend operation, one JSON line out.

The xl backend by default; `--libvirt URI` (e.g. `--libvirt xen:///system`) uses the libvirt backend instead,
and adds what it learnt about the driver to the output (see `_libvirt_state`).

    python in_dom0.py sample
    python in_dom0.py capabilities                   after a sample: the unsupported actions and why
    python in_dom0.py act ACTION DOMAIN [ARG...]     mem-set/mem-max KiB, vcpu-set N [overcommit], pause,
                                                     unpause, sysrq KEY, shutdown, reboot, destroy,
                                                     sched WEIGHT CAP, save PATH [keep], restore PATH
    python in_dom0.py migrate DOMAIN HOST            every progress event, then the outcome
    python in_dom0.py console DOMAIN TEXT EXPECT     type TEXT + Enter, read until EXPECT shows
    python in_dom0.py console-sysrq DOMAIN KEY EXPECT  console open, sysrq sent through xl, read until EXPECT

Errors come back as {"error": message, "kind": class name}, never as a traceback: the tests check
the message an operator would see.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from xentui.backends.base import Backend
from xentui.backends.xl import XlBackend
from xentui.errors import BackendError
from xentui.model import compute_rates


def _domain(domain, rates) -> dict:
    rate = rates.get(domain.key)
    return {
        "name": domain.name, "id": domain.id, "uuid": domain.uuid, "type": str(domain.type),
        "state": str(domain.state), "flags": domain.flags_text, "mem_kib": domain.mem_kib,
        "maxmem_kib": domain.maxmem_kib, "static_maxmem_kib": domain.static_maxmem_kib,
        "mem_ceiling_kib": domain.mem_ceiling_kib, "target_kib": domain.target_kib, "vcpus_online": domain.vcpus_online,
        "vcpus_total": domain.vcpus_total, "vcpus": [[v.index, v.online] for v in domain.vcpus],
        "cpu_ns": domain.cpu_ns, "unknown": sorted(domain.unknown),
        "cpu_pct": rate.cpu_pct if rate is not None else None,
        "weight": domain.sched_weight, "cap": domain.sched_cap,
        "vifs": [{"ifname": v.ifname, "mac": v.mac, "bridge": v.bridge, "rx_bytes": v.rx_bytes,
                  "tx_bytes": v.tx_bytes} for v in domain.vifs],
        "vbds": [{"devid": v.devid, "device": v.device, "backend": str(v.backend), "path": v.path,
                  "rd_reqs": v.rd_reqs, "wr_reqs": v.wr_reqs, "error": v.error} for v in domain.vbds],
    }


def _libvirt_state(backend: Backend) -> dict:
    """What the libvirt backend found out about the driver at run time (its connection's private state: the
    tests check that the fallbacks really ran, which the UI shows only as values and unknowns)."""
    current = backend._current  # type: ignore[attr-defined]
    return {"driver": current.driver if current else None, "uri": current.uri if current else None,
            "bulk": current.bulk if current else None, "nowait": current.nowait if current else None,
            "console_safe": current.console_safe if current else None,
            "vcpus_call": current.vcpus_call if current else None,
            "learned": {str(action): why for action, why in backend._learned.items()},  # type: ignore[attr-defined]
            "unsupported": {str(action): why for action, why in backend.capabilities.unsupported.items()}}


async def sample(backend: Backend) -> dict:
    first = await backend.sample()
    await asyncio.sleep(1.0)
    second = await backend.sample()
    rates = compute_rates(first, second)
    host = second.host
    out = {"stats_source": getattr(backend, "stats_source", backend.name),
           "host": {"hostname": host.hostname, "version": host.version, "nr_cpus": host.nr_cpus,
                    "total_kib": host.total_kib, "free_kib": host.free_kib, "scheduler": host.scheduler,
                    "hypervisor": host.hypervisor},
           "domains": [_domain(d, rates) for d in second.domains]}
    if backend.name == "libvirt":
        out["libvirt"] = _libvirt_state(backend)
    return out


async def capabilities(backend: Backend) -> dict:
    await backend.sample()
    out = {"unsupported": {str(action): why for action, why in backend.capabilities.unsupported.items()}}
    if backend.name == "libvirt":
        out["libvirt"] = _libvirt_state(backend)
    return out


async def act(backend: Backend, action: str, domain: str, args: list[str]) -> dict:
    await backend.sample()
    match action:
        case "mem-set":
            await backend.mem_set(domain, int(args[0]))
        case "mem-max":
            await backend.mem_max(domain, int(args[0]))
        case "vcpu-set":
            await backend.vcpu_set(domain, int(args[0]), allow_overcommit=args[1:] == ["overcommit"])
        case "pause" | "unpause" | "shutdown" | "reboot" | "destroy":
            await getattr(backend, action)(domain)
        case "sysrq":
            await backend.sysrq(domain, args[0])
        case "sched":
            weight = None if args[0] == "-" else int(args[0])
            cap = None if args[1] == "-" else int(args[1])
            await backend.set_sched(domain, weight=weight, cap=cap)
        case "save":
            await backend.save(domain, Path(args[0]), keep_running="keep" in args[1:],
                               overwrite="overwrite" in args[1:])
        case "restore":
            return {"ok": True, "name": await backend.restore(Path(domain))}
        case _:
            raise SystemExit(f"unknown action {action}")
    return {"ok": True}


async def migrate(backend: Backend, domain: str, host: str) -> dict:
    await backend.sample()
    events = []
    checks = [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in await backend.migrate_preflight(domain, host)]
    async for progress in backend.migrate(domain, host):
        events.append({"phase": str(progress.phase), "fraction": progress.fraction, "message": progress.message})
    return {"ok": True, "preflight": checks, "events": events}


async def console(backend: Backend, domain: str, text: str, expect: str, sysrq_key: str | None = None) -> dict:
    await backend.sample()
    channel = await backend.open_console(domain)
    seen = b""
    try:
        await asyncio.sleep(0.5)
        if sysrq_key is not None:
            await backend.sysrq(domain, sysrq_key)
        else:
            # Ctrl-U first: whatever an earlier session left half-typed on the guest's line goes away
            await channel.write(b"\x15" + text.encode() + b"\r")
        deadline = time.monotonic() + 30
        while expect.encode() not in seen and time.monotonic() < deadline:
            try:
                seen += await asyncio.wait_for(channel.read(), 1.0)
            except TimeoutError:
                continue
    finally:
        await channel.close()
    out = {"ok": expect.encode() in seen, "output": seen.decode("utf-8", "replace")}
    if backend.name == "libvirt":
        out["libvirt"] = _libvirt_state(backend)
    return out


def _backend(argv: list[str]) -> tuple[Backend, list[str]]:
    if "--libvirt" in argv:
        at = argv.index("--libvirt")
        uri = argv[at + 1]
        from xentui.backends.libvirt import LibvirtBackend

        return LibvirtBackend(uri), argv[:at] + argv[at + 2:]
    backend = XlBackend(stats="xentop" if "--xentop" in argv else "auto")
    return backend, [arg for arg in argv if arg != "--xentop"]


async def main(argv: list[str]) -> dict:
    backend, argv = _backend(argv)
    try:
        command, *rest = argv
        if command == "sample":
            return await sample(backend)
        if command == "capabilities":
            return await capabilities(backend)
        if command == "act":
            return await act(backend, rest[0], rest[1], rest[2:])
        if command == "migrate":
            return await migrate(backend, rest[0], rest[1])
        if command == "console":
            return await console(backend, rest[0], rest[1], rest[2])
        if command == "console-sysrq":
            return await console(backend, rest[0], "", rest[2], sysrq_key=rest[1])
        raise SystemExit(f"unknown command {command}")
    except BackendError as error:
        out = {"error": str(error), "kind": type(error).__name__}
        if backend.name == "libvirt":
            out["libvirt"] = _libvirt_state(backend)
        return out
    finally:
        await backend.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1:]))))
