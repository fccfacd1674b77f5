"""Tests of tinyinvo.train: optimizer, schedule, checkpoints, exact resumption, the loop, the CLI."""

import json
import os
import signal

import numpy as np
import pytest

from tinyinvo.__main__ import main
from tinyinvo.backend import get_backend, set_backend
from tinyinvo.data import load
from tinyinvo.nn import BatchNorm2d, Conv2d, GlobalAvgPool, Linear, MaxPool2d, ReLU, Sequential
from tinyinvo.train import SGD, TrainConfig, Trainer, WarmupCosine, load_checkpoint, save_checkpoint
from tinyinvo.plumbing import sigterm_as_ctrl_c
from tinyinvo.train import plot_curves
from tinyinvo.train.optim import is_decayed
from tinyinvo.train.records import curves_title

METRIC_COLUMNS = ["epoch", "step", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy"]


@pytest.fixture(autouse=True)
def numpy_backend():
    """The numpy backend: no JIT compilation, and the same arithmetic in every run."""
    previous = get_backend()
    set_backend("numpy")
    yield
    set_backend(previous)


def small_net(seed, C=8):
    """A small CNN for shapes: 32x32 -> conv s2 -> conv -> pool -> conv -> pool -> 4x4 -> logits."""
    rng = np.random.default_rng(seed)

    def conv_bn_relu(Ci, Co, stride=1):
        conv = Conv2d(Ci, Co, 3, stride=stride, padding=1, bias=False, rng=rng)
        return [conv, BatchNorm2d(Co), ReLU()]

    return Sequential(*conv_bn_relu(3, C, stride=2), *conv_bn_relu(C, 2 * C), MaxPool2d(2),
                      *conv_bn_relu(2 * C, 2 * C), MaxPool2d(2), GlobalAvgPool(),
                      Linear(2 * C, 10, rng=rng))


# ---- optimizer ----
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_two_steps_match_hand_computation(nesterov):
    # lr 0.1, momentum 0.9, weight decay 0.1, every gradient 0.5, every parameter starting at 1.0
    params = {"conv.w": np.ones((1, 1, 1, 1)), "bn.gamma": np.ones(1), "fc.b": np.ones(1)}
    grads = {name: np.full_like(p, 0.5) for name, p in params.items()}
    optimizer = SGD(params, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.1)
    optimizer.step(grads)
    optimizer.step(grads)
    if not nesterov:
        # w: g=0.5+0.1*1=0.6, v=0.6, w=1-0.06=0.94; g=0.5+0.094=0.594, v=0.54+0.594=1.134, w=0.8266
        # b: v=0.5, b=0.95; v=0.45+0.5=0.95, b=0.855
        expected_weight, expected_other = 0.8266, 0.855
    else:
        # w: g=0.6, v=0.6, d=0.6+0.54=1.14, w=0.886;
        #    g=0.5886, v=1.1286, d=0.5886+1.01574=1.60434, w=0.725566
        # b: v=0.5, d=0.95, b=0.905; v=0.95, d=0.5+0.855=1.355, b=0.7695
        expected_weight, expected_other = 0.725566, 0.7695
    np.testing.assert_allclose(params["conv.w"].ravel(), [expected_weight], rtol=1e-12)
    np.testing.assert_allclose(params["bn.gamma"], [expected_other], rtol=1e-12)  # no decay
    np.testing.assert_allclose(params["fc.b"], [expected_other], rtol=1e-12)  # no decay


def test_weight_decay_only_on_weights_of_a_real_model():
    decayed = {name for name, p in small_net(0).parameters().items() if is_decayed(p)}
    assert decayed == {"layers.0.w", "layers.3.w", "layers.7.w", "layers.12.w"}  # 3 convs, 1 linear


def test_sgd_keeps_float32_and_checks_gradients():
    params = {"w": np.ones((2, 2), np.float32)}
    optimizer = SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
    optimizer.step({"w": np.ones((2, 2), np.float32)})
    assert params["w"].dtype == np.float32
    with pytest.raises(KeyError, match="no gradient for"):
        optimizer.step({})


# ---- schedule ----
def test_warmup_cosine_values():
    schedule = WarmupCosine(0.1, total_steps=100, warmup_steps=10)
    assert schedule(0) == pytest.approx(0.01)     # warm-up start: lr0 / W
    assert schedule(9) == pytest.approx(0.1)      # warm-up end: lr0
    assert schedule(10) == pytest.approx(0.1)     # cosine start
    assert schedule(55) == pytest.approx(0.05)    # half way through the cosine
    assert schedule(100) == pytest.approx(0.0)    # cosine end
    assert 0 < schedule(99) < 1e-4                # the last step used still moves
    assert WarmupCosine(0.1, total_steps=100)(0) == pytest.approx(0.1)  # no warm-up
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(0.1, total_steps=10, warmup_steps=11)


# ---- checkpoint files ----
def example_contents(value):
    rng = np.random.default_rng(7)
    rng.random(3)
    return dict(model={"conv.w": np.full((2, 3), value, np.float32), "bn.running_var": np.arange(3.0)},
                optimizer={"conv.w": np.full((2, 3), -value, np.float32)},
                config={"train": {"lr": 0.1, "nesterov": True}, "model": None},
                progress={"epoch": 1, "step": 10, "running": {"loss_sum": 0.1 + 0.2}},
                rng=rng.bit_generator.state, history=[{"epoch": 1, "test_accuracy": 1 / 3}])


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "checkpoint.npz"
    contents = example_contents(1.5)
    save_checkpoint(path, contents)
    loaded = load_checkpoint(path)
    for group in ("model", "optimizer"):
        assert loaded[group].keys() == contents[group].keys()
        for name, array in contents[group].items():
            assert loaded[group][name].dtype == array.dtype
            np.testing.assert_array_equal(loaded[group][name], array)
    for record in ("config", "progress", "rng", "history"):
        assert loaded[record] == contents[record]  # floats too: exactly
    restored = np.random.default_rng()
    restored.bit_generator.state = loaded["rng"]
    original = np.random.default_rng(7)
    original.random(3)
    np.testing.assert_array_equal(restored.random(5), original.random(5))
    with np.load(path, allow_pickle=False) as archive:  # a plain archive, no pickled objects
        assert json.loads(archive["history"].item()) == contents["history"]


def test_failed_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, example_contents(1.0))

    def savez_that_fails_half_way(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_that_fails_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, example_contents(2.0))
    monkeypatch.undo()
    np.testing.assert_array_equal(load_checkpoint(path)["model"]["conv.w"], np.full((2, 3), 1.0))
    assert os.listdir(tmp_path) == ["checkpoint.npz"]  # no temporary file left behind


# ---- exact resumption ----
RESUME_CONFIG = TrainConfig(epochs=2, batch_size=16, lr=0.05, warmup_epochs=0.5, nesterov=True,
                            label_smoothing=0.1)  # augment=True: crops and flips use the generator


@pytest.fixture(scope="module")
def resume_data():
    return load("shapes", subset=(64, 32), seed=3)


@pytest.fixture(scope="module")
def straight_run(resume_data):
    """Two epochs without a break: the reference for every resumed run."""
    previous = get_backend()
    set_backend("numpy")
    trainer = Trainer(small_net(0, C=4), resume_data, RESUME_CONFIG, progress=False)
    trainer.fit()
    set_backend(previous)
    return trainer


def assert_same_run(trainer, reference):
    for name, array in reference.model.state_dict().items():  # parameters and BatchNorm buffers
        np.testing.assert_array_equal(trainer.model.state_dict()[name], array, err_msg=name)
    for name, array in reference.optimizer.state_dict().items():
        np.testing.assert_array_equal(trainer.optimizer.state_dict()[name], array, err_msg=name)
    assert (trainer.epoch, trainer.step) == (reference.epoch, reference.step)
    for column in METRIC_COLUMNS:
        assert [row[column] for row in trainer.history] == [row[column] for row in reference.history]


def interrupt_at(event, step):
    """A callback that raises KeyboardInterrupt (as Ctrl-C would) at ``event`` once ``step`` is done."""
    def callback(name, trainer):
        if name == event and trainer.step == step:
            raise KeyboardInterrupt
    return callback


def send_signal_inside(part, trainer, step, signum):
    """Deliver a real signal inside ``part`` of training step number ``step``: "forward" (which
    updates BatchNorm's running statistics), "backward" or "optimizer" (the weight update)."""
    owner, name = (trainer.optimizer, "step") if part == "optimizer" else (trainer.model, part)
    original = getattr(owner, name)

    def part_then_signal(*args, **kwargs):
        result = original(*args, **kwargs)
        # the step being taken now is number `step` (and not the test set's forward passes)
        if trainer.step == step - 1 and trainer.model.training:
            os.kill(os.getpid(), signum)
        return result
    setattr(owner, name, part_then_signal)


@pytest.mark.parametrize("how, event, step, step_in_epoch", [
    ("callback", "epoch_end", 4, 0),       # at the epoch boundary: 1 epoch + resume + 1 epoch
    ("callback", "step_end", 6, 2),        # in the middle of the second epoch
    # a real Ctrl-C (SIGINT) or `kill PID` (SIGTERM, as the train command handles it) in each
    # part of a step of the first epoch: the step finishes, then the run stops after it
    *[(signum, part, 3, 3) for signum in ("SIGINT", "SIGTERM")
      for part in ("forward", "backward", "optimizer")],
])
def test_resumed_run_equals_unbroken_run(straight_run, resume_data, tmp_path, how, event, step,
                                         step_in_epoch):
    # Python's own Ctrl-C handler, as in a terminal: a process started with `&` by a script (a CI
    # runner may be one) inherits SIGINT ignored, and then Ctrl-C rightly does nothing
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_and_resume(straight_run, resume_data, tmp_path, how, event, step, step_in_epoch)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_and_resume(straight_run, resume_data, tmp_path, how, event, step, step_in_epoch):
    first = Trainer(small_net(0, C=4), resume_data, RESUME_CONFIG, out_dir=tmp_path, progress=False)
    if how == "callback":
        first.callbacks.append(interrupt_at(event, step))
    else:
        send_signal_inside(event, first, step, getattr(signal, how))
    with pytest.raises(KeyboardInterrupt), sigterm_as_ctrl_c():
        first.fit()
    saved = load_checkpoint(tmp_path / "checkpoint.npz")
    assert (saved["progress"]["step"], saved["progress"]["step_in_epoch"]) == (step, step_in_epoch)

    # a fresh process would build a new model (other initial weights) and restore the checkpoint
    resumed = Trainer(small_net(1, C=4), resume_data, RESUME_CONFIG, out_dir=tmp_path,
                      progress=False).restore(saved)
    resumed.fit()
    assert_same_run(resumed, straight_run)


def test_restore_refuses_other_settings_or_data(resume_data, tmp_path):
    first = Trainer(small_net(0, C=4), resume_data, RESUME_CONFIG, out_dir=tmp_path, progress=False,
                    callbacks=[interrupt_at("step_end", 2)])
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    saved = load_checkpoint(tmp_path / "checkpoint.npz")
    other_lr = TrainConfig(**{**vars(RESUME_CONFIG), "lr": 0.2})
    with pytest.raises(ValueError, match=r"differs from the checkpoint's in \['lr'\]"):
        Trainer(small_net(0, C=4), resume_data, other_lr, progress=False).restore(saved)
    more_images = load("shapes", subset=(70, 32), seed=3)  # still 4 batches, another shuffle
    resumed = Trainer(small_net(0, C=4), more_images, RESUME_CONFIG, progress=False).restore(saved)
    with pytest.raises(RuntimeError, match="did not reproduce the saved random state"):
        resumed.fit()


# ---- the loop ----
def test_short_training_learns_shapes(tmp_path):
    data = load("shapes", subset=(1000, 300))
    config = TrainConfig(epochs=6, batch_size=32, lr=0.1, warmup_epochs=0.5, augment=False)
    events = []
    trainer = Trainer(small_net(0), data, config, out_dir=tmp_path, progress=False,
                      callbacks=[lambda event, trainer: events.append(event)])
    history = trainer.fit()
    assert len(history) == 6 and trainer.step == 6 * (1000 // 32)
    assert events.count("step_end") == trainer.step and events.count("epoch_end") == 6
    assert history[-1]["test_accuracy"] > 0.25  # chance is 0.1; this run reaches about 0.45
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.3
    assert all(row["images_per_second"] > 0 for row in history)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz", "config.json", "curves.png",
                                            "metrics.csv", "metrics.jsonl"]


# ---- the commands ----
TINY_RUN = ["--model", "resnet20", "--width", "4", "--subset", "64,40", "--batch-size", "32",
            "--backend", "numpy"]


def test_cli_train_then_eval(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", *TINY_RUN, "--epochs", "2", "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "final test accuracy" in printed and os.path.join(out, "curves.png") in printed
    with open(os.path.join(out, "curves.png"), "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(out, "metrics.csv")) as file:
        lines = file.read().splitlines()
    assert len(lines) == 3 and lines[0].startswith(",".join(METRIC_COLUMNS))
    with open(os.path.join(out, "metrics.jsonl")) as file:
        rows = [json.loads(line) for line in file]
    assert [row["epoch"] for row in rows] == [1, 2]
    with open(os.path.join(out, "config.json")) as file:  # how the run was made, readable
        record = json.load(file)
    assert record["train"] == {**vars(TrainConfig()), "epochs": 2, "batch_size": 32}
    assert record["model"]["name"] == "resnet20" and record["model"]["width"] == 4
    assert record["data"]["source"] == dict(name="shapes", data_dir=None, subset=[64, 40], seed=0)
    assert (record["data"]["n_train"], record["data"]["n_test"]) == (64, 40)
    assert set(record["provenance"]) == {"tinyinvo", "numpy", "numba", "commit"}
    assert record["provenance"]["numpy"] == np.__version__ and record["backend"] == "numpy"

    assert main(["eval", "--checkpoint", os.path.join(out, "checkpoint.npz")]) == 0
    printed = capsys.readouterr().out
    assert f"accuracy {rows[-1]['test_accuracy']:.2%}" in printed  # the same model, the same test set
    assert "circle" in printed and "of 4 images" in printed  # per class: 40 test images, 10 classes


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_cli_interrupt_then_resume_finishes_the_same_run(tmp_path, capsys, monkeypatch, how):
    from tinyinvo.train import trainer as trainer_module
    straight, broken = str(tmp_path / "straight"), str(tmp_path / "broken")
    assert main(["train", *TINY_RUN, "--epochs", "2", "--out", straight]) == 0

    evaluate = trainer_module.evaluate
    sigterm_handler = signal.getsignal(signal.SIGTERM)

    def interrupt_during_evaluation(*args, **kwargs):
        if how == "kill":
            os.kill(os.getpid(), signal.SIGTERM)  # the train command turns it into Ctrl-C
        raise KeyboardInterrupt
    monkeypatch.setattr(trainer_module, "evaluate", interrupt_during_evaluation)
    assert main(["train", *TINY_RUN, "--epochs", "2", "--out", broken]) == 130
    assert f"python -m tinyinvo train --resume --out {broken}" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGTERM) is sigterm_handler  # put back after the run
    monkeypatch.setattr(trainer_module, "evaluate", evaluate)

    assert main(["train", "--resume", "--out", broken]) == 0
    expected = load_checkpoint(os.path.join(straight, "checkpoint.npz"))
    resumed = load_checkpoint(os.path.join(broken, "checkpoint.npz"))
    for name, array in expected["model"].items():
        np.testing.assert_array_equal(resumed["model"][name], array, err_msg=name)
    for column in METRIC_COLUMNS:
        assert [row[column] for row in resumed["history"]] == \
            [row[column] for row in expected["history"]]


def test_cli_refuses_unclear_requests(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--resume", "--out", out]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert main(["train", "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    os.makedirs(out)
    save_checkpoint(os.path.join(out, "checkpoint.npz"), example_contents(1.0))
    assert main(["train", "--resume", "--out", out, "--lr", "0.5", "--epochs", "3"]) == 2
    assert "remove --epochs, --lr" in capsys.readouterr().err
    assert main(["train", "--out", out]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_curves_show_accuracy_in_percent_whole_epochs_and_what_was_trained():
    history = [dict(epoch=epoch, train_loss=2.0 / epoch, test_loss=2.1 / epoch,
                    train_accuracy=0.3 * epoch, test_accuracy=0.25 * epoch) for epoch in (1, 2, 3)]
    record = dict(model=dict(name="rednet26", width=16), train=vars(TrainConfig(epochs=3)),
                  data=dict(name="shapes", n_train=2000))
    figure = plot_curves(history, title=curves_title(record))
    loss, accuracy = figure.axes
    assert accuracy.get_ylabel() == "accuracy (%)"
    np.testing.assert_allclose(accuracy.lines[0].get_ydata(), [30, 60, 90])
    for axes in (loss, accuracy):
        ticks = [tick for tick in axes.get_xticks() if 1 <= tick <= 3]
        assert ticks == [1, 2, 3]
    title = figure.get_suptitle()
    for part in ("rednet26", "width 16", "shapes", "2000 train images", "3 epochs", "lr 0.1",
                 "momentum 0.9", "batch 128", "seed 0"):
        assert part in title


def test_a_diverging_run_says_so():
    """An absurd learning rate overflows the weights; the epoch ends with a warning that names
    what went non-finite, instead of a silent 10% accuracy."""
    data = load("shapes", subset=(64, 32))
    config = TrainConfig(epochs=1, batch_size=32, lr=1e30, warmup_epochs=0, augment=False)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="epoch 1: training diverged"):
        Trainer(small_net(0), data, config, progress=False).fit()
