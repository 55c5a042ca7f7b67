"""The language model side: loading, log-probs, the policy with its value head, the reference, and sampling.

specs      what a model spec may name: the offline default, folders, hub ids
models     loading and saving LMs, devices and dtypes, dropout, activation checkpointing
hook       the one hook point where an adapter plugs in (this layer never imports ppo.adapters)
logprobs   log-probs of response tokens from hidden states (the one-token shift)
policy     PolicyWithValue: the LM and its value head
reference  the frozen reference of the KL penalty
rollout    prompts in, sampled responses and their masks out
decode     a lean decode loop for Llama-family models
scoring    written answers scored by the scalar head at their last token (critic or verifier)
"""
