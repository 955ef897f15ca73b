"""The figures every refresh reads of every domain, as columns (`DomainColumns`), and a sample's records made
when first read (`LazyDomains`): what lets a backend with many domains refresh without a record per domain."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from xentui.model.records import Domain, DomainFlag


@dataclass(slots=True, frozen=True)
class DomainColumns:
    """What every refresh reads of every domain, as columns in `Sample.domains` order, from a backend
    that can make them: the table sorts and filters by them, the header counts states, `compute_rates`
    works out the totals in a few C-level passes. The records are then only read for what is shown.

    The counters come with a promise, for each domain: under the same domid and the same ``layouts``
    entry, none of its device counters went back, so the change of a total is the sum of its devices'
    changes. Totals count readable vbds only (as `Domain.vbd_totals`), and a vif that could not be read
    counts zero; a layout must change when a vbd's or a vif's readability does.
    """

    keys: Sequence[str]  # `Domain.key`
    names: Sequence[str]
    ids: Sequence[int]
    flags: Sequence[DomainFlag]
    cpu_ns: Sequence[int]
    net_rx_bytes: Sequence[int]
    net_tx_bytes: Sequence[int]
    vbd_rd_reqs: Sequence[int]
    vbd_wr_reqs: Sequence[int]
    vbd_oo_reqs: Sequence[int]
    vbd_rd_sectors: Sequence[int]
    vbd_wr_sectors: Sequence[int]
    layouts: Sequence[object]  # which devices each domain has; compared with `is` first, then `==`
    mem_kib: Sequence[int]  # `Domain.mem_kib`: a sort by MEM reads it, not every record
    # `Domain.read_at`, where every domain has one; a backend gives one to every domain of a sample or to none
    # (the records then give the same rates as the columns)
    read_at: Sequence[float] | None = None


class LazyDomains(Sequence[Domain]):
    """A sample's domains, each record made when first read (the rows drawn, details, batch output), for a
    backend whose refresh reads `Sample.columns`: ``make(i)`` makes the record of the i-th domain."""

    __slots__ = ("_made", "_make")

    def __init__(self, count: int, make: Callable[[int], Domain]) -> None:
        self._make = make
        self._made: list[Domain | None] = [None] * count

    def __len__(self) -> int:
        return len(self._made)

    @overload
    def __getitem__(self, index: int) -> Domain: ...
    @overload
    def __getitem__(self, index: slice) -> list[Domain]: ...
    def __getitem__(self, index: int | slice) -> Domain | list[Domain]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._made))[index]]
        made = self._made[index]
        if made is None:
            made = self._made[index] = self._make(index % len(self._made))
        return made

    def __iter__(self) -> Iterator[Domain]:
        return map(self.__getitem__, range(len(self._made)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, LazyDomains)) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(list(self))
