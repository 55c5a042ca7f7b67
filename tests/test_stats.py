import pytest

from ppo.tasks.stats import (
    chi2_quantile,
    chi2_sf,
    detectable,
    holm,
    interval_text,
    mcnemar_p,
    mean_difference,
    paired,
    pooled_sd,
    sd_interval,
    t_cdf,
    t_quantile,
    wilson_interval,
)


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


@pytest.mark.parametrize(
    "df, q, x",  # the printed chi-square table's values, odd and even df
    [
        (1, 0.95, 3.8415),
        (3, 0.025, 0.2158),
        (3, 0.975, 9.3484),
        (4, 0.025, 0.4844),
        (4, 0.975, 11.1433),
        (5, 0.975, 12.8325),
        (10, 0.5, 9.3418),
    ],  # fmt: skip
)
def test_chi_square_quantiles_match_the_table(df, q, x):
    assert chi2_quantile(q, df) == pytest.approx(x, abs=1e-4)
    assert chi2_sf(x, df) == pytest.approx(1 - q, abs=1e-5)


@pytest.mark.parametrize(
    "df, q, t",  # the printed t table's values, odd and even df
    [
        (1, 0.975, 12.7062),
        (2, 0.975, 4.3027),
        (3, 0.975, 3.1824),
        (3, 0.8, 0.9785),
        (4, 0.975, 2.7764),
        (10, 0.975, 2.2281),
        (30, 0.975, 2.0423),
        (3, 0.025, -3.1824),
    ],  # fmt: skip
)
def test_student_t_quantiles_match_the_table(df, q, t):
    assert t_quantile(q, df) == pytest.approx(t, abs=1e-4)
    assert t_cdf(t, df) == pytest.approx(q, abs=1e-5)


def test_the_distributions_refuse_what_they_cannot_answer_and_do_not_overflow():
    with pytest.raises(ValueError, match="need df >= 1"):
        chi2_sf(1.0, 0)
    with pytest.raises(ValueError, match="need df >= 1"):
        t_cdf(1.0, 0)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        chi2_quantile(1.5, 3)
    assert chi2_sf(0.0, 5) == 1.0 and t_cdf(0.0, 7) == 0.5
    assert chi2_quantile(0.5, 400) == pytest.approx(399.33, abs=0.01)  # terms in logs: no overflow at large df
    assert chi2_quantile(0.5, 401) == pytest.approx(400.33, abs=0.01)


def test_pooled_sd_takes_each_groups_deviations_from_its_own_mean():
    # pairs differing by 2 and 4: s^2 = (2^2 / 2 + 4^2 / 2) / 2 = 5; a group of one adds nothing
    assert pooled_sd([[10.0, 12.0], [20.0, 16.0], [99.0]]) == (pytest.approx(5**0.5), 2)
    # three runs and two: deviations 1, 0, 1 and 1, 1 from their means, s^2 = (1 + 0 + 1 + 1 + 1) / (2 + 1)
    assert pooled_sd([[1.0, 2.0, 3.0], [5.0, 7.0]]) == (pytest.approx((4 / 3) ** 0.5), 3)
    with pytest.raises(ValueError, match="at least two runs"):
        pooled_sd([[1.0], [2.0]])
    # 95 % interval: s sqrt(df / chi2_0.975) to s sqrt(df / chi2_0.025), at df = 4 from the table above
    assert sd_interval(2.0, 4) == pytest.approx((2 * (4 / 11.1433) ** 0.5, 2 * (4 / 0.4844) ** 0.5), rel=1e-4)
    assert sd_interval(2.0, 4, level=0.9)[0] > sd_interval(2.0, 4)[0]  # a narrower interval at a lower level


def test_the_detectable_difference_is_the_two_quantiles_times_the_standard_error():
    # normal: (1.95996 + 0.84162) x sd x sqrt(1/n_a + 1/n_b); Student's t at 3 df: 3.1824 + 0.9785
    assert detectable(1.0, 1, 1) == pytest.approx(2.80158 * 2**0.5, rel=1e-5)
    assert detectable(2.0, 2, 2) == pytest.approx(2.80158 * 2.0, rel=1e-5)
    assert detectable(1.0, 1, 1, power=0.5) == pytest.approx(1.95996 * 2**0.5, rel=1e-5)
    assert detectable(1.0, 1, 1, df=3) == pytest.approx(4.1609 * 2**0.5, rel=1e-4)


def test_the_mean_difference_is_a_t_test_at_the_pooled_sd():
    # one run against two, sd 1 at 2 df: se = sqrt(1 + 1/2); at 2 df P(T > t) = (1 - t / sqrt(2 + t^2)) / 2 exactly,
    # and the 0.975 quantile is 4.3027
    se = 1.5**0.5
    test = mean_difference([2.0], [0.0, 0.0], 1.0, 2)
    t = 2.0 / se
    assert test["diff"] == 2.0 and test["p"] == pytest.approx(1 - t / (2 + t**2) ** 0.5, rel=1e-6)
    assert (test["low"], test["high"]) == pytest.approx((2.0 - 4.3027 * se, 2.0 + 4.3027 * se), rel=1e-4)
    # the sign follows a - b, the p-value does not; two runs against two: se = sqrt(1/2 + 1/2), not sqrt(3/2)
    back = mean_difference([0.0, 0.0], [2.0], 1.0, 2)
    assert back["diff"] == -2.0 and back["p"] == pytest.approx(test["p"])
    both = mean_difference([2.0, 2.0], [0.0, 0.0], 1.0, 2)
    assert both["high"] - both["low"] == pytest.approx((test["high"] - test["low"]) / 1.5**0.5)
    assert mean_difference([1.0], [1.0], 1.0, 2)["p"] == pytest.approx(1.0)  # no gap: p = 1
