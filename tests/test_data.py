import json

import pytest
from conftest import SHARED_DATA

from ppo.tasks.data import Example, load_gsm8k, parse_gsm8k_answer, read_gsm8k_jsonl
from ppo.train.data_order import batch_indices


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


def test_parse_gsm8k_answer():
    assert parse_gsm8k_answer("2 * 3 = <<2*3=6>>6 apples\n#### 1,006") == ("2 * 3 = <<2*3=6>>6 apples", 1006.0)
    assert parse_gsm8k_answer("no marker") == ("no marker", None)


def test_read_jsonl(tmp_path):
    write_jsonl(
        tmp_path / "train.jsonl",
        [{"question": "q1", "answer": "r\n#### 4"}, "", {"question": "q2", "answer": "#### -2.5"}],
    )
    assert load_gsm8k(str(tmp_path), "train") == [Example("q1", 4.0, "r"), Example("q2", -2.5, "")]


@pytest.mark.parametrize(
    "bad, why",
    [
        ("{not json", "JSONDecodeError"),
        ('{"question": "q"}', "KeyError"),
        ('{"question": "q", "answer": "#### many"}', "numeric"),
        ('{"question": 12, "answer": "#### 1"}', "the question must be a non-empty string \\(got 12\\)"),
        ('{"question": "  ", "answer": "#### 1"}', "the question must be a non-empty string"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, bad, why):
    write_jsonl(tmp_path / "train.jsonl", [{"question": "q", "answer": "#### 1"}, bad])
    with pytest.raises(ValueError, match=rf"train.jsonl:2: .*{why}"):
        read_gsm8k_jsonl(tmp_path / "train.jsonl")


def test_missing_or_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_gsm8k(str(tmp_path), "train")
    (tmp_path / "train.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no examples"):
        load_gsm8k(str(tmp_path), "train")


def test_shared_gsm8k_loads():
    train, test = load_gsm8k(str(SHARED_DATA / "gsm8k"), "train"), load_gsm8k(str(SHARED_DATA / "gsm8k"), "test")
    assert (len(train), len(test)) == (7473, 1319)
    assert train[0].answer == 72.0 and "Natalia" in train[0].question


def test_batch_indices_cover_each_example_once_per_epoch_and_are_deterministic():
    n, bs = 10, 4
    stream = [i for step in range(5) for i in batch_indices(n, bs, step, seed=3)]  # 20 = two epochs
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert stream[:10] != stream[10:]
    assert batch_indices(n, bs, 2, seed=3) == batch_indices(n, bs, 2, seed=3)
    assert batch_indices(n, bs, 0, seed=3) != batch_indices(n, bs, 0, seed=4)


def test_svamp_loads_and_cuts_its_own_answer_line():
    from ppo.tasks.data import load_examples

    train, test = (
        load_examples("svamp", str(SHARED_DATA / "svamp"), "train"),
        load_examples("svamp", str(SHARED_DATA / "svamp"), "test"),
    )
    assert (len(train), len(test)) == (3076, 1000)
    assert train[0].answer == 203.0 and "the answer is" not in train[0].solution
    assert test[0].solution is None and test[0].answer == 14.0


def test_svamp_bad_rows(tmp_path):
    from ppo.tasks.data import read_reft_json

    (tmp_path / "a.json").write_text('[{"question": "q", "answer_value": "x"}]')
    with pytest.raises(ValueError, match="non-numeric"):
        read_reft_json(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('[{"question": "q"}]')
    with pytest.raises(ValueError, match="missing"):
        read_reft_json(tmp_path / "b.json")
    (tmp_path / "c.json").write_text('[{"question": "q",\n "answer_value": 1,,}]')
    with pytest.raises(ValueError, match=r"c.json:2: malformed"):
        read_reft_json(tmp_path / "c.json")


def test_dev_split():
    from ppo.tasks.data import split_dev

    examples = [Example(str(i), float(i)) for i in range(20)]
    train, dev = split_dev(examples, 5, seed=1)
    assert len(dev) == 5 and len(train) == 15 and not set(e.question for e in dev) & set(e.question for e in train)
    assert split_dev(examples, 5, seed=1) == (train, dev)
    with pytest.raises(ValueError):
        split_dev(examples, 20)


def test_pcot_loads_programs_and_trains_on_them_verbatim():
    from ppo.tasks.data import load_examples
    from ppo.tasks.formats import format_target
    from ppo.tasks.rewards import extract_answers

    train = load_examples("svamp", str(SHARED_DATA / "svamp"), "train", "pcot")
    assert len(train) == 3043 and train[0].solution.startswith("def solution():")
    assert format_target(train[0], "pcot") == train[0].solution
    golds = extract_answers([format_target(ex, "pcot") for ex in train[:64]], "pcot")
    assert golds == pytest.approx([ex.answer for ex in train[:64]])  # the annotated programs run to the gold
    assert load_examples("svamp", str(SHARED_DATA / "svamp"), "test", "pcot")[0].answer == 14.0


def test_pcot_without_a_program_file_names_the_missing_path(tmp_path):
    from ppo.tasks.data import load_examples

    with pytest.raises(FileNotFoundError, match="train_python_sdp.json"):
        load_examples("gsm8k", str(tmp_path), "train", "pcot")


@pytest.mark.parametrize(
    "text, words",
    [
        ('[\n{"question": "q", "answer_value": "1"},\n{"question": "r"}\n]', r"d.json:3: row 1 is missing the field"),
        ('[\n{"question": "q",\n "answer_value": "x"}]', r"d.json:2: row 0 has a non-numeric answer_value 'x'"),
        ('{"question": "q"}', "not a JSON list"),
        ("[]", "no examples"),
        ('[\n{"question": null, "answer_value": "1"}]', r"d.json:2: row 0: the question must be a non-empty string"),
        ('[\n{"question": "q", "answer_value": "1"},\n{"question" "q"}]', r"d.json:3: malformed JSON"),
    ],
)
def test_reft_json_errors_name_the_file_and_line(tmp_path, text, words):
    from ppo.tasks.data import read_reft_json

    (tmp_path / "d.json").write_text(text)
    with pytest.raises(ValueError, match=words):
        read_reft_json(tmp_path / "d.json")


def test_gsm8k_pcot_reads_a_local_program_file(tmp_path):
    from ppo.tasks.data import load_examples

    rows = [
        {"item_id": "gsm8k_0", "question": "q", "answer_cot": "def solution():\n    return 72", "answer_value": "72"}
    ]
    (tmp_path / "train_python_sdp.json").write_text(json.dumps(rows))
    write_jsonl(tmp_path / "test.jsonl", [{"question": "t", "answer": "so #### 5"}])
    train = load_examples("gsm8k", str(tmp_path), "train", "pcot")
    assert train == [Example("q", 72.0, "def solution():\n    return 72")]
    assert load_examples("gsm8k", str(tmp_path), "test", "pcot")[0].answer == 5.0
