"""The two ways `compute_rates` works out domain totals, side by side: from a backend's counter columns
(`Sample.columns`) and from the records, device by device. Both must give the same figures."""

from __future__ import annotations

import dataclasses

from xentui.model import RATE_TOTALS, DomainColumns, Rates, Sample


def with_columns(sample: Sample) -> Sample:
    """The sample with columns made from its records, as a backend that keeps `DomainColumns`' promise would."""
    rows = []
    for d in sample.domains:
        readable = [vbd for vbd in d.vbds if not vbd.error]
        layout = (tuple((vif.devid, vif.error) for vif in d.vifs), tuple((vbd.devid, vbd.error) for vbd in d.vbds))
        rows.append((d.key, d.name, d.id, d.flags, d.cpu_ns, d.net_rx_bytes, d.net_tx_bytes,
                     sum(v.rd_reqs for v in readable), sum(v.wr_reqs for v in readable),
                     sum(v.oo_reqs for v in readable), sum(v.rd_sectors for v in readable),
                     sum(v.wr_sectors for v in readable), layout, d.mem_kib))
    columns = list(zip(*rows, strict=True)) if rows else [()] * 14
    read_at = [d.read_at for d in sample.domains]
    return dataclasses.replace(sample, columns=DomainColumns(*columns, read_at=None if None in read_at else read_at))


def without_columns(sample: Sample) -> Sample:
    """The sample as a backend without columns gives it: every record made, no columns."""
    return dataclasses.replace(sample, domains=list(sample.domains), columns=None)


def assert_same_rates(from_columns: Rates, from_records: Rates, keys: list[str]) -> None:
    """Same domains, same totals to the last bit, same per-device figures, same columns for ``keys``."""
    assert list(from_columns) == list(from_records)
    for key in from_records:
        a, b = from_columns[key], from_records[key]
        assert [getattr(a, name) for name in RATE_TOTALS] == [getattr(b, name) for name in RATE_TOTALS], key
        assert (a.vifs, a.vbds, a.vcpu_pct) == (b.vifs, b.vbds, b.vcpu_pct), key
    for name in RATE_TOTALS:
        assert list(from_columns.column(name, keys)) == list(from_records.column(name, keys)), name
