"""The PPO math, readable on its own: it imports only torch, and never talks to other processes.

masked    reductions over the valid tokens of a padded batch
logits    log pi(y_t) and the entropy H_t from next-token logits
kl        the per-token KL estimators (k1, k2, k3), the beta controllers, reward shaping
gae       generalized advantage estimation, and whitening (a cross-process sum is passed in)
group     the critic-free advantages: GRPO, RLOO and Dr. GRPO over each question's answers
losses    the clipped policy and value losses, the KL as a loss, the entropy bonus, the total loss
buffer    the rollout batch and its minibatches
verifier  a whole answer's score at its last token, and the verifier's cross-entropy
"""
