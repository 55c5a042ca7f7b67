"""Parameter-efficient policies that plug into an LM through ppo.lm.hook.

base      AdapterSpec (the --adapter setting) and the Adapter base class
lora      LoRA on chosen linear layers
loreft    LoReFT and DiReFT on the residual stream at prompt positions
loading   attach an adapter; load LMs, policies and references that may carry one
"""
