"""What the app tells the screen on top, as typed messages (never by looking for a method on it)."""

from __future__ import annotations

from collections.abc import Mapping

from textual.message import Message

from xentui.model import DomainRates, Sample

__all__ = ["ActionLogged", "SampleShown"]


class SampleShown(Message, bubble=False):
    """The table now shows this sample: a screen that follows the figures (a domain's details) follows."""

    def __init__(self, sample: Sample, rates: Mapping[str, DomainRates]) -> None:
        super().__init__()
        self.sample = sample
        self.rates = rates


class ActionLogged(Message, bubble=False):
    """A line was added to the action log: an open view of it shows the line."""
