"""The compare study: budget solving with the finer knobs, the pure run function, results.csv
(atomic, resumable), the figures, the CLI end to end on shapes, and the published figures."""

import csv
import os
import pickle
import re
import warnings

import pytest

import tinyinvo.backend
from tinyinvo.__main__ import main
from tinyinvo.count import analytic_cost, count, solve_budget
from tinyinvo.data.published import PUBLISHED
from tinyinvo.models import build
from tinyinvo.study import results, runs
from tinyinvo.study.grid import STUDY_MODELS, parse_macs, solve_grid
from tinyinvo.study.plots import plot_published
from tinyinvo.train.resume import model_from_config

from study_helpers import TINY

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = ["accuracy_vs_macs.png", "accuracy_vs_params.png", "accuracy_vs_time.png",
           "published_imagenet.png"]


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    """Tiny models train fast on the numpy backend, with nothing to compile."""
    monkeypatch.setattr(tinyinvo.backend, "_current", "numpy")


def assert_png(path):
    with open(path, "rb") as file:
        assert file.read(8) == PNG_SIGNATURE, path
    assert os.path.getsize(path) > 5000, path  # an image with content, not an empty canvas


# ---- the budget ----

def test_every_study_model_meets_40M_within_5_percent_and_counts_agree():
    """Width alone cannot put RedNet-26 (widths step by 16) or the inverted inv7 net on 40M: the
    knobs can, and a model built with them counts (measured) what the analytic count says."""
    specs = solve_grid(list(STUDY_MODELS), 40_000_000)
    assert [spec.name for spec in specs] == list(STUDY_MODELS)
    for spec in specs:
        assert abs(spec.macs / 40e6 - 1) <= 0.05, spec
    by_name = {spec.name: spec for spec in specs}
    assert by_name["bottleneck-conv3"].expansion == 4 and by_name["inverted-dw3"].divisor == 8
    for name in ("bottleneck-inv7", "inverted-inv7"):  # the ones that need a knob moved
        model = build(**by_name[name].build_kwargs())
        measured = count(model, (3, 32, 32), batch_size=0).total
        assert (measured.params, measured.macs) == (by_name[name].params, by_name[name].macs)
        assert measured == analytic_cost(model.config, 32)


def test_knobs_keep_the_defaults_and_are_recorded_for_checkpoints():
    assert build("mbv2", width=16).config == build("mbv2", width=16, divisor=8,
                                                   expansion=6).config
    assert build("resnet26", width=8).config["expansion"] == 4
    assert build("resnet20").config["expansion"] is None
    model = build(block="inverted", op="dw3", width=12, divisor=4, expansion=3)
    assert (model.config["divisor"], model.config["expansion"]) == (4, 3)
    rebuilt = model_from_config(dict(model=model.config, train=dict(seed=0)))
    assert rebuilt.num_params() == model.num_params() != build("mbv2", width=12).num_params()
    with pytest.raises(ValueError, match="has no divisor"):
        build("resnet26", divisor=4)
    with pytest.raises(ValueError, match="has no expansion"):
        build("resnet20", expansion=2)


def test_a_budget_no_model_can_meet_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="cannot meet .* closest is width 16"):
        solve_budget("bottleneck", "inv7", 26, 1000)
    assert main(["compare", "--macs", "1k", "--models", "bottleneck-inv7,inverted-inv7",
                 "--out", str(tmp_path)]) == 2
    assert re.search(r"^error: --macs: 2 model\(s\) cannot meet the budget of 0.00M",
                     capsys.readouterr().err)
    assert os.listdir(tmp_path) == []


def test_parse_macs():
    assert [parse_macs(text) for text in ("40M", "1.5g", "400k", "4e7")] == \
        [40_000_000, 1_500_000_000, 400_000, 40_000_000]
    with pytest.raises(ValueError, match="40M"):
        parse_macs("forty")


# ---- the command end to end ----

def test_compare_end_to_end_writes_results_and_figures_and_skips_finished_runs(
        tmp_path, monkeypatch, capsys):
    calls = []
    original = runs.train_run

    def counting_train_run(run, **kwargs):
        calls.append((run.model.name, run.seed))
        return original(run, **kwargs)

    monkeypatch.setattr(runs, "train_run", counting_train_run)
    out = tmp_path / "study"
    assert main(["compare", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bottleneck-conv3" in printed and "vs budget" in printed and "4 runs" in printed
    assert sorted(calls) == [("bottleneck-conv3", 0), ("bottleneck-conv3", 1),
                             ("bottleneck-dw3", 0), ("bottleneck-dw3", 1)]

    path = out / "results.csv"
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == list(results.COLUMNS)
        assert len(list(reader)) == 4
    rows = results.read_results(path)
    for row in rows:
        assert abs(row["macs"] / 3e6 - 1) <= 0.05
        assert 0 <= row["test_accuracy"] <= 1 and row["n_train"] == 64 and row["n_test"] == 32
        assert row["train_seconds"] > 0 and row["inference_images_per_s"] > 0
        assert row["params"] == build(block=row["block"], op=row["op"], depth=26,
                                      width=row["width"], expansion=row["expansion"]).num_params()
    assert len({row["run_id"] for row in rows}) == 4
    for name in FIGURES:
        assert_png(out / name)
    assert (out / "analysis.md").read_text().splitlines()[2].startswith("| bottleneck-conv3 |")
    assert not [name for name in os.listdir(out) if name.startswith(".results-")]

    # a rerun trains nothing; after losing one row it trains exactly that run, to the same result
    assert main(["compare", *TINY, "--out", str(out)]) == 0
    assert len(calls) == 4
    lost, kept = rows[1], [rows[0], *rows[2:]]
    results.write_results(path, kept)
    main(["compare", *TINY, "--out", str(out)])
    assert calls[4:] == [(lost["model"], lost["seed"])]
    again = {row["run_id"]: row for row in results.read_results(path)}[lost["run_id"]]
    assert again["test_accuracy"] == lost["test_accuracy"] and again["test_loss"] == lost["test_loss"]


def test_run_function_is_pure_and_picklable():
    """The same config trains to the same result, in this process or another one."""
    spec = solve_grid(["bottleneck-dw3"], 3_000_000)[0]
    run = runs.Run(spec, seed=3, recipe=dict(epochs=1, batch_size=32),
                   data=dict(name="shapes", subset=(32, 16)))
    copy = pickle.loads(pickle.dumps(run))
    assert copy.key() == run.key() != runs.Run(spec, seed=4, recipe=run.recipe, data=run.data).key()
    moved = runs.Run(spec, 3, run.recipe, {**run.data, "data_dir": None})
    assert moved.key() == run.key()  # where the data lives is not part of the run
    first, second = runs.train_run(run, progress=False), runs.train_run(copy, progress=False)
    for key in ("run_id", "test_accuracy", "test_loss", "params", "macs", "width"):
        assert first[key] == second[key]


def test_write_results_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    row = dict.fromkeys(results.COLUMNS, 1)
    results.write_results(path, [row])
    before = path.read_bytes()

    def broken_writerows(self, rows):
        raise OSError("disk full")

    monkeypatch.setattr(csv.DictWriter, "writerows", broken_writerows)
    with pytest.raises(OSError, match="disk full"):
        results.write_results(path, [row, row])
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["results.csv"]


# ---- published figures ----

def test_every_published_entry_has_a_source_and_sane_numbers():
    assert len({model.name for model in PUBLISHED}) == len(PUBLISHED)
    for model in PUBLISHED:
        assert "Table" in model.source or "table" in model.source, model
        assert model.op in ("conv", "involution", "depthwise")
        assert 1 < model.params_m < 100 and 0.1 < model.macs_g < 20 and 60 < model.top1 < 90
        assert model.resolution >= 224
    families = {model.family for model in PUBLISHED}
    assert {"ResNet", "RedNet", "MobileNetV2", "EfficientNet", "ConvNeXt"} <= families
    rednet = {model.name: model for model in PUBLISHED}["RedNet-26"]
    assert rednet.params_m == pytest.approx(build("rednet26", stem="imagenet", num_classes=1000)
                                            .num_params() / 1e6, rel=0.01)


def test_plot_published(tmp_path):
    figure = plot_published(PUBLISHED, tmp_path / "published.png")
    assert_png(tmp_path / "published.png")
    assert len(figure.axes) == 2 and figure.axes[0].get_xscale() == "log"


# ---- the inverted nets' fix ----

def test_study_inverted_nets_take_the_fix_and_the_grid_keeps_the_published_defaults():
    specs = {spec.name: spec for spec in solve_grid(list(STUDY_MODELS), 32_000_000)}
    assert all(spec.zero_init_residual for spec in specs.values())
    assert [name for name, spec in specs.items() if spec.op_norm == "group"] == ["inverted-inv7"]
    assert [name for name, spec in specs.items() if spec.static_start] == ["inverted-inv7"]
    # a run's id hashes build_kwargs: the models without static_start keep the ids of their runs
    # made before the switch existed
    assert all(("static_start" in spec.build_kwargs()) == spec.static_start for spec in specs.values())
    # build's own defaults stay the papers' (lecture 7 diagnoses the as-built net)
    config = build(block="inverted", op="inv7", width=11, expansion=4).config
    assert (config["op_norm"], config["zero_init_residual"], config["static_start"]) == ("batch", False, False)
    assert build("mbv2", width=16).config["zero_init_residual"] is False
    assert build("rednet26", width=16).config["zero_init_residual"] is True


def test_zero_init_residual_starts_every_inverted_residual_block_as_the_identity():
    model = build("mbv2", width=8, zero_init_residual=True)
    gammas = [name for name, array in model.state_dict().items()
              if name.endswith("gamma") and not array.any()]
    plain = build("mbv2", width=8)
    assert gammas and not any(not array.any() for name, array in plain.state_dict().items()
                              if name.endswith("gamma"))
    # one zeroed gamma per inverted block with a residual (the Add containers)
    from tinyinvo.nn import Add
    assert len(gammas) == sum(isinstance(layer, Add) for _, layer in model.named_layers())


def test_fixed_inverted_involution_net_stays_finite_where_the_as_built_one_overflows(monkeypatch):
    """Two short epochs at a high learning rate on shapes. The as-built net (BatchNorm after each
    involution, no zero-init) overflows in eval mode; with the fix every loss and every running
    statistic stays finite."""
    import numpy as np

    from tinyinvo import data as datasets
    from tinyinvo.train.trainer import TrainConfig, Trainer, make_rng

    monkeypatch.setattr(tinyinvo.backend, "_current", "numba")  # the fast one: 2 x 2 epochs
    spec = solve_grid(["inverted-inv7"], 16_000_000)[0]
    dataset = datasets.load("shapes", subset=(128, 64))
    config = TrainConfig(epochs=2, batch_size=32, lr=0.2, warmup_epochs=0)
    test_losses = {}
    for fixed in (True, False):
        kwargs = spec.build_kwargs() if fixed else {**spec.build_kwargs(), "op_norm": "batch",
                                                     "zero_init_residual": False, "static_start": False}
        model = build(**kwargs, rng=make_rng(0, 0))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the as-built net's overflow
            history = Trainer(model, dataset, config, progress=False).fit()
        test_losses[fixed] = [row["test_loss"] for row in history]
        if fixed:
            assert all(np.isfinite(row["train_loss"]) for row in history)
            for name, array in model.state_dict().items():
                assert np.isfinite(array).all(), name
    assert np.isfinite(test_losses[True]).all()
    assert not np.isfinite(test_losses[False]).all()


def test_compare_takes_the_benchmarked_times_and_refuses_a_timing_file_without_every_model(
        tmp_path, capsys):
    out, timing = tmp_path / "study", tmp_path / "timing.csv"
    timing.write_text("model,train_seconds_per_epoch,inference_ms_per_image\n"
                      "bottleneck-conv3,123.4,5.25\n")
    assert main(["compare", *TINY, "--out", str(out), "--timing", str(timing)]) == 2
    assert re.search(r"error: --timing .* has no times of \['bottleneck-dw3'\]", capsys.readouterr().err)
    assert not out.exists()  # refused before any run

    with open(timing, "a") as file:
        file.write("bottleneck-dw3,234.6,x\n")
    assert main(["compare", *TINY, "--out", str(out), "--timing", str(timing)]) == 2
    assert "line 3, column inference_ms_per_image: expected a number" in capsys.readouterr().err

    timing.write_text(timing.read_text().replace(",x", ",6.5"))
    assert main(["compare", *TINY, "--out", str(out), "--timing", str(timing)]) == 0
    assert "| 123 | 5.25 |" in capsys.readouterr().out
    assert "| 235 | 6.50 |" in (out / "analysis.md").read_text()


def test_figures_draw_the_95_percent_interval_and_the_chance_line_when_a_model_is_near_it():
    from tinyinvo.study.plots import study_figures, summarize
    from tinyinvo.study.stats import mean_interval

    rows = [dict(model="m", block="bottleneck", op="dw7", width=8, expansion=4, divisor=None,
                 params=10**6, macs=3 * 10**7, seed=seed, test_accuracy=accuracy, lr=0.1,
                 train_seconds=100.0 + seed, inference_images_per_s=500.0)
            for seed, accuracy in enumerate([0.80, 0.82, 0.87])]
    entry = summarize(rows)[0]
    _, _, (low, high) = mean_interval([0.80, 0.82, 0.87])
    assert (entry["test_accuracy_ci_low"], entry["test_accuracy_ci_high"]) == (low, high)
    axes = study_figures(rows)["accuracy_vs_macs.png"].axes[0]
    bar = next(collection for collection in axes.collections)  # the accuracy error bar
    (_, y_low), (_, y_high) = bar.get_segments()[0]
    assert (y_low, y_high) == pytest.approx((100 * low, 100 * high))
    assert not any(line.get_label().startswith("chance") for line in axes.lines)  # 80% and up:
    assert "chance (10%) is far below the axis" in axes.figure.get_suptitle()  # off the scale
    for row, accuracy in zip(rows, [0.20, 0.25, 0.30]):  # a model near chance: the line is drawn
        row["test_accuracy"] = accuracy
    axes = study_figures(rows)["accuracy_vs_macs.png"].axes[0]
    assert any(line.get_ydata()[0] == 10 and line.get_label().startswith("chance")
               for line in axes.lines)


def seeds_of(model, op, accuracies):
    return [dict(model=model, block="bottleneck", op=op, width=8, expansion=4, divisor=None,
                 params=10**6, macs=3 * 10**7, seed=seed, test_accuracy=accuracy, lr=0.1,
                 train_seconds=100.0 + seed, inference_images_per_s=500.0)
            for seed, accuracy in enumerate(accuracies)]


def test_the_time_figure_takes_the_benchmarked_times_and_needs_every_model():
    from tinyinvo.study.plots import study_figures

    rows = seeds_of("m", "dw7", [0.80, 0.82, 0.87]) + seeds_of("n", "dw3", [0.7, 0.7])
    timing = [dict(model="m", train_seconds_per_epoch=250.0, inference_ms_per_image=2.5),
              dict(model="n", train_seconds_per_epoch=150.0, inference_ms_per_image=1.5)]
    train, inference = study_figures(rows, timing=timing)["accuracy_vs_time.png"].axes
    assert "benchmarked" in train.get_xlabel() and "benchmarked" in inference.get_xlabel()
    points = {bar.get_label(): tuple(bar.lines[0].get_xydata()[0]) for bar in train.containers}
    assert points == {"m": (250.0, pytest.approx(83.0)), "n": (150.0, 70.0)}
    with pytest.raises(ValueError, match="the timing rows have no n"):
        study_figures(rows, timing=timing[:1])


def test_the_difference_figure_shows_each_models_welch_interval_against_the_reference():
    from tinyinvo.study.plots import DIFFERENCE_FIGURE, study_figures
    from tinyinvo.study.stats import welch_interval

    reference = [0.85, 0.86, 0.84]
    rows = (seeds_of("bottleneck-inv7", "inv7", reference) + seeds_of("m", "dw7", [0.87, 0.88, 0.86])
            + seeds_of("lonely", "dw3", [0.5]))
    axes = study_figures(rows)[DIFFERENCE_FIGURE].axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["m"]  # one seed: no interval
    (x_low, _), (x_high, _) = next(iter(axes.collections)).get_segments()[0]
    _, (low, high) = welch_interval(reference, [0.87, 0.88, 0.86])
    assert (x_low, x_high) == pytest.approx((100 * low, 100 * high))
    assert DIFFERENCE_FIGURE not in study_figures(rows[3:])  # no reference: no figure
