"""Stand-ins for `xl` and `xentop` that replay the Xen lab's captures with other domain names.

For fault injection only: the real tools run in the Xen lab (tests/xenlab), which is where the xl backend is
proven. Here they let a test give guests names no real host would show a reviewer (escape sequences, markup),
make `xl` fail with a hostile message, or make `xl save` die halfway through writing its image.

The guests of the captures, guest1 and guest2 (domids 1 and 2), get the names given to `install`.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

_XL = r'''
import json, os, sys, time
state = json.load(open(STATE))
names = state["names"]
args = sys.argv[1:]

def fixture(name):
    return "".join(line for line in open(os.path.join(FIXTURES, name)) if not line.startswith("#"))

def renamed(text):
    for old, new in names.items():
        text = text.replace(old, new)
    return text

def fail(message, status=1):
    sys.stderr.buffer.write(message.encode("utf-8", "surrogateescape"))
    sys.exit(status)

open(STATE + ".calls", "a").write(json.dumps(args) + "\n")
if args == ["info"]:
    print(fixture("xenlab-xl-info.txt"), end="")
elif args == ["list"]:
    rows = fixture("xenlab-xl-list.txt").splitlines()
    out = [rows[0]]
    for row in rows[1:]:
        name, domid, mem, vcpus, flags, seconds = row.split()
        out.append(f"{names.get(name, name):<40} {domid:>5} {mem:>5} {vcpus:>5}     {flags} {seconds:>9}")
    print("\n".join(out))
elif args == ["list", "-l"]:
    configs = json.loads(fixture("xenlab-xl-list-l.json.txt"))
    for config in configs:
        info = config["config"]["c_info"]
        info["name"] = names.get(info["name"], info["name"])
    print(json.dumps(configs, indent=4))
elif args and args[0] in ("sched-credit", "sched-credit2"):
    print(renamed(fixture("xenlab-xl-sched-credit.txt")), end="")
elif args and args[0] in ("pause", "unpause") and state.get("fail_with"):
    fail(state["fail_with"])
elif args and args[0] == "save":
    path = args[-1]
    with open(path, "wb") as image:
        image.write(b"Xen saved domain, xl format\n \0\r" + os.urandom(4096))
        if state.get("save_dies_after_bytes"):
            image.write(b"\0" * state["save_dies_after_bytes"])
            image.flush()
            fail("xc: error: Failed to write page data: 28 = No space left on device\n"
                 "libxl: error: libxl_stream_write.c:350:libxl__xc_domain_save_done: saving domain: "
                 "domain did not respond to suspend request\n")
elif args and args[0] in ("pause", "unpause", "mem-set", "vcpu-set", "sysrq", "sched-credit2"):
    pass
else:
    fail("fake xl: " + " ".join(args) + " is not something this stand-in does\n")
'''

_XENTOP = r'''
import json, os, sys, time
state = json.load(open(STATE))
delay = float(sys.argv[sys.argv.index("-d") + 1])
text = "".join(line for line in open(os.path.join(FIXTURES, "xenlab-xentop-batch.txt"))
               if not line.startswith("#"))
for old, new in state["names"].items():
    text = text.replace(" " + old + " ", " " + new + " ")
blocks = ["      NAME" + block for block in text.split("      NAME") if block.strip()]
n = 0
while True:
    sys.stdout.buffer.write((blocks[n % len(blocks)].rstrip("\n") + "\n").encode("utf-8", "surrogateescape"))
    sys.stdout.flush()
    n += 1
    time.sleep(delay)
'''


def install(bin_dir: Path, names: dict[str, str], **state: object) -> Path:
    """Write `xl` and `xentop` into ``bin_dir``: put it first on PATH. ``state`` may hold ``fail_with`` (the
    stderr of a failing pause/unpause) and ``save_dies_after_bytes``. Returns the calls log (one JSON argv a line).
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_file = bin_dir / "fake-xen-state.json"
    state_file.write_text(json.dumps({"names": names, **state}))
    header = f"#!{sys.executable}\nSTATE = {str(state_file)!r}\nFIXTURES = {str(FIXTURES)!r}\n"
    for name, body in (("xl", _XL), ("xentop", _XENTOP)):
        script = bin_dir / name
        script.write_text(header + body)
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return Path(str(state_file) + ".calls")
