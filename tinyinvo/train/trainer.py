"""The training loop: mini-batch SGD over epochs, a test-set evaluation after each epoch, and
(when given an output directory) a checkpoint, metrics, learning curves and config.json after
each epoch.

    data = tinyinvo.data.load("shapes", subset=2000)
    model = tinyinvo.models.build("rednet26", width=16, rng=make_rng(0, INIT_STREAM))
    trainer = Trainer(model, data, TrainConfig(epochs=5), out_dir="runs/demo")
    history = trainer.fit()                      # one dict of metrics per epoch
    evaluate(model, data.x_test, data.y_test, mean=data.mean, std=data.std)["accuracy"]

One training step:  logits = model(x);  loss, dlogits = softmax_cross_entropy(logits, y);
model.backward(dlogits);  optimizer.step(model.gradients(), lr=schedule(step)).

A run continues from a checkpoint, even one saved in the middle of an epoch, exactly as if it had
never stopped: re-create the epoch's generator (tinyinvo.train.config), draw the batches already
trained on again and skip them, and go on from there. A step is all or nothing: Ctrl-C (or
SIGTERM) during its forward pass, backward pass or weight update waits until the step is done, so a
checkpoint never holds BatchNorm statistics or weights of a step it does not count.
"""

import math
import os
import time
import warnings

import numpy as np
from tqdm.auto import tqdm

from tinyinvo.data import iterate_batches
from tinyinvo.nn import softmax_cross_entropy
from tinyinvo.plumbing import interrupts_held, load_data, remove_leftovers
from tinyinvo.train import resume
from tinyinvo.train.checkpoint import load_checkpoint
from tinyinvo.train.config import EPOCH_STREAM, TrainConfig, make_rng
from tinyinvo.train.evaluate import evaluate, progress_bar
from tinyinvo.train.optim import SGD
from tinyinvo.train.records import write_config, write_epoch_outputs
from tinyinvo.train.schedule import WarmupCosine

CHECKPOINT_NAME = "checkpoint.npz"


class Trainer:
    """Trains ``model`` on ``data`` with SGD, a warm-up + cosine schedule and cross-entropy loss.

    Inputs:
    - model: a Layer mapping (N, 3, H, W) images to (N, num_classes) logits
    - data: a tinyinvo.data.Dataset (uint8 images, int64 labels, classes, mean, std)
    - config: a TrainConfig (None: the defaults)
    - out_dir: directory for config.json (when training starts) and metrics.csv, metrics.jsonl,
      curves.png and checkpoint.npz after each epoch (None: keep everything in memory)
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
        An OSError while writing the outputs (a full disk) stops the run; the files keep their
        previous versions.
        """
        if self.out_dir is not None:
            remove_leftovers(self.out_dir)
            record = resume.run_record(self)
            write_config(record, self.out_dir)
            if self.history:  # resumed: files that a full disk kept at an older epoch catch up
                write_epoch_outputs(self.history, record, self.out_dir)
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
                with interrupts_held():  # a Ctrl-C here waits: a checkpoint never holds part of a step
                    logits = self.model.forward(x)  # in train mode this updates BatchNorm's statistics
                    loss, dlogits = softmax_cross_entropy(logits, y, config.label_smoothing)
                    self.model.backward(dlogits)
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
        with interrupts_held():
            self.history.append(row)
            self.epoch += 1
            self.step_in_epoch = 0
            self.running = _zero_sums()
            self.rng_state = make_rng(self.config.seed, EPOCH_STREAM, self.epoch).bit_generator.state
        _warn_if_diverged(self.model, row)
        if self.out_dir is not None:  # the checkpoint first: the other files can be made from it
            self.save_checkpoint()
            write_epoch_outputs(self.history, resume.run_record(self), self.out_dir)
        if self.progress:
            tqdm.write(f"epoch {row['epoch']:>3}/{self.config.epochs}  "
                       f"train loss {row['train_loss']:.4f} acc {row['train_accuracy']:6.2%}  "
                       f"test loss {row['test_loss']:.4f} acc {row['test_accuracy']:6.2%}  "
                       f"{row['images_per_second']:.0f} img/s  lr {row['lr']:.4f}")
        self._call("epoch_end")

    def _call(self, event):
        for callback in self.callbacks:
            callback(event, self)

    # ---- checkpoints (tinyinvo.train.resume) ----
    def save_checkpoint(self, path=None):
        """Save everything needed to continue this run to ``path`` (default out_dir/checkpoint.npz)."""
        path = self.checkpoint_path if path is None else path
        if path is None:
            raise ValueError("this trainer has no out_dir: pass save_checkpoint a path")
        resume.save_run(self, path)
        return path

    def restore(self, contents):
        """Continue from checkpoint ``contents`` (as returned by ``load_checkpoint``)."""
        return resume.restore_run(self, contents)

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
        trainer = cls(resume.model_from_config(run), data, TrainConfig(**run["train"]),
                      out_dir=out_dir, data_source=source, **trainer_options)
        return trainer.restore(contents)


def _warn_if_diverged(model, row):
    """A RuntimeWarning when an epoch ends with a non-finite loss or model state (say, BatchNorm
    running statistics that overflowed): such a run goes on, but its accuracy means nothing."""
    broken = [name for name in ("train_loss", "test_loss") if not math.isfinite(row[name])]
    broken += [name for name, array in model.state_dict().items() if not np.isfinite(array).all()][:3]
    if broken:
        warnings.warn(f"epoch {row['epoch']}: training diverged (not finite: {', '.join(broken)}); "
                      f"try a lower --lr or a longer --warmup-epochs", RuntimeWarning, stacklevel=3)


def _zero_sums():
    """Running sums over the current epoch's training batches."""
    return dict(loss_sum=0.0, correct=0, seen=0, seconds=0.0)
