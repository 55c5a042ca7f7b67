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


def padded_batch() -> RolloutBatch:
    """3 rows of prompt 3 + response 4 columns: prompts of 1, 2 and 1 tokens, responses of 2, 1 and 0 tokens."""
    batch = make_batch(B=3, L=7, T=4)
    batch.attention_mask = torch.tensor([[0, 0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0]])
    batch.response_mask = torch.tensor([[1.0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    return batch


def test_trimming_drops_only_the_columns_that_are_padding_in_every_row():
    from ppo.core.buffer import content_columns

    batch = padded_batch()
    columns, keep = content_columns(batch.attention_mask, batch.response_mask)
    assert (columns, keep) == (slice(1, 5), 2)  # the longest prompt starts at column 1, the longest response is 2
    small = batch.trimmed()
    assert small.input_ids.shape == (3, 4) and small.response_len == 2
    assert torch.equal(small.attention_mask, batch.attention_mask[:, 1:5])
    assert torch.equal(small.response_mask, batch.response_mask[:, :2]) and torch.equal(small.scores, batch.scores)
    for name in ("old_logprobs", "ref_logprobs", "old_values", "rewards", "advantages", "returns"):
        assert torch.equal(getattr(small, name), getattr(batch, name)[:, :2]), name
    # every response empty: one response column stays, so the passes keep their shapes
    assert content_columns(batch.attention_mask[2:], batch.response_mask[2:]) == (slice(2, 4), 1)


def test_longest_first_orders_whole_blocks_by_their_longest_response():
    from ppo.core.buffer import longest_first

    mask = torch.tensor([[1.0, 0, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 0], [1, 1, 0]])
    rows = torch.tensor([4, 5, 0, 1, 2, 3])  # a minibatch's shuffled rows, in blocks of 2
    assert longest_first(rows, mask, 2).tolist() == [2, 3, 4, 5, 0, 1]  # blocks of longest 3, 2, 1
    assert longest_first(rows, mask).tolist() == [2, 4, 5, 0, 1, 3]  # ties keep their order
