"""Plain data shared by every layer: what a backend sampled, and rates derived from two samples.

Backends fill `Sample`s with cumulative counters exactly as the hypervisor reports them.
Rates are computed here and only here (`compute_rates`), so the TUI, the batch formats and
the tests all agree on what "CPU %" or "bytes/s" means.

The package, by concern:

- `records`: a domain's record (`Domain`, its `Vcpu`s, `Vif`s and `Vbd`s), the `Host`, the state flags;
- `columns`: what every refresh reads of every domain as columns (`DomainColumns`), and records made when
  first read (`LazyDomains`), for a backend with many domains;
- `sample`: one poll (`Sample`);
- `rates`: `compute_rates` and what it gives (`Rates`, `DomainRates`, `VifRates`, `VbdRates`).

Everything is re-exported here: import from ``xentui.model``.
"""

from __future__ import annotations

from xentui.model.columns import DomainColumns, LazyDomains
from xentui.model.rates import (
    NO_RATE,
    RATE_TOTALS,
    DomainRates,
    Rates,
    VbdRates,
    VifRates,
    compute_rates,
    counter_delta,
)
from xentui.model.records import (
    FLAG_LETTERS,
    KIB,
    LIBXL_MAXMEM_CONSTANT_KIB,
    SECTOR_BYTES,
    UNKNOWN_CPU,
    UNKNOWN_MAXMEM,
    UNKNOWN_MEM,
    UNKNOWN_NET,
    UNKNOWN_VBD,
    UNKNOWN_VBD_SECTORS,
    UNKNOWN_VCPU_TIMES,
    UNKNOWN_VCPUS,
    Domain,
    DomainFlag,
    DomainState,
    DomainType,
    Host,
    Vbd,
    VbdBackend,
    VbdTotals,
    Vcpu,
    Vif,
    flags_string,
    parse_flags,
    state_of,
)
from xentui.model.sample import HostStatus, Sample

__all__ = [
    "FLAG_LETTERS",
    "KIB",
    "LIBXL_MAXMEM_CONSTANT_KIB",
    "NO_RATE",
    "RATE_TOTALS",
    "SECTOR_BYTES",
    "UNKNOWN_CPU",
    "UNKNOWN_MAXMEM",
    "UNKNOWN_MEM",
    "UNKNOWN_NET",
    "UNKNOWN_VBD",
    "UNKNOWN_VBD_SECTORS",
    "UNKNOWN_VCPUS",
    "UNKNOWN_VCPU_TIMES",
    "Domain",
    "DomainColumns",
    "DomainFlag",
    "DomainRates",
    "DomainState",
    "DomainType",
    "Host",
    "HostStatus",
    "LazyDomains",
    "Rates",
    "Sample",
    "Vbd",
    "VbdBackend",
    "VbdRates",
    "VbdTotals",
    "Vcpu",
    "Vif",
    "VifRates",
    "compute_rates",
    "counter_delta",
    "flags_string",
    "parse_flags",
    "state_of",
]
