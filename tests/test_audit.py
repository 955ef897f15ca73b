from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import xentui.audit as audit_module
from xentui.audit import AuditLog, default_audit_path

# 2024-05-01T12:34:56.789Z
FIXED = 1714566896.789


def fixed_clock() -> float:
    return FIXED


def make_log(path: Path, **kwargs) -> AuditLog:
    return AuditLog(path, clock=fixed_clock, user="alice", **kwargs)


def record(log: AuditLog, **overrides) -> dict:
    fields: dict = {
        "backend": "sim",
        "host": "xen01",
        "action": "shutdown",
        "domain": "web-1",
        "uuid": "0f3c1e2a-0000-4000-8000-000000000001",
        "arguments": {},
        "result": "ok",
    }
    fields.update(overrides)
    return log.record(**fields)


# --- default path -------------------------------------------------------------------------------


def test_default_path_honours_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_audit_path() == tmp_path / "state" / "xentui" / "audit.log"


@pytest.mark.parametrize("value", [None, "", "relative/state"])
def test_default_path_falls_back_to_local_state(monkeypatch, tmp_path, value):
    monkeypatch.setenv("HOME", str(tmp_path))
    if value is None:
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_STATE_HOME", value)
    assert default_audit_path() == tmp_path / ".local" / "state" / "xentui" / "audit.log"


def test_path_none_uses_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert AuditLog(user="alice").path == tmp_path / "xentui" / "audit.log"


def test_user_is_the_effective_one_and_sudo_names_the_operator_behind_it(tmp_path, monkeypatch):
    import pwd

    monkeypatch.setenv("USER", "someone-else")  # what the environment claims does not decide the user
    monkeypatch.setenv("SUDO_USER", "alice")
    log = AuditLog(tmp_path / "audit.log")
    assert log.user == pwd.getpwuid(os.geteuid()).pw_name and log.invoked_by == "alice"
    entry = record(log, action="pause", arguments={}, result="ok")
    assert (entry["user"], entry["invoked_by"]) == (log.user, "alice")
    monkeypatch.delenv("SUDO_USER")
    assert AuditLog(tmp_path / "audit.log").invoked_by != "alice"


def test_user_falls_back_to_the_uid(tmp_path, monkeypatch):
    def no_entry(uid: int):
        raise KeyError(uid)

    monkeypatch.setattr("pwd.getpwuid", no_entry)
    assert AuditLog(tmp_path / "audit.log").user == str(os.geteuid())


def test_a_symlink_or_a_fifo_at_the_log_path_is_refused_and_said(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    link = tmp_path / "audit.log"
    link.symlink_to(victim)
    log = make_log(link)
    record(log, action="pause", arguments={}, result="ok")
    assert victim.read_text() == "untouched\n"
    assert log.last_error is not None and "symbolic link" in log.last_error
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    log = make_log(fifo)
    record(log, action="pause", arguments={}, result="ok")  # returns at once: no reader needed to fail
    assert log.last_error is not None


# --- record -------------------------------------------------------------------------------------


def test_record_writes_one_line_with_every_field(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    monkeypatch.setattr(audit_module, "_terminal", lambda: None)
    path = tmp_path / "audit.log"
    log = make_log(path)
    written = record(log, action="mem-set", arguments={"kib": 524288}, result="failed", message="out of memory")
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 1 and lines[0].endswith("\n")
    entry = json.loads(lines[0])
    assert entry == {
        "time": "2024-05-01T12:34:56.789Z",
        "user": "alice",
        "invoked_by": "alice",
        "backend": "sim",
        "host": "xen01",
        "domain": "web-1",
        "uuid": "0f3c1e2a-0000-4000-8000-000000000001",
        "action": "mem-set",
        "arguments": {"kib": 524288},
        "result": "failed",
        "message": "out of memory",
    }
    assert list(entry) == ["time", "user", "invoked_by", "backend", "host", "domain", "uuid", "action",
                           "arguments", "result", "message"]
    assert written == entry
    assert log.last_error is None


def test_each_record_adds_exactly_one_line(tmp_path):
    path = tmp_path / "audit.log"
    log = make_log(path)
    for count in range(1, 4):
        record(log, domain=None, uuid=None, result="cancelled")
        assert len(path.read_bytes().splitlines()) == count
    assert [entry["result"] for entry in log.read()] == ["cancelled"] * 3
    assert log.read()[0]["domain"] is None and log.read()[0]["message"] is None


def test_time_is_utc_with_milliseconds(tmp_path):
    log = AuditLog(tmp_path / "audit.log", clock=lambda: 0.0, user="alice")
    assert record(log)["time"] == "1970-01-01T00:00:00.000Z"


def test_unknown_result_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="result"):
        record(make_log(tmp_path / "audit.log"), result="maybe")


NASTY = 'web"1\n\r\t\x00\x1b[31m\\ ; rm -rf / ünï\u2028\ud800'


def test_nasty_names_stay_on_one_line_and_round_trip(tmp_path):
    path = tmp_path / "audit.log"
    log = make_log(path)
    written = record(log, domain=NASTY, host=NASTY, arguments={NASTY: NASTY}, result="refused", message=NASTY)
    raw = path.read_bytes()
    assert raw.count(b"\n") == 1 and raw.endswith(b"\n")
    assert raw.isascii() and b"\r" not in raw and b"\x00" not in raw and b"\x1b" not in raw
    [entry] = log.read()
    assert entry == written
    assert entry["domain"] == NASTY and entry["host"] == NASTY and entry["message"] == NASTY
    assert entry["arguments"] == {NASTY: NASTY}


def test_odd_argument_values_are_written_as_strings(tmp_path):
    log = make_log(tmp_path / "audit.log")
    record(log, action="save", arguments={"file": Path("/var/lib/xen/save/web-1"), "token": object()})
    [entry] = log.read()
    assert entry["arguments"]["file"] == "/var/lib/xen/save/web-1"
    assert isinstance(entry["arguments"]["token"], str)


def test_unserialisable_arguments_do_not_lose_the_entry(tmp_path):
    looped: dict[str, object] = {}
    looped["self"] = looped
    log = make_log(tmp_path / "audit.log")
    record(log, arguments={"loop": looped, "nan": float("nan"), "keys": {(1, 2): "tuple key"}})
    [entry] = log.read()
    assert entry["action"] == "shutdown"
    assert set(entry["arguments"]) == {"loop", "nan", "keys"}
    assert log.last_error is None


def test_file_and_directory_are_private(tmp_path):
    path = tmp_path / "state" / "xentui" / "audit.log"
    record(make_log(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_unwritable_location_sets_last_error_without_raising(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the log directory should be\n")
    log = make_log(blocker / "xentui" / "audit.log")
    entry = record(log, action="destroy")
    assert entry["action"] == "destroy"
    assert log.last_error and str(log.path) in log.last_error


def test_a_later_successful_write_clears_last_error(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    log = make_log(blocker / "audit.log")
    record(log)
    assert log.last_error
    blocker.unlink()
    record(log)
    assert log.last_error is None
    assert len(log.read()) == 1


def test_the_log_is_a_directory(tmp_path):
    path = tmp_path / "audit.log"
    path.mkdir()
    log = make_log(path)
    record(log)
    assert log.last_error


# --- read ---------------------------------------------------------------------------------------


def test_read_of_a_missing_log_is_empty(tmp_path):
    assert make_log(tmp_path / "nothing-yet.log").read() == []


def test_read_limit_gives_the_last_entries_oldest_first(tmp_path):
    log = make_log(tmp_path / "audit.log")
    for index in range(5):
        record(log, domain=f"dom{index}")
    assert [entry["domain"] for entry in log.read()] == [f"dom{index}" for index in range(5)]
    assert [entry["domain"] for entry in log.read(2)] == ["dom3", "dom4"]
    assert [entry["domain"] for entry in log.read(50)] == [f"dom{index}" for index in range(5)]
    assert log.read(0) == []


def test_read_skips_a_truncated_trailing_line(tmp_path):
    path = tmp_path / "audit.log"
    log = make_log(path)
    record(log, domain="first")
    record(log, domain="second")
    line = path.read_bytes().splitlines(keepends=True)[-1]
    with path.open("ab") as handle:
        handle.write(line[: len(line) // 2])  # a crash in the middle of a write
    assert [entry["domain"] for entry in log.read()] == ["first", "second"]
    assert [entry["domain"] for entry in log.read(1)] == ["second"]


def test_read_skips_garbage_lines(tmp_path):
    path = tmp_path / "audit.log"
    log = make_log(path)
    record(log, domain="before")
    with path.open("ab") as handle:
        handle.write(b"not json\n[1, 2]\n\xff\xfe\n\n")
    record(log, domain="after")
    assert [entry["domain"] for entry in log.read()] == ["before", "after"]


def test_two_logs_appending_to_one_file_alternate_cleanly(tmp_path):
    path = tmp_path / "audit.log"
    first = AuditLog(path, clock=fixed_clock, user="alice")
    second = AuditLog(path, clock=fixed_clock, user="bob")
    for index in range(10):
        record(first, domain=f"a{index}")
        record(second, domain=f"b{index}")
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 21
    entries = [json.loads(line) for line in lines[:-1]]
    assert [entry["user"] for entry in entries] == ["alice", "bob"] * 10
    assert [entry["domain"] for entry in entries] == [f"{who}{index}" for index in range(10) for who in "ab"]
    assert first.read() == second.read() == entries


# --- where the operator is, syslog, logrotate --------------------------------------------------------


def test_the_ssh_client_and_the_terminal_are_in_each_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "203.0.113.7 52114 198.51.100.2 22")
    monkeypatch.setattr(audit_module, "_terminal", lambda: "/dev/pts/3")
    entry = record(make_log(tmp_path / "audit.log"))
    assert entry["ssh_client"] == "203.0.113.7 port 52114" and entry["terminal"] == "/dev/pts/3"
    assert list(entry)[:5] == ["time", "user", "invoked_by", "ssh_client", "terminal"]


def test_without_ssh_or_a_terminal_those_fields_are_left_out(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    monkeypatch.setattr(audit_module, "_terminal", lambda: None)
    entry = record(make_log(tmp_path / "audit.log"))
    assert "ssh_client" not in entry and "terminal" not in entry


def test_each_line_goes_to_syslog_too(tmp_path):
    import socket

    address = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.settimeout(5)
        log = make_log(tmp_path / "audit.log", syslog=address)
        ok = record(log, action="pause")
        failed = record(log, action="destroy", result="failed", message="xl: no such domain")
        first, second = server.recv(65536).decode(), server.recv(65536).decode()
    assert first.startswith(f"<86>xentui[{os.getpid()}]: ")  # authpriv.info
    assert json.loads(first.split("]: ", 1)[1]) == ok
    assert second.startswith("<84>xentui[") and '"result": "failed"' in second  # authpriv.warning
    assert failed["message"] == "xl: no such domain"
    assert log.syslog is not None and log.syslog.last_error is None


def test_syslog_that_is_not_there_is_said_and_the_file_still_written(tmp_path):
    log = make_log(tmp_path / "audit.log", syslog=str(tmp_path / "no-such.sock"))
    record(log)
    assert log.syslog is not None and "cannot send the audit line to syslog" in log.syslog.last_error
    assert len(log.read()) == 1 and log.last_error is None


def test_a_log_rotated_by_logrotate_goes_on_in_the_new_file(tmp_path):
    """logrotate renames the log (and creates a new one, or not): each entry opens the path again."""
    path = tmp_path / "audit.log"
    log = make_log(path)
    record(log, action="pause")
    path.rename(tmp_path / "audit.log.1")
    record(log, action="unpause")
    assert [e["action"] for e in AuditLog(tmp_path / "audit.log.1").read()] == ["pause"]
    assert [e["action"] for e in log.read()] == ["unpause"]
