"""The screen on the libvirt backend with real guests: a live migration started and watched from the UI."""

from __future__ import annotations

import time

import pytest
from textual.widgets import Input, ProgressBar

from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.modals import MigrateScreen

from .conftest import LAB_URI

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh)")

from xentui.backends.libvirt import LibvirtBackend  # noqa: E402

pytestmark = [pytest.mark.libvirtlab, pytest.mark.asyncio]


async def test_live_migration_from_the_screen_shows_progress(lab, second_libvirtd):
    guest = lab.start(disk=False)  # a local disk is "unsafe" to migrate: libvirt wants shared storage
    # 32 MiB/s: slow enough that the progress bar has something to show between start and end
    source = LibvirtBackend(LAB_URI, migrate_data_uri="tcp://127.0.0.1",
                            migrate_params={libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 32})
    target = LibvirtBackend(second_libvirtd)
    app = XentuiApp(source, StartOptions(delay=1.0, theme="xentui-dark"))
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            deadline = time.monotonic() + 60
            while not (app.sample and any(d.name == guest.name for d in app.sample.domains)):
                assert time.monotonic() < deadline, "the guest never showed in the table"
                await pilot.pause(0.2)
            await pilot.press("slash", *guest.name, "enter")  # the cursor on the guest, whatever the order
            assert app.table.selected is not None and app.table.selected.name == guest.name
            await pilot.press("g")
            await pilot.pause()
            assert isinstance(app.screen, MigrateScreen)
            app.screen.query_one("#target", Input).value = second_libvirtd
            await pilot.press("enter")  # pre-flight
            modal = app.screen
            deadline = time.monotonic() + 60
            while modal.checked_target is None:
                assert time.monotonic() < deadline, "no pre-flight result"
                await pilot.pause(0.2)
            assert modal.failures == 0
            await pilot.press("enter")  # migrate
            seen: list[float] = []
            deadline = time.monotonic() + 180
            while app.screen is modal:
                assert time.monotonic() < deadline, f"still migrating; progress seen {seen}"
                seen.append(modal.query_one("#bar", ProgressBar).progress)
                await pilot.pause(0.1)
            assert any(0 < value < 100 for value in seen), seen  # the operator saw it move, not only start and end
            assert app.action_log[-1][2:4] == ("migrate", "ok")
            deadline = time.monotonic() + 30
            while any(d.name == guest.name for d in app.sample.domains):  # gone from this host's table
                assert time.monotonic() < deadline
                await pilot.pause(0.2)
        moved = [d for d in (await target.sample()).domains if d.name == guest.name]
        assert moved and str(moved[0].state) == "running"
        await target.destroy(guest.name)
    finally:
        await source.close()
        await target.close()
