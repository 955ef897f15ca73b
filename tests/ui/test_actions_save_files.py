"""The save dialog and the restore picker ask the backend, not this machine: the save directory is made, a save's
path checked and the saved images listed where the backend saves (the xl backend: on its dom0, over ssh too), in
workers, while the screen goes on refreshing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input, Label, OptionList

from xentui.backends.base import BackendUnavailable, InvalidArgument, SavedImage, SaveTarget
from xentui.backends.sim import SimBackend
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.modals import ConfirmScreen, RestoreScreen, SaveScreen
from xentui.ui.table import DomainTable

from .helpers import NEVER, make_sim, poll, settle

pytestmark = pytest.mark.asyncio
MIB = 1 << 20
WHEN = 1_795_000_000.0


class RemoteSaves(SimBackend):
    """Saves on a host of its own: its save directory and images exist nowhere on this machine."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, object]] = []
        self.hold: asyncio.Event | None = None  # set: the file calls wait for it (a slow dom0)
        self.unreachable = False

    async def _answer(self, name: str, argument: object) -> None:
        self.calls.append((name, argument))
        if self.hold is not None:
            await self.hold.wait()
        if self.unreachable:
            raise BackendUnavailable("cannot reach root@dom0a with ssh: Connection refused")

    async def make_save_dir(self, directory: Path) -> None:
        await self._answer("make_save_dir", directory)

    async def check_save_target(self, path: Path, *, overwrite: bool) -> SaveTarget:
        await self._answer("check_save_target", (path, overwrite))
        if path.name == "fifo.save":
            raise InvalidArgument(f"save: {path} is a FIFO: xentui writes an image only to a new file or over an "
                                  "earlier image")
        return SaveTarget(path, 5 * MIB if path.name == "taken.save" else None)

    async def saved_images(self, directory: Path) -> list[SavedImage]:
        await self._answer("saved_images", directory)
        return [SavedImage(name, directory / name, size, WHEN - age) for age, (name, size) in enumerate(
            (("mail-relay-20261126-0300.save", 300 * MIB), ("console-x-20261126-030000.log", 10),
             ("db-primary-20261125-2300.save", 2048 * MIB)))]

    async def save(self, domain, path, *, keep_running=False, overwrite=False):
        self.calls.append(("save", (domain, path, overwrite)))

    async def restore(self, path, *, paused=False):
        self.calls.append(("restore", (path, paused)))
        return "mail-relay"


@pytest.fixture
def remote(tmp_path):
    sim, clock = make_sim()
    backend = RemoteSaves(sim.cluster)
    save_dir = tmp_path / "on-the-dom0" / "saves"
    app = XentuiApp(backend, StartOptions(delay=NEVER, theme="xentui-dark", save_dir=save_dir, audit=None))
    return app, backend, clock, save_dir


def names(backend: RemoteSaves) -> list[str]:
    return [name for name, _ in backend.calls]


async def wait_until(pilot, condition, what: str) -> None:
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"never: {what}")


async def acted(pilot, app, backend: RemoteSaves, action: str) -> None:
    """The backend was asked to act, and the poll after it is over."""
    await wait_until(pilot, lambda: action in names(backend) and not app.busy and not app._polling, action)
    await pilot.pause(0.05)


async def test_the_save_dialog_makes_the_directory_and_checks_the_path_through_the_backend(remote):
    app, backend, clock, save_dir = remote
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == "mail-relay"))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SaveScreen), "the save dialog")
        assert backend.calls == [("make_save_dir", save_dir)]
        assert not save_dir.parent.exists()  # made where the backend saves, not here
        field = app.screen.query_one("#path", Input)
        field.value = "fifo.save"
        field.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: "is a FIFO" in str(app.screen.query_one(".problem", Label).render()),
                         "the backend's refusal in the dialog")
        assert backend.calls[-1] == ("check_save_target", (save_dir / "fifo.save", True))
        field.value = "taken.save"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the overwrite question")
        assert f"{save_dir / 'taken.save'} already exists (a file of 5.0M)" in app.screen.question
        await pilot.press("y")
        await acted(pilot, app, backend, "save")
        assert backend.calls[-1] == ("save", ("mail-relay", save_dir / "taken.save", True))
        assert names(backend).count("check_save_target") == 2


async def test_the_restore_picker_lists_the_backends_images_and_restores_the_one_picked(remote):
    app, backend, clock, save_dir = remote
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, RestoreScreen) and app.screen.images is not None,
                         "the listing")
        picker = app.screen
        assert backend.calls == [("saved_images", save_dir)]
        assert picker.files == [save_dir / "mail-relay-20261126-0300.save", save_dir / "db-primary-20261125-2300.save"]
        shown = [str(option.prompt) for option in picker.query_one(OptionList).options]
        assert "300M  mail-relay-20261126-0300.save" in shown[0] and "2.0G  db-primary" in shown[1]
        assert app.focused is picker.query_one(OptionList)
        await pilot.press("down", "enter")
        await acted(pilot, app, backend, "restore")
        assert backend.calls[-1] == ("restore", (save_dir / "db-primary-20261125-2300.save", False))


async def test_a_slow_host_keeps_the_screen_refreshing_while_it_lists_and_checks(remote):
    app, backend, clock, _save_dir = remote
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        backend.hold = asyncio.Event()
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, RestoreScreen)  # at once, saying what it waits for
        assert "Reading" in str(app.screen.query_one("#listing", Label).render())
        await pilot.press("enter")  # the Restore button has the focus until the list is there
        assert "still reading" in str(app.screen.query_one(".problem", Label).render())
        before = app.polls_done
        await poll(pilot, app, clock)  # the table keeps refreshing meanwhile
        assert app.polls_done > before
        backend.hold.set()
        await wait_until(pilot, lambda: app.screen.images is not None, "the listing")
        assert len(app.screen.files) == 2
        await pilot.press("escape")

        backend.hold = asyncio.Event()
        app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == "mail-relay"))
        await pilot.press("ctrl+s")  # the directory is being made: the table still refreshes
        before = app.polls_done
        await poll(pilot, app, clock)
        assert app.polls_done > before and not isinstance(app.screen, SaveScreen)
        backend.hold.set()
        await wait_until(pilot, lambda: isinstance(app.screen, SaveScreen), "the save dialog")
        backend.hold = asyncio.Event()
        await pilot.press("enter")  # the path is being checked
        await poll(pilot, app, clock)
        assert isinstance(app.screen, SaveScreen) and "save" not in names(backend)
        backend.hold.set()
        await acted(pilot, app, backend, "save")


async def test_an_unreachable_host_is_said_by_the_dialog_and_the_picker(remote):
    app, backend, clock, save_dir = remote
    backend.unreachable = True
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot, app, clock)
        app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == "mail-relay"))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app._notifications, "the notification")
        assert app.screen is app.screen_stack[0]
        (said,) = [n.message for n in app._notifications]
        assert f"the save directory {save_dir} cannot be used: cannot reach root@dom0a with ssh" in said
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.screen.images is not None, "the listing")
        listing = str(app.screen.query_one("#listing", Label).render())
        assert f"Cannot list {save_dir}: cannot reach root@dom0a with ssh: Connection refused" in listing
        await pilot.press("enter")  # nothing to restore: the picker closes
        assert app.screen is app.screen_stack[0] and "restore" not in names(backend)
