"""The table's filter (``/``): what an operator types to find domains, and which domains of a sample it keeps.

Plain words match a name (or, in a pool, a host's name or group) anywhere in it, case-insensitively, as
xentui's filter always did. A word that is a whole state (``paused``, ``crashed``), a domain id (``17``) or the
start of a UUID (8 hex digits or more) matches those too. ``field:value`` terms keep only what matches that
field: ``state:`` (``s:``; a prefix: ``state:pa``), ``id:`` (``domid:``), ``uuid:``, ``host:``, ``name:``. Terms
of different fields must all match; a state or id term may list several, comma-separated (``state:paused,crashed``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from xentui.model.records import DomainState
from xentui.model.sample import Sample

_FIELDS = {"state": "state", "s": "state", "id": "id", "domid": "id", "uuid": "uuid", "host": "host",
           "name": "name"}
_TERM = re.compile(r"(?i)^([a-z]+):(.*)$")
_UUID_START = re.compile(r"[0-9a-f]{8}[0-9a-f-]*")
STATES = tuple(state.value for state in DomainState)


@dataclass(frozen=True)
class DomainFilter:
    text: str = ""  # the plain words, as one needle (names have blanks: "build runner")
    states: frozenset[str] = frozenset()
    ids: frozenset[int] = frozenset()
    uuid: str = ""
    host: str = ""
    name: str = ""
    problem: str | None = None  # a term that cannot match anything, said to the operator

    @classmethod
    def parse(cls, typed: str) -> DomainFilter:
        words, states, ids, problems = [], set(), set(), []
        uuid = host = name = ""
        for word in typed.split():
            match = _TERM.match(word)
            field = _FIELDS.get(match.group(1).lower()) if match else None
            if match is None or field is None:
                words.append(word)
                continue
            value = match.group(2).casefold()
            if field == "state":
                for part in filter(None, value.split(",")):
                    found = [s for s in STATES if s.startswith(part)]
                    if not found:
                        problems.append(f"no state {part!r} (states: {', '.join(STATES)})")
                    states.update(found)
            elif field == "id":
                for part in filter(None, value.split(",")):
                    if part.isdigit():
                        ids.add(int(part))
                    else:
                        problems.append(f"{part!r} is not a domain id")
            elif field == "uuid":
                uuid = value
            elif field == "host":
                host = value
            else:
                name = value
        return cls(" ".join(words).casefold(), frozenset(states), frozenset(ids), uuid, host, name,
                   "; ".join(problems) or None)

    @property
    def empty(self) -> bool:
        return not (self.text or self.states or self.ids or self.uuid or self.host or self.name or self.problem)

    def positions(self, sample: Sample, folded_names: Sequence[str], shown_names: Sequence[str]) -> list[int]:
        """The positions in ``sample`` of the domains kept. ``folded_names``: each name casefolded; ``shown_names``:
        as the table shows it (printable), casefolded too: a name with control characters is found by either."""
        if self.problem:
            return []
        hosts = sample.hosts
        host_of = [h for h, status in enumerate(hosts) for _ in range(status.domains)] if hosts else []
        host_labels = [(status.label.casefold(), status.group.casefold()) for status in hosts]
        needle = self.text
        needle_state = needle if needle in STATES else None
        needle_id = int(needle) if needle.isdigit() else None
        needle_uuid = needle if _UUID_START.fullmatch(needle) else None
        domains = sample.domains
        ids = sample.ids()
        kept = []
        for i in range(len(folded_names)):
            if self.name and self.name not in folded_names[i] and self.name not in shown_names[i]:
                continue
            if self.ids and ids[i] not in self.ids:
                continue
            if self.host and not (host_of and self.host in host_labels[host_of[i]][0]):
                continue
            if self.states and domains[i].state.value not in self.states:
                continue
            if self.uuid and not domains[i].uuid.casefold().startswith(self.uuid):
                continue
            if needle and not (
                needle in folded_names[i] or needle in shown_names[i]
                or (host_of and (needle in host_labels[host_of[i]][0] or needle in host_labels[host_of[i]][1]))
                or (needle_state is not None and domains[i].state.value == needle_state)
                or (needle_id is not None and ids[i] == needle_id)
                or (needle_uuid is not None and domains[i].uuid.casefold().startswith(needle_uuid))
            ):
                continue
            kept.append(i)
        return kept
