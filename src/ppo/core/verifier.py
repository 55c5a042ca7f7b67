"""A scorer of whole answers: the scalar head's output at an answer's last token, and the verifier's loss.

The same head serves two uses. PPO's value head already estimates the expected score of an answer: at the last
token nothing is left to happen but the reward, so V there predicts it. A ReFT checkpoint can therefore rank its
own samples. A verifier (Cobbe et al. 2021; the ReFT paper's reranking) is the same LM-plus-scalar-head, trained
instead to tell right answers from wrong ones, with a binary cross-entropy at that token.

Shapes: B = answers, T = response length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def last_token_values(values: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """values[b, t_b] at each answer's last valid token t_b = sum_t response_mask[b, t] - 1 (its EOS).

    values[:, t] is the head's output at the state that predicts response token t, so at the EOS it has read the
    whole answer. An empty row (no valid token) is an error: it has no last token.
    Shape: (B, T), (B, T) -> (B,).
    """
    lengths = response_mask.sum(dim=1).long()  # (B,)
    if (lengths < 1).any():
        raise ValueError(f"answers {torch.nonzero(lengths < 1).flatten().tolist()} have no valid token")
    return values.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)  # (B,)


def verifier_counts(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """What the verifier's stats are made of, as sums that add up over batches and ranks: [answers, answers whose
    sign is right (s > 0 means "right"), right answers, sum of sigmoid(s) over right answers, the same over wrong].
    Shape: (B,), (B,) -> (5,).
    """
    p, right = torch.sigmoid(scores.detach().float()).cpu(), (labels > 0.5).cpu()
    return torch.stack([torch.tensor(float(len(p))), ((p > 0.5) == right).float().sum(), right.float().sum(),
                        p[right].sum(), p[~right].sum()])  # fmt: skip


def verifier_stats(counts: torch.Tensor) -> dict[str, float]:
    """The accuracy of the sign, and the mean predicted probability on right and on wrong answers (NaN when there
    are none of that kind), from summed `verifier_counts`."""
    n, sign_right, n_right, p_right, p_wrong = counts.tolist()
    mean = lambda total, count: total / count if count else float("nan")  # noqa: E731
    return {
        "verifier/accuracy": mean(sign_right, n),
        "verifier/p_right": mean(p_right, n_right),
        "verifier/p_wrong": mean(p_wrong, n - n_right),
    }


def verifier_loss(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Binary cross-entropy of the scores (logits) against right (1) / wrong (0) labels, as a loss to minimise:

        L = -mean_b [ y_b log sigmoid(s_b) + (1 - y_b) log (1 - sigmoid(s_b)) ]

    The stats: the loss, and `verifier_stats` of this batch.
    Shape: (B,), (B,) -> scalar.
    """
    labels = labels.float()
    loss = F.binary_cross_entropy_with_logits(scores.float(), labels)
    return loss, {"verifier/loss": loss.item(), **verifier_stats(verifier_counts(scores, labels))}
