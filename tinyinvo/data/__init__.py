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


def load(name, *, data_dir=None, subset=None, seed=0, cache_dir=None):
    """Load a data set by name.

    Inputs:
    - name: "shapes" (synthetic, generated) or "cifar10" (see tinyinvo.data.cifar10 for data_dir)
    - data_dir: where CIFAR-10 is (a folder or an archive); None: the cache directory
    - subset: None (everything), n_train, or (n_train, n_test) (a list works too); an int keeps
      the whole test set
    - seed: for "cifar10", which class-balanced subset is picked (Dataset.subset); for "shapes",
      the seed the images are generated from (a subset of shapes is generated at that size directly)
    - cache_dir: where CIFAR-10's decoded arrays are cached; None: $TINYINVO_CACHE or ~/.cache/tinyinvo
    Returns a Dataset.
    """
    n_train, n_test = subset if isinstance(subset, (tuple, list)) else (subset, None)
    if name == "shapes":
        if data_dir is not None:
            raise ValueError("the shapes data set is generated, it has no data_dir; "
                             "data_dir is for cifar10")
        return make_shapes(SHAPES_SIZES[0] if n_train is None else n_train,
                           SHAPES_SIZES[1] if n_test is None else n_test, seed=seed)
    if name == "cifar10":
        dataset = load_cifar10(data_dir, cache_dir=cache_dir)
        return dataset if subset is None else dataset.subset(n_train, n_test, seed=seed)
    raise ValueError(f"unknown data set {name!r}; choose one of {NAMES}")


__all__ = ["Dataset", "load", "find_cifar10", "load_cifar10", "make_shapes", "iterate_batches",
           "normalize", "random_crop", "random_flip"]
