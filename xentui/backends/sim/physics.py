"""How a simulated host's load evolves: each domain's CPU demand over time (`LoadProfile`), the credit
scheduler's share of the CPUs, and `integrate`, which moves every counter, balloon and device integral on."""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

from xentui.backends.sim.domain import MIB, Status

if TYPE_CHECKING:
    from xentui.backends.sim.cluster import SimHost

BALLOON_TAU_S = 0.6  # the balloon closes ~80% of the gap to its target each second
STEP_S = 1.0  # counters are integrated in steps of about this (at most 1.5 times it)


@dataclass(slots=True)
class LoadProfile:
    """CPU demand per vCPU, as a fraction of one physical CPU, as a function of time."""

    base: float
    swing: float = 0.0
    period_s: float = 60.0
    phase: float = 0.0
    noise: float = 0.02
    sawtooth: bool = False  # builds: ramp up, drop, repeat

    def at(self, t: float, salt: int) -> float:
        # `integrate` computes the same inline, for every domain at every step
        cycle = (t / self.period_s + self.phase) % 1.0
        wave = (2 * cycle - 1) if self.sawtooth else math.sin(TWO_PI * cycle)
        jitter = _JITTER[(salt ^ (int(t) * _TICK_MIX)) & _JITTER_MASK] * self.noise
        return min(1.0, max(0.0, self.base + self.swing * wave + jitter))


def _hash_unit(salt: int, tick: int) -> float:
    """A repeatable pseudo-random number in [0, 1) for (salt, tick); no RNG state to keep in step.

    An integer mix (murmur3's finaliser), cheap enough to call for every domain every second.
    """
    x = (salt * 0x9E3779B1 + tick * 0x85EBCA77) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    x ^= x >> 16
    return x / 4294967296.0


TWO_PI = 2 * math.pi


def _jitter_source(count: int) -> list[float]:
    draw = random.Random(0x5EED).random
    return [draw() for _ in range(count)]


# Load jitter, in [-1, 1): a table indexed by (salt, second) rather than a hash per domain per step.
_JITTER_MASK = 4095
_JITTER = tuple(value * 2 - 1 for value in _jitter_source(_JITTER_MASK + 1))
_TICK_MIX = 0x9E3779B1
# A quiet guest's I/O comes in bursts, as on a real host: its disks every DISK_BURST_S seconds
# (ext4 commits every 5 s), its network every NET_BURST_S; a busy guest's every second.
QUIET_DISK_BELOW = 0.5  # activity (CPU per vCPU) under which a guest's disks are quiet
QUIET_NET_BELOW = 0.15
DISK_BURST_S = 5
NET_BURST_S = 3


def integrate(host: SimHost, start: float, end: float) -> None:
    """Bring a host's counters from ``start`` to ``end``: CPU time under the credit scheduler, the balloons,
    the network and disk integrals and their drops (`SimCluster.advance` calls it between timers)."""
    span = end - start
    if span <= 0:
        return
    # Rounded, not ceiled: a screen polling every second sees spans of 1.0x s, which must
    # stay one step, not two (half the simulation's cost at a thousand domains).
    steps = max(1, round(span / STEP_S))
    dt = span / steps
    # Only a domain that is active and not paused wants CPU and moves its counters; the others want 0.0 (which
    # changes no sum nor share of the credit scheduler, so they are left out of both).
    active = Status.ACTIVE
    domains = [d for d in host.domains.values() if d.status == active and not d.paused]
    weights = [d.weight for d in domains]
    balloon_factor = 1 - math.exp(-dt / BALLOON_TAU_S)
    sin = math.sin
    jitter = _JITTER
    demands: list[float] = []
    # Written out flat, with no call per domain: this runs for every domain at every step.
    for step in range(steps):
        t = start + dt * (step + 0.5)
        tick = int(t)
        tick_mix = tick * _TICK_MIX
        # CPUs each domain wants right now, after its cap (LoadProfile.at, inline)
        demands = []
        for d in domains:
            load = d.load
            cycle = (t / load.period_s + load.phase) % 1.0
            wave = (2 * cycle - 1) if load.sawtooth else sin(TWO_PI * cycle)
            level = load.base + load.swing * wave + jitter[(d.salt ^ tick_mix) & _JITTER_MASK] * load.noise
            wanted = (1.0 if level > 1.0 else 0.0 if level < 0.0 else level) * d.vcpus_online
            demands.append(min(wanted, d.cap / 100) if d.cap else wanted)
        granted = _credit_share(demands, weights, host.nr_cpus)
        free = -1.0  # what the host has free (never below 0), worked out when a balloon first moves in this step
        for dom, cpus in zip(domains, granted, strict=True):
            ns = cpus * dt * 1e9
            activity = cpus / (dom.vcpus_online or 1)
            cpu = dom.cpu  # the per-vCPU times follow from these two (VcpuSplit)
            cpu[0] += ns
            if activity < 1.0:
                cpu[1] += ns * (1.0 - activity)
            # The balloon moves toward its target, limited by what the host has free.
            gap = dom.target_kib - dom.mem_kib
            if gap:
                if free < 0:
                    free = host.free_kib
                moved = gap if abs(gap) < MIB / balloon_factor else gap * balloon_factor
                if moved > 0:
                    moved = min(moved, free)
                free -= moved
                dom.mem_kib += moved
            salt = dom.salt
            io = dom.io  # every device's counters follow from these two
            if dom.vifs and (activity >= QUIET_NET_BELOW or (tick + salt) % NET_BURST_S == 0):
                io[0] += (0.2 + activity) * dt * (1 if activity >= QUIET_NET_BELOW else NET_BURST_S)
                if activity > 0.9:
                    for index, vif in enumerate(dom.vifs):
                        if _hash_unit(salt + vif.devid, tick) < 0.1:  # drops under load
                            dom.vif_drops = _bumped(dom.vif_drops, index)
            if dom.vbds and (activity >= QUIET_DISK_BELOW or (tick + salt) % DISK_BURST_S == 0):
                io[1] += (0.1 + activity) * dt * (1 if activity >= QUIET_DISK_BELOW else DISK_BURST_S)
                if activity > 0.5:
                    for index, vbd in enumerate(dom.vbds):
                        if _hash_unit(salt + vbd.devid, tick) < 0.05:  # out-of-requests: the ring was full
                            dom.vbd_ring_full = _bumped(dom.vbd_ring_full, index)
    # What each wanted at the last step decides 'r' or 'b' (a plain set: not a static field)
    set_field = object.__setattr__
    if len(domains) != len(host.domains):
        for dom in host.domains.values():
            if dom.status != active or dom.paused:
                set_field(dom, "last_demand", 0.0)
    deque(map(set_field, domains, repeat("last_demand"), demands), maxlen=0)


def _credit_share(demands: list[float], weights: list[int], cpus: float) -> list[float]:
    """CPU each domain gets when they compete: shares by weight, never more than asked (water-filling).

    With enough CPUs for everyone, everyone gets what it asks; otherwise the credit scheduler
    gives each busy domain CPU in proportion to its weight.
    """
    if sum(demands) <= cpus:
        return demands
    if weights and weights.count(weights[0]) == len(weights):
        return _equal_share(demands, weights[0], cpus)
    granted = [0.0] * len(demands)
    hungry = [i for i, wanted in enumerate(demands) if wanted > 0]
    left = float(cpus)
    while hungry and left > 1e-9:
        total_weight = sum(weights[i] for i in hungry)
        fair = {i: left * weights[i] / total_weight for i in hungry}
        satisfied = [i for i in hungry if demands[i] - granted[i] <= fair[i]]
        if not satisfied:
            for i in hungry:
                granted[i] += fair[i]
            break
        for i in satisfied:
            left -= demands[i] - granted[i]
            granted[i] = demands[i]
        done = set(satisfied)
        hungry = [i for i in hungry if i not in done]
    return granted


def _equal_share(demands: list[float], weight: int, cpus: float) -> list[float]:
    """`_credit_share` when every domain has the same weight, to the last bit, without a pass over every hungry
    domain at each round: each round's fair share is then one figure, the same for all, so the domains it
    satisfies are the next ones in order of demand (found by bisection), and what is left shrinks by their
    demands taken in the domains' order, as in `_credit_share`."""
    granted = [0.0] * len(demands)
    hungry = sorted((wanted, i) for i, wanted in enumerate(demands) if wanted > 0)
    wants = [wanted for wanted, _ in hungry]
    first, count = 0, len(hungry)  # hungry[first:] are still hungry
    left = float(cpus)
    while first < count and left > 1e-9:
        fair = left * weight / (weight * (count - first))
        last = bisect_right(wants, fair, first)
        if last == first:  # nobody asks that little: the rest share what is left
            for _, i in hungry[first:]:
                granted[i] = fair
            break
        for i in sorted(i for _, i in hungry[first:last]):  # in the domains' order, as `_credit_share`
            wanted = demands[i]
            left -= wanted
            granted[i] = wanted
        first = last
    return granted


def _bumped(counts: tuple[int, ...], index: int) -> tuple[int, ...]:
    return (*counts[:index], counts[index] + 1, *counts[index + 1:])
