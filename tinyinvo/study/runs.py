"""One run of the study: train one model with one seed, then measure it. A pure function of its
config (``Run``), so runs can go to other processes or machines in any order; only the caller
writes results.

    row = train_run(Run(model=spec, seed=0, recipe=dict(epochs=15), data=dict(name="shapes")))
"""

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass, field, fields

from tinyinvo.backend import get_backend
from tinyinvo.count.analytic import analytic_cost
from tinyinvo.models import build
from tinyinvo.plumbing import load_data
from tinyinvo.provenance import provenance
from tinyinvo.study.grid import ModelSpec
from tinyinvo.train.config import INIT_STREAM, TrainConfig, make_rng
from tinyinvo.train.evaluate import evaluate
from tinyinvo.train.trainer import CHECKPOINT_NAME, Trainer

INFERENCE_BATCH = 256  # images per forward pass when timing inference
RECIPE_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name != "seed")


@dataclass(frozen=True)
class Run:
    """Everything a run depends on.

    - model: the ModelSpec (architecture at its solved width)
    - seed: initial weights, batch order and augmentation (see tinyinvo.train)
    - recipe: TrainConfig fields other than seed (missing ones: TrainConfig's defaults)
    - data: keywords of ``tinyinvo.data.load`` (name, data_dir, subset, seed of the subset)
    """

    model: ModelSpec
    seed: int
    recipe: dict = field(default_factory=dict)
    data: dict = field(default_factory=lambda: dict(name="shapes"))

    def train_config(self):
        return TrainConfig(**self.recipe, seed=self.seed)

    def identity(self):
        """What defines the run's result: model, seed, full recipe, data (not where the data is)."""
        config = self.train_config().__dict__
        recipe = {key: config[key] for key in RECIPE_FIELDS}
        data = {key: value for key, value in self.data.items() if key != "data_dir"}
        data["subset"] = list(data["subset"]) if isinstance(data.get("subset"), tuple) else data.get("subset")
        return dict(model=self.model.build_kwargs(), seed=self.seed, recipe=recipe, data=data)

    def key(self):
        """A short, stable id of ``identity()``: the same config gives the same key in any process."""
        text = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def slug(self):
        """A directory name for the run's checkpoint and curves, e.g. bottleneck-inv7-s0-1a2b3c4d5e6f."""
        return f"{self.model.name}-s{self.seed}-{self.key()}"


def train_run(run, *, run_dir=None, progress=True):
    """Train ``run``'s model, then measure it on the test set. Returns its result row (a dict).

    Inputs:
    - run: a Run
    - run_dir: directory for the run's checkpoint, metrics and curves (None: keep nothing). A run
      interrupted there continues from its checkpoint, exactly as if it had never stopped.
    - progress: show the per-epoch progress bars
    Row (the columns of ``tinyinvo.study.results.COLUMNS``): run_id, the model's name, block, op,
    depth, width, expansion, divisor, op_norm, zero_init_residual, static_start, params, macs, seed,
    every recipe field, the data, the split
    scored (eval_split: "validation" when the data hold out a validation split, else "test"),
    n_train, n_test, test_accuracy and test_loss of the final model (eval mode) on that split,
    train_seconds (wall time of the training steps, without the per-epoch evaluation),
    inference_images_per_s (that split in eval mode, batches of 256), backend, and the versions
    and commit of the code (``tinyinvo.provenance``).
    """
    data = _load_data(json.dumps(run.data, sort_keys=True))
    trainer = _trainer(run, data, run_dir, progress)
    history = trainer.fit()
    model = trainer.model
    started = time.perf_counter()
    test = evaluate(model, data.x_test, data.y_test, INFERENCE_BATCH, mean=data.mean, std=data.std)
    inference_seconds = time.perf_counter() - started
    spec, identity = run.model, run.identity()
    return dict(
        run_id=run.key(), model=spec.name, block=spec.block, op=spec.op, depth=spec.depth,
        width=spec.width, expansion=spec.expansion, divisor=spec.divisor, op_norm=spec.op_norm,
        zero_init_residual=spec.zero_init_residual, static_start=spec.static_start,
        params=model.num_params(),
        macs=analytic_cost(model.config, data.x_train.shape[-1]).macs, seed=run.seed,
        **identity["recipe"], data=data.name,
        eval_split="test" if run.data.get("validation") is None else "validation",
        n_train=len(data.y_train), n_test=len(data.y_test),
        test_accuracy=test["accuracy"], test_loss=test["loss"],
        train_seconds=sum(row["train_seconds"] for row in history),
        inference_images_per_s=len(data.y_test) / inference_seconds, backend=get_backend(),
        **provenance())


def _trainer(run, data, run_dir, progress):
    """A new Trainer for ``run``, or the one saved in ``run_dir`` if the run was interrupted."""
    if run_dir is not None and os.path.exists(os.path.join(run_dir, CHECKPOINT_NAME)):
        return Trainer.from_checkpoint(os.path.join(run_dir, CHECKPOINT_NAME), data=data,
                                       out_dir=run_dir, progress=progress)
    model = build(**run.model.build_kwargs(), num_classes=len(data.classes),
                  rng=make_rng(run.seed, INIT_STREAM))
    return Trainer(model, data, run.train_config(), out_dir=run_dir, data_source=run.data,
                   progress=progress)


@functools.lru_cache(maxsize=1)
def _load_data(source_json):
    """The data set of a run, loaded once per process for consecutive runs on the same data."""
    return load_data(json.loads(source_json))
