"""The house rule: `src/ppo/` is layered packages, and each imports only the layers below it (or its own).

    core -> lm -> adapters -> train -> tasks -> lab          (an arrow: "may be imported by")

Every import statement is read from the source, lazy ones inside functions included, and resolved to the module
it names. A module may import its own layer and the layers below; an import that runs up, an import of the
top-level `ppo` face from inside a layer, and a cycle of modules are failures. The core imports nothing outside
the standard library but torch. The checks are run on a planted copy too, so they are shown to fail.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ppo"
LAYERS = ("core", "lm", "adapters", "train", "tasks", "lab")
FACE = ("ppo", "ppo.__main__")  # the top-level package: it may name any layer
CORE_THIRD_PARTY = {"torch"}


def module_name(path: Path, root: Path) -> str:
    parts = ["ppo", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def resolve(name: str, known: dict[str, Path]) -> str:
    """The longest known module that `name` starts with ('ppo.core.gae.compute_gae' -> 'ppo.core.gae')."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth; ppo modules resolved, others by top name."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, node.lineno))
                if alias.asname is None and "." in alias.name:  # `import ppo.x.y` binds `ppo` itself: the face
                    found.append((alias.name.split(".")[0], node.lineno))
        elif isinstance(node, ast.Call) and imported_by_name(node):  # importlib.import_module("ppo.x"), __import__
            found.append((node.args[0].value, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            for alias in node.names:  # `from . import gae` names a module; `from .gae import x` not
                found.append((f"{stem}.{alias.name}", node.lineno))
    resolved = []
    for name, line in found:
        if name.split(".")[0] == "ppo":
            resolved.append((resolve(name, known), line))
        elif f"{package}.{name.split('.')[0]}" in known:  # a script's import of its sibling (the sandbox child)
            resolved.append((f"{package}.{name.split('.')[0]}", line))
        else:
            resolved.append((name.split(".")[0], line))
    return resolved


def imported_by_name(call: ast.Call) -> bool:
    """A call that imports a module named by a constant string: `importlib.import_module("...")`, `__import__`."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
    first = call.args[0] if call.args else None
    return name in ("import_module", "__import__") and isinstance(first, ast.Constant) and isinstance(first.value, str)


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def violations(root: Path) -> list[str]:
    """Every import that breaks the rule, one line each; and every cycle of modules."""
    known = modules(root)
    graph, found = {}, []
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for module, path in known.items():
        graph[module] = set()
        for target, line in sorted(set(imports(module, path, known)), key=lambda x: x[1]):
            where = f"{path.relative_to(root.parent)}:{line}: {module} imports {target}"
            if not target.startswith("ppo"):
                if layer(module) == 0 and target not in stdlib | CORE_THIRD_PARTY:
                    found.append(f"{where}, and the core imports only torch")
                continue
            if target == module or (path.name == "__init__.py" and target.startswith(module + ".")):
                continue  # a package's face hands on its own modules
            if module not in FACE and target in FACE:
                found.append(f"{where}: a layer never imports the top-level face")
            elif module not in FACE and layer(target) is not None and layer(target) > layer(module):
                found.append(f"{where}: {LAYERS[layer(module)]} sits below {LAYERS[layer(target)]}")
            if target in known and target not in FACE and not known[target].name == "__init__.py":
                graph[module].add(target)
    return found + [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle for each strongly connected group of two or more modules (or a module importing itself)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's algorithm
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group) + [sorted(group)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_sits_in_a_layer():
    stray = [m for m in modules(PACKAGE) if m not in FACE and layer(m) is None]
    assert stray == [], f"modules outside the layers {LAYERS}: {stray}"


def test_imports_run_down_the_layers_only_and_never_in_a_circle():
    assert violations(PACKAGE) == []


@pytest.fixture
def planted(tmp_path):
    root = tmp_path / "ppo"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def plant(path: Path, line: str, inside_function: bool = False) -> None:
    code = f"\n\ndef _planted():\n    {line}\n" if inside_function else f"\n{line}\n"
    path.write_text(path.read_text() + code)


@pytest.mark.parametrize(
    "where, line, lazy, expected",
    [
        ("core/gae.py", "from ..train import distributed", False, "core sits below train"),
        ("core/losses.py", "from ppo.lm.policy import PolicyWithValue", True, "core sits below lm"),
        ("lm/rollout.py", "from ..adapters import loreft", True, "lm sits below adapters"),
        ("train/trainer.py", "from ..tasks.rewards import score_responses", False, "train sits below tasks"),
        ("tasks/data.py", "import ppo.lab.report as report", True, "tasks sits below lab"),
        ("lm/models.py", "from .. import PPOTrainer", True, "a layer never imports the top-level face"),
        ("core/kl.py", "import numpy", True, "the core imports only torch"),
        ("lm/decode.py", "importlib.import_module('ppo.train.fsdp')", True, "lm sits below train"),
        ("adapters/lora.py", "__import__('ppo.tasks.data')", True, "adapters sits below tasks"),
        ("core/gae.py", "import ppo.core.masked", True, "a layer never imports the top-level face"),
    ],
)
def test_a_planted_wrong_way_import_is_caught(planted, where, line, lazy, expected):
    plant(planted / where, line, inside_function=lazy)
    found = violations(planted)
    assert len(found) == 1 and expected in found[0] and where in found[0], found


def test_a_planted_cycle_is_caught(planted):
    plant(planted / "core" / "masked.py", "from .losses import policy_loss", inside_function=True)
    found = violations(planted)
    assert found == ["import cycle: ppo.core.losses -> ppo.core.masked -> ppo.core.losses"], found


def test_old_module_paths_name_the_same_modules_and_old_pickles_load():
    import pickle

    import ppo
    import ppo.sandbox
    import ppo.train.config
    from ppo.tasks import sandbox
    from ppo.trainer import PPOTrainer

    assert ppo.sandbox is sandbox and ppo.sandbox.run_programs is ppo.run_programs
    assert sandbox.__spec__.name == "ppo.tasks.sandbox"  # its own spec, so importlib.reload(sandbox) works
    assert PPOTrainer is ppo.PPOTrainer is ppo.train.trainer.PPOTrainer
    # A pickle written before the move names the class by its old path, ppo.config.PPOConfig.
    old = pickle.dumps(ppo.PPOConfig(steps=3), protocol=2).replace(b"ppo.train.config", b"ppo.config")
    assert b"ppo.config" in old and pickle.loads(old) == ppo.PPOConfig(steps=3)


def test_an_old_command_says_what_it_is_now():
    import subprocess

    out = subprocess.run([sys.executable, "-m", "ppo.sft", "--help"], capture_output=True, text=True)
    assert out.returncode == 1 and "python -m ppo.sft is now python -m ppo sft" in out.stderr, out.stderr
    out = subprocess.run([sys.executable, "-m", "ppo"], capture_output=True, text=True)
    assert (
        out.returncode == 1
        and "usage: python -m ppo {sft,rl,evaluate,reft,verifier,offline-st,online-st,metrics,bench}" in out.stderr
    )
