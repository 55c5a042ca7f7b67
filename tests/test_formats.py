import pytest

from ppo.tasks.data import Example
from ppo.tasks.formats import drop_long_prompts, format_prompt, format_target


def test_prompt_templates(tokenizer):
    assert format_prompt("What is 2+2?", "reft") == "Question:\nWhat is 2+2?\nAnswer reasoning:\n"
    with pytest.raises(ValueError):
        format_prompt("q", "fancy")
    kept, dropped = drop_long_prompts([Example("a", 1.0), Example("a b c d e f", 1.0)], tokenizer, "reft", 6)
    assert (len(kept), dropped) == (1, 1)


def test_ncot_target_drops_calculator_notes_and_ends_with_the_trigger():
    ex = Example("q", 24.0, "She sold 48/2 = <<48/2=24>>24 clips.")
    assert format_target(ex) == "She sold 48/2 = 24 clips.\nTherefore, the answer is: 24"
    assert format_target(Example("q", 2.5, "r")).endswith("is: 2.5")


def test_pcot_target_is_the_program_verbatim():
    program = 'def solution():\n    """q"""\n    return 2 <<1'
    assert format_target(Example("q", 4.0, program), "pcot") == program
    with pytest.raises(ValueError, match="no chain of thought"):
        format_target(Example("q", 4.0), "pcot")
