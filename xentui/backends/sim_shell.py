"""What a simulated guest says: a small shell on its serial console, and its kernel's SysRq answers.

Figures follow the simulation: ``free`` and ``/proc/meminfo`` track the balloon, ``nproc``
tracks vcpu-set.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from xentui.clock import Clock

if TYPE_CHECKING:
    from xentui.backends.sim import SimDomain

KERNEL = "6.1.0-27-amd64"
KERNEL_BUILD = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)"
KERNEL_RESERVED = 0.03  # share of memory the guest kernel keeps for itself
MAX_SEQ = 100_000
# where typed bytes are in an escape: none, just after ESC, inside a CSI/SS3 sequence
_NO_ESCAPE, _AFTER_ESC, _IN_SEQUENCE = 0, 1, 2


def _hostname(dom: SimDomain) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in dom.name).strip("-")
    return cleaned[:63] or "guest"


def _meminfo(dom: SimDomain) -> dict[str, int]:
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


class SimShell:
    """A line-at-a-time shell with echo, backspace and Ctrl-C, as a serial getty would give."""

    def __init__(self, dom: SimDomain, clock: Clock) -> None:
        self.dom = dom
        self.clock = clock
        self.line = bytearray()
        self._escape = _NO_ESCAPE

    @property
    def prompt(self) -> bytes:
        return f"root@{_hostname(self.dom)}:~# ".encode()

    def feed(self, data: bytes) -> bytes:
        """Consume typed bytes; return what the terminal shows (echo and command output)."""
        out = bytearray()
        for byte in data:
            if self._escape == _AFTER_ESC:
                # '[' or 'O' begins a CSI/SS3 sequence (arrows, function keys: they do nothing here);
                # after anything else the ESC was a key of its own, and this byte is typed as usual
                self._escape = _IN_SEQUENCE if byte in (ord("["), ord("O")) else _NO_ESCAPE
                if self._escape:
                    continue
            elif self._escape == _IN_SEQUENCE:
                if 0x40 <= byte <= 0x7E:
                    self._escape = _NO_ESCAPE
                continue
            if byte == 0x1B:
                self._escape = _AFTER_ESC
            elif byte in (0x0D, 0x0A):
                out += b"\r\n"
                out += self.run(self.line.decode("utf-8", "replace"))
                out += self.prompt
                self.line.clear()
            elif byte in (0x7F, 0x08):
                if self.line:
                    # drop a whole UTF-8 character, not half of one
                    del self.line[-1]
                    while self.line and self.line[-1] & 0xC0 == 0x80:
                        del self.line[-1]
                    out += b"\b \b"
            elif byte == 0x03:
                self.line.clear()
                out += b"^C\r\n" + self.prompt
            elif byte == 0x15:  # Ctrl-U
                out += b"\b \b" * len(self.line.decode("utf-8", "replace"))
                self.line.clear()
            elif byte == 0x0C:  # Ctrl-L
                out += b"\x1b[H\x1b[2J" + self.prompt + bytes(self.line)
            elif byte >= 0x20 or byte == 0x09:
                self.line.append(byte)
                out.append(byte)
        return bytes(out)

    def run(self, command_line: str) -> bytes:
        try:
            words = shlex.split(command_line)
        except ValueError:
            return b"-bash: syntax error: unexpected end of file\r\n"
        if not words:
            return b""
        command, args = words[0], words[1:]
        handler = self._commands().get(command)
        text = handler(args) if handler else f"-bash: {command}: command not found\n"
        return text.replace("\n", "\r\n").encode()

    # commands ----------------------------------------------------------------------------

    def _commands(self) -> dict[str, Callable[[list[str]], str]]:
        return {name.removeprefix("_cmd_"): getattr(self, name) for name in dir(self) if name.startswith("_cmd_")}

    def _cmd_uname(self, args: list[str]) -> str:
        if "-a" in args:
            return f"Linux {_hostname(self.dom)} {KERNEL} {KERNEL_BUILD} x86_64 GNU/Linux\n"
        if "-r" in args:
            return f"{KERNEL}\n"
        return "Linux\n"

    def _cmd_hostname(self, args: list[str]) -> str:
        return f"{_hostname(self.dom)}\n"

    def _cmd_nproc(self, args: list[str]) -> str:
        return f"{self.dom.vcpus_online}\n"

    def _cmd_free(self, args: list[str]) -> str:
        info = _meminfo(self.dom)
        divisor = 1024 if "-m" in args else 1024 * 1024 if "-g" in args else 1

        def v(kib: int) -> str:
            return f"{kib // divisor:>12}"

        cache = info["Buffers"] + info["Cached"]
        used = info["MemTotal"] - info["MemFree"] - cache
        return (
            f"{'':15}{'total':>12}{'used':>12}{'free':>12}{'shared':>12}{'buff/cache':>12}{'available':>12}\n"
            f"{'Mem:':15}{v(info['MemTotal'])}{v(used)}{v(info['MemFree'])}{v(info['Shmem'])}{v(cache)}"
            f"{v(info['MemAvailable'])}\n"
            f"{'Swap:':15}{v(0)}{v(0)}{v(0)}\n"
        )

    def _cmd_cat(self, args: list[str]) -> str:
        out = []
        for path in args:
            if path == "/proc/meminfo":
                out.extend(f"{key + ':':16}{value:>8} kB" for key, value in _meminfo(self.dom).items())
            elif path == "/proc/cpuinfo":
                for index in range(self.dom.vcpus_online):
                    out += [f"processor\t: {index}", "vendor_id\t: GenuineIntel",
                            "model name\t: Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "cpu MHz\t\t: 2394.000", ""]
            elif path == "/proc/uptime":
                up = self.dom.uptime(self.clock.monotonic())
                out.append(f"{up:.2f} {up * max(1, self.dom.vcpus_online) * 0.8:.2f}")
            elif path == "/proc/loadavg":
                load = self.dom.load.base * self.dom.vcpus_online
                out.append(f"{load:.2f} {load:.2f} {load:.2f} 1/187 4242")
            else:
                out.append(f"cat: {path}: No such file or directory")
        return "\n".join(out) + "\n" if out else ""

    def _cmd_uptime(self, args: list[str]) -> str:
        up = int(self.dom.uptime(self.clock.monotonic()))
        days, rest = divmod(up, 86_400)
        hours, minutes = divmod(rest // 60, 60)
        load = self.dom.load.base * self.dom.vcpus_online
        span = f"{days} days, {hours:2d}:{minutes:02d}" if days else f"{hours:2d}:{minutes:02d}"
        return f" up {span},  1 user,  load average: {load:.2f}, {load:.2f}, {load:.2f}\n"

    def _cmd_dmesg(self, args: list[str]) -> str:
        return "".join(line + "\n" for line in self.dom.kernel_log[-200:])

    def _cmd_echo(self, args: list[str]) -> str:
        return " ".join(args) + "\n"

    def _cmd_whoami(self, args: list[str]) -> str:
        return "root\n"

    def _cmd_seq(self, args: list[str]) -> str:
        try:
            last = min(int(args[-1]), MAX_SEQ) if args else 0
        except ValueError:
            return f"seq: invalid floating point argument: '{args[-1]}'\n"
        return "".join(f"{n}\n" for n in range(1, last + 1))

    def _cmd_clear(self, args: list[str]) -> str:
        return "\x1b[H\x1b[2J"

    def _cmd_help(self, args: list[str]) -> str:
        return ("simulated guest shell: uname [-a|-r], hostname, nproc, free [-m|-g], uptime, dmesg, echo, seq N,\n"
                "cat /proc/meminfo|/proc/cpuinfo|/proc/uptime|/proc/loadavg, whoami, clear\n")


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
        info = _meminfo(dom)
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
