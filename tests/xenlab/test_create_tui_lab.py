"""Create from the screen on the real Xen: Ctrl+N, a config file's path typed in the picker, "open console"
ticked, Enter; the guest runs (xl list) and its console, opened by itself under the table, answers (issue 21)."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.xenlab.test_devices_lab import write_config
from tests.xenlab.test_tui_lab import Screen, screen  # noqa: F401 - the fixture, used by name

pytestmark = pytest.mark.xenlab


@pytest.mark.parametrize("screen", [(100, 30)], indirect=True)
def test_create_a_guest_from_the_picker_and_its_console_answers(xenlab, screen):  # noqa: F811
    name = f"xtui-{uuid.uuid4().hex[:4]}"
    path = write_config(xenlab, name)
    try:
        screen.wait("the table", lambda text: "guest1" in text)
        screen.keys("C-n")
        screen.wait("the picker with the config", lambda text: name in text and "Start a guest" in text, 60)
        screen.keys("Tab")  # from the list to the path field
        screen.keys(path, literal=True)
        screen.keys("Tab", "Tab", "Space", "BTab", "BTab")  # tick "open console", back to the path field
        screen.wait("open console ticked", lambda text: "X open console" in text or "[X] open console" in text, 20)
        screen.keys("Enter")
        started = time.monotonic()
        deadline = started + 240
        while name not in xenlab.ssh(["xl", "list"]).stdout:
            assert time.monotonic() < deadline, f"{name} never ran; the screen shows:\n{screen.text()}"
            time.sleep(2)
        print(f"\ncreated from the screen: running after {time.monotonic() - started:.1f} s")
        screen.wait("its console, opened by itself", lambda text: "Ctrl-]" in text or "console" in text.lower(), 120)
        time.sleep(20)  # the guest boots under TCG: its shell comes after its kernel
        screen.keys("Enter")
        screen.keys("echo XT-$((6*7))", literal=True)
        screen.keys("Enter")
        screen.wait("the guest answering on its console", lambda text: "XT-42" in text, 180)
    finally:
        xenlab.ssh(["xl", "destroy", name], check=False)
        xenlab.ssh(["rm", "-f", path], check=False)
