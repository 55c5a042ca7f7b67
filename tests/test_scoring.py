import torch
from conftest import make_lm, make_tokenizer

from ppo.core.verifier import verifier_loss
from ppo.lm.policy import PolicyWithValue
from ppo.lm.scoring import answer_scores, encode_answers, head_scores


def policy_with_head(seed: int = 0) -> PolicyWithValue:
    policy = PolicyWithValue(make_lm(seed))
    torch.nn.init.normal_(policy.value_head.weight, std=1.0)  # a zero head would score every answer alike
    return policy


def test_answers_are_laid_out_as_a_rollout_with_one_eos_each():
    tok = make_tokenizer()
    ids, attention, response_mask = encode_answers(tok, ["Question: x", "Question: x y z"], ["1 2", "3"], "cpu")
    words = lambda row: tok.convert_ids_to_tokens(row)  # noqa: E731
    assert words(ids[0]) == ["<eos>", "<eos>", "Question:", "x", "1", "2", "<eos>"]  # pads are EOS here
    assert words(ids[1]) == ["Question:", "x", "y", "z", "3", "<eos>", "<eos>"]
    assert attention.tolist() == [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0]]
    assert response_mask.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]


def test_a_score_does_not_depend_on_the_padding_or_the_batch_size():
    policy, tok = policy_with_head(), make_tokenizer()
    prompts, answers = ["Question: x", "Question: x y z", "Question: a"], ["1 2 3 4", "3", "b c"]
    alone = [head_scores(policy, tok, [p], [a])[0] for p, a in zip(prompts, answers)]
    together = head_scores(policy, tok, prompts, answers, batch_size=3)
    assert torch.allclose(torch.tensor(together), torch.tensor(alone), atol=1e-5)
    assert len(set(round(s, 4) for s in alone)) == 3  # and the answers do get different scores


def test_a_verifier_learns_to_score_right_answers_above_wrong_ones():
    torch.manual_seed(0)
    policy, tok = policy_with_head(), make_tokenizer()
    prompts = ["Question: x", "Question: x", "Question: y", "Question: y"]
    answers, labels = ["1", "2", "3", "4"], torch.tensor([1.0, 0.0, 0.0, 1.0])
    batch = encode_answers(tok, prompts, answers, "cpu")
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    first = verifier_loss(answer_scores(policy, *batch), labels)[0].item()
    for _ in range(30):
        loss, stats = verifier_loss(answer_scores(policy, *batch), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scores = head_scores(policy, tok, prompts, answers)
    assert stats["verifier/loss"] < first / 4 and stats["verifier/accuracy"] == 1.0
    assert scores[0] > scores[1] and scores[3] > scores[2]
