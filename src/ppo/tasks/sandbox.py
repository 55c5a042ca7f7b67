"""Run model-written programs without fear: `run_programs(programs)` -> what each `solution()` returns, or None.

P-CoT rewards come from executing code a model wrote, thousands of times an hour. Each program gets a fresh
`python -I -S` process (`ppo/sandbox_child.py`) that locks itself down before the program's first line: resource
limits, dropped root privileges, Landlock, a seccomp filter (`ppo/sandbox_kernel.py`) and an audit hook. This side
adds what a process cannot do for itself:

    - before any program: a kernel without seccomp is refused (fail closed), unless PPO_UNSAFE_SANDBOX=1;
    - after each program: its confinement read from the kernel (/proc/PID/status), never from the child's word;
      a result from a process that was not confined is refused with an error;
    - a private, empty scratch folder per program (its working directory), deleted afterwards;
    - a wall-clock deadline; SIGKILL to the process group after every program, so nothing it started outlives it;
    - a cap on the bytes read back, parsed as JSON (never unpickled), so the result cannot attack the parent;
    - at most `workers` programs at once, multiplexed with `selectors` (no threads), so no program can stall it.

    >>> run_programs(["def solution():\\n    return 6 * 7", "while True: pass"], timeout_s=1.0)
    [42, None]
"""

from __future__ import annotations

import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .sandbox_layers import UNSAFE, KernelLayers, SandboxError, confined, kernel_layers, proc_status

__all__ = [
    "run_programs",
    "default_workers",
    "SandboxError",
    "UNSAFE",
    "kernel_layers",
    "confined",
]  # the last four: sandbox_layers

CHILD = Path(__file__).with_name("sandbox_child.py")
MAX_PROGRAM_BYTES = 60_000  # longer programs fail without running (and stay under one pipe buffer)
MAX_RESULT_BYTES = 65_536  # a longer result line is a failure (an output flood cannot fill the trainer's memory)


def default_workers() -> int:
    """One program per CPU core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Job:
    """One running program."""

    index: int
    process: subprocess.Popen
    scratch: str
    deadline: float
    output: bytearray = field(default_factory=bytearray)


def start(index: int, program: str, root: str, timeout_s: float, memory_mb: int, file_mb: int, unsafe: bool) -> Job:
    """Start the child in a new session (so its process group can be killed whole), in its own scratch folder,
    with an empty environment, and hand it the program on stdin."""
    scratch = tempfile.mkdtemp(dir=root)
    os.chmod(scratch, 0o755)  # the trainer's own: nobody may list it, never change it (its flags, its mode)
    limits = [str(max(1, math.ceil(timeout_s))), str(memory_mb << 20), str(file_mb << 20), str(int(unsafe))]
    process = subprocess.Popen([sys.executable, "-I", "-S", str(CHILD), *limits], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=scratch,
                               env={"PATH": "/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch},
                               start_new_session=True, close_fds=True)  # fmt: skip
    try:
        process.stdin.write(program.encode("utf-8", "replace"))
        process.stdin.close()
    except BrokenPipeError:  # it died before reading: it will read as a failure
        pass
    os.set_blocking(process.stdout.fileno(), False)
    return Job(index, process, scratch, time.monotonic() + timeout_s)


def stop(job: Job) -> None:
    """SIGKILL the whole process group (the child and anything it managed to start), reap, delete scratch."""
    try:
        os.killpg(job.process.pid, signal.SIGKILL)  # pgid == pid: start_new_session made it a group leader
    except (ProcessLookupError, PermissionError):
        pass
    job.process.wait()
    job.process.stdout.close()
    try:
        shutil.rmtree(job.scratch, ignore_errors=True)  # empty: a confined program can make nothing in it
    except RecursionError:  # a tree deeper than Python's stack (PPO_UNSAFE_SANDBOX)
        subprocess.run(["rm", "-rf", "--", job.scratch], check=False)


def parse_result(output: bytes):
    """The child's one JSON line {"ok": value} -> value; anything else -> None."""
    try:
        line = json.loads(output) if 0 < len(output) <= MAX_RESULT_BYTES else {}
        return line.get("ok")
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None


def checked_result(job: Job, layers: KernelLayers):
    """The program's value, once the kernel confirms that its process was confined (SandboxError if not)."""
    value = parse_result(bytes(job.output))
    if value is not None and not layers.unsafe and not confined(job.process.pid, layers):
        raise SandboxError(
            f"ppo.tasks.sandbox: program {job.index} ran without its kernel confinement "
            f"({proc_status(job.process.pid)}): its result is refused"
        )
    return value


def run_programs(
    programs: list[str], timeout_s: float = 5.0, workers: int | None = None, memory_mb: int = 512, file_mb: int = 1
) -> list[object | None]:
    """Run each program's `solution()` in the sandbox, `workers` at a time (default: one per core).

    Returns one plain value (bool, int, float, str, None, or lists/dicts of them) per program, or None when the
    program fails in any way: syntax error, exception, no `solution`, a refused operation, a limit hit (wall and
    CPU time `timeout_s`, address space `memory_mb`, files `file_mb`), a crash, or a result too large.
    Never raises because of what a program does, and returns within about ceil(n / workers) * timeout_s.
    """
    if timeout_s <= 0 or memory_mb < 64:
        raise ValueError(f"timeout_s must be > 0 and memory_mb >= 64 (got {timeout_s}, {memory_mb})")
    layers = kernel_layers()
    results: list[object | None] = [None] * len(programs)
    queue = [(i, p) for i, p in enumerate(programs) if len(p.encode("utf-8", "replace")) <= MAX_PROGRAM_BYTES]
    queue.reverse()
    running: dict[int, Job] = {}
    with tempfile.TemporaryDirectory(prefix="ppo-sandbox-") as root, selectors.DefaultSelector() as selector:
        os.chmod(root, 0o711)  # the child may run as nobody: it must reach its scratch folder inside
        try:
            while queue or running:
                while queue and len(running) < (workers or default_workers()):
                    job = start(*queue.pop(), root, timeout_s, memory_mb, file_mb, layers.unsafe)
                    running[job.index] = job
                    selector.register(job.process.stdout, selectors.EVENT_READ, job)
                wait = max(0.0, min(j.deadline for j in running.values()) - time.monotonic())
                for key, _ in selector.select(wait):
                    job = key.data
                    chunk = os.read(key.fd, MAX_RESULT_BYTES + 1)
                    job.output += chunk
                    if not chunk or len(job.output) > MAX_RESULT_BYTES:  # end of output, or a flood
                        results[job.index] = checked_result(job, layers)
                        finish(job, running, selector)
                now = time.monotonic()
                for job in [j for j in running.values() if j.deadline <= now]:
                    finish(job, running, selector)  # out of time: stays None
        finally:
            for job in list(running.values()):
                finish(job, running, selector)
    return results


def finish(job: Job, running: dict[int, Job], selector: selectors.BaseSelector) -> None:
    selector.unregister(job.process.stdout)
    del running[job.index]
    stop(job)
