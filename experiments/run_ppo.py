"""PPO on GSM8K or SVAMP training questions, from any starting checkpoint (SmolLM2, or a warm-up SFT folder).

    ppo-rl --model runs/sft/final --data-dir ../shared/data/gsm8k --steps 50
    python experiments/run_ppo.py ...            # the same

Every flag is a field of `ppo.train.config.PPOConfig`; `--help` lists them. `torchrun --nproc_per_node=N` runs it on
N processes (docs/distributed.md). Rerunning the same command resumes from the last checkpoint in --output-dir (and
does nothing once output_dir/final exists); a folder that holds a run with other settings is refused.
"""

from ppo.tasks.stages import ppo_main

if __name__ == "__main__":
    ppo_main()
