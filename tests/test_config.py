"""The config file naming the pool's hosts (xentui.config) and the pool the command line builds from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xentui.backends.pool import LateMember, PoolBackend
from xentui.backends.registry import BACKENDS, BackendOptions
from xentui.config import PoolHost, config_path, load_pool
from xentui.errors import InvalidArgument

GOOD = '''
[[hosts]]
name = "dom0a"
address = "root@dom0a"
ssh_options = ["Port=2222"]
group = "rack 1"
migrate_address = "10.0.0.11"

[[hosts]]
name = "kvm1"
backend = "libvirt"
uri = "qemu+ssh://root@kvm1/system"
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_hosts_in_the_files_order_with_their_options(tmp_path):
    hosts = load_pool(write(tmp_path, GOOD))
    assert hosts == [
        PoolHost("dom0a", "xl", "root@dom0a", ("Port=2222",), "rack 1", "10.0.0.11"),
        PoolHost("kvm1", "libvirt", "qemu+ssh://root@kvm1/system"),
    ]


@pytest.mark.parametrize(("text", "message"), [
    ('[[hosts]]\nname = "a"\naddress = "b"\n[[hosts]\n', "line 4"),
    ('[[hosts]]\nname = "a"\n', "host 'a': needs address (an ssh destination)"),
    ('[[hosts]]\nname = "a"\nbackend = "libvirt"\naddress = "x"\n', "host 'a': needs uri (a libvirt URI)"),
    ('[[hosts]]\nname = "a"\nbackend = "xapi"\naddress = "x"\n', "backend must be one of xl, libvirt, not 'xapi'"),
    ('[[hosts]]\nname = "a/b"\naddress = "x"\n', "name must be a printable string without '/'"),
    ('[[hosts]]\nname = "a"\naddress = "x"\nport = 22\n', "[[hosts]] number 1: unknown key port"),
    ('[[hosts]]\nname = "a"\naddress = "x"\nssh_options = "Port=2"\n', "ssh_options must be a list of strings"),
    ('[[hosts]]\nname = "a"\naddress = "x"\n[[hosts]]\nname = "a"\naddress = "y"\n', "two [[hosts]] are named a"),
    ('theme = "dark"\n', "no [[hosts]] entries"),
])
def test_a_broken_file_is_refused_naming_the_file_and_the_place(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(InvalidArgument) as raised:
        load_pool(path)
    assert str(path) in str(raised.value) and message in str(raised.value)


def test_a_missing_file_says_what_reads_it(tmp_path):
    with pytest.raises(InvalidArgument, match="no such file; --pool reads the pool's hosts from it"):
        load_pool(tmp_path / "none.toml")


def test_the_file_is_under_xdg_config_home_when_it_is_absolute(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "xentui" / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert config_path() == Path.home() / ".config" / "xentui" / "config.toml"


def test_the_pool_backend_is_built_from_the_file_without_connecting(tmp_path):
    pool = BACKENDS["pool"].build(BackendOptions(pool=str(write(tmp_path, GOOD))))
    assert isinstance(pool, PoolBackend) and pool.labels == ["dom0a", "kvm1"]
    assert isinstance(pool.member("dom0a"), LateMember)  # connects at its first sample, in a thread
    # migrate_address as given; a libvirt host without one is migrated to at its URI (what libvirt takes)
    assert pool.address_of("dom0a") == "10.0.0.11" and pool.address_of("kvm1") == "qemu+ssh://root@kvm1/system"


@pytest.mark.parametrize(("address", "target"), [
    ("root@dom0b.example.org", "dom0b.example.org"), ("dom0b", "dom0b"),
])
def test_an_xl_host_without_migrate_address_is_reached_at_its_ssh_destinations_host(tmp_path, address, target):
    """Not at its name in the file: the name is the operator's label, the destination is where the host is."""
    pool = BACKENDS["pool"].build(BackendOptions(pool=str(write(
        tmp_path, f'[[hosts]]\nname = "b"\naddress = "{address}"\n'))))
    assert pool.address_of("b") == target


def test_an_xl_host_with_shell_characters_is_refused_before_anything_runs(tmp_path):
    path = write(tmp_path, '[[hosts]]\nname = "a"\naddress = "root@a;reboot"\n')
    with pytest.raises(InvalidArgument, match="reboot"):
        BACKENDS["pool"].build(BackendOptions(pool=str(path)))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xentui", *args], capture_output=True, text=True, timeout=60)


def test_the_demo_shows_its_three_hosts_in_one_batch_output():
    result = run_cli("--demo", "-b", "-i", "1", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines() if line.startswith("HOST ")] == [
        "sim-host-1", "sim-host-2", "sim-host-3"]


def test_a_pool_from_the_config_file_of_two_libvirt_connections(tmp_path):
    pytest.importorskip("libvirt", reason="libvirt-python is not installed (bash tests/libvirtlab/setup.sh)")
    path = write(tmp_path, '[[hosts]]\nname = "left"\nbackend = "libvirt"\nuri = "test:///default"\ngroup = "g1"\n'
                           '[[hosts]]\nname = "right"\nbackend = "libvirt"\nuri = "test:///default"\n')
    result = run_cli("--pool", str(path), "-b", "-i", "2", "-d", "0.5", "--format", "json")
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.splitlines()[-1])
    assert [(host["name"], host["up"], host["group"]) for host in last["hosts"]] == [
        ("left", True, "g1"), ("right", True, None)]
    assert sorted({record["host"] for record in last["domains"]}) == ["left", "right"]
    assert {record["name"] for record in last["domains"] if record["host"] == "left"} == {"test"}


def test_several_c_options_make_a_pool_and_a_dead_one_is_shown_down(tmp_path):
    pytest.importorskip("libvirt", reason="libvirt-python is not installed (bash tests/libvirtlab/setup.sh)")
    result = run_cli("-c", "test:///default", "-c", f"test://{tmp_path}/missing.xml", "-b", "-i", "1",
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    hosts = json.loads(result.stdout.splitlines()[-1])["hosts"]
    assert hosts[0]["name"] == "test:default" and hosts[0]["up"]
    assert not hosts[1]["up"] and "missing.xml" in hosts[1]["error"]
