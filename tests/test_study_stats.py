"""The study's statistics, on synthetic rows: t quantiles, intervals that cover as often as they
claim, Welch's difference, and the refusal to average rows of different recipes."""

import math

import numpy as np
import pytest

from tinyinvo.study.stats import (analyze, format_analysis, mean_interval, read_timing, t_quantile,
                                  welch_interval)

# Student's t, 0.975 quantile, from printed tables
T_TABLE = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 10: 2.2281, 30: 2.0423}


@pytest.mark.parametrize("df, expected", T_TABLE.items())
def test_t_quantile_matches_the_printed_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_t_quantile_tends_to_the_normal_and_takes_fractional_df():
    assert t_quantile(0.975, 1e5) == pytest.approx(1.95996, abs=1e-4)
    assert T_TABLE[3] < t_quantile(0.975, 2.5) < T_TABLE[2]
    assert t_quantile(0.5, 7) == pytest.approx(0, abs=1e-7)


def test_mean_interval_of_three_seeds():
    mean, std, (low, high) = mean_interval([0.84, 0.85, 0.86])
    assert mean == pytest.approx(0.85) and std == pytest.approx(0.01)
    assert high - mean == pytest.approx(T_TABLE[2] * 0.01 / math.sqrt(3), rel=1e-4)
    assert mean - low == pytest.approx(high - mean)


@pytest.mark.parametrize("interval", ["mean", "welch"])
def test_95_percent_intervals_cover_the_truth_95_percent_of_the_time(interval):
    """3 seeds per model, the situation of the study: the interval must hold the true value in
    about 95% of 2000 synthetic experiments (binomial sd 0.49%: 93-97% allows 4 sd)."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        a = rng.normal(0.85, 0.004, 3)
        if interval == "mean":
            _, _, (low, high) = mean_interval(a)
            hits += low <= 0.85 <= high
        else:
            b = rng.normal(0.86, 0.012, 3)  # unequal spreads: what Welch is for
            _, (low, high) = welch_interval(a, b)
            hits += low <= 0.01 <= high
    assert 0.93 <= hits / 2000 <= 0.97


def test_welch_difference_sign_and_zero_spread():
    diff, (low, high) = welch_interval([0.80, 0.81, 0.82], [0.85, 0.86, 0.87])
    assert diff == pytest.approx(0.05) and 0 < low < diff < high
    assert welch_interval([0.5, 0.5], [0.7, 0.7]) == (pytest.approx(0.2), (pytest.approx(0.2),
                                                                            pytest.approx(0.2)))
    with pytest.raises(ValueError, match="at least 2 values"):
        welch_interval([0.5], [0.6, 0.7])


def row(model, seed, accuracy, lr=0.1):
    return dict(model=model, seed=seed, test_accuracy=accuracy, block="bottleneck", op="dw7",
                width=16, params=1, macs=2, lr=lr, epochs=15, batch_size=64)


def test_analyze_gives_each_model_its_interval_and_its_difference_to_the_reference():
    rows = ([row("bottleneck-inv7", s, a) for s, a in enumerate([0.85, 0.86, 0.84])]
            + [row("bottleneck-dw7", s, a) for s, a in enumerate([0.87, 0.88, 0.86])]
            + [row("lonely", 0, 0.5)])
    table = {entry["model"]: entry for entry in analyze(rows)}
    assert table["bottleneck-inv7"]["diff"] is None  # the reference
    assert table["bottleneck-dw7"]["n"] == 3 and table["bottleneck-dw7"]["diff"] == pytest.approx(0.02)
    low, high = table["bottleneck-dw7"]["diff_ci"]
    assert low < 0.02 < high
    assert table["lonely"]["diff"] is None and math.isnan(table["lonely"]["std"])


def test_analyze_refuses_to_average_rows_of_different_recipes():
    rows = [row("bottleneck-dw7", 0, 0.8, lr=0.1), row("bottleneck-dw7", 1, 0.9, lr=0.05)]
    with pytest.raises(ValueError, match=r"bottleneck-dw7 differ in \['lr'\]"):
        analyze(rows)


def test_analyze_joins_the_benchmarked_times_and_formats_a_markdown_table(tmp_path):
    rows = ([row("bottleneck-inv7", s, a) for s, a in enumerate([0.85, 0.86, 0.84])]
            + [row("bottleneck-dw7", s, a) for s, a in enumerate([0.87, 0.88, 0.86])])
    timing = tmp_path / "timing.csv"
    timing.write_text("model,threads,train_seconds_per_epoch,inference_ms_per_image\n"
                      "bottleneck-dw7,1,250.5,3.25\n")
    table = analyze(rows, timing=read_timing(timing))
    assert table[1]["train_seconds_per_epoch"] == 250.5 and table[0]["inference_ms_per_image"] is None
    text = format_analysis(table)
    assert "| bottleneck-dw7 | 0.1 | 3 | 87.00 | [84.52, 89.48] | 1.00 | +2.00 [-0.27, +4.27] |" in text
    assert text.count("\n") == 3 and "| 250 | 3.25 |" in text
