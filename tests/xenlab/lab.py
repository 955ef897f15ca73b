#!/usr/bin/env python3
"""The xentui Xen lab: a real Xen 4.17 hypervisor with a Debian dom0 and two PV guests, under QEMU (TCG).

Build it first with ``tests/xenlab/build.sh`` (a few minutes cold, seconds when cached). Then::

    python3 tests/xenlab/lab.py boot          # boot in the background (or reuse a running lab), wait for ssh
    python3 tests/xenlab/lab.py status        # running? port, pid, guests
    python3 tests/xenlab/lab.py ssh xl list   # run a command in dom0 as root
    python3 tests/xenlab/lab.py sync          # copy this checkout to dom0:/root/xentui, install it in /root/venv
    python3 tests/xenlab/lab.py guests        # wait until guest1 and guest2 run
    python3 tests/xenlab/lab.py stop          # power it off
    python3 tests/xenlab/lab.py --instance b boot   # a second lab (its own QEMU, port and files), same build
    python3 tests/xenlab/lab.py link          # this lab's dom0 reaches its peer's over the private link (ping, ssh)

Stdlib only; usable from pytest (tests/xenlab/conftest.py) and as a script. The cache folder is
``$XENTUI_LAB_CACHE`` or ``~/.cache/xentui-lab``; the lab's files are in its ``xen/`` folder: ``lab.json`` (pid +
port of the running lab), ``serial.log`` (Xen's and dom0's console), ``id_ed25519`` (the root key for dom0).
Instance ``a`` (the default) keeps its files there; another instance keeps its own in ``xen/instances/NAME/``.

Instances ``a`` and ``b`` are joined by a network of their own that never leaves this machine: a second NIC in
each, a QEMU ``dgram`` netdev over two unix sockets (``xen/link/a.sock`` <-> ``xen/link/b.sock``), on which dom0
a is 10.98.0.1/24 and dom0 b 10.98.0.2/24 (dom0's /init sets it from ``xenlab_link=`` on its command line).
Either can boot, stop and boot again in any order; root in one dom0 reaches the other with ssh, no prompt
(``xl migrate guest3 10.98.0.2``). They also share storage: a directory of this machine (``xen/shared``) given
to both over virtio-9p and mounted on /srv/shared in each dom0, where guest4's disk lives (it moves live with
its disk; guest5's disk is in dom0 a only, and a migration's pre-flight refuses to move it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUESTS = ("guest1", "guest2")
# QEMU machine: TCG only (KVM is not dependable on these machines); -cpu max crashes dom0, qemu64 works.
# +svm,+npt give Xen AMD-V with nested paging (HAP), so it can also run PVH/HVM guests (guest3, and live
# migration, which PV guests cannot do here); PV dom0 and the PV guests do not use them.
CPU = "qemu64,+svm,+npt,+nrip-save"
# The guests get what dom0 leaves: about 1.4 GiB at the default; bench/bench_xl_lab.py boots with more for its guests.
MEMORY_MB = int(os.environ.get("XENTUI_LAB_MEMORY_MB", "3072"))
DOM0_MEM = "1536M"
DEFAULT_INSTANCE = "a"
_INSTANCE = re.compile(r"[a-z][a-z0-9]{0,15}")
# The private link: instance -> (its dom0's address there, the peer instance). dom0 finds the link's NIC by its
# MAC (52:54:00:98:00:NN), so the order of the NICs does not matter.
LINK = {"a": ("10.98.0.1", "b"), "b": ("10.98.0.2", "a")}
LINK_PREFIX = 24
# The storage the linked instances share, for guests that move live with their disk: a directory of this machine
# (Lab.shared_dir) given to each dom0 over virtio-9p with this tag, mounted there on SHARED_MOUNT (dom0/init).
SHARED_TAG = "xenlab-shared"
SHARED_MOUNT = "/srv/shared"
# What dom0's /init reads from its command line (see dom0/init): its hostname, and whether it creates guest1
# and guest2 at boot (only the default instance does: a second lab is a migration target, and under TCG every
# idle guest costs the machine's two CPUs).
HOSTNAMES = {"a": "xenlab-dom0"}


def cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get("XENTUI_LAB_CACHE") or Path.home() / ".cache" / "xentui-lab")


def log(msg: str) -> None:
    print(f"[xenlab] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LabError(RuntimeError):
    pass


@dataclass
class Lab:
    cache: Path = field(default_factory=cache_dir)
    port: int = 0
    pid: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    instance: str = DEFAULT_INSTANCE

    def __post_init__(self) -> None:
        if not _INSTANCE.fullmatch(self.instance):
            raise LabError(f"a lab instance is named with a lowercase letter, then letters or digits: "
                           f"{self.instance!r}")

    # ---- paths -------------------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        """The build (shared by every instance: the same Xen, dom0 and keys)."""
        return self.cache / "xen"

    @property
    def state_dir(self) -> Path:
        """This instance's own files: state, serial log, lock, users, ssh socket."""
        return self.dir if self.instance == DEFAULT_INSTANCE else self.dir / "instances" / self.instance

    @property
    def key_path(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def serial_log(self) -> Path:
        return self.state_dir / "serial.log"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "lab.json"

    @property
    def control_path(self) -> Path:
        return self.state_dir / "ssh-control"

    @property
    def hostname(self) -> str:
        return HOSTNAMES.get(self.instance, f"xenlab-dom0-{self.instance}")

    @property
    def link_address(self) -> str | None:
        """This dom0's address on the private link (None: this instance has no link)."""
        return LINK[self.instance][0] if self.instance in LINK else None

    @property
    def peer(self) -> str | None:
        """The instance at the other end of the link."""
        return LINK[self.instance][1] if self.instance in LINK else None

    @property
    def shared_dir(self) -> Path:
        """The directory of this machine that the linked instances share: each dom0 mounts it on SHARED_MOUNT."""
        return self.dir / "shared"

    def link_socket(self, instance: str | None = None) -> Path:
        return self.dir / "link" / f"{instance or self.instance}.sock"

    def command(self, *words: str) -> str:
        """The lab.py command line that does WORDS to this instance (for messages)."""
        instance = [] if self.instance == DEFAULT_INSTANCE else ["--instance", self.instance]
        return shlex.join(["python3", "tests/xenlab/lab.py", *instance, *words])

    @property
    def boots_guests(self) -> bool:
        """Whether dom0 creates guest1 and guest2 at boot (the default instance) or starts with none."""
        return self.instance == DEFAULT_INSTANCE

    def missing(self) -> list[str]:
        """The lab's built files that are not there (empty when the lab is built)."""
        need = ["xen", "vmlinuz-dom0", "dom0.cpio.gz", "id_ed25519", "stamp"]
        return [n for n in need if not (self.dir / n).is_file()]

    def built(self) -> bool:
        return not self.missing()

    def build_stamp(self) -> str:
        try:
            return (self.dir / "stamp").read_text().strip()
        except OSError:
            return ""

    # ---- state -------------------------------------------------------------------------------------------
    def _read_state(self) -> dict | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        pid = int(state.get("pid", 0))
        if not pid or not pid_alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        if not cmdline or b"qemu-system" not in cmdline[0] or str(self.dir / "xen").encode() not in cmdline:
            return None
        if f"file:{self.serial_log}".encode() not in cmdline:  # another instance's QEMU
            return None
        return state

    def has_link(self) -> bool:
        """Whether the running lab was booted with its NIC on the private link and the shared storage (an older
        lab.py booted neither)."""
        state = self._read_state() or {}
        command = " ".join(state.get("command", []))
        return (self.link_address is not None and f"xenlab_link={self.link_address}/" in command
                and f"xenlab_shared={SHARED_MOUNT}" in command)

    def attach(self) -> bool:
        """Use an already running lab (its pid and port from the state file). True when there is one."""
        state = self._read_state()
        if state is None:
            return False
        self.pid, self.port = int(state["pid"]), int(state["port"])
        return True

    def running(self) -> bool:
        return self.attach()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "lab.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # ---- boot / stop -------------------------------------------------------------------------------------
    def qemu_command(self, port: int) -> list[str]:
        qemu = shutil.which("qemu-system-x86_64")
        if not qemu:
            raise LabError("qemu-system-x86_64 is missing: apt-get install qemu-system-x86 "
                           "(tests/xenlab/build.sh installs it)")
        d = self.dir
        for p in (d / "xen", d / "vmlinuz-dom0", d / "dom0.cpio.gz"):
            if "," in str(p):
                raise LabError(f"the lab cache path must not contain a comma (QEMU's -initrd list): {p}")
        return [
            qemu, "-machine", "q35", "-cpu", CPU, "-m", str(MEMORY_MB), "-smp", "2",
            "-display", "none", "-no-reboot", "-monitor", "none",
            "-serial", f"file:{self.serial_log}",
            "-kernel", str(d / "xen"),
            "-append", f"console=com1 com1=115200,8n1 dom0_mem={DOM0_MEM},max:{DOM0_MEM} loglvl=all guest_loglvl=all",
            "-initrd", f"{d / 'vmlinuz-dom0'} {' '.join(self.dom0_options())},{d / 'dom0.cpio.gz'}",
            "-netdev", f"user,id=n0,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-net-pci,netdev=n0",
            *self.link_arguments(),
        ]

    def dom0_options(self) -> list[str]:
        """dom0's kernel command line: the console and /init, then what /init reads (dom0/init)."""
        options = ["console=hvc0", "rdinit=/init", f"xenlab_name={self.hostname}"]
        if self.link_address is not None:
            options.append(f"xenlab_link={self.link_address}/{LINK_PREFIX}")
            options.append(f"xenlab_shared={SHARED_MOUNT}")
        if not self.boots_guests:
            options.append("xenlab_guests=none")
        return options

    def link_arguments(self) -> list[str]:
        """The second NIC, on the private link: datagrams between this instance's unix socket and its peer's.
        Nothing leaves the machine (no multicast, no host interface); a datagram to a peer that is not running
        is dropped, so the two boot and stop in any order."""
        if self.link_address is None or self.peer is None:
            return []
        for path in (self.link_socket(), self.link_socket(self.peer)):
            if "," in str(path) or len(str(path)) > 100:
                raise LabError(f"the link's socket path must hold no comma and stay under 100 bytes: {path}")
        if "," in str(self.shared_dir):
            raise LabError(f"the shared storage's path must hold no comma: {self.shared_dir}")
        self.shared_dir.mkdir(parents=True, exist_ok=True)
        number = int(self.link_address.rsplit(".", 1)[1])
        return [
            "-netdev", f"dgram,id=link,local.type=unix,local.path={self.link_socket()},"
                       f"remote.type=unix,remote.path={self.link_socket(self.peer)}",
            "-device", f"virtio-net-pci,netdev=link,mac=52:54:00:98:00:{number:02x}",
            # the storage both share: QEMU (root) reads and writes the files as they are, no mapping of owners
            "-fsdev", f"local,id=shared,path={self.shared_dir},security_model=none",
            "-device", f"virtio-9p-pci,fsdev=shared,mount_tag={SHARED_TAG}",
        ]

    def boot(self, timeout: float = 300, port: int | None = None) -> bool:
        """Boot the lab in the background and wait until dom0 answers ssh. Reuses a running lab.
        ``port``: the ssh port to forward (e.g. the one it had before a stop); a free one when None.

        Returns True when this call booted it, False when it reused one."""
        if not self.built():
            raise LabError(f"the Xen lab is not built (missing in {self.dir}: {', '.join(self.missing())}); "
                           "build it with: tests/xenlab/build.sh")
        with self._lock():
            if self.attach():
                state = self._read_state() or {}
                if state.get("stamp") != self.build_stamp():
                    log("note: the running lab was booted from an older build; "
                        "`lab.py stop` and boot again to use the new one")
                log(f"reusing the running lab: pid {self.pid}, ssh port {self.port}")
                self.wait_ssh(timeout)
                return False
            t0 = time.monotonic()
            port = port or free_port()
            cmd = self.qemu_command(port)
            self.serial_log.write_bytes(b"")
            if self.link_address is not None:
                self.link_socket().parent.mkdir(parents=True, exist_ok=True)
                self.link_socket().unlink(missing_ok=True)  # a stale one of this instance's last QEMU
            with open(self.state_dir / "qemu.log", "wb") as qlog:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            self.pid, self.port = proc.pid, port
            self.state_file.write_text(json.dumps({
                "pid": proc.pid, "port": port, "started": time.time(), "stamp": self.build_stamp(),
                "command": cmd,
            }, indent=1))
            log(f"booting: qemu pid {proc.pid}, ssh port {port}, serial log {self.serial_log}")
            try:
                self.wait_ssh(timeout, proc=proc)
            except BaseException:
                self.stop()
                raise
            self.timings["boot to ssh"] = time.monotonic() - t0
            log(f"dom0 answers ssh after {self.timings['boot to ssh']:.1f} s")
            return True

    # ---- users: several pytest sessions may share one running lab -----------------------------------------
    @property
    def users_dir(self) -> Path:
        return self.state_dir / "users"

    def add_user(self) -> None:
        """Record this process as a user of the running lab (a file named after its pid)."""
        self.users_dir.mkdir(parents=True, exist_ok=True)
        (self.users_dir / str(os.getpid())).write_text(str(self.pid))

    def remove_user(self) -> None:
        (self.users_dir / str(os.getpid())).unlink(missing_ok=True)

    def other_users(self) -> list[int]:
        """Pids of other live processes using this lab (stale entries are removed)."""
        pids = []
        for f in self.users_dir.glob("*") if self.users_dir.is_dir() else []:
            try:
                pid, lab_pid = int(f.name), int(f.read_text() or 0)
            except (ValueError, OSError):
                continue
            if pid == os.getpid():
                continue
            if pid_alive(pid) and lab_pid == self.pid:
                pids.append(pid)
            else:
                f.unlink(missing_ok=True)
        return pids

    def stop(self, only_pid: int | None = None) -> None:
        """Power the lab off (QEMU exits on SIGTERM; everything in it lives in RAM). With ONLY_PID, only if the
        running lab is still that QEMU (a lab booted by someone else since is left alone)."""
        if not self.attach():
            if only_pid is None:
                self.state_file.unlink(missing_ok=True)
            return
        if only_pid is not None and self.pid != only_pid:
            log(f"not stopping the running lab (qemu pid {self.pid}): it is not the one this session booted")
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["ssh", "-o", f"ControlPath={self.control_path}", "-O", "exit", "root@127.0.0.1"],
                           capture_output=True, timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        for _ in range(100):
            if not pid_alive(self.pid):
                break
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.state_file.unlink(missing_ok=True)
        log(f"stopped (qemu pid {self.pid})")

    # ---- ssh ---------------------------------------------------------------------------------------------
    def ssh_command(self, args: Sequence[str] | str = (), *, tty: bool = False) -> list[str]:
        """The ssh command line that runs ARGS in dom0 as root. A str is a shell command line; a list is quoted
        word by word so that dom0 runs exactly those arguments."""
        if not self.port and not self.attach():
            raise LabError(f"the lab is not running: {self.command('boot')}")
        remote = args if isinstance(args, str) else " ".join(shlex.quote(a) for a in args)
        cmd = [
            "ssh", "-i", str(self.key_path), "-p", str(self.port),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=15", "-o", "IdentitiesOnly=yes",
            "-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_path}", "-o", "ControlPersist=600",
            "-o", "ServerAliveInterval=15",
        ]
        cmd += ["-t", "-t"] if tty else ["-T"]
        cmd += ["root@127.0.0.1"]
        if remote:
            cmd += ["--", remote]
        return cmd

    def ssh(self, args: Sequence[str] | str, *, timeout: float | None = 120, check: bool = True,
            input: bytes | str | None = None, text: bool = True) -> subprocess.CompletedProcess:
        """Run a command in dom0; returns the CompletedProcess (stdout and stderr captured)."""
        if isinstance(input, str) and not text:
            input = input.encode()
        proc = subprocess.run(self.ssh_command(args), input=input, capture_output=True, timeout=timeout,
                              text=text, stdin=None if input is not None else subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise LabError(f"dom0 command {args!r} failed with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def wait_ssh(self, timeout: float = 300, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if proc is not None and proc.poll() is not None:
                raise LabError(f"QEMU exited with {proc.returncode} while booting; see {self.serial_log} and "
                               f"{self.state_dir / 'qemu.log'}:\n{self.tail()}")
            if proc is None and not pid_alive(self.pid):
                raise LabError("the lab's QEMU is gone")
            try:
                r = self.ssh(["true"], timeout=30, check=False)
                if r.returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise LabError(f"dom0 did not answer ssh within {timeout:.0f} s; serial log tail:\n{self.tail()}")
            time.sleep(1)

    def tail(self, lines: int = 25) -> str:
        try:
            data = self.serial_log.read_bytes().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    # ---- guests ------------------------------------------------------------------------------------------
    def domains(self) -> dict[str, str]:
        """{name: state} from `xl list` in dom0."""
        out = self.ssh(["xl", "list"], timeout=60).stdout
        doms = {}
        for line in out.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 6:
                doms[parts[0]] = parts[4]
        return doms

    def wait_guests(self, names: Sequence[str] = GUESTS, timeout: float = 240) -> dict[str, str]:
        """Wait until every guest in NAMES exists (not crashed or dying) and printed XENTUI-GUEST-READY on its
        console (dom0's xenconsoled logs each console in /var/log/xen/console/guest-NAME.log)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        doms: dict[str, str] = {}
        while True:
            doms = self.domains()
            ok = [n for n in names if n in doms and not set(doms[n]) & set("cd")]
            if len(ok) == len(names):
                script = " && ".join(
                    f"grep -q XENTUI-GUEST-READY /var/log/xen/console/guest-{shlex.quote(n)}.log" for n in names)
                if self.ssh(script, check=False, timeout=30).returncode == 0:
                    break
            if time.monotonic() > deadline:
                log_tail = self.ssh("tail -20 /var/log/xentui-lab/guests.log", check=False).stdout
                raise LabError(f"guests {list(names)} not up within {timeout:.0f} s; xl list: {doms}\n{log_tail}")
            time.sleep(2)
        self.timings["guests running"] = time.monotonic() - t0
        return doms

    def create_guests(self, names: Sequence[str], timeout: float = 300) -> dict[str, str]:
        """Create guests from their /etc/xen/NAME.cfg in dom0 (those that exist are left alone) and wait for
        them: e.g. create_guests(["guest3"]) for the PVH guest, or to recreate a destroyed guest1."""
        self.ssh(["xentui-lab-guests", *names], timeout=timeout)
        return self.wait_guests(names, timeout=timeout)

    # ---- the private link ---------------------------------------------------------------------------------
    def wait_link(self, timeout: float = 120) -> str:
        """Wait until this dom0 reaches its peer's over the private link: a ping, then root's ssh without a
        prompt (as ``xl migrate`` runs it). Returns the peer's hostname, as it says it over that ssh."""
        if self.link_address is None or self.peer is None:
            raise LabError(f"lab instance {self.instance} has no private link (only {', '.join(LINK)} have)")
        peer = LINK[self.peer][0]
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            r = self.ssh(f"ping -c 1 -W 2 {peer} >/dev/null && ssh -o ConnectTimeout=10 {peer} hostname",
                         check=False, timeout=60)
            if r.returncode == 0 and r.stdout.strip():
                break
            if time.monotonic() > deadline:
                raise LabError(f"dom0 {self.instance} does not reach {peer} (instance {self.peer}) over the "
                               f"private link within {timeout:.0f} s: {r.stdout.strip()} {r.stderr.strip()}")
            time.sleep(2)
        self.timings["link"] = time.monotonic() - t0
        return r.stdout.strip()

    # ---- sync --------------------------------------------------------------------------------------------
    def sync(self, repo: Path = REPO) -> float:
        """Copy the checkout (tracked files and untracked ones not ignored) into dom0:/root/xentui, where
        /root/venv imports it from; pip installs it again (from the wheelhouse) only when pyproject.toml changed."""
        t0 = time.monotonic()
        listing = subprocess.run(
            ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True).stdout
        files = [f for f in listing.split(b"\0") if f and (repo / os.fsdecode(f)).is_file()]
        tar = subprocess.run(["tar", "-C", str(repo), "--null", "-T", "-", "-czf", "-"],
                             input=b"\0".join(files), capture_output=True, check=True).stdout
        # /root/venv has xentui installed editable in setuptools' compat mode (a .pth putting /root/xentui on
        # sys.path; see build.sh), so replacing the files is enough; pip runs only when pyproject.toml changed.
        script = r"""
set -e
rm -rf /root/xentui.new && mkdir -p /root/xentui.new
tar -xzf - -C /root/xentui.new
ln -sfn ../themes /root/xentui.new/xentui/themes
rm -rf /root/xentui && mv /root/xentui.new /root/xentui
want=$(sha256sum /root/xentui/pyproject.toml | cut -d' ' -f1)
have=$(cat /root/venv/.xentui-pyproject 2>/dev/null || true)
if [ "$want" != "$have" ]; then
    PIP_CONFIG_FILE=/dev/null /root/venv/bin/pip install -q --disable-pip-version-check --no-index \
        --find-links /root/wheelhouse --no-build-isolation --config-settings editable_mode=compat -e /root/xentui
    echo "$want" > /root/venv/.xentui-pyproject
    echo installed
fi
"""
        r = self.ssh(script, input=tar, text=False, timeout=300, check=False)
        if r.returncode != 0:
            raise LabError(f"sync failed ({r.returncode}): {r.stdout.decode(errors='replace')}"
                           f"{r.stderr.decode(errors='replace')}")
        took = time.monotonic() - t0
        self.timings["sync"] = took
        how = "copied + pip install" if b"installed" in r.stdout else "copied"
        log(f"sync: {len(files)} files, {len(tar) // 1024} KiB, {how}, {took:.1f} s")
        return took

    def status(self) -> dict:
        st: dict = {"instance": self.instance, "built": self.built(), "dir": str(self.dir)}
        if not self.attach():
            st["running"] = False
            return st
        st.update(running=True, pid=self.pid, port=self.port, serial_log=str(self.serial_log),
                  stale=(self._read_state() or {}).get("stamp") != self.build_stamp(),
                  link=f"{self.link_address}/{LINK_PREFIX}" if self.has_link() else None)
        try:
            st["domains"] = self.domains()
        except (LabError, subprocess.TimeoutExpired) as e:
            st["domains"] = f"unknown: {e}"
        return st


def main(argv: list[str]) -> int:
    argv = list(argv)
    instance = DEFAULT_INSTANCE
    if len(argv) > 2 and argv[1] == "--instance":
        instance = argv[2]
        del argv[1:3]
    elif len(argv) > 1 and argv[1].startswith("--instance="):
        instance = argv.pop(1).partition("=")[2]
    if len(argv) < 2 or argv[1] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    cmd, args = argv[1], argv[2:]
    try:
        lab = Lab(instance=instance)
        if cmd == "boot":
            lab.boot()
            link = f", link address {lab.link_address}" if lab.has_link() else ""
            print(f"lab {lab.instance} running: ssh port {lab.port}, pid {lab.pid}{link}, key {lab.key_path}, "
                  f"serial log {lab.serial_log}")
        elif cmd == "stop":
            if lab.attach() and (users := lab.other_users()) and "--force" not in args:
                raise LabError(f"the lab is in use by pids {users} (pytest sessions); "
                               f"`{lab.command('stop', '--force')}` stops it anyway")
            lab.stop()
        elif cmd == "status":
            print(json.dumps(lab.status(), indent=1))
        elif cmd == "ssh":
            if not lab.attach():
                raise LabError(f"the lab is not running: {lab.command('boot')}")
            # interactive when no command is given, like ssh itself
            if not args:
                return subprocess.call(lab.ssh_command(tty=True))
            # one argument is a shell command line (`lab.py ssh 'xl list | head -3'`), several are a word list
            return subprocess.call(lab.ssh_command(args[0] if len(args) == 1 else args))
        elif cmd == "sync":
            if not lab.attach():
                raise LabError(f"the lab is not running: {lab.command('boot')}")
            lab.sync()
        elif cmd == "guests":
            if not lab.attach():
                raise LabError(f"the lab is not running: {lab.command('boot')}")
            # a lab other than the default one boots with no guests: create them
            print(lab.wait_guests() if lab.boots_guests else lab.create_guests(GUESTS))
        elif cmd == "link":
            if not lab.attach():
                raise LabError(f"the lab is not running: {lab.command('boot')}")
            peer = lab.wait_link()
            print(f"{lab.hostname} ({lab.link_address}) reaches {peer} over the private link "
                  f"in {lab.timings['link']:.1f} s")
        else:
            print(f"unknown command {cmd!r}; see --help", file=sys.stderr)
            return 2
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
