"""A xapi-managed host (XCP-ng/XenServer) as the xl backend sees it, on the real Xen lab: dom0 gets an
/etc/xensource-inventory (what every XCP-ng/XenServer host has), and a fresh XlBackend over ssh then says the host
is managed by xapi, refuses every action with that reason before xl runs, and still samples and opens a console.
The file is removed afterwards, and a backend built then acts again (the look is per backend, once)."""

from __future__ import annotations

import pytest

from xentui.backends.base import Action
from xentui.backends.xl import XAPI_REASON, XlBackend
from xentui.errors import Unsupported
from xentui.model import DomainFlag

from .dom0_calls import xl_list
from .test_devices_lab import console, lab_host, run

pytestmark = pytest.mark.xenlab

INVENTORY = "/etc/xensource-inventory"


@pytest.fixture
def xapi_host(xenlab):
    xenlab.ssh(["sh", "-c", f"printf 'PRODUCT_BRAND=\\047XCP-ng\\047\\n' > {INVENTORY}"])
    try:
        yield
    finally:
        xenlab.ssh(["rm", "-f", INVENTORY])


def test_a_xapi_host_is_watched_not_touched(xenlab, xapi_host):
    async def call(backend: XlBackend):
        sample = await backend.sample()
        refused = []
        for action in (lambda: backend.pause("guest2"), lambda: backend.mem_set("guest2", 131072),
                       lambda: backend.snapshot_create("guest1", "xapi")):
            with pytest.raises(Unsupported) as error:
                await action()
            refused.append(str(error.value))
        said = await console(backend, "guest2", "echo from-the-console-$((40+2))")
        return sample, backend.capabilities, refused, said

    sample, capabilities, refused, said = run(xenlab, call)
    print(f"\nhost: {sample.host.hostname}, managed by {sample.host.managed_by}\n" + "\n".join(refused)
          + f"\nconsole: {said.strip()!r}")
    assert sample.host.managed_by == "xapi"
    assert {d.name for d in sample.domains} >= {"Domain-0", "guest1", "guest2"}  # monitoring goes on
    assert capabilities.why_not(Action.PAUSE) == XAPI_REASON and capabilities.supports(Action.CONSOLE)
    assert refused[0] == f"pause: {XAPI_REASON}" and refused[1] == f"mem-set: {XAPI_REASON}"
    assert refused[2] == f"snapshot: {XAPI_REASON}"
    assert "from-the-console-42" in said
    assert DomainFlag.PAUSED not in xl_list(xenlab)["guest2"].flags
    assert xenlab.ssh(["ls", "/var/lib/xentui-lab/"]).stdout.count("guest1-disk.img.xapi") == 0


def test_without_the_inventory_the_host_is_xls_again(xenlab):
    async def call(backend: XlBackend):
        sample = await backend.sample()
        return sample.host.managed_by, backend.capabilities.why_not(Action.PAUSE)

    assert xenlab.ssh(["test", "-e", INVENTORY], check=False).returncode == 1
    assert run(xenlab, call) == (None, None)


@pytest.mark.asyncio
async def test_the_header_says_it_and_p_is_refused_on_the_screen(xenlab, xapi_host):
    """The app on this machine (the xl backend over ssh): the header says "managed by xapi: read-only", and `p`
    on guest2 is refused with the reason; guest2 stays running."""
    from xentui.ui.app import StartOptions, XentuiApp

    backend = XlBackend(host=lab_host(xenlab), delay=2.0)
    app = XentuiApp(backend, StartOptions(delay=2.0, theme="xentui-dark"))
    async with app.run_test(size=(160, 50)) as pilot:
        for _ in range(900):
            if app.sample is not None:
                break
            await pilot.pause(0.2)
        header = str(app.query_one("HostHeader").render())
        print(f"\n{header}")
        assert "managed by xapi: read-only" in header
        app.table.select(next(d for d in app.sample.domains if d.name == "guest2").key)
        await pilot.press("p")
        await pilot.pause(1.0)
        said = [n.message for n in app._notifications]
        print(said)
        assert any("managed by xapi" in message for message in said), said
    await backend.close()
    assert DomainFlag.PAUSED not in xl_list(xenlab)["guest2"].flags
