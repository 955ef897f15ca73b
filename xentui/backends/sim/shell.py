"""What a simulated guest says on its serial console: a small shell, as a serial getty would give.

Figures follow the simulation: ``free`` and ``/proc/meminfo`` track the balloon, ``nproc``
tracks vcpu-set. Commands can be piped through the filters an operator types at a Linux prompt
(``dmesg | tail``, ``... | grep -i xen``, ``... | wc -l``, ``less``): see `SimShell.run`.
What the guest's kernel says is `xentui.backends.sim.guest`; grep's patterns, `xentui.backends.sim.regex`.
"""

from __future__ import annotations

import heapq
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from xentui.backends.sim.guest import KERNEL, KERNEL_BUILD, boot_log, hostname_of, log_time, meminfo
from xentui.backends.sim.regex import GrepPatternError, Pattern
from xentui.clock import Clock

if TYPE_CHECKING:
    from xentui.backends.sim.domain import SimDomain


MAX_SEQ = 100_000
MAX_LINE = 4095  # a tty in canonical mode keeps at most this many typed bytes on a line; the rest are dropped
# where typed bytes are in an escape: none, just after ESC, inside a CSI/SS3 sequence
_NO_ESCAPE, _AFTER_ESC, _IN_SEQUENCE = 0, 1, 2


def _lines(text: str) -> list[str]:
    """Text as lines that keep their newline (a last line without one stays without)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _split_pipeline(line: str) -> list[str]:
    """The stages of a command line, split at each '|' that is not quoted or escaped."""
    stages, current, quote, i = [], [], "", 0
    while i < len(line):
        char = line[i]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"' and i + 1 < len(line):
                current.append(char)
                i += 1
                char = line[i]
        elif char == "\\" and i + 1 < len(line):
            current.append(char)
            i += 1
            char = line[i]
        elif char in "'\"":
            quote = char
        elif char == "|":
            stages.append("".join(current))
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    stages.append("".join(current))
    return stages


_GREP_LONG = {
    "--ignore-case": "i", "--invert-match": "v", "--count": "c", "--line-number": "n", "--extended-regexp": "E",
    "--fixed-strings": "F", "--basic-regexp": "G", "--no-messages": "s",
}


class SimShell:
    """A line-at-a-time shell with echo, backspace and Ctrl-C, as a serial getty would give."""

    def __init__(self, dom: SimDomain, clock: Clock) -> None:
        self.dom = dom
        self.clock = clock
        self.line = bytearray()
        self._escape = _NO_ESCAPE
        self._errors: list[str] = []

    @property
    def prompt(self) -> bytes:
        return f"root@{hostname_of(self.dom)}:~# ".encode()

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
            elif (byte >= 0x20 or byte == 0x09) and len(self.line) < MAX_LINE:
                self.line.append(byte)
                out.append(byte)
        return bytes(out)

    def run(self, command_line: str) -> bytes:
        """Run one typed line: a command, or a pipeline of commands and filters (``dmesg | grep -i xen``).

        Errors go to the terminal before the pipeline's output, as stderr does; nothing typed raises.
        """
        self._errors = []
        try:
            text = self._pipeline(command_line)
        except Exception as error:  # a simulated command's bug must not take the console down with it
            text = f"-bash: internal error: {type(error).__name__}\n"
        text = "".join(self._errors) + text
        return text.replace("\n", "\r\n").encode("utf-8", "replace")

    def _pipeline(self, command_line: str) -> str:
        stages = []
        for text in _split_pipeline(command_line):
            try:
                stages.append(shlex.split(text))
            except ValueError:
                return "-bash: syntax error: unexpected end of file\n"
        if len(stages) == 1 and not stages[0]:
            return ""
        for index, words in enumerate(stages):
            if not words:  # '| tail', 'dmesg | | tail', 'dmesg |'
                if index == len(stages) - 1:
                    return "-bash: syntax error: unexpected end of file\n"
                return "-bash: syntax error near unexpected token `|'\n"
        data: str | None = None  # the previous stage's output; None: the first stage reads the terminal
        for words in stages:
            command, args = words[0], words[1:]
            if (filter_ := self._filters().get(command)) is not None:
                data = filter_(args, data)
            elif (handler := self._commands().get(command)) is not None:
                data = handler(args)
            else:
                self._error(f"-bash: {command}: command not found")
                data = ""
        return data or ""

    def _error(self, message: str) -> None:
        self._errors.append(message + "\n")

    # commands ----------------------------------------------------------------------------

    def _commands(self) -> dict[str, Callable[[list[str]], str]]:
        return {name.removeprefix("_cmd_"): getattr(self, name) for name in dir(self) if name.startswith("_cmd_")}

    def _filters(self) -> dict[str, Callable[[list[str], str | None], str]]:
        return {name.removeprefix("_filter_"): getattr(self, name)
                for name in dir(self) if name.startswith("_filter_")}

    def _cmd_uname(self, args: list[str]) -> str:
        if "-a" in args:
            return f"Linux {hostname_of(self.dom)} {KERNEL} {KERNEL_BUILD} x86_64 GNU/Linux\n"
        if "-r" in args:
            return f"{KERNEL}\n"
        return "Linux\n"

    def _cmd_hostname(self, args: list[str]) -> str:
        return f"{hostname_of(self.dom)}\n"

    def _cmd_nproc(self, args: list[str]) -> str:
        return f"{self.dom.vcpus_online}\n"

    def _cmd_free(self, args: list[str]) -> str:
        info = meminfo(self.dom)
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

    def _file(self, path: str) -> str | None:
        """A file's text, or None if the simulated guest has no such file."""
        out = []
        if path == "/proc/meminfo":
            out.extend(f"{key + ':':16}{value:>8} kB" for key, value in meminfo(self.dom).items())
        elif path == "/proc/cpuinfo":
            for index in range(self.dom.vcpus_online):
                out += [f"processor\t: {index}", "vendor_id\t: GenuineIntel",
                        "model name\t: Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "cpu MHz\t\t: 2394.000", ""]
        elif path == "/proc/uptime":
            up = self.dom.uptime(self.clock.monotonic())
            out.append(f"{up:.2f} {up * max(1, self.dom.vcpus_online) * 0.8:.2f}")
        elif path == "/proc/partitions":  # what blkfront made of each vbd (8 GiB each: the simulator has no sizes)
            out += ["major minor  #blocks  name", ""]
            out += [f"{v.devid >> 8:4d} {v.devid & 0xFF:7d} {8 * 1024 * 1024:10d} {v.device}" for v in self.dom.vbds]
        elif path == "/proc/net/dev":  # netfront's eth0, eth1, ... one per vif, and lo
            out += ["Inter-|   Receive                                                |  Transmit",
                    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop "
                    "fifo colls carrier compressed",
                    "    lo:       0       0    0    0    0     0          0         0        0       0    0    0 "
                    "   0     0       0          0"]
            out += [f"  eth{i}:       0       0    0    0    0     0          0         0        0       0    0    0 "
                    "   0     0       0          0" for i, _ in enumerate(self.dom.vifs)]
        elif path == "/proc/loadavg":
            load = self.dom.load.base * self.dom.vcpus_online
            out.append(f"{load:.2f} {load:.2f} {load:.2f} 1/187 4242")
        else:
            return None
        return "\n".join(out) + "\n"

    def _sources(self, program: str, files: list[str], stdin: str | None) -> list[tuple[str, str]]:
        """(name, text) of each file a filter reads ('-' or none at all: its standard input)."""
        sources = []
        for path in files or ["-"]:
            text = (stdin or "") if path == "-" else self._file(path)
            if text is None:
                self._error(f"{program}: {path}: No such file or directory")
            else:
                sources.append(("(standard input)" if path == "-" else path, text))
        return sources

    def _bad_option(self, program: str, option: str) -> str:
        self._error(f"{program}: invalid option -- '{option}'\nTry '{program} --help' for more information.")
        return ""

    def _cmd_uptime(self, args: list[str]) -> str:
        up = int(self.dom.uptime(self.clock.monotonic()))
        days, rest = divmod(up, 86_400)
        hours, minutes = divmod(rest // 60, 60)
        load = self.dom.load.base * self.dom.vcpus_online
        span = f"{days} days, {hours:2d}:{minutes:02d}" if days else f"{hours:2d}:{minutes:02d}"
        return f" up {span},  1 user,  load average: {load:.2f}, {load:.2f}, {load:.2f}\n"

    def _cmd_dmesg(self, args: list[str]) -> str:
        log = self.dom.kernel_log
        booted = any("Linux version" in line for line in log[:1])  # rebooted: the simulator logged its boot
        boot = boot_log(self.dom)[1 if booted else 0:]
        return "".join(line + "\n" for line in heapq.merge(boot, log, key=log_time))

    def _cmd_echo(self, args: list[str]) -> str:
        return " ".join(args) + "\n"

    def _cmd_whoami(self, args: list[str]) -> str:
        return "root\n"

    def _cmd_seq(self, args: list[str]) -> str:
        try:
            last = min(int(args[-1]), MAX_SEQ) if args else 0
        except ValueError:
            self._error(f"seq: invalid floating point argument: '{args[-1]}'")
            return ""
        return "".join(f"{n}\n" for n in range(1, last + 1))

    def _cmd_clear(self, args: list[str]) -> str:
        return "\x1b[H\x1b[2J"

    def _cmd_help(self, args: list[str]) -> str:
        return ("simulated guest shell: uname [-a|-r], hostname, nproc, free [-m|-g], uptime, dmesg, echo, seq N,\n"
                "cat /proc/meminfo|/proc/cpuinfo|/proc/uptime|/proc/loadavg|/proc/partitions|/proc/net/dev,\n"
                "whoami, clear\n"
                "pipes: ... | grep [-i] [-v] [-c] [-n] [-E|-F] PATTERN, head|tail [-n N], wc [-l|-w|-c], less, more\n")

    # filters: commands that read their standard input (or files) ---------------------------

    def _filter_cat(self, args: list[str], stdin: str | None) -> str:
        return "".join(text for _, text in self._sources("cat", args, stdin))

    def _pager(self, program: str, args: list[str], stdin: str | None) -> str:
        files = [arg for arg in args if arg == "-" or not arg.startswith("-")]  # options (-R, -S...) change nothing
        if not files and stdin is None:
            if program == "less":
                self._error('Missing filename ("less --help" for help)')
            else:
                self._error("more: bad usage\nTry 'more --help' for more information.")
            return ""
        return "".join(text for _, text in self._sources(program, files, stdin))

    def _filter_less(self, args: list[str], stdin: str | None) -> str:
        return self._pager("less", args, stdin)

    def _filter_more(self, args: list[str], stdin: str | None) -> str:
        return self._pager("more", args, stdin)

    def _line_count(self, program: str, args: list[str]) -> tuple[str, list[str]] | None:
        """head's and tail's '-n N', '-nN', '-N', '--lines=N': (N as typed, the files), or None if refused."""
        count, files, i = "10", [], 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                files += args[i:]
                break
            if arg in ("-n", "--lines"):
                if i == len(args):
                    self._error(f"{program}: option requires an argument -- 'n'\n"
                                f"Try '{program} --help' for more information.")
                    return None
                count = args[i]
                i += 1
            elif arg.startswith("--lines="):
                count = arg.removeprefix("--lines=")
            elif arg.startswith("-n"):
                count = arg[2:]
            elif arg.startswith("-") and arg[1:].isascii() and arg[1:].isdigit():
                count = arg[1:]
            elif arg.startswith("-") and arg != "-":
                self._bad_option(program, arg[1:2] if not arg.startswith("--") else arg)
                return None
            else:
                files.append(arg)
        digits = count.lstrip("+-")
        if not (digits.isascii() and digits.isdigit()) or len(count) - len(digits) > 1:
            self._error(f"{program}: invalid number of lines: '{count}'")
            return None
        return count, files

    def _head_or_tail(self, program: str, args: list[str], stdin: str | None) -> str:
        parsed = self._line_count(program, args)
        if parsed is None:
            return ""
        count, files = parsed
        number = int(count.lstrip("+-"))
        sources = self._sources(program, files, stdin)
        out = []
        for index, (name, text) in enumerate(sources):
            lines = _lines(text)
            if program == "head":  # -n -N: all but the last N
                lines = lines[:max(0, len(lines) - number)] if count.startswith("-") else lines[:number]
            else:  # -n +N: from line N on
                lines = lines[max(0, number - 1):] if count.startswith("+") else lines[max(0, len(lines) - number):]
            if len(sources) > 1:
                out.append(f"{chr(10) if index else ''}==> {name} <==\n")
            out += lines
        return "".join(out)

    def _filter_head(self, args: list[str], stdin: str | None) -> str:
        return self._head_or_tail("head", args, stdin)

    def _filter_tail(self, args: list[str], stdin: str | None) -> str:
        return self._head_or_tail("tail", args, stdin)

    def _filter_wc(self, args: list[str], stdin: str | None) -> str:
        wanted, files = "", []
        for arg in args:
            if arg.startswith("-") and arg != "-":
                for letter in arg[1:]:
                    if letter not in "lwcm":
                        return self._bad_option("wc", letter)
                    wanted += letter
            else:
                files.append(arg)
        order = [letter for letter in "lwmc" if letter in wanted] or ["l", "w", "c"]
        sources = self._sources("wc", files, stdin)
        rows = []
        for name, text in sources:
            counts = {"l": text.count("\n"), "w": len(text.split()), "m": len(text), "c": len(text.encode())}
            rows.append(([counts[letter] for letter in order], name if files else ""))
        if len(rows) > 1:
            rows.append(([sum(column) for column in zip(*(row for row, _ in rows), strict=True)], "total"))
        width = 7 if not files else max((len(str(value)) for row, _ in rows for value in row), default=1)
        if len(order) == 1 and len(rows) == 1:
            width = 0
        return "".join(" ".join(f"{value:>{width}}" for value in row) + (f" {name}" if name else "") + "\n"
                       for row, name in rows)

    def _filter_grep(self, args: list[str], stdin: str | None) -> str:
        usage = "Usage: grep [OPTION]... PATTERNS [FILE]...\nTry 'grep --help' for more information."
        flags: set[str] = set()
        patterns: list[str] = []
        operands: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                operands += args[i:]
                break
            if arg.startswith("--"):
                name = arg.partition("=")[0]
                if name in ("--color", "--colour"):
                    continue
                if name not in _GREP_LONG:
                    self._error(f"grep: unrecognized option '{arg}'\n{usage}")
                    return ""
                arg = "-" + _GREP_LONG[name]
            if not arg.startswith("-") or arg == "-":
                operands.append(arg)
                continue
            for at, letter in enumerate(arg[1:], start=1):
                if letter == "e":
                    if at + 1 < len(arg):
                        patterns.append(arg[at + 1:])
                    elif i < len(args):
                        patterns.append(args[i])
                        i += 1
                    else:
                        self._error(f"grep: option requires an argument -- 'e'\n{usage}")
                        return ""
                    break
                if letter not in "ivcnEFGs":
                    self._error(f"grep: invalid option -- '{letter}'\n{usage}")
                    return ""
                flags.add(letter)
        if not patterns:
            if not operands:
                self._error(usage)
                return ""
            patterns.append(operands.pop(0))
        extended = "E" in flags and "G" not in flags
        try:
            compiled = [Pattern(pattern, extended=extended, fixed="F" in flags, ignore_case="i" in flags)
                        for pattern in patterns]
        except GrepPatternError as error:
            self._error(f"grep: {error}")
            return ""
        invert = "v" in flags
        errors = len(self._errors)
        sources = self._sources("grep", operands, stdin)
        if "s" in flags:  # -s: no messages about missing files
            del self._errors[errors:]
        out = []
        for name, text in sources:
            prefix = f"{name}:" if len(operands) > 1 else ""
            count = 0
            for number, line in enumerate(_lines(text), start=1):
                bare = line.removesuffix("\n")
                if any(pattern.search(bare) for pattern in compiled) != invert:
                    count += 1
                    if "c" not in flags:
                        out.append(f"{prefix}{f'{number}:' if 'n' in flags else ''}{bare}\n")
            if "c" in flags:
                out.append(f"{prefix}{count}\n")
        return "".join(out)
