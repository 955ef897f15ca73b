"""The backend interface: four methods every backend must have; each action refuses unless a backend does it."""

from __future__ import annotations

import pytest

from xentui.backends.base import Action, Backend, Capabilities, Unsupported


class Watcher(Backend):
    """A backend that only watches: what a new backend must write before it shows a table."""

    name = "watcher"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities({Action.PAUSE: "this host's toolstack owns pausing", Action.MIGRATE: "one host only"})

    async def sample(self):
        raise NotImplementedError

    async def host_info(self):
        raise NotImplementedError

    async def open_console(self, domain):
        raise NotImplementedError


def test_the_abstract_part_is_what_watching_needs():
    assert Backend.__abstractmethods__ == {"capabilities", "sample", "host_info", "open_console"}


@pytest.mark.asyncio
async def test_an_action_a_backend_does_not_do_refuses_with_its_reason(tmp_path):
    backend = Watcher()
    with pytest.raises(Unsupported, match=r"^pause: this host's toolstack owns pausing$"):
        await backend.pause("web")
    with pytest.raises(Unsupported, match=r"^mem-set: the watcher backend cannot do that$"):
        await backend.mem_set("web", 1 << 20)
    with pytest.raises(Unsupported, match=r"^scheduler change: "):
        await backend.set_sched("web", weight=512)
    with pytest.raises(Unsupported, match="one host only"):
        await backend.migrate_preflight("web", "elsewhere")
    with pytest.raises(Unsupported, match="one host only"):
        await anext(backend.migrate("web", "elsewhere"))
    with pytest.raises(Unsupported, match="restore"):
        await backend.restore(tmp_path / "x.save")
