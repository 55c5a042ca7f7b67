"""Math word problems as a task: data, prompts, rewards, the program sandbox, evaluation, stages and the pipeline.

data       GSM8K and SVAMP files, the dev split       formats   prompt templates and SFT targets
rewards    answers extracted and scored               sandbox   untrusted programs run under kernel limits
evaluate   top-1, vote@k and pass@k on a split        stages    run_sft and run_ppo, handed the math task
pipeline   warm-up SFT, PPO and the comparison table
"""
