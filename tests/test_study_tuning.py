"""The tuning protocol: the search runs on a validation split, never on the test set, and the final
runs take each model's best learning rate."""

import pytest

import tinyinvo.backend
from tinyinvo.__main__ import main
from tinyinvo.study import results
from tinyinvo.study.tuning import choose_lrs, chosen_at_the_edge, format_tuning

from study_helpers import TINY


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setattr(tinyinvo.backend, "_current", "numpy")


def tuning_row(model, lr, accuracy, seed=0, split="validation"):
    return dict(model=model, lr=lr, test_accuracy=accuracy, seed=seed, eval_split=split)


def test_choose_lrs_takes_the_best_mean_over_seeds_and_the_smaller_rate_on_a_tie():
    rows = [tuning_row("a", 0.05, 0.60), tuning_row("a", 0.05, 0.70, seed=1),  # mean 0.65
            tuning_row("a", 0.1, 0.66), tuning_row("a", 0.1, 0.62, seed=1),    # mean 0.64
            tuning_row("b", 0.2, 0.5), tuning_row("b", 0.1, 0.5)]
    assert choose_lrs(rows, ["a", "b"]) == {"a": 0.05, "b": 0.1}
    assert "65.00%*" in format_tuning(rows)


def test_a_rate_chosen_at_the_edge_of_the_search_is_flagged():
    rows = [tuning_row("top", 0.1, 0.5), tuning_row("top", 0.2, 0.6),        # best at the largest
            tuning_row("bottom", 0.1, 0.6), tuning_row("bottom", 0.2, 0.5),  # best at the smallest
            tuning_row("inside", 0.1, 0.5), tuning_row("inside", 0.2, 0.6), tuning_row("inside", 0.4, 0.55),
            tuning_row("alone", 0.1, 0.5)]                                    # one rate: nothing to say
    assert chosen_at_the_edge(rows) == {"top": 0.2, "bottom": 0.1}
    assert format_tuning(rows).splitlines()[-1] == (
        "chosen at the edge of the search (a rate beyond it may score better): top 0.2, bottom 0.1")
    assert "edge" not in format_tuning(rows[4:])


def test_only_rows_of_the_design_that_runs_now_choose_its_rate(tmp_path):
    # inverted-inv7 was tuned once as built and again after its fix (static_start): the rows of
    # the first design must not take part in the choice for the second
    from tinyinvo.study.grid import STUDY_MODELS, solve_grid
    from tinyinvo.study.tuning import rows_of_designs

    spec = solve_grid(["inverted-inv7"], 32_000_000)[0]
    design = {column: getattr(spec, column) for column in results.DESIGN_COLUMNS}
    assert STUDY_MODELS["inverted-inv7"]["static_start"] and design["static_start"]
    now = [dict(tuning_row("inverted-inv7", lr, accuracy), **design) for lr, accuracy in ((0.1, 0.6), (0.2, 0.5))]
    before = [dict(row, static_start=False, test_accuracy=0.9) for row in now]
    other_width = [dict(now[0], width=spec.width + 1, lr=0.4, test_accuracy=0.95)]
    assert rows_of_designs(before + now + other_width, [spec]) == now
    assert choose_lrs(rows_of_designs(before + now + other_width, [spec]), [spec.name]) == {spec.name: 0.1}


def test_a_results_file_from_before_static_start_reads_as_static_start_false(tmp_path):
    row = {column: "" for column in results.COLUMNS if column != "static_start"}
    row.update(run_id="abc", model="m", seed="0", test_accuracy="0.5", zero_init_residual="True",
               nesterov="True", augment="True")
    path = tmp_path / "results.csv"
    path.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    (read,) = results.read_results(str(path))
    assert read["static_start"] is False and read["model"] == "m" and read["test_accuracy"] == 0.5
    # writing it back adds the column
    results.write_results(str(path), [read])
    assert "static_start" in path.read_text().splitlines()[0].split(",")


def test_choose_lrs_refuses_test_set_rows_and_missing_models():
    with pytest.raises(ValueError, match=r"rows of \['a'\] were scored on the test set"):
        choose_lrs([tuning_row("a", 0.1, 0.5, split="test")], ["a"])
    with pytest.raises(ValueError, match=r"no tuning rows for \['b'\]"):
        choose_lrs([tuning_row("a", 0.1, 0.5)], ["a", "b"])


def test_tuning_needs_a_validation_split(tmp_path, capsys):
    assert main(["compare", *TINY, "--tune-lrs", "0.05,0.1", "--out", str(tmp_path)]) == 2
    assert "error: --tune-lrs must not see the test set" in capsys.readouterr().err


def test_lr_from_refuses_a_file_scored_on_the_test_set(tmp_path, capsys):
    assert main(["compare", *TINY, "--out", str(tmp_path / "plain")]) == 0
    plain = str(tmp_path / "plain" / "results.csv")
    assert main(["compare", *TINY, "--lr-from", plain, "--out", str(tmp_path / "final")]) == 2
    assert "were scored on the test set" in capsys.readouterr().err


def test_tune_then_final_on_shapes(tmp_path):
    """Tune 2 models x 2 rates on held-out training images, then run both seeds of each model at
    its chosen rate on the test set; every row records its split and its rate."""
    tune = ["--validation", "200", "--tune-lrs", "0.01,0.2", "--seeds", "1"]
    assert main(["compare", *TINY, *tune, "--out", str(tmp_path / "tune")]) == 0
    tuned = results.read_results(tmp_path / "tune" / "results.csv")
    assert len(tuned) == 4 and {row["eval_split"] for row in tuned} == {"validation"}
    assert {row["n_test"] for row in tuned} == {32}  # the subset's 32 of the 200 held out
    chosen = choose_lrs(tuned, ["bottleneck-conv3", "bottleneck-dw3"])

    final = ["--lr-from", str(tmp_path / "tune" / "results.csv")]
    assert main(["compare", *TINY, *final, "--out", str(tmp_path / "final")]) == 0
    rows = results.read_results(tmp_path / "final" / "results.csv")
    assert len(rows) == 4 and {row["eval_split"] for row in rows} == {"test"}
    assert all(row["lr"] == chosen[row["model"]] for row in rows)
