import pytest

from ppo.tasks.stats import holm, interval_text, mcnemar_p, paired, wilson_interval


def test_wilson_interval_matches_the_textbook_values():
    # 17 of 100: 0.1089 to 0.2555 by Wilson's formula worked by hand; 0 of 10 stays inside [0, 1]
    assert wilson_interval(17, 100) == pytest.approx((0.10894, 0.25548), abs=1e-5)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert interval_text(17, 100) == "17.0 % [10.9, 25.5], n = 100"
    with pytest.raises(ValueError, match="need 0 <= right <= n"):
        wilson_interval(3, 0)


def test_mcnemar_is_the_exact_binomial_tail_on_the_discordant_questions():
    assert mcnemar_p(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 2**12)
    assert mcnemar_p(0, 5) == pytest.approx(2 / 2**5)
    assert mcnemar_p(3, 3) == 1.0 and mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(2, 10) == mcnemar_p(10, 2)


def test_paired_counts_only_the_questions_the_models_disagree_on():
    a = [True, True, False, False, True]
    b = [True, False, True, True, True]
    assert paired(a, b) == {"gain": 20.0, "only_a": 1, "only_b": 2, "p": 1.0}
    with pytest.raises(ValueError, match="the same questions on both sides"):
        paired(a, b[:3])


def test_holm_multiplies_the_ith_smallest_by_m_minus_i_and_keeps_the_order_monotone():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06 (step-down)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, 0.5]) == [1.0, 1.0]
    assert holm([0.02]) == [0.02]
    assert holm([]) == []
