"""grep's patterns for the simulated guest shell: a small regular-expression engine.

POSIX basic (and with -E extended) syntax, matched by a lazily built DFA, so the time to match grows with the
line and never explodes on a pattern such as '(a*)*b' (Python's backtracking `re` would freeze the whole app
on it).
"""

from __future__ import annotations

from collections.abc import Callable


class GrepPatternError(ValueError):
    """A pattern grep cannot compile; the message is grep's."""


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
