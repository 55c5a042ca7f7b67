"""ReFT end to end: warm-up SFT, PPO, and the comparison table (base, SFT, SFT-continued, ReFT).

make train-gsm8k                             # N-CoT GSM8K, the CPU preset (defaults of PipelineConfig)
make train-svamp-pcot                        # P-CoT SVAMP, the CPU preset
ppo-reft --help                              # every setting (python experiments/run_reft.py is the same)
ppo-reft --resume ...                        # continue an interrupted run
"""

from ppo.tasks.pipeline import main

if __name__ == "__main__":
    main()
