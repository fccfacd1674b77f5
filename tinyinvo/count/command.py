"""``python -m tinyinvo count``: params and MACs of a model, measured and checked on paper.

    python -m tinyinvo count --model rednet50 --stem imagenet --input 224
    python -m tinyinvo count --block bottleneck --op dw7 --depth 26 --width 24 --per-layer
"""

from tinyinvo.count.analytic import analytic_cost
from tinyinvo.count.table import scaled, summary
from tinyinvo.models import BLOCKS, PRESETS, SPATIAL_OPS, build
from tinyinvo.plumbing import blame
from tinyinvo.train.flags import positive_int


def add_arguments(parser):
    parser.add_argument("--model", choices=sorted(PRESETS), default=None,
                        help="a preset; --block/--op/--depth override it or replace it")
    parser.add_argument("--block", choices=BLOCKS, default=None)
    parser.add_argument("--op", choices=SPATIAL_OPS, default=None)
    parser.add_argument("--depth", type=positive_int, default=None)
    parser.add_argument("--width", type=positive_int, default=None,
                        help="base width (default: the paper's, 64 for bottleneck nets)")
    parser.add_argument("--stem", choices=["cifar", "imagenet"], default="cifar")
    parser.add_argument("--input", type=positive_int, default=None,
                        help="input height = width (default: 32 for cifar, 224 for imagenet)")
    parser.add_argument("--num-classes", type=positive_int, default=None,
                        help="classes (default: 10 for cifar, 1000 for imagenet)")
    parser.add_argument("--per-layer", action="store_true", help="print one row per layer")


def run(args):
    imagenet = args.stem == "imagenet"
    size = args.input or (224 if imagenet else 32)
    num_classes = args.num_classes or (1000 if imagenet else 10)
    with blame("--model/--block/--op/--depth/--width"):  # e.g. a width the groups do not divide
        model = build(args.model, block=args.block, op=args.op, depth=args.depth, width=args.width,
                      stem=args.stem, num_classes=num_classes)
    config = model.config
    print(f"{config['name'] or 'model'}: block={config['block']}, op={config['op']}, "
          f"depth={config['depth']}, width={config['width']}, stem={config['stem']}, "
          f"input 3x{size}x{size}, {num_classes} classes")
    measured = summary(model, (3, size, size), per_layer=args.per_layer).total
    on_paper = analytic_cost(config, size)
    if on_paper == measured:
        print("The analytic count (from the config alone) gives the same params and MACs.")
    else:
        print(f"WARNING: the analytic count differs: params {on_paper.params:,}, MACs "
              f"{scaled(on_paper.macs)} (aggregation {scaled(on_paper.aggregation_macs)})")
        return 1
