"""What a simulated guest says: a small shell on its serial console, and its kernel's SysRq answers.

Figures follow the simulation: ``free`` and ``/proc/meminfo`` track the balloon, ``nproc``
tracks vcpu-set. Commands can be piped through the filters an operator types at a Linux prompt
(``dmesg | tail``, ``... | grep -i xen``, ``... | wc -l``, ``less``): see `SimShell.run`.
"""

from __future__ import annotations

import heapq
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from xentui.clock import Clock
from xentui.model import DomainType

if TYPE_CHECKING:
    from xentui.backends.sim import SimDomain

KERNEL = "6.1.0-27-amd64"
KERNEL_BUILD = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)"
KERNEL_RESERVED = 0.03  # share of memory the guest kernel keeps for itself
MAX_SEQ = 100_000
MAX_LINE = 4095  # a tty in canonical mode keeps at most this many typed bytes on a line; the rest are dropped
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


def _boot_log(dom: SimDomain) -> list[str]:
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
        (1.420118, f"systemd[1]: Hostname set to <{_hostname(dom)}>."),
    ]
    for index, _vif in enumerate(dom.vifs):
        lines.append((2.1 + index * 0.013, f"IPv6: ADDRCONF(NETDEV_CHANGE): eth{index}: link becomes ready"))
    return [f"[{t:12.6f}] {text}" for t, text in lines]


def _log_time(line: str) -> float:
    try:
        return float(line[1:line.index("]")])
    except ValueError:
        return 0.0


def _lines(text: str) -> list[str]:
    """Text as lines that keep their newline (a last line without one stays without)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


class GrepPatternError(ValueError):
    """A pattern grep cannot compile; the message is grep's."""


# A small regular-expression engine for the simulated grep: POSIX basic (and with -E extended) syntax,
# matched by a lazily built DFA, so the time to match grows with the line and never explodes on a
# pattern such as '(a*)*b' (Python's backtracking `re` would freeze the whole app on it).
MAX_PROGRAM = 4000  # instructions: a pattern bigger than this is refused as grep refuses a huge one
MAX_NESTING = 50
MAX_REPEAT = 255  # RE_DUP_MAX
_MATCHED = frozenset({-1})
_CLASSES: dict[str, Callable[[str], bool]] = {
    "alpha": str.isalpha, "digit": lambda c: "0" <= c <= "9", "alnum": str.isalnum, "upper": str.isupper,
    "lower": str.islower, "space": str.isspace, "blank": lambda c: c in " \t",
    "punct": lambda c: c.isprintable() and not c.isalnum() and not c.isspace(),
    "xdigit": lambda c: c in "0123456789abcdefABCDEF", "print": str.isprintable,
    "graph": lambda c: c.isprintable() and not c.isspace(), "cntrl": lambda c: not c.isprintable(),
}
_ESCAPES: dict[str, Callable[[str], bool]] = {
    "w": lambda c: c.isalnum() or c == "_", "W": lambda c: not (c.isalnum() or c == "_"),
    "s": str.isspace, "S": lambda c: not c.isspace(),
}
_Token = tuple[str, object]


def _literal(char: str, ignore_case: bool = False) -> _Token:
    if ignore_case and char.lower() != char.upper():
        folded = {char, char.lower(), char.upper()}
        return ("char", lambda c: c in folded or c.lower() in folded or c.upper() in folded)
    return ("char", lambda c: c == char)


def _interval(pattern: str, i: int, closing: str) -> tuple[tuple[int, int | None], int] | None:
    """'m}', 'm,}', 'm,n}' or ',n}' from pattern[i]: ((m, n), the index after it), or None if not one."""
    end = pattern.find(closing, i)
    if end < 0:
        return None
    low, comma, high = pattern[i:end].partition(",")
    if not all(part.isascii() and (part.isdigit() or not part) for part in (low, high)) or not (low or high):
        return None
    lo = int(low) if low else 0
    hi = (int(high) if high else None) if comma else lo
    if lo > MAX_REPEAT or (hi is not None and hi > MAX_REPEAT):
        raise GrepPatternError("Regular expression too big")
    if hi is not None and hi < lo:
        raise GrepPatternError("Invalid content of \\{\\}")
    return (lo, hi), end + len(closing)


def _bracket(pattern: str, i: int, ignore_case: bool) -> tuple[Callable[[str], bool], int]:
    """A bracket expression from just after its '[': its test for one character, and the index after it."""
    negate = pattern.startswith("^", i)
    i += negate
    singles: set[str] = set()
    tests: list[Callable[[str], bool]] = []
    first = True
    while True:
        if i >= len(pattern):
            raise GrepPatternError("Unmatched [, [^, [:, [., or [=")
        char = pattern[i]
        if char == "]" and not first:
            i += 1
            break
        first = False
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end < 0:
                raise GrepPatternError("Unmatched [, [^, [:, [., or [=")
            test = _CLASSES.get(pattern[i + 2:end])
            if test is None:
                raise GrepPatternError("Invalid character class name")
            tests.append(test)
            i = end + 2
        elif i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            low, high = char, pattern[i + 2]
            if low > high:
                raise GrepPatternError("Invalid range end")
            tests.append(lambda c, low=low, high=high: low <= c <= high)
            i += 3
        else:
            singles.add(char)
            i += 1

    def member(c: str) -> bool:
        return c in singles or any(t(c) for t in tests)

    def test(c: str) -> bool:  # with -i, '[^a]' refuses 'A' too: fold the case before negating
        return (member(c) or (ignore_case and (member(c.lower()) or member(c.upper())))) != negate

    return test, i


def _tokens(pattern: str, extended: bool, ignore_case: bool = False) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char == "\\":
            if i == len(pattern):
                raise GrepPatternError("Trailing backslash")
            char = pattern[i]
            i += 1
            if not extended and char == "{":
                found = _interval(pattern, i, "\\}")
                if found is None:
                    raise GrepPatternError("Unmatched \\{")
                out.append(("repeat", found[0]))
                i = found[1]
            elif not extended and char in "()|+?":
                out.append(("op", char))
            elif char in _ESCAPES:
                out.append(("char", _ESCAPES[char]))
            else:
                out.append(_literal(char, ignore_case))
        elif char == "[":
            test, i = _bracket(pattern, i, ignore_case)
            out.append(("char", test))
        elif char == ".":
            out.append(("char", lambda c: True))
        elif char in "^$*" or (extended and char in "()|+?"):
            out.append(("op", char))
        elif extended and char == "{" and (found := _interval(pattern, i, "}")) is not None:
            out.append(("repeat", found[0]))
            i = found[1]
        else:
            out.append(_literal(char, ignore_case))
    return out


_Node = tuple


class _Parser:
    """Tokens to a tree: ('char', test), ('bol',), ('eol',), ('cat', [...]), ('alt', [...]), ('rep', node, lo, hi)."""

    def __init__(self, tokens: list[_Token], extended: bool) -> None:
        self.tokens = tokens
        self.extended = extended
        self.i = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def parse(self) -> _Node:
        node = self.alternation()
        if self.i < len(self.tokens):  # a ')' with no '(' in a basic pattern
            raise GrepPatternError("Unmatched ) or \\)")
        return node

    def alternation(self) -> _Node:
        branches = [self.branch()]
        while self.peek() == ("op", "|"):
            self.i += 1
            branches.append(self.branch())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def branch(self) -> _Node:
        items: list[_Node] = []
        while (token := self.peek()) is not None and token != ("op", "|"):
            if token == ("op", ")") and (self.depth or not self.extended):
                if not self.depth:
                    raise GrepPatternError("Unmatched ) or \\)")
                break
            self.i += 1
            kind, value = token
            repeatable = bool(items) and items[-1][0] not in ("bol", "eol")
            if kind == "char":
                items.append(("char", value))
            elif kind == "repeat" or value in ("*", "+", "?"):
                if not repeatable:  # nothing to repeat: a '*' at the start is an ordinary character
                    if kind == "repeat":
                        raise GrepPatternError("Invalid preceding regular expression")
                    items.append(("char", _literal(str(value))[1]))
                    continue
                lo, hi = value if kind == "repeat" else {"*": (0, None), "+": (1, None), "?": (0, 1)}[value]
                if items[-1][0] == "rep" and items[-1][4] >= 8:
                    raise GrepPatternError("Regular expression too big")
                stacked = items[-1][4] + 1 if items[-1][0] == "rep" else 1
                items[-1] = ("rep", items[-1], lo, hi, stacked)
            elif value == "(":
                self.depth += 1
                if self.depth > MAX_NESTING:
                    raise GrepPatternError("Regular expression too big")
                inner = self.alternation()
                if self.peek() != ("op", ")"):
                    raise GrepPatternError("Unmatched ( or \\(")
                self.i += 1
                self.depth -= 1
                items.append(("group", inner))
            elif value == "^":
                items.append(("bol",) if self.extended or not items else ("char", _literal("^")[1]))
            elif value == "$":
                after = self.peek()
                at_end = after is None or after in (("op", "|"), ("op", ")"))
                items.append(("eol",) if self.extended or at_end else ("char", _literal("$")[1]))
            else:  # a ')' of an extended pattern with no '(': an ordinary character, as GNU grep takes it
                items.append(("char", _literal(str(value))[1]))
        return ("cat", items)


class _Compiler:
    def __init__(self) -> None:
        self.program: list[tuple] = []

    def emit(self, instruction: tuple) -> int:
        if len(self.program) >= MAX_PROGRAM:
            raise GrepPatternError("Regular expression too big")
        self.program.append(instruction)
        return len(self.program) - 1

    def node(self, node: _Node) -> None:
        kind = node[0]
        program = self.program
        if kind == "char":
            self.emit(("char", node[1]))
        elif kind in ("bol", "eol"):
            self.emit((kind,))
        elif kind == "group":
            self.node(node[1])
        elif kind == "cat":
            for item in node[1]:
                self.node(item)
        elif kind == "alt":
            jumps = []
            for branch in node[1][:-1]:
                split = self.emit(("split", 0, 0))
                self.node(branch)
                jumps.append(self.emit(("jmp", 0)))
                program[split] = ("split", split + 1, len(program))
            self.node(node[1][-1])
            for jump in jumps:
                program[jump] = ("jmp", len(program))
        else:  # rep
            _, body, lo, hi, _stacked = node
            for _ in range(lo):
                self.node(body)
            if hi is None:
                loop = self.emit(("split", 0, 0))
                self.node(body)
                self.emit(("jmp", loop))
                program[loop] = ("split", loop + 1, len(program))
            else:
                splits = []
                for _ in range(hi - lo):
                    splits.append(self.emit(("split", 0, 0)))
                    self.node(body)
                for split in splits:
                    program[split] = ("split", split + 1, len(program))


class Pattern:
    """One grep pattern, compiled; `search(line)` says whether it matches anywhere in the line."""

    CACHE = 20_000

    def __init__(self, pattern: str, *, extended: bool = False, fixed: bool = False,
                 ignore_case: bool = False) -> None:
        self.ignore_case = ignore_case
        specials = "\\[.*^$" + ("()|+?{" if extended else "")
        self.fixed: str | None = None
        if fixed or not any(char in specials for char in pattern):
            self.fixed = pattern.lower() if ignore_case else pattern
            return
        tokens = _tokens(pattern, extended, ignore_case)
        compiler = _Compiler()
        compiler.node(_Parser(tokens, extended).parse())
        compiler.emit(("match",))
        self.program = compiler.program
        self._steps: dict[tuple[frozenset[int], bool, str], frozenset[int]] = {}
        self._closures: dict[tuple[frozenset[int], bool, bool], tuple[tuple[int, ...], bool]] = {}

    def _closure(self, kernel: frozenset[int], at_start: bool, at_end: bool) -> tuple[tuple[int, ...], bool]:
        """The character-reading instructions reachable from kernel without reading, and whether MATCH is."""
        key = (kernel, at_start, at_end)
        found = self._closures.get(key)
        if found is not None:
            return found
        stack, seen, reading, matched = list(kernel), set(), [], False
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            instruction = self.program[pc]
            kind = instruction[0]
            if kind == "char":
                reading.append(pc)
            elif kind == "match":
                matched = True
            elif kind == "jmp":
                stack.append(instruction[1])
            elif kind == "split":
                stack += (instruction[2], instruction[1])
            elif (kind == "bol" and at_start) or (kind == "eol" and at_end):
                stack.append(pc + 1)
        if len(self._closures) > self.CACHE:
            self._closures.clear()
        found = self._closures[key] = (tuple(sorted(reading)), matched)
        return found

    def search(self, line: str) -> bool:
        if self.fixed is not None:
            return self.fixed in (line.lower() if self.ignore_case else line)
        start = frozenset({0})
        kernel, at_start = start, True
        for char in line:
            key = (kernel, at_start, char)
            following = self._steps.get(key)
            if following is None:
                reading, matched = self._closure(kernel, at_start, False)
                following = _MATCHED if matched else start.union(
                    pc + 1 for pc in reading if self.program[pc][1](char))
                if len(self._steps) > self.CACHE:
                    self._steps.clear()
                self._steps[key] = following
            if following is _MATCHED:
                return True
            kernel, at_start = following, False
        return self._closure(kernel, at_start, True)[1]


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

    def _file(self, path: str) -> str | None:
        """A file's text, or None if the simulated guest has no such file."""
        out = []
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
        boot = _boot_log(self.dom)[1 if booted else 0:]
        return "".join(line + "\n" for line in heapq.merge(boot, log, key=_log_time))

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
                "cat /proc/meminfo|/proc/cpuinfo|/proc/uptime|/proc/loadavg, whoami, clear\n"
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
