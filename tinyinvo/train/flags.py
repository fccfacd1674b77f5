"""The command-line flags of training, declared once for ``train`` and ``compare``: the data
(--data, --data-dir, --subset) and the recipe (one flag per TrainConfig field).

Every recipe flag is checked by ``check_setting`` while the command line is parsed, so
``--lr nan`` or ``--momentum 5`` stop with one line before any data is loaded.
"""

import argparse
from dataclasses import fields

from tinyinvo.data import NAMES
from tinyinvo.train.config import TrainConfig, check_setting


def add_data_arguments(parser, *, given_only):
    """--data (default shapes), --data-dir and --subset; ``given_only`` as in add_recipe_arguments."""
    def default(value):
        return argparse.SUPPRESS if given_only else value

    parser.add_argument("--data", choices=NAMES, default=default("shapes"),
                        help="data set: shapes (synthetic, made in a second) or cifar10 "
                             "(default: shapes)")
    parser.add_argument("--data-dir", default=default(None),
                        help="CIFAR-10 folder or archive, e.g. cifar10-jpg.tar.gz")
    parser.add_argument("--subset", type=parse_subset, metavar="N[,M]", default=default(None),
                        help="use N training images (N,M: and M test images) (default: all)")

HELP = dict(
    epochs="epochs to train",
    batch_size="images per training step",
    lr="peak learning rate",
    momentum="SGD momentum",
    nesterov="use Nesterov momentum",
    weight_decay="L2 weight decay on conv and linear weights",
    warmup_epochs="epochs of linear learning-rate warm-up",
    label_smoothing="label smoothing of the cross-entropy targets",
    augment="train without random crops and flips",  # the flag is --no-augment
    seed="seed of every random choice (weights, batch order, augmentation)",
)


def add_recipe_arguments(parser, *, given_only, leave_out=()):
    """Add one flag per TrainConfig field to ``parser``.

    Inputs:
    - given_only: True: a flag that is not given does not appear in the parsed args (the train
      command tells --resume's refused flags that way); False: it gets TrainConfig's default
    - leave_out: fields without a flag (compare has --seeds instead of --seed)
    """
    defaults = TrainConfig()
    for field in fields(TrainConfig):
        name = field.name
        if name in leave_out:
            continue
        default = getattr(defaults, name)
        options = dict(default=argparse.SUPPRESS if given_only else default,
                       help=HELP[name] if field.type is bool else f"{HELP[name]} (default: {default})")
        if name == "augment":
            parser.add_argument("--no-augment", dest="augment", action="store_false", **options)
        elif field.type is bool:
            parser.add_argument("--" + name.replace("_", "-"), action="store_true", **options)
        else:
            parser.add_argument("--" + name.replace("_", "-"), type=_checked(name, field.type),
                                metavar=name.upper(), **options)


def _checked(name, kind):
    """The argparse type of a TrainConfig field: parse, then check the range."""
    def parse(text):
        try:
            return check_setting(name, kind(text))
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error) if "must be" in str(error) else
                                             f"expected {'an integer' if kind is int else 'a number'},"
                                             f" got {text!r}") from None
    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def positive_int(text):
    """argparse type: an integer >= 1 (--threads, --workers, ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def parse_subset(text):
    """ "500" -> 500 (training images; all test images), "500,100" -> (500, 100)."""
    parts = text.split(",")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected N or N,M, got {text!r}")
    try:
        numbers = [positive_int(part) for part in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected N or N,M with positive integers (N training, "
                                         f"M test images), got {text!r}") from None
    return numbers[0] if len(numbers) == 1 else tuple(numbers)
