"""How the screen ends: a crash is a failure status, and the backend's children never outlive it."""

from __future__ import annotations

import dataclasses

from xentui.ui.app import StartOptions, run_app

from .helpers import make_sim


def test_an_unexpected_error_ends_with_a_failure_status_and_the_backend_closed(capsys):
    """A crash used to end with status 0 (hiding it), and with the xl backend the xentop child kept running."""
    sim, _clock = make_sim()

    class Breaks(type(sim)):
        closed = False
        polls = 0

        async def sample(self):
            self.polls += 1
            sample = await super().sample()
            if self.polls > 1:  # a broken sample: drawing it raises in a message handler, as a bug would
                return dataclasses.replace(sample, host=None)
            return sample

        async def close(self):
            self.closed = True

    backend = Breaks(sim.cluster)
    status = run_app(backend, StartOptions(delay=0.5, theme="xentui-dark"), headless=True)
    assert status == 1 and backend.closed

