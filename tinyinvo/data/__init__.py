"""Data sets for tinyinvo: a synthetic "shapes" set and CIFAR-10, with augmentation and batching.

    from tinyinvo import data
    dataset = data.load("shapes")                        # generated in about a second, no files
    dataset = data.load("cifar10", data_dir="cifar10-jpg.tar.gz", subset=5000)
    rng = np.random.default_rng(0)
    for x, y in data.iterate_batches(dataset.x_train, dataset.y_train, 64, rng=rng, augment=True,
                                     mean=dataset.mean, std=dataset.std):
        ...  # x: float32 (64, 3, 32, 32), y: int64 (64,)
"""

from tinyinvo.data.augment import normalize, random_crop, random_flip
from tinyinvo.data.batches import iterate_batches
from tinyinvo.data.cifar10 import find_cifar10, load_cifar10
from tinyinvo.data.dataset import Dataset
from tinyinvo.data.shapes import make_shapes

NAMES = ("shapes", "cifar10")
SHAPES_SIZES = (10_000, 2_000)  # default (n_train, n_test) of the shapes data set
VALIDATION_SEED = 0  # which training images a validation split holds out: always the same ones


def load(name, *, data_dir=None, subset=None, seed=0, validation=None, cache_dir=None):
    """Load a data set by name.

    Inputs:
    - name: "shapes" (synthetic, generated) or "cifar10" (see tinyinvo.data.cifar10 for data_dir)
    - data_dir: where CIFAR-10 is (a folder or an archive); None: the cache directory
    - subset: None (everything), n_train, or (n_train, n_test) (a list works too); an int keeps
      the whole test set
    - seed: for "cifar10", which class-balanced subset is picked (Dataset.subset); for "shapes",
      the seed the images are generated from (a subset of shapes is generated at that size directly)
    - validation: None, or a number of training images to hold out as the test split (for tuning:
      the real test set is never seen). The held-out images are fixed (VALIDATION_SEED) and
      class-balanced; ``subset`` then picks from the remaining training images and the validation
      split.
    - cache_dir: where CIFAR-10's decoded arrays are cached; None: $TINYINVO_CACHE or ~/.cache/tinyinvo
    Returns a Dataset.
    """
    n_train, n_test = subset if isinstance(subset, (tuple, list)) else (subset, None)
    if name == "shapes":
        if data_dir is not None:
            raise ValueError("the shapes data set is generated, it has no data_dir; "
                             "data_dir is for cifar10")
        if validation is not None:  # generate the full training set, then split it as cifar10 does
            dataset = make_shapes(SHAPES_SIZES[0], SHAPES_SIZES[1], seed=seed)
        else:
            return make_shapes(SHAPES_SIZES[0] if n_train is None else n_train,
                               SHAPES_SIZES[1] if n_test is None else n_test, seed=seed)
    elif name == "cifar10":
        dataset = load_cifar10(data_dir, cache_dir=cache_dir)
    else:
        raise ValueError(f"unknown data set {name!r}; choose one of {NAMES}")
    if validation is not None:
        dataset = dataset.hold_out(validation, seed=VALIDATION_SEED)
    return dataset if subset is None else dataset.subset(n_train, n_test, seed=seed)


__all__ = ["Dataset", "load", "find_cifar10", "load_cifar10", "make_shapes", "iterate_batches",
           "normalize", "random_crop", "random_flip"]
