import pytest
import torch

from ppo.core.buffer import RolloutBatch


def make_batch(B=8, L=6, T=3) -> RolloutBatch:
    rows = torch.arange(B, dtype=torch.float32)[:, None]
    return RolloutBatch(
        input_ids=torch.arange(B)[:, None].repeat(1, L),
        attention_mask=torch.ones(B, L),
        response_mask=torch.ones(B, T),
        old_logprobs=rows.repeat(1, T),
        ref_logprobs=rows.repeat(1, T),
        old_values=rows.repeat(1, T),
        scores=rows[:, 0],
        rewards=rows.repeat(1, T),
        advantages=rows.repeat(1, T),
        returns=rows.repeat(1, T),
    )


def test_minibatches_cover_every_row_once_and_keep_rows_aligned():
    batch = make_batch()
    seen = []
    for mb in batch.minibatches(3, torch.Generator().manual_seed(0)):
        ids = mb.input_ids[:, 0]
        assert torch.equal(mb.scores, ids.float()) and torch.equal(mb.advantages[:, 0], ids.float())
        seen += ids.tolist()
    assert sorted(seen) == list(range(8))


def test_minibatch_order_is_seeded():
    batch = make_batch()

    def order(seed):
        return [mb.input_ids[:, 0].tolist() for mb in batch.minibatches(4, torch.Generator().manual_seed(seed))]

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_grouped_minibatches_keep_the_answers_to_one_question_whole_and_in_order():
    batch = make_batch()  # 8 rows: 4 questions of 2 answers
    minibatches = [mb.input_ids[:, 0].tolist() for mb in batch.minibatches(4, torch.Generator().manual_seed(3), 2)]
    rows = [r for mb in minibatches for r in mb]
    assert sorted(rows) == list(range(8)) and all(len(mb) == 4 for mb in minibatches)
    assert all(rows[i] % 2 == 0 and rows[i + 1] == rows[i] + 1 for i in range(0, 8, 2))
    assert rows != list(range(8))  # shuffled, by blocks
    with pytest.raises(ValueError, match="whole blocks of 2"):
        batch.minibatch_rows(3, torch.Generator(), 2)


def test_chunks_are_consecutive_slices():
    chunks = list(make_batch().chunks(3))
    assert [len(c) for c in chunks] == [3, 3, 2]
    assert chunks[1].input_ids[:, 0].tolist() == [3, 4, 5]
    assert chunks[0].response_len == 3
