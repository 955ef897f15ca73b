"""The table's filter: names as before, and states, domain ids, UUIDs and hosts; a term that cannot match is said."""

from __future__ import annotations

import pytest

from xentui.backends.pool import PoolBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.model.filters import DomainFilter

pytestmark = pytest.mark.asyncio


async def kept(sample, typed: str) -> list[str]:
    names = sample.names()
    folded = [n.casefold() for n in names]
    return [names[i] for i in DomainFilter.parse(typed).positions(sample, folded, folded)]


@pytest.fixture
def sim():
    return SimBackend(SimCluster(seed=7, domains=12, clock=ManualClock()))


async def test_a_plain_word_matches_names_and_a_whole_state_word_matches_the_state(sim):
    sample = await sim.sample()
    assert await kept(sample, "web-front") == ["web-frontend-01"]
    assert await kept(sample, "BUILD runner") == ["build runner 7"]
    assert await kept(sample, "paused") == ["backup-old"]
    assert await kept(sample, "crashed") == ["kernel-dev"]


async def test_state_terms_take_a_prefix_and_a_list(sim):
    sample = await sim.sample()
    assert await kept(sample, "state:pa") == ["backup-old"]
    assert sorted(await kept(sample, "s:crashed,shut")) == ["kernel-dev", "test-poweroff"]
    assert DomainFilter.parse("state:sleeping").problem == (
        "no state 'sleeping' (states: running, blocked, paused, shutdown, crashed, dying)")
    assert await kept(sample, "state:sleeping") == []


async def test_a_domain_id_and_a_uuid_find_their_domain(sim):
    sample = await sim.sample()
    mail = next(d for d in sample.domains if d.name == "mail-relay")
    assert await kept(sample, str(mail.id)) == ["mail-relay"]
    assert await kept(sample, f"id:{mail.id}") == ["mail-relay"]
    assert await kept(sample, "id:0") == ["Domain-0"]
    assert await kept(sample, mail.uuid[:8].upper()) == ["mail-relay"]
    assert await kept(sample, f"uuid:{mail.uuid[:4]}") == [
        d.name for d in sample.domains if d.uuid.startswith(mail.uuid[:4])]
    assert DomainFilter.parse("id:seven").problem == "'seven' is not a domain id"


async def test_terms_of_different_fields_must_all_match(sim):
    sample = await sim.sample()
    assert await kept(sample, "state:blocked web") == ["web-frontend-01"]
    assert await kept(sample, "state:paused web") == []
    assert await kept(sample, "name:relay state:b") == ["mail-relay"]


async def test_host_terms_in_a_pool():
    cluster = SimCluster(seed=7, domains=12, clock=ManualClock())
    pool = PoolBackend([(name, SimBackend(cluster, name)) for name in cluster.hosts])
    sample = await pool.sample()
    hosts = [status.label for status in sample.hosts]
    assert len(hosts) >= 2
    names = sample.names()
    folded = [n.casefold() for n in names]
    on_second = DomainFilter.parse(f"host:{hosts[1]}").positions(sample, folded, folded)
    assert on_second and all(sample.domains[i].host == hosts[1] for i in on_second)
    assert len(on_second) == sample.hosts[1].domains
    running = DomainFilter.parse(f"host:{hosts[1]} state:running").positions(sample, folded, folded)
    assert set(running) <= set(on_second)
    assert all(sample.domains[i].state.value == "running" for i in running)
