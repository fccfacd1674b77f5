"""The command line: ``python -m tinyinvo <command> ...`` (or the ``tinyinvo`` script).

Each command is a pair of functions, ``add_arguments(parser)`` and ``run(args)``, in the module that
owns it; this file only lists them. A user's mistake (``tinyinvo.plumbing.UserError``, or a flag
argparse refuses) prints one line ``error: ...`` and exits with status 2; ``--debug`` shows the
traceback instead.
"""

import argparse
import os
import sys

import tinyinvo
from tinyinvo import demo, release
from tinyinvo.count import command as count_command
from tinyinvo.grading import command as grading_command
from tinyinvo.memory import keep_freed_memory
from tinyinvo.plumbing import UserError
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
    "release": (release.add_arguments, release.run,
                "write the student release of the course: no solutions/, no answer keys (instructors)"),
}


class Parser(argparse.ArgumentParser):
    """argparse, but a refused flag raises UserError (one line, status 2) instead of printing the
    usage and exiting, so that every mistake of every command looks the same."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


def program_name():
    """"tinyinvo" for the installed script, "python -m tinyinvo" for the module."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m tinyinvo" if name in ("", "__main__.py", "-c") else name


def version():
    from tinyinvo.provenance import provenance

    record = provenance()
    commit = f", commit {record['commit']}" if record["commit"] else ""
    return (f"tinyinvo {record['tinyinvo']} (numpy {record['numpy']}, numba {record['numba']}"
            f"{commit})")


def make_parser():
    """The parser of every command (``make_parser().parse_args(argv)`` checks a command line)."""
    parser = Parser(prog=program_name(), description="tinyinvo: convolution, depthwise "
                    "convolution and involution from scratch.")
    parser.add_argument("--version", action="version", version=version())
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, _, help_text) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv=None):
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = make_parser().parse_args(argv)
        keep_freed_memory()  # every training step allocates what the last one freed: reuse it (tinyinvo.memory)
        return COMMANDS[args.command][1](args) or 0
    except UserError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
