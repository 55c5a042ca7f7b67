"""Experiments on the library: ablation grids, benchmarks and their reports.

ablate    grids of PPO runs from one warm-up checkpoint
grids     the grids: KL, sampling, adapters, estimators
bench     speed and memory against TRL
report    tables and plots of the runs
scaling   accuracy against the number of samples k: vote, pass and rerank
"""
