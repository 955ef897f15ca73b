"""Disks, NICs and create from the screen (sim): the keys, the lists, what is refused in the dialog, the audit."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Label, OptionList

from xentui.audit import AuditLog
from xentui.backends.readonly import ReadOnlyBackend
from xentui.backends.sim.devices import SPARE_DISKS
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.devices import CreateScreen, DisksScreen, NicsScreen
from xentui.ui.dialogs import ConfirmScreen
from xentui.ui.table import DomainTable

from .helpers import NEVER, make_sim, settle, wait_for

pytestmark = pytest.mark.asyncio


@pytest.fixture
def env(tmp_path):
    sim, clock = make_sim()
    audit = AuditLog(tmp_path / "audit.log")
    app = XentuiApp(sim, StartOptions(delay=NEVER, theme="xentui-dark", save_dir=tmp_path / "saves", audit=audit))
    return app, sim, clock, audit


def choose(app: XentuiApp, name: str) -> None:
    app.query_one(DomainTable).select(next(d.key for d in app.sample.domains if d.name == name))


async def listed(pilot, app) -> None:
    await wait_for(pilot, lambda: getattr(app.screen, "items", None) is not None)
    await pilot.pause()


def options(app) -> list[str]:
    picker = app.screen.query("#items")
    return [str(o.prompt) for o in picker.first(OptionList).options] if picker else []


def problem(app) -> str:
    return str(app.screen.query_one(".problem:last-of-type", Label).render()) + " ".join(
        str(label.render()) for label in app.screen.query(".problem"))


async def done(pilot, app) -> None:
    await wait_for(pilot, lambda: not app.busy and not app._polling)
    await pilot.pause(0.05)


async def test_attach_a_disk_from_the_screen_then_detach_it_after_a_warning(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")
        await pilot.press("A")
        assert isinstance(app.screen, DisksScreen)
        await listed(pilot, app)
        assert options(app)[0].startswith("xvda   phy    rw  raw    /dev/vg0/web-frontend-01-xvda")
        assert app.screen.query_one("#vdev", Input).value == "xvdb"  # the first free one, suggested
        app.screen.query_one("#path", Input).value = SPARE_DISKS[2]
        await pilot.press("enter")
        await done(pilot, app)
        assert [d.vdev for d in await sim.disks("web-frontend-01")] == ["xvda", "xvdb"]
        entry = audit.read()[-1]
        assert (entry["action"], entry["result"], entry["arguments"]["vdev"]) == ("block-attach", "ok", "xvdb")

        await pilot.press("A")
        await listed(pilot, app)
        picker = app.screen.query_one("#items", OptionList)
        picker.highlighted = 1
        app.screen.detach()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "unmount it in the guest first" in app.screen.question
        await pilot.press("y")
        await done(pilot, app)
        assert [d.vdev for d in await sim.disks("web-frontend-01")] == ["xvda"]
        assert audit.read()[-1]["action"] == "block-detach"


async def test_detaching_the_root_disk_warns_that_the_guest_may_hang(env):
    app, sim, clock, _ = env
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")
        await pilot.press("A")
        await listed(pilot, app)
        app.screen.detach()
        await pilot.pause()
        assert "first disk" in app.screen.question and "requests/s" in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert [d.vdev for d in await sim.disks("web-frontend-01")] == ["xvda"]


@pytest.mark.parametrize(("path", "vdev", "message"), [
    ("", "xvdb", "give its path"),
    ("data.img", "xvdb", "not an absolute path"),
    (SPARE_DISKS[0], "xvda", "xvda is taken"),
    (SPARE_DISKS[0], "xvdb1", "not a disk name"),
])
async def test_a_disk_the_dialog_can_tell_is_wrong_stays_in_the_dialog(env, path, vdev, message):
    app, _, clock, audit = env
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")
        await pilot.press("A")
        await listed(pilot, app)
        app.screen.query_one("#path", Input).value = path
        app.screen.query_one("#vdev", Input).value = vdev
        app.screen.submit()
        await pilot.pause()
        assert isinstance(app.screen, DisksScreen) and message in problem(app)
        assert audit.read() == []


async def test_a_missing_path_is_refused_by_the_host_and_said(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")
        await pilot.press("A")
        await listed(pilot, app)
        app.screen.query_one("#path", Input).value = "/var/lib/xen/images/gone.img"
        app.screen.submit()
        await done(pilot, app)
        entry = audit.read()[-1]
        assert entry["result"] == "failed" and "does not exist" in entry["message"]
        assert [d.vdev for d in await sim.disks("web-frontend-01")] == ["xvda"]


async def test_attach_a_nic_on_a_bridge_the_host_has_and_refuse_a_bad_mac(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")
        await pilot.press("I")
        assert isinstance(app.screen, NicsScreen)
        await listed(pilot, app)
        assert app.screen.query_one("#bridge", Input).value == "xenbr0"
        assert "xenbr0, xenbr1" in str(app.screen.query_one("#bridges", Label).render())
        app.screen.query_one("#bridge", Input).value = "xenbr7"
        app.screen.submit()
        await pilot.pause()
        assert "no bridge 'xenbr7'" in problem(app)
        app.screen.query_one("#bridge", Input).value = "xenbr1"
        app.screen.query_one("#mac", Input).value = "01:00:5e:00:00:01"
        app.screen.submit()
        await pilot.pause()
        assert "multicast" in problem(app)
        app.screen.query_one("#mac", Input).value = "00:16:3e:aa:bb:cc"
        app.screen.submit()
        await done(pilot, app)
        nics = await sim.nics("web-frontend-01")
        assert [(n.mac, n.bridge) for n in nics][-1] == ("00:16:3e:aa:bb:cc", "xenbr1")
        assert audit.read()[-1]["arguments"] == {"bridge": "xenbr1", "mac": "00:16:3e:aa:bb:cc"}


async def test_create_from_the_picker_paused_then_its_console_opens(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("ctrl+n")
        assert isinstance(app.screen, CreateScreen)
        await listed(pilot, app)
        labels = options(app)
        assert any("broken.cfg: cannot be read" in line for line in labels)
        assert any(line.startswith("mail-relay") and "runs now" in line for line in labels)
        picker = app.screen.query_one("#items", OptionList)
        picker.highlighted = next(i for i, line in enumerate(labels) if line.startswith("mail-relay"))
        app.screen.submit()
        await pilot.pause()
        assert "exists on this host already" in problem(app)
        picker.highlighted = next(i for i, line in enumerate(labels) if "broken" in line)
        await pilot.pause()
        assert "syntax error" in str(app.screen.query_one("#about", Label).render())
        picker.highlighted = next(i for i, line in enumerate(labels) if line.startswith("web-standby"))
        app.screen.query_one("#paused").value = True
        app.screen.query_one("#console").value = True
        app.screen.submit()
        await done(pilot, app)
        assert sim.host.domains["web-standby"].paused
        await wait_for(pilot, lambda: app.main.console_panes())
        assert app.table.selected.name == "web-standby"
        entry = audit.read()[-1]
        assert (entry["action"], entry["arguments"]["config"], entry["result"]) == (
            "create", "/etc/xen/web-standby.cfg", "ok")


async def test_read_only_lists_disks_but_refuses_to_attach(tmp_path):
    sim, clock = make_sim()
    app = XentuiApp(ReadOnlyBackend(sim), StartOptions(delay=NEVER, theme="xentui-dark"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")
        await pilot.press("A")
        await listed(pilot, app)
        assert options(app) and "--read-only" in problem(app)
        app.screen.query_one("#path", Input).value = SPARE_DISKS[0]
        app.screen.submit()
        await pilot.pause()
        assert isinstance(app.screen, DisksScreen)
        assert [d.vdev for d in await sim.disks("web-frontend-01")] == ["xvda"]


async def test_snapshot_from_the_screen_says_the_plan_then_the_paused_time_and_removes_it(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")
        await pilot.press("P")
        await listed(pilot, app)
        assert "LV, 24G free in vg0" in str(app.screen.query_one("#sources", Label).render())
        app.screen.query_one("#cow", Input).value = "40G"
        app.screen.submit()
        await pilot.pause()
        assert "which has 24G free" in problem(app)
        app.screen.query_one("#cow", Input).value = "2G"
        app.screen.query_one("#tag", Input).value = "before-upgrade"
        app.screen.submit()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "2.0G copy-on-write in vg0" in app.screen.question
        await pilot.press("y")
        await done(pilot, app)
        entry = audit.read()[-1]
        assert (entry["action"], entry["result"]) == ("snapshot", "ok")
        assert "web-frontend-01-xvda-before-upgrade" in entry["message"] and "paused 0.15 s" in entry["message"]
        assert not sim.host.domains["web-frontend-01"].paused

        await pilot.press("P")
        await listed(pilot, app)
        assert "web-frontend-01-xvda-before-upgrade" in options(app)[0]
        app.screen.detach()
        await pilot.pause()
        await pilot.press("y")
        await done(pilot, app)
        assert await sim.snapshots("web-frontend-01") == []
        assert audit.read()[-1]["action"] == "snapshot-remove"


async def test_a_click_on_start_creates_the_guest_once(env):
    """The mouse, as an operator's: the picker's config clicked, then Start. One create, one audit entry (each
    click on a listing dialog's OK once ran its submit twice: the second dismissed a closed dialog)."""
    app, sim, clock, audit = env
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("ctrl+n")
        await listed(pilot, app)
        labels = options(app)
        app.screen.query_one("#items", OptionList).highlighted = next(
            i for i, line in enumerate(labels) if line.startswith("web-standby"))
        await pilot.click("#ok")
        await done(pilot, app)
        assert app.screen is app.main
        assert [(e["action"], e["result"]) for e in audit.read()] == [("create", "ok")]
        assert "web-standby" in sim.host.domains


async def test_a_click_on_detach_asks_once_and_a_click_on_attach_attaches_once(env):
    app, sim, clock, audit = env
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        choose(app, "web-frontend-01")
        await pilot.press("A")
        await listed(pilot, app)
        app.screen.query_one("#path", Input).value = SPARE_DISKS[2]
        await pilot.click("#ok")
        await done(pilot, app)
        assert [(e["action"], e["result"]) for e in audit.read()] == [("block-attach", "ok")]
        await pilot.press("A")
        await listed(pilot, app)
        app.screen.query_one("#items", OptionList).highlighted = 1
        await pilot.click("#detach")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await done(pilot, app)
        assert app.screen is app.main
        assert [d.vdev for d in await sim.disks("web-frontend-01")] == ["xvda"]
        assert [(e["action"], e["result"]) for e in audit.read()] == [("block-attach", "ok"), ("block-detach", "ok")]
