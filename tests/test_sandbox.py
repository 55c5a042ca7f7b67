"""The sandbox against hostile programs of every category: each must come back None, quickly, leaving nothing."""
import glob
import os
import subprocess
import sys
import tempfile
import time

import pytest

from ppo import sandbox
from ppo.sandbox import run_programs

TIMEOUT = 1.0
OUTSIDE = os.path.join(tempfile.gettempdir(), "ppo-sandbox-test-outside")


def sol(body: str, head: str = "") -> str:
    """A program whose solution() runs `body` (one line per statement)."""
    return head + "\ndef solution():\n" + "".join(f"    {line}\n" for line in body.split("; "))


HOSTILE = {
    # infinite loops, and loops that ignore signals
    "busy loop": sol("while True: pass"),
    "loop catching everything": sol("while True:\n        try:\n            while True: pass\n"
                                    "        except BaseException: pass"),
    "ignore SIGXCPU": sol("signal.signal(signal.SIGXCPU, signal.SIG_IGN); while True: pass", "import signal"),
    "sleep": sol("time.sleep(60); return 1", "import time"),
    # memory bombs
    "huge bytearray": sol("return len(bytearray(8 * 10**9))"),
    "growing list": sol("a = []; while True: a.append([0] * 10**6)"),
    # forks and detached children
    "os.fork": sol("os.fork(); return 1", "import os"),
    "posix.fork": sol("posix.fork(); return 1", "import posix"),
    "forkpty": sol("os.forkpty(); return 1", "import os"),
    "double fork + setsid": sol("pid = os.fork(); os.setsid(); return pid", "import os"),
    # subprocesses
    "subprocess.run": sol("return subprocess.run(['true']).returncode", "import subprocess"),
    "os.system": sol("return os.system('true') + 1", "import os"),
    "os.popen": sol("return len(os.popen('echo hi').read())", "import os"),
    "os.execv": sol("os.execv('/bin/true', ['true'])", "import os"),
    "posix_spawn": sol("return os.posix_spawn('/bin/true', ['true'], {})", "import os"),
    # writing files anywhere but scratch
    "open outside": sol(f"open({OUTSIDE!r}, 'w').write('x'); return 1"),
    "os.open outside": sol(f"os.open({OUTSIDE!r}, os.O_CREAT | os.O_WRONLY); return 1", "import os"),
    "pathlib outside": sol(f"pathlib.Path({OUTSIDE!r}).write_text('x'); return 1", "import pathlib"),
    "mkdir outside": sol(f"os.mkdir({OUTSIDE!r}); return 1", "import os"),
    "escape by ..": sol("open('../../' + 'escaped', 'w').write('x'); return 1"),
    "huge scratch file": sol("open('big', 'wb').write(b'x' * (50 << 20)); return 1"),
    # sockets
    "socket": sol("s = socket.socket(); s.connect(('127.0.0.1', 22)); return 1", "import socket"),
    "_socket": sol("return _socket.socket()", "import _socket"),
    # exits
    "sys.exit": sol("sys.exit(0)", "import sys"),
    "os._exit": sol("os._exit(0)", "import os"),
    "raise SystemExit at import": "raise SystemExit(0)\ndef solution():\n    return 1\n",
    # killing the parent
    "kill parent": sol("os.kill(os.getppid(), 9); return 1", "import os"),
    "killpg": sol("os.killpg(os.getpgid(os.getppid()), 9); return 1", "import os"),
    # output floods
    "print flood": sol("while True: print('x' * 10000)"),
    "fd flood": sol("while True: os.write(1, b'x' * 65536)", "import os"),
    "huge result": sol("return 'x' * 10**7"),
    # deep recursion
    "deep recursion": "def f(n):\n    return f(n + 1)\n" + sol("return f(0)"),
    "recursion limit raised": "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1) + 1\n"
                              + sol("return f(0)"),
    # huge integers
    "huge power": sol("return 10 ** (10 ** 10)"),
    "too many digits to send": sol("return 10 ** 5000"),
    # segfaults
    "ctypes": sol("return ctypes.string_at(0)", "import ctypes"),
    "null pointer read": sol("faulthandler._read_null(); return 1", "import faulthandler"),
    # lingering threads
    "thread": sol("threading.Thread(target=time.sleep, args=(60,)).start(); return 1", "import threading, time"),
    "_thread": sol("_thread.start_new_thread(time.sleep, (60,)); return 1", "import _thread, time"),
    # not a program
    "syntax error": "def solution(:\n",
    "no solution": "x = 1\n",
    "not a plain value": sol("return object()"),
}


def processes_running(marker: bytes) -> list[str]:
    """Live processes whose command line contains `marker`."""
    found = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as f:
                if marker in f.read().replace(b"\0", b" "):
                    found.append(cmdline)
        except OSError:
            pass
    return found


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_returns_none_quickly_and_leaves_nothing(name):
    roots_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "ppo-sandbox-*")))
    start = time.monotonic()
    assert run_programs([HOSTILE[name]], timeout_s=TIMEOUT) == [None]
    assert time.monotonic() - start < TIMEOUT + 5.0          # bounded by the deadline, whatever the program does
    assert processes_running(b"sandbox_child.py") == []   # the sandbox child, between calls
    assert not os.path.exists(OUTSIDE)
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "ppo-sandbox-*"))) == roots_before


def test_valid_programs_return_their_values_in_order():
    programs = [sol(f"return {i} * {i}") for i in range(64)]
    assert run_programs(programs, timeout_s=5.0) == [i * i for i in range(64)]


def test_plain_values_come_back_as_plain_python():
    programs = [sol("return Fraction(1, 4)", "from fractions import Fraction"), sol("return math.sqrt(2)", "import math"),
                sol("return [1, 'a', None, True]"), sol("return {'x': 1.5}"), sol("return None"),
                sol("open('note', 'w').write('scratch is writable'); return open('note').read()")]
    assert run_programs(programs) == [0.25, 2 ** 0.5, [1, "a", None, True], {"x": 1.5}, None,
                                      "scratch is writable"]


def test_good_programs_are_unharmed_by_bad_neighbours():
    programs = [HOSTILE["busy loop"], sol("return 1"), HOSTILE["print flood"], sol("return 2"), HOSTILE["os.fork"]]
    assert run_programs(programs, timeout_s=TIMEOUT, workers=2) == [None, 1, None, 2, None]


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError, match="timeout_s"):
        run_programs(["x"], timeout_s=0)


def run_layer(setup: str, attempt: str) -> subprocess.CompletedProcess:
    """Apply ONE layer of the child in a fresh interpreter, then try something it must refuse."""
    code = (f"import sys, os; sys.path.insert(0, {os.path.dirname(sandbox.CHILD)!r}); import sandbox_child as c\n"
            f"{setup}\ntry:\n    {attempt}\n    print('ALLOWED')\nexcept OSError as e:\n    print('REFUSED', e.errno)")
    return subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("attempt", ["pid = os.fork(); os._exit(0) if pid == 0 else os.waitpid(pid, 0)",
                                     "import socket; socket.socket()", "os.kill(os.getppid(), 0)",
                                     "os.execv('/bin/true', ['true'])"])
def test_seccomp_layer_alone_refuses_processes_sockets_and_signals(attempt):
    out = run_layer("assert c.install_seccomp()", attempt)
    assert out.stdout.strip() == "REFUSED 1", out.stderr          # EPERM from the kernel, not from Python


@pytest.mark.skipif(os.geteuid() != 0, reason="privileges are dropped only when the trainer runs as root")
def test_privilege_layer_alone_stops_writes_to_root_owned_places():
    out = run_layer("c.drop_privileges()", f"open({os.path.join(os.path.expanduser('~'), 'pwned')!r}, 'w')")
    assert out.stdout.strip() == "REFUSED 13", out.stderr         # EACCES


def test_process_group_kill_reaps_what_a_program_started():
    """The parent-side layer: stop() kills the child's whole group, even a grandchild that outlived its parent."""
    marker = f"sleep {time.time_ns() % 10**6 + 1000}"
    proc = subprocess.Popen(["/bin/sh", "-c", f"{marker} & wait"], stdout=subprocess.PIPE, start_new_session=True)
    time.sleep(0.3)
    job = sandbox.Job(0, proc, tempfile.mkdtemp(), time.monotonic())
    sandbox.stop(job)
    time.sleep(0.1)
    assert processes_running(marker.encode()) == [] and not os.path.exists(job.scratch)


def test_a_missing_seccomp_layer_is_never_silent():
    with pytest.warns(RuntimeWarning, match="seccomp filter could not be installed"):
        assert sandbox.parse_result(b'{"ok": 3, "seccomp": false}') == 3
    assert sandbox.parse_result(b'{"ok": 3, "seccomp": true}') == 3
    assert sandbox.parse_result(b'[1, 2]') is None and sandbox.parse_result(b"") is None
