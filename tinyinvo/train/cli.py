"""The ``train`` and ``eval`` commands of ``python -m tinyinvo``.

    python -m tinyinvo train --model rednet26 --width 16 --data shapes --epochs 15 --out runs/red
    python -m tinyinvo train --resume --out runs/red          # continue after Ctrl-C
    python -m tinyinvo eval --checkpoint runs/red/checkpoint.npz

Each command is a pair ``add_*_arguments(parser)`` / ``run_*(args)``, listed in ``tinyinvo/__main__.py``.
Every mistake in what is asked (a flag, the output folder, the data, the subset) is found before
the first training step and raised as a ``UserError``: one line, exit status 2.
"""

import argparse
import os
import zipfile
from dataclasses import asdict, fields

import numpy as np

from tinyinvo.backend import BACKENDS, get_backend, set_backend, set_num_threads
from tinyinvo.data import NAMES
from tinyinvo.models import PRESETS, build
from tinyinvo.plumbing import (UserError, blame, check_writable_folder, load_requested_data,
                               sigterm_as_ctrl_c)
from tinyinvo.train.checkpoint import load_checkpoint
from tinyinvo.train.config import INIT_STREAM, TrainConfig, make_rng
from tinyinvo.train.evaluate import evaluate
from tinyinvo.train.flags import (add_data_arguments, add_recipe_arguments, parse_subset,
                                  positive_int)
from tinyinvo.train.resume import model_from_config
from tinyinvo.train.trainer import CHECKPOINT_NAME, Trainer

# What defines a run: the model, the data and the TrainConfig. Saved in the checkpoint, so a
# resumed run takes them from there and they may not be given again with --resume.
RUN_DEFAULTS = dict(model="rednet26", width=16, data="shapes", subset=None, **asdict(TrainConfig()))
ALLOWED_WITH_RESUME = {"data_dir", "out", "threads", "backend", "resume", "debug"}


# ---- train ----
def add_train_arguments(parser):
    def option(flag, help, **kwargs):
        name = flag.lstrip("-").replace("-", "_")
        if name in RUN_DEFAULTS and "action" not in kwargs:
            help = f"{help} (default: {'all' if RUN_DEFAULTS[name] is None else RUN_DEFAULTS[name]})"
        # SUPPRESS: an option that is not given does not appear in args, so --resume can tell
        # which options were given (and refuse the ones the checkpoint decides)
        parser.add_argument(flag, default=argparse.SUPPRESS, help=help, **kwargs)

    option("--model", f"network preset: {', '.join(sorted(PRESETS))}", choices=sorted(PRESETS),
           metavar="NAME")
    option("--width", "base width (channels of the first stage)", type=positive_int)
    add_data_arguments(parser, given_only=True)
    add_recipe_arguments(parser, given_only=True)
    option("--out", "run directory for config.json, metrics, curves and checkpoint "
                    "(default: runs/MODEL-wWIDTH-DATA)")
    option("--resume", "continue the run saved in --out (its settings come from the checkpoint)",
           action="store_true")
    _add_machine_options(parser, default=argparse.SUPPRESS)


def _add_machine_options(parser, default):
    """Options of the machine, not of the run: also allowed with --resume, and for eval."""
    parser.add_argument("--threads", type=positive_int, default=default,
                        help="threads for the Numba kernels and BLAS (default: all cores)")
    parser.add_argument("--backend", choices=BACKENDS, default=default,
                        help="op backend (default: the checkpoint's; for a new run numba when "
                             "installed). Change it and results differ in the last bits.")


def run_train(args):
    given = {key: value for key, value in vars(args).items() if key != "command"}
    _set_machine(given)
    if given.get("resume"):
        trainer = _resumed_trainer(given)
    else:
        trainer = _new_trainer(given)
    out = trainer.out_dir
    start = f", continuing after step {trainer.step}" if trainer.step else ""
    print(f"training {_describe(trainer.model)} on {trainer.data!r}, backend {get_backend()}, "
          f"{trainer.config.epochs} epochs of {trainer.steps_per_epoch} steps{start}; writing to {out}")
    try:
        with sigterm_as_ctrl_c():
            history = trainer.fit()
    except KeyboardInterrupt:
        print(f"\ninterrupted in epoch {trainer.epoch + 1} after step {trainer.step}; checkpoint "
              f"saved to {trainer.checkpoint_path}\ncontinue with: python -m tinyinvo train "
              f"--resume --out {out}")
        return 130  # the usual exit status after Ctrl-C
    except OSError as error:  # a full disk, a folder that became read-only: not our mistake
        print(f"error: could not write {error.filename or out} ({error.strerror or error}); its "
              f"previous version is kept. Make room, then continue from the last checkpoint with: "
              f"python -m tinyinvo train --resume --out {out}")
        return 1
    last = history[-1]
    print(f"final test accuracy {last['test_accuracy']:.2%} (test loss {last['test_loss']:.4f}) "
          f"after {last['epoch']} epochs\n"
          f"learning curves: {os.path.join(out, 'curves.png')}\n"
          f"metrics:         {os.path.join(out, 'metrics.csv')} and metrics.jsonl\n"
          f"run record:      {os.path.join(out, 'config.json')}\n"
          f"checkpoint:      {trainer.checkpoint_path}\n"
          f"evaluate again:  python -m tinyinvo eval --checkpoint {trainer.checkpoint_path}")
    return 0


def _new_trainer(given):
    run = {**RUN_DEFAULTS, **{key: value for key, value in given.items() if key in RUN_DEFAULTS}}
    out = given.get("out", os.path.join("runs", f"{run['model']}-w{run['width']}-{run['data']}"))
    if os.path.exists(os.path.join(out, CHECKPOINT_NAME)):
        raise UserError(f"--out: {out} already holds a run ({CHECKPOINT_NAME}). Continue it with "
                        f"--resume --out {out}, or choose another --out.")
    check_writable_folder(out, "--out")
    source = dict(name=run["data"], data_dir=given.get("data_dir"), subset=run["subset"],
                  seed=run["seed"])
    data = load_requested_data(source)
    with blame("--model/--width"):
        model = build(run["model"], num_classes=len(data.classes), width=run["width"],
                      rng=make_rng(run["seed"], INIT_STREAM))
    config = TrainConfig(**{field.name: run[field.name] for field in fields(TrainConfig)})
    with blame("--batch-size"):
        return Trainer(model, data, config, out_dir=out, data_source=source)


def _resumed_trainer(given):
    if "out" not in given:
        raise UserError("--resume needs --out RUN_DIR, the directory of the run to continue")
    refused = sorted(set(given) - ALLOWED_WITH_RESUME)
    if refused:
        flags = ", ".join("--" + key.replace("_", "-") for key in refused)
        raise UserError(f"--resume continues the run with the settings saved in its "
                        f"checkpoint; remove {flags} (with --resume only --out, --data-dir, "
                        f"--threads and --backend are allowed)")
    path = os.path.join(given["out"], CHECKPOINT_NAME)
    if not os.path.isfile(path):
        raise UserError(f"--resume: there is no checkpoint at {path}. Check --out, or "
                        f"start a new run by leaving out --resume.")
    check_writable_folder(given["out"], "--out")
    contents = _read_checkpoint(path, "--out")
    if "backend" not in given:  # the same backend as before, for an exact continuation
        set_backend(contents["config"]["backend"])
    source = contents["config"]["data"]["source"]
    if source is None:
        raise UserError(f"--resume: {path} does not record how its data was loaded (it was "
                        f"trained on a Dataset made in Python): continue it in Python")
    data = load_requested_data({**source, **({"data_dir": given["data_dir"]} if "data_dir" in given else {})})
    return Trainer.from_checkpoint(path, data=data, data_dir=given.get("data_dir"),
                                   out_dir=given["out"])


def _read_checkpoint(path, argument):
    if os.path.isdir(path):
        raise UserError(f"{argument}: {path} is a folder; expected a checkpoint file such as "
                        f"{os.path.join(path, CHECKPOINT_NAME)}")
    if not os.path.isfile(path):
        raise UserError(f"{argument}: there is no file {path}")
    try:
        return load_checkpoint(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise UserError(f"{argument}: {path} is not a readable tinyinvo checkpoint ({error})") \
            from error


def _set_machine(given):
    if given.get("backend"):
        set_backend(given["backend"])
    if given.get("threads"):
        set_num_threads(given["threads"])


def _describe(model):
    config = getattr(model, "config", None) or {}
    return (f"{config.get('name') or 'model'} (width {config.get('width')}, "
            f"{model.num_params():,} parameters)")


# ---- eval ----
def add_eval_arguments(parser):
    parser.add_argument("--checkpoint", required=True, help="a checkpoint.npz written by train")
    parser.add_argument("--data", choices=NAMES, help="data set to test on (default: the checkpoint's)")
    parser.add_argument("--data-dir", help="where that data lives (default: the checkpoint's)")
    parser.add_argument("--subset", type=parse_subset, metavar="N[,M]",
                        help="N,M: test on M test images (N: the training images to load; "
                             "default: the checkpoint's)")
    parser.add_argument("--batch-size", type=positive_int, default=256,
                        help="images per forward pass (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="evaluate even on a data set whose class names differ from the "
                             "model's (as many classes, other names)")
    _add_machine_options(parser, default=None)


def run_eval(args):
    contents = _read_checkpoint(args.checkpoint, "--checkpoint")
    run = contents["config"]
    _set_machine(dict(backend=args.backend or run["backend"], threads=args.threads))
    model = model_from_config(run)
    model.load_state_dict(contents["model"])
    source = dict(run["data"]["source"] or {})
    overrides = dict(name=args.data, data_dir=args.data_dir, subset=args.subset)
    source.update({key: value for key, value in overrides.items() if value is not None})
    if "name" not in source:
        raise UserError("--data: this checkpoint does not record its data (it was trained on a "
                        "Dataset made in Python); give --data and --data-dir")
    data = load_requested_data(source)
    classes = run["data"]["classes"]
    if len(data.classes) != len(classes):
        raise UserError(f"--data: the model was trained on {len(classes)} classes, {data.name} "
                        f"has {len(data.classes)}")
    if list(data.classes) != list(classes):
        if not args.force:
            raise UserError(f"--data: {data.name}'s classes ({', '.join(data.classes[:3])}, ...) "
                            f"are not the model's ({', '.join(classes[:3])}, ...): its accuracy "
                            f"would mean nothing. Add --force to evaluate anyway.")
        print(f"warning: --force: the model's classes are not {data.name}'s; per-class rows "
              f"below are named after {data.name}'s labels")
        classes = list(data.classes)
    mean, std = (np.array(run["data"][key], dtype=np.float32) for key in ("mean", "std"))
    result = evaluate(model, data.x_test, data.y_test, args.batch_size, mean=mean, std=std,
                      progress=True)
    progress = contents["progress"]
    print(f"checkpoint {args.checkpoint}: {_describe(model)}, {progress['epoch']} of "
          f"{run['train']['epochs']} epochs done, backend {get_backend()}")
    print(f"test set of {data.name}: {len(data.y_test)} images")
    print(f"test loss {result['loss']:.4f}  accuracy {result['accuracy']:.2%}\nper class:")
    counts = np.bincount(data.y_test, minlength=len(classes))
    for name, accuracy, count in zip(classes, result["per_class_accuracy"], counts):
        print(f"  {name:<16} {accuracy:7.2%}  of {count} images")
    return 0
