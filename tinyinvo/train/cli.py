"""The ``train`` and ``eval`` commands of ``python -m tinyinvo``.

    python -m tinyinvo train --model rednet26 --width 16 --data shapes --epochs 15 --out runs/red
    python -m tinyinvo train --resume --out runs/red          # continue after Ctrl-C
    python -m tinyinvo eval --checkpoint runs/red/checkpoint.npz

Each command is a pair ``add_*_arguments(parser)`` / ``run_*(args)``, listed in ``tinyinvo/__main__.py``.
"""

import argparse
import contextlib
import os
import signal
import threading
from dataclasses import asdict, fields

import numpy as np

from tinyinvo.backend import BACKENDS, get_backend, set_backend, set_num_threads
from tinyinvo.data import NAMES
from tinyinvo.models import build
from tinyinvo.train.checkpoint import load_checkpoint
from tinyinvo.train.trainer import (CHECKPOINT_NAME, INIT_STREAM, TrainConfig, Trainer, evaluate,
                                    load_data, make_rng, model_from_config)

# What defines a run: the model, the data and the TrainConfig. Saved in the checkpoint, so a
# resumed run takes them from there and they may not be given again with --resume.
RUN_DEFAULTS = dict(model="rednet26", width=16, data="shapes", subset=None, **asdict(TrainConfig()))
ALLOWED_WITH_RESUME = {"data_dir", "out", "threads", "backend", "resume"}


# ---- train ----
def add_train_arguments(parser):
    def option(flag, help, **kwargs):
        name = flag.lstrip("-").replace("-", "_")
        if name in RUN_DEFAULTS and "action" not in kwargs:
            help = f"{help} (default: {'all' if RUN_DEFAULTS[name] is None else RUN_DEFAULTS[name]})"
        # SUPPRESS: an option that is not given does not appear in args, so --resume can tell
        # which options were given (and refuse the ones the checkpoint decides)
        parser.add_argument(flag, default=argparse.SUPPRESS, help=help, **kwargs)

    option("--model", "network preset, e.g. rednet26, dwnet26, resnet26, resnet20")
    option("--width", "base width (channels of the first stage)", type=int)
    option("--data", "data set: shapes (synthetic, made in a second) or cifar10", choices=NAMES)
    option("--data-dir", "CIFAR-10 folder or archive, e.g. cifar10-jpg.tar.gz")
    option("--subset", "use N training images (N,M: and M test images)", type=parse_subset,
           metavar="N[,M]")
    option("--epochs", "epochs to train", type=int)
    option("--batch-size", "images per training step", type=int)
    option("--lr", "peak learning rate", type=float)
    option("--momentum", "SGD momentum", type=float)
    option("--nesterov", "use Nesterov momentum", action="store_true")
    option("--weight-decay", "L2 weight decay on conv and linear weights", type=float)
    option("--warmup-epochs", "epochs of linear learning-rate warm-up", type=float)
    option("--label-smoothing", "label smoothing of the cross-entropy targets", type=float)
    option("--no-augment", "train without random crops and flips", action="store_false",
           dest="augment")
    option("--seed", "seed of every random choice (weights, batch order, augmentation)", type=int)
    option("--out", "run directory for metrics, curves and checkpoint "
                    "(default: runs/MODEL-wWIDTH-DATA)")
    option("--resume", "continue the run saved in --out (its settings come from the checkpoint)",
           action="store_true")
    _add_machine_options(parser, default=argparse.SUPPRESS)


def _add_machine_options(parser, default):
    """Options of the machine, not of the run: also allowed with --resume, and for eval."""
    parser.add_argument("--threads", type=int, default=default,
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
        with _sigterm_as_ctrl_c():
            history = trainer.fit()
    except KeyboardInterrupt:
        print(f"\ninterrupted in epoch {trainer.epoch + 1} after step {trainer.step}; checkpoint "
              f"saved to {trainer.checkpoint_path}\ncontinue with: python -m tinyinvo train "
              f"--resume --out {out}")
        return 130  # the usual exit status after Ctrl-C
    last = history[-1]
    print(f"final test accuracy {last['test_accuracy']:.2%} (test loss {last['test_loss']:.4f}) "
          f"after {last['epoch']} epochs\n"
          f"learning curves: {os.path.join(out, 'curves.png')}\n"
          f"metrics:         {os.path.join(out, 'metrics.csv')} and metrics.jsonl\n"
          f"checkpoint:      {trainer.checkpoint_path}\n"
          f"evaluate again:  python -m tinyinvo eval --checkpoint {trainer.checkpoint_path}")
    return 0


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """Let ``kill PID`` (SIGTERM) stop the run as Ctrl-C does: checkpoint, then exit.

    A run started in the background by a script (``... &``) ignores SIGINT, and SIGTERM is how
    background and batch jobs are stopped. Main thread only (where handlers can be set).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _new_trainer(given):
    run = {**RUN_DEFAULTS, **{key: value for key, value in given.items() if key in RUN_DEFAULTS}}
    out = given.get("out", os.path.join("runs", f"{run['model']}-w{run['width']}-{run['data']}"))
    if os.path.exists(os.path.join(out, CHECKPOINT_NAME)):
        raise SystemExit(f"error: {out} already holds a run ({CHECKPOINT_NAME}). Continue it with "
                         f"--resume --out {out}, or choose another --out.")
    source = dict(name=run["data"], data_dir=given.get("data_dir"), subset=run["subset"],
                  seed=run["seed"])
    data = load_data(source)
    model = build(run["model"], num_classes=len(data.classes), width=run["width"],
                  rng=make_rng(run["seed"], INIT_STREAM))
    config = TrainConfig(**{field.name: run[field.name] for field in fields(TrainConfig)})
    return Trainer(model, data, config, out_dir=out, data_source=source)


def _resumed_trainer(given):
    if "out" not in given:
        raise SystemExit("error: --resume needs --out RUN_DIR, the directory of the run to continue")
    refused = sorted(set(given) - ALLOWED_WITH_RESUME)
    if refused:
        flags = ", ".join("--" + key.replace("_", "-") for key in refused)
        raise SystemExit(f"error: --resume continues the run with the settings saved in its "
                         f"checkpoint; remove {flags} (with --resume only --out, --data-dir, "
                         f"--threads and --backend are allowed)")
    path = os.path.join(given["out"], CHECKPOINT_NAME)
    if not os.path.exists(path):
        raise SystemExit(f"error: --resume: there is no checkpoint at {path}. Check --out, or "
                         f"start a new run by leaving out --resume.")
    if "backend" not in given:  # the same backend as before, for an exact continuation
        set_backend(load_checkpoint(path)["config"]["backend"])
    return Trainer.from_checkpoint(path, data_dir=given.get("data_dir"), out_dir=given["out"])


def parse_subset(text):
    """ "500" -> 500 (training images; all test images), "500,100" -> (500, 100)."""
    numbers = [int(part) for part in text.split(",")]
    if len(numbers) > 2:
        raise argparse.ArgumentTypeError(f"expected N or N,M, got {text!r}")
    return numbers[0] if len(numbers) == 1 else tuple(numbers)


def _set_machine(given):
    if "backend" in given:
        set_backend(given["backend"])
    if "threads" in given:
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
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass "
                        "(default: %(default)s)")
    _add_machine_options(parser, default=None)


def run_eval(args):
    contents = load_checkpoint(args.checkpoint)
    run = contents["config"]
    set_backend(args.backend or run["backend"])
    if args.threads:
        set_num_threads(args.threads)
    model = model_from_config(run)
    model.load_state_dict(contents["model"])
    source = dict(run["data"]["source"] or {})
    overrides = dict(name=args.data, data_dir=args.data_dir, subset=args.subset)
    source.update({key: value for key, value in overrides.items() if value is not None})
    data = load_data(source if "name" in source else None)
    classes = run["data"]["classes"]
    if len(data.classes) != len(classes):
        raise SystemExit(f"error: the model was trained on {len(classes)} classes, {data.name} has "
                         f"{len(data.classes)}")
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
