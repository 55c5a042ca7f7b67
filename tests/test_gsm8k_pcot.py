import json
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from ppo.tasks.data import Example, check_data_dir, load_examples
from ppo.tasks.gsm8k_pcot import PcotConfig, Unconvertible, convert_all, to_program, write_pcot
from ppo.tasks.rewards import score_responses

GSM8K = SHARED_DATA / "gsm8k"
NATALIA = Example(
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    72.0,
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.",
)


def returned(program: str) -> float:
    """What the converted program returns. Run in-process: the converter builds programs from numbers, names and
    + - * / only (its syntax-tree check is tested below), never from the data's own code."""
    scope: dict = {}
    exec(compile(program, "<program>", "exec"), scope)
    return scope["solution"]()


def test_the_first_training_solution_becomes_this_program():
    assert to_program(NATALIA) == (
        "def solution():\n"
        f'    """{NATALIA.question}"""\n'
        "    clips_may = 48 / 2\n"
        "    clips_altogether_april = 48 + clips_may\n"
        "    result = clips_altogether_april\n"
        "    return result"
    )


def test_a_later_note_uses_an_earlier_result_by_name_unless_the_question_states_that_number():
    ex = Example("A box holds 3 pens and 6 pencils.", 12.0, "3*2 = <<3*2=6>>6 pens.\n6*2=<<6*2=12>>12 in all.")
    lines = to_program(ex).splitlines()
    assert lines[2:4] == ["    pens = 3 * 2", "    all = 6 * 2"]  # 6 is the question's pencils: a literal
    ex = Example("A box holds 3 pens.", 12.0, "3*2 = <<3*2=6>>6 pens.\n6*2=<<6*2=12>>12 in all.")
    assert to_program(ex).splitlines()[3] == "    all = pens * 2"


def test_names_are_unique_identifiers_with_a_fallback_and_no_keywords():
    ex = Example("q", 9.0, "<<1+1=2>>2 apples. <<2+1=3>>3 apples. Not: <<3*3=9>>9")
    lines = to_program(ex).splitlines()
    assert [line.split(" = ")[0].strip() for line in lines[2:5]] == ["apples", "apples_2", "not_"]
    ex = Example("q", 4.0, "<<2+2=4>>4.")
    assert to_program(ex).splitlines()[2] == "    step_1 = 2 + 2"


def test_signs_leading_zeros_and_brackets_make_valid_python():
    ex = Example("q", -4.0, "<<05+3=8>>8 apples. <<-5+3=-2>>-2 pears. <<2*-(4-2)/(0.5+0.5)=-4>>-4 plums.")
    program = to_program(ex)
    assert "apples = 5 + 3" in program and "pears = -5 + 3" in program and "plums = 2 * -(4 - 2) /" in program
    assert returned(program) == -4.0


def test_quotes_and_backslashes_in_the_question_still_parse():
    ex = Example('He said "two \\ three" and wrote """', 6.0, "<<2*3=6>>6 words.")
    assert returned(to_program(ex)) == 6.0


@pytest.mark.parametrize(
    "solution, reason",
    [
        ("Half of 48 is 24.", "no calculator notes"),
        ("<<10/3=3.33>>3.33 each.", "stated value"),
        ("<<2+2=4>>4 left.", "gold answer"),
        ("<<2**3=8>>8 cubes.", "not plain arithmetic"),
        ("<<__import__('os').getpid()=0>>0", "not plain arithmetic"),
        ("<<1/0=0>>0", "divides by zero"),
        ("<<" + "9" * 400 + "*1=5>>5", "not plain arithmetic"),  # a float overflows
        ("<<" + "9" * 5000 + "+1=5>>5", "not plain arithmetic"),  # too long for int()
        ("<<2\x00+3=5>>5", "not plain arithmetic"),
    ],
)
def test_what_cannot_be_a_program_is_left_out_with_its_reason(solution, reason):
    with pytest.raises(Unconvertible, match=reason):
        to_program(Example("q", 5.0, solution))
    rows, left_out = convert_all([Example("q", 5.0, solution), NATALIA])
    assert len(rows) == 1 and sum(left_out.values()) == 1


def test_every_converted_gsm8k_training_program_returns_the_gold_answer():
    examples = load_examples("gsm8k", str(GSM8K), "train")
    rows, left_out = convert_all(examples)
    assert len(rows) + sum(left_out.values()) == len(examples) == 7473
    assert len(rows) >= 7000  # 7,012 (93.8 %) on 2026-12-03
    for row in rows:
        assert abs(returned(row["answer_cot"]) - float(row["answer_value"])) <= 1e-6, row["item_id"]
    sample = rows[::350]  # and through the reward the RL arms use, in the sandbox
    scores = score_responses([r["answer_cot"] for r in sample], [float(r["answer_value"]) for r in sample],
                             answer_format="pcot")  # fmt: skip
    assert scores == [1.0] * len(sample)


def test_the_written_folder_is_a_gsm8k_pcot_data_dir(tmp_path):
    data = tmp_path / "gsm8k"
    data.mkdir()
    rows = [{"question": NATALIA.question, "answer": NATALIA.solution + "\n#### 72"},
            {"question": "q", "answer": "No notes here.\n#### 3"}]  # fmt: skip
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "test.jsonl").write_text(json.dumps({"question": "t", "answer": "#### 1"}) + "\n")
    path, written, left_out = write_pcot(PcotConfig(data_dir=str(data), out_dir=str(tmp_path / "out")))
    assert (written, dict(left_out)) == (1, {"the solution has no calculator notes": 1})
    check_data_dir("gsm8k", str(tmp_path / "out"), "pcot", ("train", "test"))
    train = load_examples("gsm8k", str(tmp_path / "out"), "train", "pcot")
    assert train == [Example(NATALIA.question, 72.0, to_program(NATALIA))]
    assert load_examples("gsm8k", str(tmp_path / "out"), "test")[0].answer == 1.0
    other = tmp_path / "other"
    other.mkdir()
    for name in ("train.jsonl", "test.jsonl"):
        (other / name).write_text((data / name).read_text())
    write_pcot(PcotConfig(data_dir=str(other), out_dir=str(tmp_path / "out")))  # a rerun from elsewhere links there
    assert (tmp_path / "out" / "test.jsonl").resolve() == (other / "test.jsonl").resolve()


def test_the_preset_prints_what_it_wrote_and_why_the_rest_was_left_out(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import gsm8k_pcot

    gsm8k_pcot.main(["--data-dir", str(GSM8K), "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "7012 of 7473 training solutions (93.8 %)" in out and "no note gives the gold answer: 364" in out
    with pytest.raises(SystemExit):
        gsm8k_pcot.main(["--data-dir", str(tmp_path / "none")])
