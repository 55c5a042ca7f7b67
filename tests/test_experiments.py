"""Every script in experiments/ imports: a name moved inside the library breaks a preset only when someone runs it
(`experiments/bench_adapters.py` imported `run_probe` from ppo.lab.bench for days after it had moved)."""

import importlib.util
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).parent.parent / "experiments").glob("*.py"))


def test_the_experiments_folder_is_found():
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_an_experiment_script_imports(path):
    spec = importlib.util.spec_from_file_location(f"experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # each runs its work only under `if __name__ == "__main__"`
    entry = [name for name in ("main", "ppo_main") if callable(vars(module).get(name))]
    assert entry, f"{path.name} has no main() to run"
