"""The parent's side of the sandbox's kernel confinement (ppo.tasks.sandbox runs the programs): what this kernel
offers, checked once before any program runs, and each program's confinement read from the kernel afterwards.

    kernel_layers   no seccomp here -> SandboxError before any program runs (fail closed), unless
                    PPO_UNSAFE_SANDBOX=1, which always draws a warning
    confined        /proc/PID/status of a finished program's process: no_new_privs, its own seccomp filters on top
                    of this process's, and the uid nobody when the trainer is root; never the child's own word
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import lru_cache

from .sandbox_kernel import NOBODY, expected_filters, landlock_abi, seccomp_available

UNSAFE = "PPO_UNSAFE_SANDBOX"  # =1: run programs even where the kernel cannot confine them (said, never silent)


class SandboxError(RuntimeError):
    """The kernel cannot confine programs here, or a program's process was found unconfined."""


@dataclass(frozen=True)
class KernelLayers:
    """What this machine offers, checked once before any program runs (`kernel_layers`)."""

    landlock: bool  # Landlock holds the files (else the child's second filter does)
    inherited: int | None  # seccomp filters this process already runs under (a container's); None: not shown
    unsafe: bool  # PPO_UNSAFE_SANDBOX=1: results are taken without the check


@lru_cache(maxsize=1)
def kernel_layers() -> KernelLayers:
    """No seccomp -> SandboxError, unless PPO_UNSAFE_SANDBOX=1, which always draws a warning."""
    unsafe = os.environ.get(UNSAFE) == "1"
    if not seccomp_available() and not unsafe:
        raise SandboxError(
            f"ppo.tasks.sandbox: this kernel has no seccomp filters ({os.uname().machine}), so "
            f"programs cannot be confined; set {UNSAFE}=1 to run them anyway (unsafe)"
        )
    if unsafe:
        warnings.warn(
            f"ppo.tasks.sandbox: {UNSAFE}=1: programs run even where a kernel layer fails, and their results "
            f"are taken unchecked",
            RuntimeWarning,
        )
    inherited = proc_status(os.getpid()).get("Seccomp_filters")
    return KernelLayers(landlock_abi() > 0, None if inherited is None else int(inherited), unsafe)


def proc_status(pid: int) -> dict[str, str]:
    """What the kernel says of a process (alive or not yet reaped): its /proc/PID/status fields."""
    with open(f"/proc/{pid}/status") as status:
        return dict(line.rstrip("\n").split(":\t", 1) for line in status if ":\t" in line)


def confined(pid: int, layers: KernelLayers) -> bool:
    """The program's process ran under no_new_privs and its own seccomp filters (on top of any this process runs
    under; one more without Landlock), and as nobody when the trainer is root. A program can add filters, never
    remove one, so more is fine. Kernels before 5.9 show no filter count: then `Seccomp: 2` alone is checked."""
    fields = proc_status(pid)
    uid_ok = os.geteuid() != 0 or fields.get("Uid", "").split() == [str(NOBODY)] * 4
    count_ok = layers.inherited is None or (
        int(fields.get("Seccomp_filters", "0")) >= layers.inherited + expected_filters(layers.landlock)
    )
    return fields.get("NoNewPrivs") == "1" and fields.get("Seccomp") == "2" and uid_ok and count_ok
