"""Saving a Trainer to a checkpoint and restoring it, so a run continues exactly as if it had
never stopped (the file format is in ``tinyinvo.train.checkpoint``).

The run's record (``run_record``) is saved with every checkpoint and as ``config.json`` next to
it: the full recipe, the model's config, where the data came from and its sizes, the backend, and
the versions and commit of the code (``tinyinvo.provenance``).
"""

from dataclasses import asdict

from tinyinvo.backend import get_backend
from tinyinvo.models import build
from tinyinvo.provenance import provenance
from tinyinvo.train.checkpoint import save_checkpoint
from tinyinvo.train.config import INIT_STREAM, make_rng


def run_record(trainer):
    """What made this run, as a JSON-ready dict: train (TrainConfig), model (build's keywords),
    data (source, name, classes, sizes, mean, std), backend, provenance."""
    data = trainer.data
    return dict(train=asdict(trainer.config), model=getattr(trainer.model, "config", None),
                data=dict(source=trainer.data_source, name=data.name, classes=list(data.classes),
                          n_train=len(data.y_train), n_test=len(data.y_test),
                          mean=data.mean.tolist(), std=data.std.tolist()),
                backend=get_backend(), provenance=provenance())


def save_run(trainer, path):
    """Save everything needed to continue ``trainer``'s run to ``path``."""
    progress = dict(epoch=trainer.epoch, step=trainer.step, step_in_epoch=trainer.step_in_epoch,
                    steps_per_epoch=trainer.steps_per_epoch, running=trainer.running)
    save_checkpoint(path, dict(model=trainer.model.state_dict(),
                               optimizer=trainer.optimizer.state_dict(), config=run_record(trainer),
                               progress=progress, rng=trainer.rng_state, history=trainer.history))


def restore_run(trainer, contents):
    """Put ``trainer`` where checkpoint ``contents`` (from ``load_checkpoint``) left off."""
    saved_config = contents["config"]["train"]
    differing = sorted(key for key, value in asdict(trainer.config).items()
                       if saved_config.get(key) != value)
    if differing:
        raise ValueError(f"this trainer's config differs from the checkpoint's in {differing}: "
                         f"use TrainConfig(**checkpoint['config']['train'])")
    progress = contents["progress"]
    if progress["steps_per_epoch"] != trainer.steps_per_epoch:
        raise ValueError(f"the checkpoint has {progress['steps_per_epoch']} steps per epoch, this "
                         f"trainer {trainer.steps_per_epoch}: the data or the batch size differ")
    trainer.model.load_state_dict(contents["model"])
    trainer.optimizer.load_state_dict(contents["optimizer"])
    trainer.epoch, trainer.step = progress["epoch"], progress["step"]
    trainer.step_in_epoch, trainer.running = progress["step_in_epoch"], progress["running"]
    trainer.rng_state = contents["rng"]
    trainer.history = contents["history"]
    return trainer


def model_from_config(run):
    """A freshly initialised model of the architecture recorded in a checkpoint's config."""
    if run["model"] is None:
        raise ValueError("this checkpoint's model was not made by tinyinvo.models.build, so it "
                         "cannot be rebuilt from the checkpoint: build it in Python and call "
                         "model.load_state_dict(load_checkpoint(path)['model'])")
    return build(**run["model"], rng=make_rng(run["train"]["seed"], INIT_STREAM))
