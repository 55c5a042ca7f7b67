"""Math word problems as a task: data, prompts, rewards, the program sandbox, evaluation, stages and the pipeline.

data            GSM8K and SVAMP files, the dev split
gsm8k_pcot      GSM8K's solutions as P-CoT programs, from their calculator notes
formats         prompt templates and SFT targets
rewards         answers extracted and scored
sandbox         untrusted programs run under kernel limits (sandbox_kernel, sandbox_child)
eval_config     the settings of an evaluation
evaluate        top-1, vote@k and pass@k on a split
rerank          rerank@k: the answer of the sample a critic or a verifier scores highest
stats           95 % intervals, and paired tests of two models on the same questions
stages          run_sft and run_ppo, handed the math task; the sft and rl commands
sampled         a model's own answers, labelled right or wrong, drawn once per run folder
verifier_stage  sample, label and train a verifier (the verifier command)
self_training   the paper's self-training baselines: Offline-ST and Online-ST (offline-st, online-st)
pipeline_config the pipeline's settings, built from the stages'
pipeline        warm-up SFT, PPO and the comparison table
pipeline_baselines  the optional stages' settings, matched to ReFT in sampled answers
"""
