"""The PPO trainer. `PPOTrainer.step()` is the README's pseudocode, one named call per numbered step.

Shapes: B = rollouts, L = prompt + response length, T = response length.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch
from transformers import PreTrainedTokenizerBase

from ..adapters.base import param_groups
from ..core.buffer import RolloutBatch, content_columns, longest_first
from ..core.gae import compute_gae, masked_whiten
from ..core.group import equal_groups, per_token, with_kl_penalty
from ..core.kl import AdaptiveKLController, FixedKLController, kl_estimate, shape_rewards
from ..core.losses import entropy_bonus, kl_loss, policy_loss, total_loss, value_loss
from ..core.masked import aggregate_size
from ..lm.policy import PolicyWithValue
from ..lm.reference import FrozenLM, SameNetwork, check_reference
from ..lm.rollout import Samples, encode_prompts, sample
from . import distributed
from .config import PPOConfig
from .fsdp import clip_grad_norm, gathered
from .health import NonFiniteError, check_finite
from .metrics import Timer, mean_over_ranks, mean_stats, rollout_stats
from .ppo_run import PPORun

# The task, handed in (ppo.tasks.stages builds the math one): an example is whatever these two understand.
# prompt_fn(example) -> the prompt text the policy is asked
PromptFn = Callable[[Any], str]
# reward_fn(decoded responses, their examples) -> one score per response
RewardFn = Callable[[list[str], list[Any]], list[float]]


class PPOTrainer(PPORun):
    """PPO for a causal LM with a value head, against a frozen reference (ppo.lm.reference), on the task that
    `prompt_fn` (how an example is asked) and `reward_fn` (how the answers are scored) describe. With a group
    estimator (config.advantage grpo, rloo or dr_grpo) the value head is neither run nor trained.

    Under torchrun each rank takes rollout_batch_size / N questions and minibatches of mini_batch_size / N rollouts;
    the update equals one process's on the whole batch (`ppo.train.distributed` says how). The run around the
    steps (the loop, logging, dev selection, checkpoints) is `ppo.train.ppo_run.PPORun`."""

    def __init__(
        self,
        policy: PolicyWithValue,
        reference: FrozenLM | SameNetwork,
        tokenizer: PreTrainedTokenizerBase,
        config: PPOConfig,
        prompt_fn: PromptFn,
        reward_fn: RewardFn,
    ):
        self.policy, self.reference, self.tokenizer, self.config = policy, check_reference(reference), tokenizer, config
        self.device = next(policy.parameters()).device
        self.prompt_fn, self.reward_fn = prompt_fn, reward_fn
        questions = distributed.per_rank(config.rollout_batch_size, "rollout_batch_size")  # refused unless it splits
        self.mini_size = distributed.per_rank(config.mini_batch_size, "mini_batch_size")
        self.critic = config.advantage == "gae"  # GAE needs the value head; the group estimators need none
        # The old policy's forward pass is redundant when every rollout meets one optimizer step only, at the
        # weights that sampled it (one epoch of one minibatch), and nothing before the update reads the old
        # log-probs or values (no critic for GAE, no KL in the reward): the update's own pass gives them, detached.
        self.reuse_first_pass = (
            config.ppo_epochs == 1
            and self.mini_size >= questions * config.samples_per_prompt
            and not self.critic
            and config.kl_in == "loss"
        )
        self.full_length = False  # benchmarks set it: every response runs to max_new_tokens (`sample`)
        # The k answers to a question are consecutive rows; minibatches keep them whole (where they can hold whole
        # questions), so every forward pass may run each prompt once for its k answers (ppo.lm.shared_prompt).
        k = config.samples_per_prompt
        self.group = k if self.mini_size % k == 0 else 1
        self.share_prompts = True  # False: every row's prompt runs itself (the same numbers, more compute)
        # Micro-batches of like lengths, each cut to its own longest response (`RolloutBatch.trimmed`); False: every
        # pass runs on the whole padded width (the same numbers up to rounding, more compute).
        self.trim = True
        policy.value_head.requires_grad_(self.critic)
        distributed.broadcast_parameters(policy)  # every replica starts from rank 0's weights
        self.params = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(param_groups(policy, config.weight_decay), lr=config.lr)
        self.kl_ctl = (
            AdaptiveKLController(config.kl_coef, config.kl_target, config.kl_horizon)
            if config.adaptive_kl
            else FixedKLController(config.kl_coef)
        )
        self.generator = torch.Generator().manual_seed(config.seed)  # minibatch order
        self.step_count = 0
        self.best_dev = float("-inf")
        self.bad_steps = 0  # steps skipped for NaN/inf; the run stops at config.max_bad_steps

    def step(self, examples: list) -> dict[str, float]:
        """One PPO step on a batch of questions. Returns the step's metrics."""
        c, timer = self.config, Timer()
        # 1. Sample: several responses per question, from the current policy.
        examples = [ex for ex in examples for _ in range(c.samples_per_prompt)]
        samples = self.sample_responses(examples)
        mask = samples.response_mask  # (B, T)
        timer.lap("time/rollout_s")
        # 2. Score each response against its gold answer.
        scores = self.score(samples, examples)
        timer.lap("time/score_s")
        # 3. Shape the rewards with the KL: old log-probs, values and reference log-probs from forward passes
        #    (the old log-probs from the update's own pass instead, when that is the same: `reuse_first_pass`).
        old_logprobs, old_values, ref_logprobs = self.forward_rollouts(samples)
        kl = kl_estimate(old_logprobs, ref_logprobs, c.kl_estimator) * mask  # (B, T); after step 5 when reused
        beta = self.kl_ctl.value if c.kl_in == "reward" else 0.0  # else the KL goes in the loss, step 5
        rewards = shape_rewards(scores, kl, mask, beta)  # (B, T)
        timer.lap("time/forward_s")
        # 4. Estimate the advantages: GAE on the critic's values, or each answer against its group's.
        advantages, returns = self.advantages(scores, kl, rewards, old_values, mask)  # (B, T) each
        ids, attn = samples.input_ids, samples.attention_mask  # (B, L) each
        batch = RolloutBatch(
            ids, attn, mask, old_logprobs, ref_logprobs, old_values, scores, rewards, advantages, returns
        )
        # 5. Run K epochs of minibatch updates (unless NaN/inf got in: then skip the step, and count it).
        try:
            check_finite(
                "scores, log-probs, values or advantages", scores, old_logprobs, old_values, ref_logprobs, advantages
            )
            update_stats = self.update(batch)
        except NonFiniteError as err:
            return self.skip(err)
        if self.reuse_first_pass:  # batch.old_logprobs now holds the update pass's log-probs
            kl = kl_estimate(batch.old_logprobs, ref_logprobs, c.kl_estimator) * mask
        timer.lap("time/update_s")
        # 6. Log, and let an adaptive controller move beta.
        rollout = rollout_stats(batch, kl, samples.truncated, self.kl_ctl.value, c.correct_score, self.critic)
        if c.samples_per_prompt > 1:  # groups whose answers all scored alike: no signal for a group estimator
            rollout["objective/equal_groups"] = equal_groups(scores, c.samples_per_prompt)
        metrics = mean_over_ranks({**rollout, **update_stats, **timer.laps})
        self.kl_ctl.update(metrics["objective/kl"], len(batch))
        self.step_count += 1
        return metrics

    @torch.no_grad()
    def advantages(
        self, scores: torch.Tensor, kl: torch.Tensor, rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advantages and value targets, (B, T) each, from the scores (B,), the per-token KL and shaped rewards.

        gae: the GAE recursion on the shaped rewards and the critic's values, then whitened over every valid token
        of the rollout. grpo, rloo, dr_grpo: each response's score against the other responses to its question,
        less beta * its summed KL centred in the group when the KL is in the reward (`with_kl_penalty`), the same
        on each of its tokens; no value targets (zeros). A question's samples are consecutive rows, and a rank
        holds whole questions."""
        c = self.config
        if not self.critic:
            beta = self.kl_ctl.value if c.kl_in == "reward" else 0.0
            sequence_kl = (kl * mask).sum(1)  # (B,)
            advantages = with_kl_penalty(scores, sequence_kl, beta, c.samples_per_prompt, c.advantage)
            return per_token(advantages, mask), torch.zeros_like(rewards)
        advantages, returns = compute_gae(rewards, values, mask, c.gamma, c.lam)
        if c.whiten_advantages:
            advantages = masked_whiten(advantages, mask, all_reduce=distributed.all_reduce)
        return advantages, returns

    @torch.no_grad()
    def sample_responses(self, examples: list) -> Samples:
        """Encode the prompts (left-padded) and sample one response per row."""
        c = self.config
        prompts = [self.prompt_fn(ex) for ex in examples]
        prompt_ids, prompt_mask = encode_prompts(self.tokenizer, prompts, self.device)
        with gathered(self.policy.lm):  # FSDP2: every layer's full weights, once for the whole decode loop
            lm, knobs = self.policy.lm, (c.max_new_tokens, c.temperature, c.top_k, c.top_p)
            return sample(lm, self.tokenizer, prompt_ids, prompt_mask, *knobs, full_length=self.full_length)

    @property
    def prompt_group(self) -> int:
        """Rows per shared prompt pass: k, or 1 (each row alone) when sharing is off."""
        return self.group if self.share_prompts else 1

    @property
    def truncation(self) -> dict:
        """The sampler's top-k / top-p: the log-probs are those of the distribution it draws from."""
        return {"top_k": self.config.top_k, "top_p": self.config.top_p}

    def score(self, samples: Samples, examples: list) -> torch.Tensor:
        """Scores (B,) from the reward function; optionally a fixed score for truncated responses."""
        scores = torch.tensor(self.reward_fn(samples.texts, examples), dtype=torch.float32, device=self.device)
        if self.config.missing_eos_score is not None:
            scores = torch.where(
                samples.truncated.to(self.device), torch.full_like(scores, self.config.missing_eos_score), scores
            )
        return scores

    @torch.no_grad()
    def forward_rollouts(self, samples: Samples) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """old_logprobs, old_values and ref_logprobs, all (B, T), recomputed by forward passes (old_values are
        zeros without a critic: the value head is not run; old_logprobs are zeros with `reuse_first_pass`: the
        policy is not run, and `update` fills them in from its pass).

        Recomputing (rather than trusting `generate`'s scores) gives exactly the numbers the update will compare
        against, computed the same way. Runs in micro-batches to bound memory: of like lengths, each cut to its own
        longest response (`self.trim`).
        """
        c, mask = self.config, samples.response_mask
        order = torch.arange(mask.shape[0], device=mask.device)
        if self.trim:
            order = longest_first(order, mask, self.group)
        out = tuple(torch.zeros_like(mask) for _ in range(3))
        for s in range(0, len(order), c.micro_batch_size):
            rows = order[s : s + c.micro_batch_size]
            ids, attn = samples.input_ids[rows], samples.attention_mask[rows]
            columns, T = content_columns(attn, mask[rows]) if self.trim else (slice(None), samples.response_len)
            ids, attn = ids[:, columns], attn[:, columns]
            if not self.reuse_first_pass:  # else the update's pass fills the old log-probs in
                logprobs, values, _ = self.policy.logprobs_and_values(
                    ids, attn, T, c.temperature, with_values=self.critic, group=self.prompt_group, **self.truncation
                )
                out[0][rows, :T] = logprobs
                if values is not None:
                    out[1][rows, :T] = values
            out[2][rows, :T] = self.reference.logprobs(ids, attn, T, c.temperature, group=self.prompt_group)
        return tuple(part * mask for part in out)

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        """ppo_epochs passes of shuffled minibatches; each minibatch is one optimizer step, its gradient
        accumulated over micro-batches so the result does not depend on micro_batch_size.

        Each micro-batch's loss is weighted by its share of the minibatch's sequences or tokens, counted over all
        ranks, and the gradients are summed over ranks: the sum is the gradient of the whole minibatch's loss.

        With `reuse_first_pass` (one epoch of one minibatch) the old log-probs are this pass's own, detached, so
        the ratio is exactly 1; they are written back into `batch.old_logprobs`."""
        c, stats = self.config, []
        for _ in range(c.ppo_epochs):
            for rows in batch.minibatch_rows(self.mini_size, self.generator, self.group):
                if self.trim:
                    rows = longest_first(rows, batch.response_mask, self.group)
                mini = batch.select(rows)
                self.optimizer.zero_grad(set_to_none=True)
                size = distributed.all_reduce(aggregate_size(mini.response_mask, c.aggregation)).clamp(min=1.0)
                for s, micro in zip(range(0, len(mini), c.micro_batch_size), mini.chunks(c.micro_batch_size)):
                    micro = micro.trimmed() if self.trim else micro
                    loss, micro_stats, logprobs = self.loss(micro)
                    check_finite("loss", loss)
                    (loss * aggregate_size(micro.response_mask, c.aggregation) / size).backward()
                    stats.append(micro_stats)
                    if self.reuse_first_pass:
                        at = (rows[s : s + len(micro)], slice(0, micro.response_len))
                        batch.old_logprobs[at] = logprobs * micro.response_mask
                distributed.all_reduce_gradients(self.params)
                grad_norm = clip_grad_norm(self.params, c.max_grad_norm)
                check_finite("gradients", grad_norm)  # checked before the weights move, never after
                stats.append({"policy/grad_norm": float(grad_norm)})
                self.optimizer.step()
        return mean_stats(stats)

    def loss(self, mb: RolloutBatch) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
        """L = L_policy + vf_coef * L_value + beta * L_KL - entropy_coef * H, on one micro-batch (L_value with a
        critic only, L_KL when the KL goes in the loss); also the log-probs of this pass, detached (B, T)."""
        c, mask = self.config, mb.response_mask
        agg, max_tokens = c.aggregation, c.max_new_tokens  # max_tokens: seq_mean_token_sum_norm's constant
        ids, attn, T = mb.input_ids, mb.attention_mask, mb.response_len
        logprobs, values, ent = self.policy.logprobs_and_values(
            ids,
            attn,
            T,
            c.temperature,
            with_entropy=True,
            entropy_grad=c.entropy_coef > 0,
            with_values=self.critic,
            group=self.prompt_group,
            **self.truncation,
        )
        old_logprobs = logprobs.detach() if self.reuse_first_pass else mb.old_logprobs
        pg_loss, pg_stats = policy_loss(
            logprobs, old_logprobs, mb.advantages, mask, c.clip_eps, agg, c.clip_eps_high, max_tokens
        )
        losses, vf_loss, vf_stats, kl = {"loss/policy": pg_loss}, None, {}, None
        if self.critic:
            vf_loss, vf_stats = value_loss(values, mb.old_values, mb.returns, mask, c.value_clip_eps, agg, max_tokens)
            losses["loss/value"] = vf_loss
        if c.kl_in == "loss":
            losses["loss/kl"] = kl = kl_loss(logprobs, mb.ref_logprobs, mask, c.kl_estimator, agg, max_tokens)
        mean_entropy = entropy_bonus(ent, mask, agg, max_tokens)
        losses["loss/total"] = loss = total_loss(
            pg_loss, vf_loss, mean_entropy, c.vf_coef, c.entropy_coef, kl, self.kl_ctl.value
        )
        # Logged as a per-answer mean under every aggregation, so that the curves of different runs compare.
        losses["policy/entropy"] = mean_entropy if agg == "seq_mean_token_mean" else entropy_bonus(ent, mask)
        return loss, {**{k: v.item() for k, v in losses.items()}, **pg_stats, **vf_stats}, logprobs.detach()

    def skip(self, err: NonFiniteError) -> dict[str, float]:
        """A step with NaN/inf: no optimizer step is taken from it (minibatch steps already taken had finite
        losses and gradients, and stay). Warn, count, and stop the run after config.max_bad_steps of them."""
        self.optimizer.zero_grad(set_to_none=True)
        self.bad_steps += 1
        self.step_count += 1
        message = f"step {self.step_count} skipped: {err} ({self.bad_steps} of at most {self.config.max_bad_steps})"
        if self.bad_steps >= self.config.max_bad_steps:
            raise RuntimeError(
                f"{message}; stopping. The last good checkpoint is kept (resume from it with a lower "
                f"lr, or check the data and the reward)."
            ) from err
        warnings.warn(message, RuntimeWarning)
        return {"health/skipped": 1.0, "health/bad_steps": float(self.bad_steps)}
