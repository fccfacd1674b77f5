"""The command line: ``python -m tinyinvo <command> ...`` (or the ``tinyinvo`` script).

Each command is a pair of functions, ``add_arguments(parser)`` and ``run(args)``, in the module that
owns it; this file only lists them.
"""

import argparse
import sys

from tinyinvo import demo
from tinyinvo.count import command as count_command
from tinyinvo.grading import command as grading_command
from tinyinvo.memory import keep_freed_memory
from tinyinvo.study import command as compare_command
from tinyinvo.train import cli as train_cli

COMMANDS = {
    # name: (add_arguments, run, one-line help)
    "demo": (demo.add_arguments, demo.run,
             "build a small RedNet and its baselines, run forward/backward, print what flows through"),
    "train": (train_cli.add_train_arguments, train_cli.run_train,
              "train a network, with a checkpoint, metrics and learning curves per epoch"),
    "eval": (train_cli.add_eval_arguments, train_cli.run_eval,
             "test loss and accuracy (overall and per class) of a saved checkpoint"),
    "count": (count_command.add_arguments, count_command.run,
              "exact params and multiply-adds (MACs) of a model, per layer and in total"),
    "compare": (compare_command.add_arguments, compare_command.run,
                "train ResNet, RedNet and depthwise nets at one MAC budget, same recipe and seeds"),
    "grade": (grading_command.add_grade_arguments, grading_command.run_grade,
              "execute an exercise notebook in a fresh kernel and print its per-task score table"),
    "exercises": (grading_command.add_exercises_arguments, grading_command.run_exercises,
                  "regenerate exercises/ from solutions/ (or --check that it is up to date)"),
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinyinvo",
                                     description="tinyinvo: convolution, depthwise convolution and involution from scratch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, _, help_text) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    keep_freed_memory()  # every training step allocates what the last one freed: reuse it (tinyinvo.memory)
    return COMMANDS[args.command][1](args) or 0


if __name__ == "__main__":
    sys.exit(main())
