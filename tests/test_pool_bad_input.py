"""The pool's bad input (issue 20, "Bad input and safety"): the same guest listed by two hosts at once, a
migration or an evacuation whose target is the source, a libvirt URI with garbage in it. Clear messages, and
nothing moves. ssh's own failures against a real sshd are tests/test_ssh_real.py; two hosts of one name and a
host with shell characters, tests/test_pool.py and tests/test_config.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.ui.helpers import NEVER, poll, settle, wait_for
from xentui.audit import AuditLog
from xentui.backends.pool import PoolBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.clock import ManualClock
from xentui.errors import InvalidArgument
from xentui.model import Domain, DomainState
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.lines import host_key
from xentui.ui.migrate import EvacuateScreen, MigrateScreen
from xentui.validate import check_libvirt_uri, check_other_host, is_same_host

RUNNING = (DomainState.RUNNING, DomainState.BLOCKED)


class CountingSim(SimBackend):
    """A simulated host that counts the migration checks and moves asked of it: "nothing moves" is counted."""

    def __init__(self, cluster: SimCluster, name: str) -> None:
        super().__init__(cluster, name)
        self.preflights: list[tuple[str, str]] = []
        self.migrations: list[tuple[str, str]] = []

    async def migrate_preflight(self, domain: str, target: str):  # type: ignore[no-untyped-def]
        self.preflights.append((domain, target))
        return await super().migrate_preflight(domain, target)

    def migrate(self, domain: str, target: str, *, live: bool = True):  # type: ignore[no-untyped-def]
        self.migrations.append((domain, target))
        return super().migrate(domain, target, live=live)


def pool_app(tmp_path: Path, *, addresses: dict[str, str] | None = None,
             labels: dict[str, str] | None = None) -> tuple[XentuiApp, ManualClock, dict[str, CountingSim]]:
    """Three simulated hosts in one pool; ``labels`` renames a host in the pool (its sim name stays)."""
    clock = ManualClock()
    cluster = SimCluster(seed=5, domains=4, clock=clock, hosts=3)
    members = {(labels or {}).get(name, name): CountingSim(cluster, name) for name in cluster.hosts}
    app = XentuiApp(PoolBackend(list(members.items()), addresses=addresses),
                    StartOptions(delay=NEVER, theme="xentui-dark", audit=AuditLog(tmp_path / "audit.log")))
    return app, clock, members


def table_rows(app: XentuiApp) -> list[str]:
    return [app.table.render_line(y).text for y in range(1, len(app.table._lines) + 1)]


def rows_under(app: XentuiApp, host: str) -> list[str]:
    """The table's rows of one host's group, its own line left out."""
    rows = table_rows(app)
    start = next(i for i, row in enumerate(rows) if row.startswith(("▾", "▸")) and row.split()[1] == host)
    end = next((i for i in range(start + 1, len(rows)) if rows[i].startswith(("▾", "▸"))), len(rows))
    return rows[start + 1:end]


# --- the same guest on two hosts, as xl lists it for a moment during a migration -----------------------------


async def twin_on(members: dict[str, CountingSim], source: str, target: str, tmp_path: Path) -> Domain:
    """A running guest of ``source`` also listed by ``target``, same name and UUID: saved with keep-running and
    restored there (the simulated hosts check a UUID on their own host only, as each dom0 does)."""
    guest = next(d for d in (await members[source].sample()).domains if not d.is_dom0 and d.state in RUNNING)
    await members[source].save(guest.name, tmp_path / "twin.save", keep_running=True)
    await members[target].restore(tmp_path / "twin.save")
    there = next(d for d in (await members[target].sample()).domains if d.name == guest.name)
    assert there.uuid == guest.uuid  # the same guest, as both dom0s list it
    return guest


@pytest.mark.asyncio
async def test_the_same_guest_on_two_hosts_shows_under_each_and_the_cursor_keeps_the_chosen_one(tmp_path):
    app, clock, members = pool_app(tmp_path)
    guest = await twin_on(members, "sim-host-1", "sim-host-2", tmp_path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        copies = [d for d in app.sample.domains if d.uuid == guest.uuid]
        assert sorted(d.host for d in copies) == ["sim-host-1", "sim-host-2"]
        assert len({d.key for d in copies}) == 2  # two rows, keyed by host
        for host in ("sim-host-1", "sim-host-2"):
            assert [row for row in rows_under(app, host) if row.split()[0] == guest.name.split()[0]], host
        chosen = f"sim-host-2/{guest.uuid}"
        assert app.table.select(chosen)
        for flat in (False, True):  # grouped by host, then G: one list where the two rows sit side by side
            if flat:
                await pilot.press("G")
                app.sort_by("name")
                assert app.table.cursor_key == chosen
            for _ in range(3):
                await poll(pilot, app, clock)
                assert app.table.cursor_key == chosen
                assert (app.table.selected.host, app.table.selected.uuid) == ("sim-host-2", guest.uuid)


@pytest.mark.asyncio
async def test_an_action_on_one_copy_of_the_guest_goes_to_that_copys_host_only(tmp_path):
    app, clock, members = pool_app(tmp_path)
    guest = await twin_on(members, "sim-host-1", "sim-host-2", tmp_path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        await pilot.press("G")
        app.sort_by("name")
        app.table.select(f"sim-host-2/{guest.uuid}")
        await pilot.press("p")
        await wait_for(pilot, lambda: not app.busy and bool(app.action_log) and app.action_log[-1][3] == "ok")
        on = {host: next(d for d in (await members[host].sample()).domains if d.uuid == guest.uuid).state
              for host in ("sim-host-1", "sim-host-2")}
        assert on["sim-host-2"] is DomainState.PAUSED and on["sim-host-1"] in RUNNING
        assert app.action_log[-1][1:4] == (f"{guest.name} on sim-host-2", "pause", "ok")
        record = app.audit.read()[-1]
        assert (record["host"], record["domain"], record["action"]) == ("sim-host-2", guest.name, "pause")
        await poll(pilot, app, clock)
        shown = {d.host: d.state for d in app.sample.domains if d.uuid == guest.uuid}
        assert shown["sim-host-2"] is DomainState.PAUSED and shown["sim-host-1"] in RUNNING
        assert app.table.selected.host == "sim-host-2"


# --- a migration whose target is the source ------------------------------------------------------------------


async def open_migrate(pilot, app: XentuiApp, members: dict[str, CountingSim], host: str) -> MigrateScreen:
    guest = next(d for d in app.sample.domains if d.host == host and not d.is_dom0 and d.state in RUNNING)
    app.table.select(guest.key)
    await pilot.press("g")
    await wait_for(pilot, lambda: isinstance(app.screen, MigrateScreen))
    return app.screen


def problem(screen) -> str:  # type: ignore[no-untyped-def]
    return str(screen.query_one(".problem").render())


async def refused(pilot, screen: MigrateScreen, typed: str) -> str:  # type: ignore[no-untyped-def]
    """Type a target, press Enter twice (Enter checks; a second Enter would start a checked migration): what
    the dialog says, having checked nothing and started nothing."""
    screen.query_one("#target").value = typed
    for _ in range(2):
        await pilot.press("enter")
        await pilot.pause()
    assert screen.checked_target is None and not screen.running and not screen.query_one("#anyway").display
    return problem(screen)


@pytest.mark.asyncio
@pytest.mark.parametrize("typed", ["root@dom0a", "dom0a", "DOM0A."])
async def test_migrating_to_the_domains_own_host_is_refused_before_any_check(tmp_path, typed):
    """Its pool name, or the host of its ssh destination however written: refused in the dialog, with no
    pre-flight asked of the backend and nothing moved."""
    app, clock, members = pool_app(tmp_path, labels={"sim-host-1": "root@dom0a"})
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        screen = await open_migrate(pilot, app, members, "root@dom0a")
        name = screen.domain.name
        said = await refused(pilot, screen, typed)
        if "@" in typed:  # not a host name a migration takes at all: refused by that check, as before
            assert "is not a host name or IP address" in said
        else:
            assert said == (f"{typed!r} is the host {name} is on (root@dom0a): a migration needs another host "
                            "(nothing was checked or moved)")
        assert members["root@dom0a"].preflights == [] and members["root@dom0a"].migrations == []
        await pilot.press("escape")
        await poll(pilot, app, clock)
        assert next(d for d in app.sample.domains if d.name == name).host == "root@dom0a"


@pytest.mark.asyncio
async def test_the_address_the_pool_knows_the_source_by_is_refused_too(tmp_path):
    """A migrate address from the config file (or a libvirt host's URI): the dialog `g` opens refuses it as it
    refuses the host's pool name, and nothing is checked, moved or recorded."""
    app, clock, members = pool_app(tmp_path, addresses={"sim-host-1": "10.0.0.11"})
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        screen = await open_migrate(pilot, app, members, "sim-host-1")
        for typed in ("10.0.0.11", "sim-host-1"):
            said = await refused(pilot, screen, typed)
            assert said.startswith(f"{typed!r} is the host {screen.domain.name} is on (sim-host-1)"), said
        assert members["sim-host-1"].preflights == [] and members["sim-host-1"].migrations == []
        assert app.audit.read() == []


@pytest.mark.asyncio
async def test_a_refused_target_corrected_to_another_host_checks_and_moves(tmp_path):
    """The refusal is of that target only: the dialog stays, and a real other host then works."""
    app, clock, members = pool_app(tmp_path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        screen = await open_migrate(pilot, app, members, "sim-host-1")
        screen.query_one("#target").value = "sim-host-1"
        await pilot.press("enter")
        await pilot.pause()
        assert "'sim-host-1' is the host" in problem(screen) and members["sim-host-1"].preflights == []
        screen.query_one("#target").value = "sim-host-2"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.checked_target == "sim-host-2")
        assert members["sim-host-1"].preflights == [(screen.domain.name, "sim-host-2")]
        assert problem(screen) == ""


@pytest.mark.asyncio
async def test_evacuating_a_host_to_itself_is_refused_and_its_plan_never_names_it(tmp_path):
    app, clock, members = pool_app(tmp_path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, app, clock)
        app.table.select(host_key("sim-host-2"))
        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, EvacuateScreen))
        screen = app.screen
        assert "sim-host-2" not in screen.query_one("#target").value.split(", ")  # not offered
        screen.query_one("#target").value = "sim-host-1, sim-host-2"
        await pilot.press("enter")
        await pilot.pause()
        said = problem(screen)
        assert "'sim-host-2' is the host being evacuated (sim-host-2): a migration needs another host" in said
        assert screen.plan == {} and screen.checked_target is None and members["sim-host-2"].preflights == []
        screen.query_one("#target").value = "sim-host-1, sim-host-3"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.checked_target == "sim-host-1, sim-host-3")
        assert screen.plan and set(screen.plan.values()) <= {"sim-host-1", "sim-host-3"}
        assert all(target != "sim-host-2" for _domain, target in members["sim-host-2"].preflights)
        assert members["sim-host-2"].migrations == []


@pytest.mark.parametrize(("target", "source", "same"), [
    ("sim-host-1", ["sim-host-1"], True),
    ("Dom0A.", ["root@dom0a"], True),  # DNS names: no case, no trailing dot; the ssh user is not the host
    ("10.0.0.11", ["root@dom0a", "10.0.0.11"], True),
    ("dom0b", ["root@dom0a"], False),
    ("kvm1", ["kvm1:system", "qemu+ssh://kvm1/system"], True),
    ("qemu+tls://admin@KVM1/system", ["kvm1:system", "qemu+ssh://kvm1/system"], True),  # the same daemon
    ("qemu:///session", ["qemu:system", "qemu:///system"], False),  # another daemon of the same machine
    ("qemu+tcp://127.0.0.1:16510/system", ["lab", "qemu+tcp://127.0.0.1:16509/system"], False),
    ("anything", [], False),  # outside a pool: the operator's call (the Xen lab migrates to localhost)
])
def test_what_counts_as_the_source_host(target, source, same):
    assert is_same_host(target, source) is same
    if same:
        with pytest.raises(InvalidArgument, match="is the source: a migration needs another host"):
            check_other_host(target, source, what="the source")


# --- a libvirt URI with garbage in it ------------------------------------------------------------------------

CMD = [sys.executable, "-m", "xentui"]

GARBAGE_URIS = {
    "http://[::1/system": "an IPv6 address needs both brackets",
    "qemu+ssh://-oProxyCommand=touch${IFS}owned/system": "'-oProxyCommand=touc…' is not a host name",
    "qemu+ssh://a b/system": "holds blanks or control characters",
    "qemu:///sys\x1b]0;x\x07tem": "holds blanks or control characters",
    "qemu://kvm1:99999/system": "the port is not a number from 1 to 65535",
    "qemu+ssh://-l@kvm1/system": "'-l' is not a user name",
    "qemu:///system?socket=%zz": "a '%' not followed by two hex digits",
    "::::": "write driver[+transport]://[user@]host/path",
    "qemu;id:///system": "is not a driver[+transport]",
    "": "no libvirt URI given",
}


@pytest.mark.parametrize("uri", list(GARBAGE_URIS))
def test_a_garbage_uri_for_c_is_refused_with_the_reason_and_exit_2(uri, tmp_path):
    """Alone or in a pool (where its label was worked out from it: "Invalid IPv6 URL" was a traceback)."""
    for argv in (["-c", uri], ["-c", "test:///default", "-c", uri]):
        done = subprocess.run([*CMD, *argv, "-b", "-i", "1"], capture_output=True, text=True, timeout=60,
                              cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        last = done.stderr.splitlines()[-1]
        assert last.startswith("xentui: error: argument -c/--connect: ") and GARBAGE_URIS[uri] in last, last
        assert "Traceback" not in done.stderr and "\x1b" not in done.stderr
    assert not (tmp_path / "owned").exists()


@pytest.mark.parametrize("uri", ["qemu:///system", "xen+ssh://root@dom0a/system", "qemu+ssh://[::1]:2222/system",
                                 "qemu+tcp://127.0.0.1:16509/system", "test:///tmp/node.xml", "esx://h/?no_verify=1",
                                 "qemu+ext:///system?command=/opt/ssh&socket=%2Frun%2Fx", "hail"])
def test_a_libvirt_uri_as_virsh_takes_it_is_taken_unchanged(uri):
    assert check_libvirt_uri(uri) == uri  # "hail": a name libvirt.conf's uri_aliases may define


def write_pool(tmp_path: Path, uri: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[[hosts]]\nname = "kvm1"\nbackend = "libvirt"\nuri = {json.dumps(uri)}\n'
                    '[[hosts]]\nname = "good"\nbackend = "libvirt"\nuri = "test:///default"\n')
    return path


@pytest.mark.parametrize("uri", ["http://[::1/system", "qemu+ssh://-oProxyCommand=touch${IFS}owned/system"])
def test_a_garbage_uri_in_the_config_file_is_never_a_traceback(uri, tmp_path):
    pytest.importorskip("libvirt", reason="libvirt-python is not installed (bash tests/libvirtlab/setup.sh)")
    done = subprocess.run([*CMD, "--pool", str(write_pool(tmp_path, uri)), "-b", "-i", "1"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert "Traceback" not in done.stderr and "kvm1" in done.stdout + done.stderr, done.stderr
    assert not (tmp_path / "owned").exists()


@pytest.mark.parametrize("uri", ["http://[::1/system"])
def test_a_garbage_uri_in_the_config_file_is_refused_at_start_naming_the_host(uri, tmp_path):
    done = subprocess.run([*CMD, "--pool", str(write_pool(tmp_path, uri)), "-b", "-i", "1"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and "'kvm1'" in done.stderr and "not a libvirt URI" in done.stderr


SHELL_CHARACTERS = set(" \t\n;|&$`'\"\\<>(){}*?!~#")
generated = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
uri_like = st.tuples(st.sampled_from(["qemu", "xen+ssh", "qemu+tcp", "test", "q;x", ""]), generated, generated).map(
    lambda parts: f"{parts[0]}://{parts[1]}/{parts[2]}")


@settings(max_examples=300, deadline=None)
@given(text=generated | uri_like)
@example(text="qemu+ssh://[::1/system")
@example(text="qemu+ssh://h:65536/system")
@example(text="qemu+ssh://-oProxyCommand=sh/system")
def test_a_uri_is_taken_whole_and_safe_or_refused_in_printable_words(text):
    try:
        uri = check_libvirt_uri(text)
    except InvalidArgument as error:
        assert str(error) and str(error).isprintable()
        return
    assert uri == text and uri.isprintable() and not any(char.isspace() for char in uri) and not uri.startswith("-")
    if "://" in uri:
        parts = urlsplit(uri)  # libvirt's label and address code can split it: no ValueError
        assert parts.port != 0
        for word in (parts.hostname or "", parts.username or ""):
            assert not word.startswith("-") and not set(word) & SHELL_CHARACTERS, uri
