"""The training loop: mini-batch SGD over epochs, a test-set evaluation after each epoch, and
(when given an output directory) metrics, learning curves and a checkpoint after each epoch.

    data = tinyinvo.data.load("shapes", subset=2000)
    model = tinyinvo.models.build("rednet26", width=16, rng=make_rng(0, INIT_STREAM))
    trainer = Trainer(model, data, TrainConfig(epochs=5), out_dir="runs/demo")
    history = trainer.fit()                      # one dict of metrics per epoch
    evaluate(model, data.x_test, data.y_test, mean=data.mean, std=data.std)["accuracy"]

One training step:  logits = model(x);  loss, dlogits = softmax_cross_entropy(logits, y);
model.backward(dlogits);  optimizer.step(model.gradients(), lr=schedule(step)).

Reproducibility. Every random choice comes from the run's seed: the initial weights from the
generator (seed, INIT_STREAM), the order and augmentation of epoch e's batches from the generator
(seed, EPOCH_STREAM, e). The batches of an epoch can therefore be made again at any time, and this
is how a run continues from a checkpoint, even one saved in the middle of an epoch, exactly as if
it had never stopped: re-create the epoch's generator, draw the batches already trained on again
and skip them, and go on from there.
"""

import contextlib
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

from tinyinvo.backend import get_backend
from tinyinvo.data import iterate_batches, load
from tinyinvo.models import build
from tinyinvo.nn import softmax_cross_entropy
from tinyinvo.train.checkpoint import load_checkpoint, save_checkpoint
from tinyinvo.train.metrics import write_metrics
from tinyinvo.train.optim import SGD
from tinyinvo.train.plots import plot_curves
from tinyinvo.train.schedule import WarmupCosine

INIT_STREAM, EPOCH_STREAM = 0, 1  # the two uses of the seed: initial weights, batches of an epoch
CHECKPOINT_NAME = "checkpoint.npz"


def make_rng(seed, *stream):
    """A Generator for one use of the run's seed, e.g. ``make_rng(seed, EPOCH_STREAM, epoch)``.

    Different streams give independent generators; the same stream always gives the same one.
    """
    return np.random.default_rng([seed, *stream])


@dataclass
class TrainConfig:
    """The settings of a training run. The defaults suit a small network on a CPU."""

    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.1              # peak learning rate, reached at the end of the warm-up
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4   # on weights only, see tinyinvo.train.optim
    warmup_epochs: float = 1.0   # linear warm-up length, then cosine decay to 0
    label_smoothing: float = 0.0
    augment: bool = True         # random crop and flip of the training images
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got epochs={self.epochs}, "
                             f"batch_size={self.batch_size}")


class Trainer:
    """Trains ``model`` on ``data`` with SGD, a warm-up + cosine schedule and cross-entropy loss.

    Inputs:
    - model: a Layer mapping (N, 3, H, W) images to (N, num_classes) logits
    - data: a tinyinvo.data.Dataset (uint8 images, int64 labels, classes, mean, std)
    - config: a TrainConfig (None: the defaults)
    - out_dir: directory for metrics.csv, metrics.jsonl, curves.png and checkpoint.npz after each
      epoch (None: keep everything in memory)
    - data_source: the keyword arguments of ``tinyinvo.data.load`` that gave ``data``; saved in the
      checkpoint so that a resumed run or ``eval`` can load the data again
    - callbacks: functions ``callback(event, trainer)``, called with event "step_end" after each
      optimizer step and "epoch_end" after each epoch's evaluation (they may raise to stop)
    - progress: show a progress bar per epoch and print a summary line after each epoch

    State, readable at any time: ``epoch`` (epochs finished), ``step`` (optimizer steps taken),
    ``step_in_epoch``, ``history`` (list of per-epoch metric rows).
    """

    def __init__(self, model, data, config=None, *, out_dir=None, data_source=None, callbacks=(),
                 progress=True):
        self.model = model
        self.data = data
        self.config = config = TrainConfig() if config is None else config
        self.out_dir = out_dir
        self.data_source = data_source
        self.callbacks = list(callbacks)
        self.progress = progress
        # the last, partial batch of an epoch is dropped (a tiny batch upsets BatchNorm)
        self.steps_per_epoch = len(data.y_train) // config.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch_size {config.batch_size} is larger than the training set "
                             f"({len(data.y_train)} images): use a smaller batch size")
        total_steps = config.epochs * self.steps_per_epoch
        warmup_steps = min(total_steps, round(config.warmup_epochs * self.steps_per_epoch))
        self.schedule = WarmupCosine(config.lr, total_steps, warmup_steps)
        self.optimizer = SGD(model.parameters(), config.lr, momentum=config.momentum,
                             nesterov=config.nesterov, weight_decay=config.weight_decay)
        self.epoch = 0
        self.step = 0
        self.step_in_epoch = 0
        self.running = _zero_sums()
        self.rng_state = make_rng(config.seed, EPOCH_STREAM, 0).bit_generator.state
        self.history = []

    @property
    def checkpoint_path(self):
        return None if self.out_dir is None else os.path.join(self.out_dir, CHECKPOINT_NAME)

    # ---- the loop ----
    def fit(self):
        """Train until ``config.epochs`` epochs are done, from wherever this trainer stands.

        Returns the history: a list with one dict of metrics per epoch. On Ctrl-C
        (KeyboardInterrupt) the current state is checkpointed (when there is an out_dir) and the
        KeyboardInterrupt is raised again; ``fit()`` or a resume carries on from that point.
        """
        try:
            while self.epoch < self.config.epochs:
                self._train_epoch()
                self._finish_epoch()
        except KeyboardInterrupt:
            if self.out_dir is not None:
                self.save_checkpoint()
            raise
        return self.history

    def _train_epoch(self):
        config = self.config
        rng, batches = self._epoch_batches()
        self.model.train()
        with progress_bar(self.progress, total=self.steps_per_epoch, initial=self.step_in_epoch,
                          desc=f"epoch {self.epoch + 1}/{config.epochs}") as bar:
            started = time.perf_counter()
            for x, y in batches:
                lr = self.schedule(self.step)
                logits = self.model.forward(x)
                loss, dlogits = softmax_cross_entropy(logits, y, config.label_smoothing)
                self.model.backward(dlogits)
                with _interrupts_held():  # a Ctrl-C here waits: a checkpoint never holds half a step
                    self.optimizer.step(self.model.gradients(), lr)
                    self._count_step(loss, logits, y, rng)
                    self.running["seconds"] += time.perf_counter() - started
                bar.update(1)
                bar.set_postfix(dict(loss=f"{self._mean('loss_sum'):.3f}",
                                     acc=f"{self._mean('correct'):.1%}",
                                     img_s=f"{self.running['seen'] / self.running['seconds']:.0f}",
                                     lr=f"{lr:.4f}"))
                self._call("step_end")
                started = time.perf_counter()  # the callbacks' time does not count as training time

    def _epoch_batches(self):
        """The generator and the batches of the current epoch, positioned at ``step_in_epoch``."""
        config = self.config
        rng = make_rng(config.seed, EPOCH_STREAM, self.epoch)
        batches = iterate_batches(self.data.x_train, self.data.y_train, config.batch_size, rng=rng,
                                  shuffle=True, augment=config.augment, drop_last=True,
                                  mean=self.data.mean, std=self.data.std)
        for _ in range(self.step_in_epoch):  # a resumed epoch: skip the batches already trained on
            next(batches)
        if self.step_in_epoch and rng.bit_generator.state != self.rng_state:
            raise RuntimeError("replaying this epoch's batches did not reproduce the saved random "
                               "state: the training data or the data code differ from the "
                               "interrupted run's")
        return rng, batches

    def _count_step(self, loss, logits, y, rng):
        """Book-keeping of one finished step (only called with interrupts held)."""
        self.running["loss_sum"] += loss * len(y)
        self.running["correct"] += int(np.count_nonzero(logits.argmax(axis=1) == y))
        self.running["seen"] += len(y)
        self.step += 1
        self.step_in_epoch += 1
        self.rng_state = rng.bit_generator.state

    def _mean(self, key):
        return self.running[key] / self.running["seen"]

    def _finish_epoch(self):
        """Evaluate on the test set, record the epoch's row, write the outputs."""
        started = time.perf_counter()
        test = evaluate(self.model, self.data.x_test, self.data.y_test, self.config.batch_size,
                        mean=self.data.mean, std=self.data.std, progress=self.progress)
        row = dict(epoch=self.epoch + 1, step=self.step, lr=self.schedule(self.step - 1),
                   train_loss=self._mean("loss_sum"), train_accuracy=self._mean("correct"),
                   test_loss=test["loss"], test_accuracy=test["accuracy"],
                   images_per_second=self.running["seen"] / self.running["seconds"],
                   train_seconds=self.running["seconds"], eval_seconds=time.perf_counter() - started)
        with _interrupts_held():
            self.history.append(row)
            self.epoch += 1
            self.step_in_epoch = 0
            self.running = _zero_sums()
            self.rng_state = make_rng(self.config.seed, EPOCH_STREAM, self.epoch).bit_generator.state
        _warn_if_diverged(self.model, row)
        if self.out_dir is not None:
            write_metrics(self.history, self.out_dir)
            plot_curves(self.history, os.path.join(self.out_dir, "curves.png"),
                        title=os.path.basename(os.path.normpath(self.out_dir)))
            self.save_checkpoint()
        if self.progress:
            tqdm.write(f"epoch {row['epoch']:>3}/{self.config.epochs}  "
                       f"train loss {row['train_loss']:.4f} acc {row['train_accuracy']:6.2%}  "
                       f"test loss {row['test_loss']:.4f} acc {row['test_accuracy']:6.2%}  "
                       f"{row['images_per_second']:.0f} img/s  lr {row['lr']:.4f}")
        self._call("epoch_end")

    def _call(self, event):
        for callback in self.callbacks:
            callback(event, self)

    # ---- checkpoints ----
    def save_checkpoint(self, path=None):
        """Save everything needed to continue this run to ``path`` (default out_dir/checkpoint.npz)."""
        path = self.checkpoint_path if path is None else path
        if path is None:
            raise ValueError("this trainer has no out_dir: pass save_checkpoint a path")
        data = self.data
        config = dict(train=asdict(self.config), model=getattr(self.model, "config", None),
                      data=dict(source=self.data_source, name=data.name, classes=list(data.classes),
                                mean=data.mean.tolist(), std=data.std.tolist()),
                      backend=get_backend())
        progress = dict(epoch=self.epoch, step=self.step, step_in_epoch=self.step_in_epoch,
                        steps_per_epoch=self.steps_per_epoch, running=self.running)
        save_checkpoint(path, dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                                   config=config, progress=progress, rng=self.rng_state,
                                   history=self.history))
        return path

    def restore(self, contents):
        """Continue from checkpoint ``contents`` (as returned by ``load_checkpoint``)."""
        saved_config = contents["config"]["train"]
        differing = sorted(key for key, value in asdict(self.config).items()
                           if saved_config.get(key) != value)
        if differing:
            raise ValueError(f"this trainer's config differs from the checkpoint's in {differing}: "
                             f"use TrainConfig(**checkpoint['config']['train'])")
        progress = contents["progress"]
        if progress["steps_per_epoch"] != self.steps_per_epoch:
            raise ValueError(f"the checkpoint has {progress['steps_per_epoch']} steps per epoch, this "
                             f"trainer {self.steps_per_epoch}: the data or the batch size differ")
        self.model.load_state_dict(contents["model"])
        self.optimizer.load_state_dict(contents["optimizer"])
        self.epoch, self.step = progress["epoch"], progress["step"]
        self.step_in_epoch, self.running = progress["step_in_epoch"], progress["running"]
        self.rng_state = contents["rng"]
        self.history = contents["history"]
        return self

    @classmethod
    def from_checkpoint(cls, path, *, data=None, data_dir=None, out_dir=None, **trainer_options):
        """Rebuild the model, reload the data and restore the state saved at ``path``.

        Inputs: data (a Dataset; None: load it as the saved run did), data_dir (where that data
        lives now, if it moved), out_dir (None: the checkpoint's directory), and further Trainer
        options (callbacks, progress).
        """
        contents = load_checkpoint(path)
        run = contents["config"]
        source = run["data"]["source"]
        if data_dir is not None and source is not None:
            source = {**source, "data_dir": data_dir}
        if data is None:
            data = load_data(source)
        out_dir = os.path.dirname(os.path.abspath(path)) if out_dir is None else out_dir
        trainer = cls(model_from_config(run), data, TrainConfig(**run["train"]), out_dir=out_dir,
                      data_source=source, **trainer_options)
        return trainer.restore(contents)


def progress_bar(show, iterable=None, **kwargs):
    """A tqdm bar over batches, or none when ``show`` is False. ``disable`` is passed only to turn the
    bar off, so the environment's ``TQDM_DISABLE=1`` (and other TQDM_* settings) still apply."""
    if not show:
        kwargs["disable"] = True
    return tqdm(iterable, unit="batch", leave=False, **kwargs)


def _warn_if_diverged(model, row):
    """A RuntimeWarning when an epoch ends with a non-finite loss or model state (say, BatchNorm
    running statistics that overflowed): such a run goes on, but its accuracy means nothing."""
    broken = [name for name in ("train_loss", "test_loss") if not math.isfinite(row[name])]
    broken += [name for name, array in model.state_dict().items() if not np.isfinite(array).all()][:3]
    if broken:
        warnings.warn(f"epoch {row['epoch']}: training diverged (not finite: {', '.join(broken)}); "
                      f"try a lower --lr or a longer --warmup-epochs", RuntimeWarning, stacklevel=3)


def evaluate(model, x, y, batch_size=256, *, mean, std, progress=False):
    """Loss and accuracy of ``model`` in eval mode (BatchNorm uses its running statistics).

    Inputs:
    - model: a Layer mapping (N, C, H, W) images to (N, num_classes) logits
    - x: uint8 images (N, C, H, W); y: int64 labels (N,)
    - batch_size: images per forward pass
    - mean, std: per-channel statistics (C,) of the training set, to normalise x
    - progress: show a progress bar
    Returns a dict: loss (mean cross-entropy), accuracy, per_class_accuracy (num_classes,) array
    (nan for a class without test images), predictions (N,) int array.
    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    loss_sum, predictions = 0.0, []
    batches = iterate_batches(x, y, batch_size, shuffle=False, augment=False, mean=mean, std=std)
    try:
        for xb, yb in progress_bar(progress, batches, total=math.ceil(len(y) / batch_size), desc="test"):
            logits = model.forward(xb)
            loss, _ = softmax_cross_entropy(logits, yb)
            loss_sum += loss * len(yb)
            predictions.append(logits.argmax(axis=1))
    finally:
        model.train(was_training)
    predictions = np.concatenate(predictions)
    num_classes = logits.shape[1]
    hits = np.bincount(y[predictions == y], minlength=num_classes)
    counts = np.bincount(y, minlength=num_classes)
    per_class = np.divide(hits, counts, out=np.full(num_classes, np.nan), where=counts > 0)
    return dict(loss=loss_sum / len(y), accuracy=float(np.mean(predictions == y)),
                per_class_accuracy=per_class, predictions=predictions)


def load_data(source):
    """Load a data set from the keyword arguments of ``tinyinvo.data.load`` saved in a checkpoint."""
    if source is None:
        raise ValueError("this checkpoint does not record how its data was loaded (it was trained "
                         "on a Dataset made in Python): pass the data explicitly (--data NAME)")
    source = dict(source)
    if isinstance(source.get("subset"), list):  # JSON stored the (n_train, n_test) tuple as a list
        source["subset"] = tuple(source["subset"])
    return load(source.pop("name"), **source)


def model_from_config(run):
    """A freshly initialised model of the architecture recorded in a checkpoint's config."""
    if run["model"] is None:
        raise ValueError("this checkpoint's model was not made by tinyinvo.models.build, so it "
                         "cannot be rebuilt from the checkpoint: build it in Python and call "
                         "model.load_state_dict(load_checkpoint(path)['model'])")
    return build(**run["model"], rng=make_rng(run["train"]["seed"], INIT_STREAM))


def _zero_sums():
    """Running sums over the current epoch's training batches."""
    return dict(loss_sum=0.0, correct=0, seen=0, seconds=0.0)


@contextlib.contextmanager
def _interrupts_held():
    """Hold back Ctrl-C (SIGINT), and SIGTERM where it means the same, until the block is done,
    then raise KeyboardInterrupt.

    Only signals that would raise KeyboardInterrupt anyway (Python's default SIGINT handler, which
    Jupyter uses too; the train command gives SIGTERM the same handler) and only in the main thread
    (the only one that may set signal handlers); elsewhere the block runs as it is.
    """
    held = [] if threading.current_thread() is not threading.main_thread() else [
        signum for signum in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(signum) is signal.default_int_handler]
    received = []
    previous = {signum: signal.signal(signum, lambda number, frame: received.append(number))
                for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise KeyboardInterrupt
