"""The sandboxed side of `ppo.tasks.sandbox`: runs ONE untrusted program in a fresh `python -I -S` process.

Standard library only, and never imported by the trainer: `ppo.tasks.sandbox` starts it as a script. The program
arrives on stdin. Before a line of it runs, this process locks itself down, layer by layer:

    1. kernel layers      `sandbox_kernel.confine`: resource limits, root dropped to nobody, Landlock (no file
                          outside the scratch folder; nothing written, made or removed, scratch included),
                          seccomp (no processes, sockets, signals, IPC, metadata changes; no files at all where
                          Landlock is missing). A layer that fails stops the child before the program runs.
    2. audit hook         Python refuses risky imports (ctypes, socket, gc, ...), process and signal calls, threads,
                          and file writes, with clear errors. A friendly first layer only: a determined program can
                          reach it (frames, code objects); nothing rests on it.
    3. silenced output    fds 0, 1 and 2 are closed; the result travels on a private copy of stdout

The result of `solution()` goes back as one JSON line, {"ok": value}; anything else (an exception, a refused
call, a kill by a limit) means no line, and the parent reads that as a failure. The parent never takes the child's
word for its confinement: it reads the child's /proc/PID/status itself (`ppo.tasks.sandbox_layers.confined`).
Argv: CPU_SECONDS MEMORY_BYTES FILE_BYTES UNSAFE (1: run even if a kernel layer failed).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves this folder out of sys.path
import sandbox_kernel as kernel  # noqa: E402 -- it needs the line above; it imports ctypes, dropped below

del sys.path[0]
# Imported before the kernel layers: afterwards no file can be opened, the standard library's included, so a
# program can import only what is already loaded.
# fmt: off
PRELOAD = ("math", "cmath", "fractions", "decimal", "statistics", "random", "itertools", "functools", "collections",
           "operator", "numbers", "datetime", "re", "string", "heapq", "bisect", "typing", "copy")
# fmt: on
# Modules a math program never needs, and that open a way out (their own imports of them are refused too).
BLOCKED_IMPORTS = frozenset(
    {
        "ctypes",
        "_ctypes",
        "socket",
        "_socket",
        "ssl",
        "_ssl",
        "subprocess",
        "_posixsubprocess",
        "multiprocessing",
        "_multiprocessing",
        "signal",
        "_signal",
        "pty",
        "fcntl",
        "mmap",
        "resource",
        "gc",
        "sandbox_kernel",
        "_imp",
        "importlib",
        "_frozen_importlib",
        "_frozen_importlib_external",
    }
)
# Audit events (prefixes) that create processes, send signals, start threads or touch files' names or metadata.
BLOCKED_EVENTS = (
    "os.fork",
    "os.forkpty",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.kill",
    "os.killpg",
    "os.setsid",
    "os.setpgid",
    "os.putenv",
    "os.unsetenv",
    "os.chroot",
    "os.chdir",
    "os.chmod",
    "os.chown",
    "os.chflags",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.mknod",
    "os.mkfifo",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.utime",
    "os.setxattr",
    "os.removexattr",
    "subprocess.",
    "socket.",
    "ctypes.",
    "_thread.start_new_thread",
    "shutil.",
    "gc.",
    "sys.settrace",
    "sys.setprofile",
)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def make_audit_hook(blocked_imports=BLOCKED_IMPORTS, blocked_events=BLOCKED_EVENTS, write_flags=WRITE_FLAGS):
    """Layer 2. Raising inside an audit hook aborts the audited operation with that exception. Its settings are
    bound here, so rewriting this module's globals (`sys.modules['__main__']`) changes nothing."""

    def hook(event: str, args: tuple) -> None:
        if event == "import" and args[0].partition(".")[0] in blocked_imports:
            raise ImportError(f"sandbox: import of {args[0]} refused")
        if (
            event.startswith(blocked_events)
            or (event == "object.__setattr__" and args[1] == "__code__")
            or (event == "object.__getattr__" and args[1] == "tb_frame")
        ):  # the hook's own frame, from a traceback
            raise PermissionError(f"sandbox: {event} refused")
        if event == "open" and args[0] is not None:
            mode, flags = args[1] or "r", args[2] or 0
            if any(ch in str(mode) for ch in "wax+") or flags & write_flags:
                raise PermissionError("sandbox: programs write no files")

    return hook


class NullWriter:
    """sys.stdout / sys.stderr for the program: everything printed is dropped."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def plain(value):
    """The result as a JSON-safe plain value: bool/int/float/str/None, lists and str-keyed dicts of them;
    other real numbers (Fraction, Decimal) become float. Anything else (complex, ...) raises TypeError."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (sys.modules["numbers"].Real, sys.modules["decimal"].Decimal)):
        return float(value)  # Fraction, Decimal: too large, and a Fraction raises, a Decimal is inf
    raise TypeError(f"solution() returned a {type(value).__name__}")


def main() -> None:
    cpu_s, memory, file_bytes, unsafe = (int(a) for a in sys.argv[1:5])
    source = sys.stdin.read()
    scratch = os.path.realpath(os.getcwd())
    result_fd = os.dup(1)  # layer 3: the only way out for the result
    for fd in (0, 1, 2):  # closed, not /dev/null: one inode shared by every child is a channel (locks)
        os.close(fd)
    sys.stdin, sys.stdout, sys.stderr = None, NullWriter(), NullWriter()
    for name in PRELOAD:
        __import__(name)
    kernel.confine(scratch, cpu_s, memory, file_bytes, unsafe=bool(unsafe))  # raises: no program, no line
    del globals()["kernel"]  # no path from the program's __main__ to ctypes, resource
    for name in [m for m in sys.modules if m.partition(".")[0] in BLOCKED_IMPORTS]:
        del sys.modules[name]  # so the program cannot reuse what setup imported
    import gc  # a builtin module: no file to open

    gc.collect()  # ctypes' classes die rather than linger for the program
    del gc, sys.modules["gc"]
    sys.addaudithook(make_audit_hook())
    try:
        namespace = {"__name__": "__sandbox__"}
        exec(compile(source, "<program>", "exec"), namespace)
        line = json.dumps({"ok": plain(namespace["solution"]())}, allow_nan=True) + "\n"
        os.write(result_fd, line.encode())
    except BaseException:  # noqa: BLE001 -- any failure is "no answer"
        pass
    os._exit(0)  # no atexit, no waiting for threads


if __name__ == "__main__":
    main()
