"""The sandboxed side of `ppo.sandbox`: runs ONE untrusted program in a fresh `python -I -S` process.

Standard library only, and never imported by the trainer: `ppo.sandbox` starts it as a script. The program
arrives on stdin. Before a line of it runs, this process locks itself down, layer by layer:

    1. resource limits    CPU seconds, address space, file size, open files, no core dumps, no processes
    2. drop privileges    when started as root: uid/gid 65534 (nobody), no supplementary groups
    3. seccomp filter     the kernel refuses fork/clone/exec, sockets, signals to others, ptrace, namespaces
    4. audit hook         Python refuses risky imports (ctypes, socket, subprocess, ...), process and signal
                          calls, threads, and file writes outside the scratch folder (the working directory)
    5. silenced output    fds 1 and 2 go to /dev/null; the result travels on a private copy of stdout

The result of `solution()` goes back as one JSON line, {"ok": value, "seccomp": true}; anything else (an exception, a refused
call, a kill by a limit) means no line, and the parent reads that as a failure.
Argv: CPU_SECONDS MEMORY_BYTES FILE_BYTES.
"""
import ctypes  # for the seccomp filter only; dropped from sys.modules before the program runs
import json
import os
import resource
import struct
import sys

# Imported before privileges are dropped: as nobody, the interpreter may not be able to read its own standard
# library (e.g. a Python under /root), so a program can only import what is already loaded.
PRELOAD = ("math", "cmath", "fractions", "decimal", "statistics", "random", "itertools", "functools", "collections",
           "operator", "numbers", "datetime", "re", "string", "heapq", "bisect")

# Modules a math program never needs, and that open a way out (their own imports of them are refused too).
BLOCKED_IMPORTS = {"ctypes", "_ctypes", "socket", "_socket", "ssl", "_ssl", "subprocess", "_posixsubprocess",
                   "multiprocessing", "_multiprocessing", "signal", "_signal", "pty", "fcntl", "mmap", "resource"}
# Audit events (prefixes) that create processes, send signals, start threads or change files' metadata.
BLOCKED_EVENTS = ("os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.kill",
                  "os.killpg", "os.setsid", "os.setpgid", "os.putenv", "os.unsetenv", "os.chroot", "os.chdir",
                  "os.chmod", "os.chown", "os.chflags", "os.link", "os.symlink", "os.truncate", "os.mknod",
                  "os.mkfifo", "subprocess.", "socket.", "ctypes.", "_thread.start_new_thread", "shutil.")
PATH_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.utime")   # allowed inside scratch only
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
MAX_WRITES = 16     # files a program may open for writing (each one capped by RLIMIT_FSIZE)
NOBODY = 65534

# seccomp: the system calls refused with EPERM, as (x86_64 number, aarch64 number); aarch64 has no fork/vfork.
SYSCALLS = {
    "fork": (57, None), "vfork": (58, None), "clone": (56, 220), "clone3": (435, 435),       # processes, threads
    "execve": (59, 221), "execveat": (322, 281),
    "socket": (41, 198), "socketpair": (53, 199),                                            # network
    "kill": (62, 129), "tkill": (200, 130), "tgkill": (234, 131), "rt_sigqueueinfo": (129, 138),  # signals
    "rt_tgsigqueueinfo": (297, 240), "pidfd_send_signal": (424, 424), "pidfd_open": (434, 434),
    "pidfd_getfd": (438, 438), "ptrace": (101, 117), "process_vm_readv": (310, 270),         # other processes
    "process_vm_writev": (311, 271), "setsid": (112, 157), "setpgid": (109, 154),
    "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40), "chroot": (161, 51), "pivot_root": (155, 41),
}
AUDIT_ARCH = {"x86_64": (0xC000003E, 0), "aarch64": (0xC00000B7, 1)}   # machine -> (AUDIT_ARCH_*, column)


def limit_resources(cpu_s: int, memory: int, file_bytes: int) -> None:
    """Layer 1. RLIMIT_NPROC = 0 stops forks for non-root users (root ignores it: layers 2-4 cover root)."""
    for name, value in [("RLIMIT_CPU", cpu_s), ("RLIMIT_AS", memory), ("RLIMIT_FSIZE", file_bytes),
                        ("RLIMIT_NOFILE", 32), ("RLIMIT_CORE", 0), ("RLIMIT_NPROC", 0)]:
        resource.setrlimit(getattr(resource, name), (value, value))


def drop_privileges() -> None:
    """Layer 2. As root a program could write anywhere or signal anyone; as nobody it cannot."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def install_seccomp() -> bool:
    """Layer 3, a classic BPF filter:  arch != ours -> kill;  nr in SYSCALLS -> EPERM;  else allow.

    Returns False (and changes nothing) on an architecture without a table or a kernel without seccomp.
    """
    if os.uname().machine not in AUDIT_ARCH:
        return False
    arch, column = AUDIT_ARCH[os.uname().machine]
    blocked = [nrs[column] for nrs in SYSCALLS.values() if nrs[column] is not None]
    ld, jeq, ret = 0x20, 0x15, 0x06           # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    allow, kill, eperm = 0x7FFF0000, 0x80000000, 0x00050000 | 1
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill), (ld, 0, 0, 0)]   # seccomp_data.arch, .nr
    if arch == 0xC000003E:                    # x86_64: refuse the x32 ABI (nr >= 0x40000000) outright
        prog += [(0x35, 0, 1, 0x40000000), (ret, 0, 0, eperm)]                      # BPF_JMP|BPF_JGE|BPF_K
    for i, nr in enumerate(blocked):          # jump to the EPERM return after the list on a match
        prog.append((jeq, len(blocked) - i, 0, nr))
    prog += [(ret, 0, 0, allow), (ret, 0, 0, eperm)]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(buf))
    prctl, ul = ctypes.CDLL(None, use_errno=True).prctl, ctypes.c_ulong
    if prctl(38, ul(1), ul(0), ul(0), ul(0)) != 0:                     # PR_SET_NO_NEW_PRIVS
        return False
    return prctl(22, ul(2), ctypes.c_char_p(fprog), ul(0), ul(0)) == 0   # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


def inside(path, scratch: str) -> bool:
    if isinstance(path, int):          # an already-open descriptor (0-2 are /dev/null)
        return True
    real = os.path.realpath(os.fsdecode(os.fspath(path)))
    return real == scratch or real.startswith(scratch + os.sep)


def make_audit_hook(scratch: str):
    """Layer 4. Raising inside an audit hook aborts the audited operation with that exception."""
    writes = [0]

    def hook(event: str, args: tuple) -> None:
        if event == "import" and args[0].partition(".")[0] in BLOCKED_IMPORTS:
            raise ImportError(f"sandbox: import of {args[0]} refused")
        if event.startswith(BLOCKED_EVENTS):
            raise PermissionError(f"sandbox: {event} refused")
        if event in PATH_EVENTS and not all(inside(a, scratch) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))):
            raise PermissionError(f"sandbox: {event} outside the scratch folder refused")
        if event == "open" and args[0] is not None:
            mode, flags = args[1] or "r", args[2] or 0
            if any(ch in str(mode) for ch in "wax+") or flags & WRITE_FLAGS:
                writes[0] += 1
                if not inside(args[0], scratch) or writes[0] > MAX_WRITES:
                    raise PermissionError("sandbox: writing outside the scratch folder (or too many files)")

    return hook


class NullWriter:
    """sys.stdout / sys.stderr for the program: everything printed is dropped."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def plain(value):
    """The result as a JSON-safe plain value: bool/int/float/str/None, lists and str-keyed dicts of them;
    other real numbers (Fraction, Decimal) become float. Anything else raises TypeError."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, sys.modules["numbers"].Real):
        return float(value)
    raise TypeError(f"solution() returned a {type(value).__name__}")


def main() -> None:
    cpu_s, memory, file_bytes = (int(a) for a in sys.argv[1:4])
    source = sys.stdin.read()
    scratch = os.path.realpath(os.getcwd())
    result_fd = os.dup(1)                               # layer 5: the only way out for the result
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdout = sys.stderr = NullWriter()
    for name in PRELOAD:
        __import__(name)
    limit_resources(cpu_s, memory, file_bytes)
    drop_privileges()
    seccomp = install_seccomp()
    for name in [m for m in sys.modules if m.partition(".")[0] in BLOCKED_IMPORTS]:
        del sys.modules[name]                           # so the program cannot reuse what setup imported
    sys.addaudithook(make_audit_hook(scratch))
    try:
        namespace = {"__name__": "__sandbox__"}
        exec(compile(source, "<program>", "exec"), namespace)
        line = json.dumps({"ok": plain(namespace["solution"]()), "seccomp": seccomp}, allow_nan=True) + "\n"
        os.write(result_fd, line.encode())
    except BaseException:                               # noqa: BLE001 -- any failure is "no answer"
        pass
    os._exit(0)                                         # no atexit, no waiting for threads


if __name__ == "__main__":
    main()
