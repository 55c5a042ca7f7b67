"""Every ```python block in README.md and docs/ runs, as a user would run it, so the documentation cannot rot.

Each block runs in a fresh interpreter from the repository root (so `../shared/data` resolves as in the README),
with the default model `smollm2-135m` replaced by a tiny random Llama: the test writes it into an empty model cache
($PPO_CACHE_DIR) under the default's folder name, where `ppo.lm.models` looks before converting the GGUF file.
A line `expression  # -> value` is checked: it runs as `assert (expression) == (value)`.
A block preceded by the line `<!-- not run: why -->` is illustrative only, and is skipped for that reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_lm, make_tokenizer

from ppo.lm.specs import EMBEDDED_MODELS

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<skip><!-- not run: .+ -->\n)?```python\n(?P<code>.*?)^```$", re.M | re.S)
CHECKED = re.compile(r"^(?P<expr>\S.*?)\s+# -> (?P<want>.+)$", re.M)


def python_blocks() -> list:
    """pytest params, one per block: (file, code), marked skip when the block is marked not run."""
    params = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text()
        for block in FENCE.finditer(text):
            line = text.count("\n", 0, block.start("code"))
            marks = [pytest.mark.skip(reason=block["skip"].strip())] if block["skip"] else []
            params.append(pytest.param(block["code"], id=f"{path.relative_to(ROOT)}:{line}", marks=marks))
    return params


def checked(code: str) -> str:
    """`expression  # -> value` lines become assertions (only lines that start a statement, unindented)."""
    return CHECKED.sub(lambda m: f"assert ({m['expr']}) == ({m['want']}), {m['expr']!r}", code)


def test_the_block_finder_reads_fences_marks_and_checked_lines():
    text = "```python\nx = 1\n```\n<!-- not run: needs a GPU -->\n```python\ny = 2\n```\n```bash\nmake\n```\n"
    blocks = list(FENCE.finditer(text))
    assert [b["code"] for b in blocks] == ["x = 1\n", "y = 2\n"]
    assert [b["skip"] for b in blocks] == [None, "<!-- not run: needs a GPU -->\n"]
    want = "assert (f(2)) == ([4, None]), 'f(2)'\n    g()  # -> 1\n"
    assert checked("f(2)   # -> [4, None]\n    g()  # -> 1\n") == want
    assert len(python_blocks()) >= 3  # the sandbox, library and custom-task examples of docs/


@pytest.fixture(scope="module")
def tiny_default_model(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("model-cache")
    folder = cache / EMBEDDED_MODELS["smollm2-135m"][2]
    make_lm().save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return cache


@pytest.mark.parametrize("code", python_blocks())
def test_documented_python_runs(code, tiny_default_model):
    env = {**os.environ, "PPO_CACHE_DIR": str(tiny_default_model), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", checked(code)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"the block failed:\n{code}\n--- stderr ---\n{run.stderr[-3000:]}"
