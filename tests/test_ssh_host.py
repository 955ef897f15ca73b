"""The ssh host seam: destinations checked, every word reaching the remote program whole, one round trip for the
links, dom0's interface counters. ``ssh`` itself is a stand-in here that runs the command line with ``sh -c`` as
sshd would (its options are checked, not obeyed); tests/xenlab/test_ssh_lab.py drives the xl backend through the
real ssh into the Xen lab's dom0."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest

from xentui.backends.ssh import SshHost, check_destination, parse_net_dev
from xentui.errors import BackendUnavailable, InvalidArgument

HOSTILE = ["guest; rm -rf /", "$(touch /tmp/owned)", "a'b\"c", "two  spaces", "new\nline", "`id`", "-x", "*", "\\"]

FAKE_SSH = r"""#!/bin/sh
# a stand-in for ssh: checks that xentui's options are there, then runs the command line as sshd would
log="$(dirname "$0")/calls"
echo "$*" >> "$log"
case " $* " in *" BatchMode=yes "*) ;; *) echo "no BatchMode" >&2; exit 255 ;; esac
case " $* " in *" ControlMaster=auto "*) ;; *) echo "no ControlMaster" >&2; exit 255 ;; esac
while [ "$1" != "--" ]; do shift; done
shift
[ "$1" = "unreachable" ] && { echo "ssh: connect to host unreachable port 22: Connection refused" >&2; exit 255; }
shift
exec sh -c "$1"
"""


@pytest.fixture
def host(tmp_path: Path) -> SshHost:
    ssh = tmp_path / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(ssh.stat().st_mode | stat.S_IEXEC)
    return SshHost("root@dom0a", ssh=str(ssh), control_dir=tmp_path / "control")


@pytest.mark.parametrize("destination", ["root@dom0a", "dom0a", "admin@10.0.0.2", "dom0-b.example.org", "h%eth0"])
def test_an_operators_destinations_are_taken(destination):
    assert check_destination(destination) == destination


@pytest.mark.parametrize("destination", ["", "-oProxyCommand=sh", "a;b", "a b", "$(x)", "root@a@b", "a\x1b]0;x\x07",
                                         "host\n", "a|b", "~user"])
def test_a_destination_with_shell_or_option_characters_is_refused(destination):
    with pytest.raises(InvalidArgument, match="not an ssh destination"):
        SshHost(destination)


@pytest.mark.asyncio
async def test_every_word_reaches_the_remote_program_whole(host):
    result = await host.run(["printf", "%s\\0", *HOSTILE])
    assert result.stdout.split("\0")[:-1] == HOSTILE


@pytest.mark.asyncio
async def test_the_command_line_carries_batch_mode_and_a_control_socket(host, tmp_path):
    await host.run(["true"])
    (call,) = (tmp_path / "calls").read_text().splitlines()
    assert "BatchMode=yes" in call and f"ControlPath={tmp_path / 'control'}/%C" in call and " -T -- root@dom0a " in call
    assert stat.S_IMODE(os.stat(tmp_path / "control").st_mode) == 0o700


@pytest.mark.asyncio
async def test_links_are_read_in_one_round_trip_and_a_missing_one_is_none(host, tmp_path):
    for name in HOSTILE[:4]:
        (tmp_path / name.replace("/", "_")).symlink_to(f"/sys/devices/virtual/net/{name.replace('/', '_')}")
    paths = [str(tmp_path / name.replace("/", "_")) for name in HOSTILE[:4]] + [str(tmp_path / "absent")]
    before = len((tmp_path / "calls").read_text().splitlines()) if (tmp_path / "calls").exists() else 0
    links = await host.read_links(paths)
    assert len((tmp_path / "calls").read_text().splitlines()) == before + 1
    assert links[paths[-1]] is None
    assert [links[p].rsplit("/", 1)[-1] for p in paths[:4]] == [n.replace("/", "_") for n in HOSTILE[:4]]


@pytest.mark.asyncio
async def test_net_counters_are_dom0s_proc_net_dev(host):
    counters = await host.net_counters()
    mine = psutil.net_io_counters(pernic=True)
    assert counters.keys() == mine.keys()
    for name, each in counters.items():  # read a moment apart: the same or a little more
        assert 0 <= mine[name].bytes_recv - each.bytes_recv < 1 << 20, name
        assert 0 <= mine[name].packets_sent - each.packets_sent < 1 << 12, name


def test_proc_net_dev_lines_that_are_not_counters_are_skipped():
    text = ("Inter-|   Receive |  Transmit\n face |bytes packets\n"
            "  eth0: 10 2 0 0 0 0 0 0 30 4 0 1 0 0 0 0\n garbage line\n vif3.0: 1 2 3\n")
    assert parse_net_dev(text) == {"eth0": parse_net_dev(text)["eth0"]}
    assert (parse_net_dev(text)["eth0"].bytes_recv, parse_net_dev(text)["eth0"].dropout) == (10, 1)


@pytest.mark.asyncio
async def test_an_unreachable_host_says_so_with_ssh_words(tmp_path):
    ssh = tmp_path / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(ssh.stat().st_mode | stat.S_IEXEC)
    unreachable = SshHost("unreachable", ssh=str(ssh), control_dir=tmp_path / "c")
    with pytest.raises(BackendUnavailable, match=r"cannot reach unreachable with ssh: .*Connection refused"):
        await unreachable.run(["xl", "list"])
    with pytest.raises(BackendUnavailable, match=r"cannot reach unreachable with ssh: .*Connection refused"):
        unreachable.has("xl")  # before the screen: said as ssh says it, not as "xl is not installed"
