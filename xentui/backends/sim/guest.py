"""What a simulated guest's kernel says: its name, memory figures and boot log, and its SysRq answers.

Figures follow the simulation: `meminfo` tracks the balloon, the boot log the domain's devices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xentui.model import DomainType

if TYPE_CHECKING:
    from xentui.backends.sim.domain import SimDomain

KERNEL = "6.1.0-27-amd64"
KERNEL_BUILD = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)"
KERNEL_RESERVED = 0.03  # share of memory the guest kernel keeps for itself


def hostname_of(dom: SimDomain) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in dom.name).strip("-")
    return cleaned[:63] or "guest"


def meminfo(dom: SimDomain) -> dict[str, int]:
    total = int(dom.mem_kib * (1 - KERNEL_RESERVED))
    load = dom.load.base
    used = int(total * (0.12 + 0.5 * load))
    cached = int(total * 0.25)
    buffers = int(total * 0.02)
    free = max(0, total - used - cached - buffers)
    return {
        "MemTotal": total, "MemFree": free, "MemAvailable": free + cached + buffers,
        "Buffers": buffers, "Cached": cached, "SwapCached": 0, "Active": int(used * 0.6 + cached * 0.4),
        "Inactive": int(cached * 0.6), "SwapTotal": 0, "SwapFree": 0, "Dirty": 128, "Shmem": 2048,
        "Slab": int(total * 0.02), "KernelStack": 4096, "PageTables": int(total * 0.004),
        "Committed_AS": int(used * 1.4), "VmallocTotal": 34359738367,
    }


def boot_log(dom: SimDomain) -> list[str]:
    """What the guest's kernel said while it booted, as ``dmesg`` shows it: the same for the same domain."""
    mem = dom.maxmem_kib or dom.target_kib
    kind = {DomainType.PV: "Xen PV", DomainType.PVH: "Xen PVH"}.get(dom.type, "Xen HVM")
    lines = [
        (0.0, f"Linux version {KERNEL} (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, "
              f"GNU ld (GNU Binutils for Debian) 2.40) {KERNEL_BUILD}"),
        (0.0, f"Command line: BOOT_IMAGE=/boot/vmlinuz-{KERNEL} root=/dev/xvda1 ro console=hvc0 quiet"),
        (0.0, f"Hypervisor detected: {kind}"),
        (0.0, f"Memory: {int(mem * (1 - KERNEL_RESERVED))}K/{mem}K available"),
        (0.0, "Booting paravirtualized kernel on Xen" if dom.type != DomainType.HVM
              else "Xen HVM callback vector for event delivery is enabled"),
        (0.004123, f"smpboot: Allowing {dom.vcpus_max} CPUs, 0 hotplug CPUs"),
        (0.121406, "xen:events: Using FIFO-based ABI"),
        (0.183275, f"smp: Brought up 1 node, {dom.vcpus_max} CPUs"),
        (0.412950, "xen:balloon: Initialising balloon driver"),
    ]
    t = 0.6
    if dom.pv_drivers:
        lines.append((0.521884, "xen_netfront: Initialising Xen virtual ethernet driver"))
        for vbd in dom.vbds:
            t += 0.011
            lines.append((t, f"blkfront: {vbd.device}: flush diskcache: enabled; persistent grants: enabled; "
                             "indirect descriptors: enabled; bounce buffer: enabled"))
    else:
        for index, vbd in enumerate(dom.vbds):
            t += 0.011
            lines.append((t, f"ata{index + 1}.00: ATA-7: QEMU HARDDISK, 2.5+, max UDMA/100 ({vbd.device})"))
    lines += [
        (1.024310, "EXT4-fs (xvda1): mounted filesystem with ordered data mode. Quota mode: none."),
        (1.401742, "systemd[1]: systemd 252.31-1~deb12u1 running in system mode"),
        (1.420118, f"systemd[1]: Hostname set to <{hostname_of(dom)}>."),
    ]
    for index, _vif in enumerate(dom.vifs):
        lines.append((2.1 + index * 0.013, f"IPv6: ADDRCONF(NETDEV_CHANGE): eth{index}: link becomes ready"))
    return [f"[{t:12.6f}] {text}" for t, text in lines]


def log_time(line: str) -> float:
    try:
        return float(line[1:line.index("]")])
    except ValueError:
        return 0.0


_SYSRQ_TITLES = {
    "b": "Resetting", "c": "Trigger a crash", "e": "Terminate All Tasks", "f": "Manual OOM execution",
    "h": "HELP : loglevel(0-9) reboot(b) crash(c) terminate-all-tasks(e) memory-full-oom-kill(f) "
         "kill-all-tasks(i) thaw-filesystems(j) sak(k) show-backtrace-all-active-cpus(l) show-memory-usage(m) "
         "nice-all-RT-tasks(n) poweroff(o) show-registers(p) show-all-timers(q) unraw(r) sync(s) "
         "show-task-states(t) unmount(u) show-blocked-tasks(w) dump-ftrace-buffer(z)",
    "i": "Kill All Tasks", "j": "Emergency Thaw of all frozen filesystems", "k": "SAK",
    "l": "Show backtrace of all active CPUs", "m": "Show Memory", "n": "Nice All RT Tasks", "o": "Power Off",
    "p": "Show Regs", "q": "Show clockevent devices & pending hrtimers (no others)",
    "r": "Keyboard mode set to system default",
    "s": "Emergency Sync", "t": "Show State", "u": "Emergency Remount R/O", "w": "Show Blocked State",
    "z": "Dump ftrace buffer",
}


def kernel_sysrq_lines(key: str, dom: SimDomain) -> list[str]:
    """The kernel's log lines for one SysRq key, as Linux prints them on the console."""
    if key.isdigit():
        return ["sysrq: Changing Loglevel", f"sysrq: Loglevel set to {key}"]
    lines = [f"sysrq: {_SYSRQ_TITLES.get(key, 'HELP')}"]
    if key == "m":
        info = meminfo(dom)
        pages = info["MemTotal"] // 4
        lines += [
            "Mem-Info:",
            f"active_anon:{info['Active'] // 8} inactive_anon:{info['Inactive'] // 16} isolated_anon:0",
            f" active_file:{info['Active'] // 8} inactive_file:{info['Inactive'] // 8} isolated_file:0",
            f" unevictable:0 dirty:{info['Dirty'] // 4} writeback:0",
            f" slab_reclaimable:{info['Slab'] // 8} slab_unreclaimable:{info['Slab'] // 8}",
            f" mapped:{pages // 40} shmem:{info['Shmem'] // 4} pagetables:{info['PageTables'] // 4}",
            f" free:{info['MemFree'] // 4} free_pcp:{pages // 500} free_cma:0",
            f"Node 0 DMA32 free:{info['MemFree']}kB managed:{info['MemTotal']}kB",
            f"{pages} pages RAM",
            "0 pages HighMem/MovableOnly",
            f"{pages // 50} pages reserved",
        ]
    elif key == "t":
        lines += [
            "task:systemd         state:S stack:0     pid:1     ppid:0      flags:0x00000002",
            "task:kthreadd        state:S stack:0     pid:2     ppid:0      flags:0x00004000",
            "task:xenbus          state:S stack:0     pid:31    ppid:2      flags:0x00004000",
            "task:sshd            state:S stack:0     pid:512   ppid:1      flags:0x00000002",
            "task:bash            state:S stack:0     pid:1024  ppid:512    flags:0x00000002",
        ]
    elif key == "w":
        lines.append("task:jbd2/xvda1-8    state:D stack:0     pid:187   ppid:2      flags:0x00004000"
                     if dom.load.base > 0.5 else "(no tasks in uninterruptible state)")
    elif key == "s":
        lines.append("Emergency Sync complete")
    elif key == "u":
        lines.append("Emergency Remount complete")
    elif key == "p":
        lines += [
            f"CPU: 0 PID: 0 Comm: swapper/0 Not tainted {KERNEL} #1 Debian 6.1.115-1",
            "RIP: e030:xen_hypercall_sched_op+0xa/0x20",
            "RSP: e02b:ffffffff82603e38 EFLAGS: 00000246",
            "RAX: 0000000000000000 RBX: 0000000000000000 RCX: ffffffff81c0138a",
        ]
    elif key == "l":
        lines += [f"NMI backtrace for cpu {i}" for i in range(dom.vcpus_online)]
    elif key == "c":
        lines += ["Kernel panic - not syncing: sysrq triggered crash",
                  f"CPU: 0 PID: 1024 Comm: bash Not tainted {KERNEL} #1 Debian 6.1.115-1"]
    elif key == "f":
        lines.append("Out of memory: Killed process 4242 (stress-ng) total-vm:1048576kB")
    return lines
