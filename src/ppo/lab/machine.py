"""Which machine ran a measurement, in one line, for records and benchmarks. The CPU's model and its widest vector
unit are named because the float kernels torch picks depend on them: the same code and seed can give other bits on
another CPU (the SVAMP warm-up has two builds, docs/results.md)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """'AMD EPYC (family 25, model 17, AVX-512), 2 cores'; where /proc/cpuinfo is missing, platform's name."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    fallback = platform.processor() or platform.machine() or "cpu"
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return f"{fallback}, {cores} cores"
    info: dict[str, str] = {}
    for line in text.splitlines():  # the first processor's fields
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    flags = info.get("flags", "").split()
    detail = [f"family {info['cpu family']}, model {info['model']}"] if "cpu family" in info else []
    detail += [name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags][:1]
    name = info.get("model name") or fallback
    return f"{name} ({', '.join(detail)}), {cores} cores" if detail else f"{name}, {cores} cores"
