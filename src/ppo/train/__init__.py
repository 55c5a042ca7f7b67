"""Training: settings, the command line, the PPO and SFT trainers, checkpoints, metrics and more processes.

The trainers know no task: they are handed a prompt formatter and a reward function (PPO), or a prompt and
target formatter (SFT). ppo.tasks hands them the math ones.

    config       PPOConfig and SFTConfig            cli          settings from the command line, saved as JSON
    model_settings  what every training stage shares (their base)
    trainer      PPOTrainer: the PPO step            sft          SFTTrainer: the warm-up
    sampled_config  SampledSFTConfig: SFT on k answers per question the model sampled itself
    verifier_training  VerifierConfig and VerifierTrainer: SFT's loop with the verifier's loss
    ppo_run      the run around PPO steps            checks       every setting's range, run folders
    checkpoint   crash-safe checkpoints and resume   data_order   which examples a step trains on
    health       NaN and inf: the check, the skip    metrics      logging and timing
    distributed  torchrun: ranks, reductions         fsdp         FSDP2 sharding for full fine-tuning
"""
