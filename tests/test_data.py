"""Tests of tinyinvo.data: the shapes generator, the CIFAR-10 loaders and cache, augmentation, batching.

Everything runs offline on tiny data made in tmp_path: image trees of PNG/JPEG files, tarballs of
them, and a fake official cifar-10-python.tar.gz with the real pickled-dict structure.
"""

import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tinyinvo import data
from tinyinvo.data import cifar10
from tinyinvo.data.dataset import Dataset, channel_statistics


# ---------------------------------------------------------------- shapes

@pytest.fixture(scope="module")
def shapes():
    return data.make_shapes(n_train=2000, n_test=1000, seed=0)


def test_shapes_arrays_have_the_documented_types_and_balanced_classes(shapes):
    assert shapes.x_train.shape == (2000, 3, 32, 32) and shapes.x_train.dtype == np.uint8
    assert shapes.y_train.shape == (2000,) and shapes.y_train.dtype == np.int64
    assert shapes.x_test.shape == (1000, 3, 32, 32) and len(shapes.classes) == 10
    assert np.array_equal(np.bincount(shapes.y_train), [200] * 10)
    assert np.array_equal(np.bincount(data.make_shapes(23, 7).y_train), [3, 3, 3] + [2] * 7)
    assert shapes.x_train.min() == 0 and shapes.x_train.max() == 255  # the full range is used


def test_shapes_are_deterministic_and_the_test_split_ignores_n_train():
    a = data.make_shapes(n_train=150, n_test=50, seed=3)
    b = data.make_shapes(n_train=150, n_test=50, seed=3)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)
    assert np.array_equal(a.x_test, b.x_test)
    other_seed = data.make_shapes(n_train=150, n_test=50, seed=4)
    assert not np.array_equal(a.x_train, other_seed.x_train)
    more_training_images = data.make_shapes(n_train=300, n_test=50, seed=3)
    assert np.array_equal(a.x_test, more_training_images.x_test)


def nearest_class_mean_accuracy(features_train, y_train, features_test, y_test):
    """Classify each test example by the closest class-mean feature vector (Euclidean)."""
    means = np.stack([features_train[y_train == k].mean(0) for k in range(10)])
    # |a - m|^2 = |a|^2 - 2 a.m + |m|^2, and |a|^2 is the same for every class
    distances = (means ** 2).sum(1) - 2 * features_test @ means.T
    return np.mean(distances.argmin(1) == y_test)


def ridge_accuracy(features_train, y_train, features_test, y_test, penalty=10.0):
    """A linear classifier: least squares onto one-hot labels with an L2 penalty, closed form."""
    mean, std = features_train.mean(0), features_train.std(0) + 1e-6
    a = np.c_[(features_train - mean) / std, np.ones(len(features_train))]
    b = np.c_[(features_test - mean) / std, np.ones(len(features_test))]
    weights = np.linalg.solve(a.T @ a + penalty * np.eye(a.shape[1]), a.T @ np.eye(10)[y_train])
    return np.mean((b @ weights).argmax(1) == y_test)


def pixels(x):
    return x.reshape(len(x), -1).astype(np.float64) / 255


def colour_histograms(x):
    """Position-free colour statistics: the fraction of each image's pixels in each of 8x8x8 RGB bins."""
    levels = (x // 32).astype(np.int64)  # 0..7 per channel
    bins = levels[:, 0] * 64 + levels[:, 1] * 8 + levels[:, 2]  # (N, H, W), 0..511
    bins += 512 * np.arange(len(x))[:, None, None]  # one block of 512 bins per image
    counts = np.bincount(bins.ravel(), minlength=512 * len(x)).reshape(len(x), 512)
    return counts / counts[0].sum()


def fourier_magnitudes(x):
    """Translation-invariant shape features: |2-D Fourier transform| of each image, summed over channels.

    Shifting an image (circularly) only changes the phases of its Fourier coefficients, and the
    magnitudes do not depend on the sign of the colour contrast, so these features keep the shape
    and drop its position and its colours.
    """
    x = x.astype(np.float64) / 255
    magnitudes = np.abs(np.fft.rfft2(x - x.mean((2, 3), keepdims=True))).sum(1).reshape(len(x), -1)
    return magnitudes / np.linalg.norm(magnitudes, axis=1, keepdims=True)


def test_shapes_cannot_be_told_apart_by_mean_image_or_colour_statistics(shapes):
    # Shape and background colours are drawn from the same distribution whatever the class, and
    # positions are random, so every class has the same mean image and the same colours: chance
    # level is 0.10. (Measured at this size: 0.10 on raw pixels, 0.11 on colour histograms; if
    # each class had its own shape colour, the histogram classifier would score about 0.65.)
    raw = nearest_class_mean_accuracy(pixels(shapes.x_train), shapes.y_train,
                                      pixels(shapes.x_test), shapes.y_test)
    assert raw < 0.25
    colour = nearest_class_mean_accuracy(colour_histograms(shapes.x_train), shapes.y_train,
                                         colour_histograms(shapes.x_test), shapes.y_test)
    assert colour < 0.25


def test_shapes_are_learnable_from_shape_alone(shapes):
    # The mean-image classifier above is at chance, yet a linear classifier on position- and
    # colour-free features finds the classes (measured: 0.96 at this size). So the label is in
    # the shape, which a CNN can learn.
    on_shape = ridge_accuracy(fourier_magnitudes(shapes.x_train), shapes.y_train,
                              fourier_magnitudes(shapes.x_test), shapes.y_test)
    assert on_shape > 0.85


# ---------------------------------------------------------------- Dataset

def tiny_dataset(n_train=50, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset(rng.integers(0, 256, (n_train, 3, 4, 4), dtype=np.uint8), np.arange(n_train) % 5,
                   rng.integers(0, 256, (n_test, 3, 4, 4), dtype=np.uint8), np.arange(n_test) % 5,
                   list("abcde"), "tiny")


def test_mean_and_std_are_the_per_channel_statistics_of_the_training_images():
    dataset = tiny_dataset()
    x = dataset.x_train.astype(np.float64) / 255
    assert dataset.mean.dtype == np.float32 and dataset.std.shape == (3,)
    np.testing.assert_allclose(dataset.mean, x.mean((0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(dataset.std, x.std((0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(channel_statistics(dataset.x_test)[0],
                               dataset.x_test.mean((0, 2, 3)) / 255, rtol=1e-6)


def test_subset_is_balanced_deterministic_and_keeps_the_original_order():
    dataset = tiny_dataset()
    small = dataset.subset(12, 5, seed=1)
    assert len(small.y_train) == 12 and len(small.y_test) == 5
    assert np.array_equal(np.bincount(small.y_train, minlength=5), [3, 3, 2, 2, 2])
    assert np.array_equal(np.bincount(small.y_test, minlength=5), [1] * 5)
    again = dataset.subset(12, 5, seed=1)
    assert np.array_equal(small.x_train, again.x_train) and np.array_equal(small.x_test, again.x_test)
    assert not np.array_equal(small.x_train, dataset.subset(12, 5, seed=2).x_train)
    # the picked images are rows of the original, in their original order
    rows = [np.flatnonzero((dataset.x_train == image).all((1, 2, 3)))[0] for image in small.x_train]
    assert rows == sorted(rows)
    assert len(dataset.subset(10).y_test) == 20  # n_test=None keeps the whole test set


def test_subset_and_dataset_reject_bad_input():
    dataset = tiny_dataset()
    with pytest.raises(ValueError, match="n_train must be between 0 and 50"):
        dataset.subset(51)
    with pytest.raises(ValueError, match="x_train must be a uint8 array"):
        Dataset(dataset.x_train.astype(np.float32), dataset.y_train, dataset.x_test, dataset.y_test,
                dataset.classes, "bad")
    with pytest.raises(ValueError, match="y_test must hold labels 0..4"):
        Dataset(dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test + 1,
                dataset.classes, "bad")


# ---------------------------------------------------------------- CIFAR-10 fakes

def random_image(rng):
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def write_image_tree(root, rng, per_class=2):
    """train/<class>/<i>.png (exact) and test/<class>/<i>.jpg (flat colours, nearly exact).

    Returns the expected (x_train, y_train, x_test, y_test), sorted by class then file name.
    """
    expected = {}
    for split, suffix in (("train", ".png"), ("test", ".jpg")):
        images, labels = [], []
        for label, name in enumerate(cifar10.CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                if suffix == ".png":
                    image = random_image(rng)
                else:
                    image = np.full((32, 32, 3), rng.integers(0, 256, 3), dtype=np.uint8)
                Image.fromarray(image).save(root / split / name / f"{i}{suffix}")
                images.append(image.transpose(2, 0, 1))
                labels.append(label)
        expected[split] = (np.stack(images), np.array(labels))
    return (*expected["train"], *expected["test"])


def make_tar(archive, folder, arcname):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return archive


def assert_matches(dataset, expected):
    x_train, y_train, x_test, y_test = expected
    assert dataset.name == "cifar10" and dataset.classes == cifar10.CLASSES
    assert np.array_equal(dataset.x_train, x_train) and np.array_equal(dataset.y_train, y_train)
    assert dataset.y_train.dtype == np.int64 and dataset.x_train.dtype == np.uint8
    assert np.array_equal(dataset.y_test, y_test)
    assert np.abs(dataset.x_test.astype(int) - x_test).max() <= 3  # JPEG is lossy


@pytest.fixture
def image_tree(tmp_path):
    expected = write_image_tree(tmp_path / "images", np.random.default_rng(0))
    return tmp_path / "images", expected


def test_image_folder_loads_from_a_directory(image_tree, tmp_path):
    folder, expected = image_tree
    assert_matches(cifar10.load_cifar10(folder, cache_dir=tmp_path / "cache"), expected)


def test_image_folder_loads_from_a_tarball_with_a_root_folder_and_extra_files(image_tree, tmp_path):
    folder, expected = image_tree
    (folder / "README.md").write_text("not an image")
    (folder / "train" / "cat" / "._0.png").write_bytes(b"macOS resource fork, not an image")
    archive = tmp_path / "cifar10-jpg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # files in reverse order: the loader must sort them
        for path in sorted(folder.rglob("*"), reverse=True):
            tar.add(path, arcname=f"cifar10-jpg/{path.relative_to(folder).as_posix()}", recursive=False)
    assert_matches(cifar10.load_cifar10(archive, cache_dir=tmp_path / "cache"), expected)


def fake_batch(rng, n):
    return {b"batch_label": b"fake", b"labels": list(rng.integers(0, 10, n)),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}


@pytest.fixture
def official_archive(tmp_path, monkeypatch):
    """A fake cifar-10-python.tar.gz (2 images per batch) and its arrays; its MD5 passes the check."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "extracted" / cifar10.BATCHES_FOLDER
    folder.mkdir(parents=True)
    batches = {name: fake_batch(rng, 2) for name in cifar10.TRAIN_BATCHES + cifar10.TEST_BATCHES}
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch))
    label_names = [name.encode() for name in cifar10.CLASSES]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": label_names}))
    archive = make_tar(tmp_path / cifar10.ARCHIVE_NAME, folder, arcname=cifar10.BATCHES_FOLDER)
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", cifar10.file_md5(archive))

    def arrays(names):
        return (np.concatenate([batches[n][b"data"] for n in names]).reshape(-1, 3, 32, 32),
                np.concatenate([batches[n][b"labels"] for n in names]))
    return archive, (*arrays(cifar10.TRAIN_BATCHES), *arrays(cifar10.TEST_BATCHES))


def test_official_format_loads_from_the_archive_its_folder_and_their_parent(official_archive, tmp_path):
    archive, expected = official_archive
    for data_dir in (archive, tmp_path / "extracted" / cifar10.BATCHES_FOLDER, tmp_path / "extracted",
                     tmp_path):
        dataset = cifar10.load_cifar10(data_dir, cache_dir=tmp_path / "cache")
        assert dataset.x_train.shape == (10, 3, 32, 32) and dataset.x_test.shape == (2, 3, 32, 32)
        got = (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)
        assert all(np.array_equal(array, want) for array, want in zip(got, expected))


def test_renamed_official_archive_is_recognised_by_its_contents(official_archive, tmp_path):
    archive, expected = official_archive
    renamed = archive.rename(tmp_path / "renamed.tar.gz")
    dataset = cifar10.load_cifar10(renamed, cache_dir=tmp_path / "cache")
    assert np.array_equal(dataset.x_train, expected[0])


def test_official_archive_is_never_unpickled_when_its_md5_is_wrong(official_archive, tmp_path,
                                                                    monkeypatch):
    archive, _ = official_archive
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", "0" * 32)
    monkeypatch.setattr(cifar10, "unpickle", pytest.fail)
    with pytest.raises(ValueError, match=r"MD5 is .* expected 0{32}.*download it again"):
        cifar10.load_cifar10(archive, cache_dir=tmp_path / "cache")


def test_official_archive_without_a_batch_is_rejected(tmp_path, monkeypatch):
    folder = tmp_path / cifar10.BATCHES_FOLDER
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps(fake_batch(np.random.default_rng(0), 2)))
    archive = make_tar(tmp_path / cifar10.ARCHIVE_NAME, folder, arcname=cifar10.BATCHES_FOLDER)
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", cifar10.file_md5(archive))
    with pytest.raises(ValueError, match="lacks the batches"):
        cifar10.load_cifar10(archive, cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="data_batch_2 is missing"):
        cifar10.load_cifar10(folder, cache_dir=tmp_path / "cache")


# ---------------------------------------------------------------- the cache

def test_second_load_reads_the_cache_without_decoding(image_tree, tmp_path, monkeypatch):
    folder, expected = image_tree
    cache = tmp_path / "cache"
    first = cifar10.load_cifar10(folder, cache_dir=cache)
    assert [path.suffix for path in cache.iterdir()] == [".npz"]  # no temporary file left behind
    monkeypatch.setattr(cifar10, "decode_image_folder", pytest.fail)
    second = cifar10.load_cifar10(folder, cache_dir=cache)
    assert np.array_equal(first.x_train, second.x_train) and np.array_equal(first.x_test, second.x_test)


def test_cache_is_rebuilt_when_the_source_changes_or_the_cache_file_is_damaged(image_tree, tmp_path,
                                                                              monkeypatch):
    folder, _ = image_tree
    cache = tmp_path / "cache"
    cifar10.load_cifar10(folder, cache_dir=cache)
    calls = []
    real_decoder = cifar10.decode_image_folder
    def counting_decoder(path):
        calls.append(path)
        return real_decoder(path)
    monkeypatch.setattr(cifar10, "decode_image_folder", counting_decoder)
    Image.fromarray(random_image(np.random.default_rng(5))).save(folder / "train" / "cat" / "new.png")
    assert len(cifar10.load_cifar10(folder, cache_dir=cache).y_train) == 21
    assert len(calls) == 1
    for cache_file in cache.iterdir():
        cache_file.write_bytes(b"damaged")
    assert len(cifar10.load_cifar10(folder, cache_dir=cache).y_train) == 21
    assert len(calls) == 2


# ---------------------------------------------------------------- errors

def test_missing_or_unrecognised_data_dir_says_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*train/<class>"):
        cifar10.load_cifar10(tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="found no CIFAR-10 data.*cifar-10-python.tar.gz"):
        cifar10.load_cifar10(tmp_path / "empty", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("damage, message", [
    (lambda root: os.rename(root / "test", root / "validation"), "no images under test/"),
    (lambda root: os.rename(root / "train" / "cat", root / "train" / "kitten"),
     "unknown class folder 'kitten'"),
    (lambda root: (root / "train" / "notes.txt").write_text("x"), "unexpected file train/notes.txt"),
    (lambda root: Image.new("RGB", (16, 16)).save(root / "train" / "dog" / "small.png"),
     "is a 16x16 RGB image; CIFAR-10 images must be 32x32 RGB"),
    (lambda root: Image.new("L", (32, 32)).save(root / "train" / "dog" / "grey.png"),
     "is a 32x32 L image"),
    (lambda root: (root / "test" / "dog" / "broken.png").write_bytes(b"\x89PNG not really"),
     "cannot decode test/dog/broken.png"),
])
def test_image_folder_with_a_wrong_layout_is_rejected(image_tree, tmp_path, damage, message):
    folder, _ = image_tree
    damage(folder)
    with pytest.raises(ValueError, match=message):
        cifar10.load_cifar10(folder, cache_dir=tmp_path / "cache")


def test_truncated_tarball_is_reported_as_corrupt(image_tree, tmp_path):
    folder, _ = image_tree
    archive = make_tar(tmp_path / "images.tar.gz", folder, arcname=".")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        cifar10.load_cifar10(archive, cache_dir=tmp_path / "cache")


class FakeResponse(io.BytesIO):
    """What urllib.request.urlopen returns, enough for download(): read(), headers, a context manager."""

    def __init__(self, payload):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_download_without_network_says_to_pass_data_dir(tmp_path, monkeypatch):
    def no_network(url, timeout):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    advice = r"downloading https://www\.cs\.toronto\.edu/.* failed .* pass --data-dir PATH"
    with pytest.raises(FileNotFoundError, match=advice):
        cifar10.load_cifar10(cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # no partial download left behind


def test_download_is_checked_then_kept_in_the_cache(official_archive, tmp_path, monkeypatch):
    archive, expected = official_archive
    payload = archive.read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload))
    cache = tmp_path / "cache"
    assert np.array_equal(cifar10.load_cifar10(cache_dir=cache).x_test, expected[2])
    assert (cache / cifar10.ARCHIVE_NAME).read_bytes() == payload
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", hashlib.md5(b"something else").hexdigest())
    (cache / cifar10.ARCHIVE_NAME).unlink()
    with pytest.raises(ValueError, match="the download from .* is corrupt"):
        cifar10.load_cifar10(cache_dir=cache)
    assert not (cache / cifar10.ARCHIVE_NAME).exists()
    assert [path.suffix for path in cache.iterdir()] == [".npz"]  # only the earlier cache file


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYINVO_CACHE", str(tmp_path / "elsewhere"))
    assert cifar10.default_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("TINYINVO_CACHE")
    assert cifar10.default_cache_dir() == cifar10.Path.home() / ".cache" / "tinyinvo"


# ---------------------------------------------------------------- load()

def test_load_by_name(image_tree, tmp_path):
    folder, _ = image_tree
    shapes = data.load("shapes", subset=(30, 20), seed=2)
    assert (len(shapes.y_train), len(shapes.y_test)) == (30, 20)
    assert np.array_equal(shapes.x_test, data.make_shapes(30, 20, seed=2).x_test)
    cifar = data.load("cifar10", data_dir=folder, subset=10, cache_dir=tmp_path / "cache")
    assert np.array_equal(np.bincount(cifar.y_train), [1] * 10) and len(cifar.y_test) == 20
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        data.load("mnist")
    with pytest.raises(ValueError, match="shapes data set is generated"):
        data.load("shapes", data_dir=folder)


# ---------------------------------------------------------------- augmentation

@pytest.fixture
def batch():
    return np.random.default_rng(0).integers(1, 256, (16, 3, 32, 32), dtype=np.uint8)


def test_random_crop_shifts_each_image_within_the_padding(batch):
    out = data.random_crop(batch, pad=4, rng=np.random.default_rng(1))
    assert out.shape == batch.shape and out.dtype == np.uint8
    padded = np.pad(batch, ((0, 0), (0, 0), (4, 4), (4, 4)))
    offsets = set()
    for image, padded_image in zip(out, padded):
        matches = [(dy, dx) for dy in range(9) for dx in range(9)
                   if np.array_equal(image, padded_image[:, dy:dy + 32, dx:dx + 32])]
        assert len(matches) == 1  # inputs are never 0, so only the right window matches
        offsets.add(matches[0])
    assert len(offsets) > 1  # offsets are drawn per image
    again = data.random_crop(batch, pad=4, rng=np.random.default_rng(1))
    assert np.array_equal(out, again)
    assert np.array_equal(data.random_crop(batch, pad=0, rng=np.random.default_rng(1)), batch)


def test_random_flip_mirrors_some_images_and_twice_with_the_same_seed_is_identity(batch):
    out = data.random_flip(batch, np.random.default_rng(2))
    flipped = [np.array_equal(o, b[:, :, ::-1]) for o, b in zip(out, batch)]
    kept = [np.array_equal(o, b) for o, b in zip(out, batch)]
    assert all(f != k for f, k in zip(flipped, kept))  # each image is either mirrored or unchanged
    assert 0 < sum(flipped) < len(batch)
    assert np.array_equal(data.random_flip(out, np.random.default_rng(2)), batch)


def test_normalize_standardises_each_channel(shapes):
    x = data.normalize(shapes.x_train, shapes.mean, shapes.std)
    assert x.dtype == np.float32 and x.shape == shapes.x_train.shape
    np.testing.assert_allclose(x.mean((0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(x.std((0, 2, 3)), 1, atol=1e-4)
    pixel = shapes.x_train[3, 1, 5, 7] / 255
    assert x[3, 1, 5, 7] == pytest.approx((pixel - shapes.mean[1]) / shapes.std[1], rel=1e-5)


# ---------------------------------------------------------------- batches

def collect(x, y, batch_size, **kwargs):
    mean, std = np.full(3, 0.5, np.float32), np.full(3, 0.25, np.float32)
    return list(data.iterate_batches(x, y, batch_size, mean=mean, std=std, **kwargs))


def test_shuffled_epoch_visits_every_example_once(batch):
    y = np.arange(16, dtype=np.int64)
    batches = collect(batch, y, 5, rng=np.random.default_rng(0))
    assert [len(b[1]) for b in batches] == [5, 5, 5, 1]
    seen = np.concatenate([labels for _, labels in batches])
    assert sorted(seen) == list(range(16)) and not np.array_equal(seen, y)
    for images, labels in batches:
        assert images.dtype == np.float32 and labels.dtype == np.int64
        assert np.array_equal(images, data.normalize(batch[labels], np.full(3, 0.5), np.full(3, 0.25)))
    dropped = collect(batch, y, 5, rng=np.random.default_rng(0), drop_last=True)
    assert [len(b[1]) for b in dropped] == [5, 5, 5]


def test_batches_without_shuffle_keep_the_order(batch):
    y = np.arange(16, dtype=np.int64)
    seen = np.concatenate([labels for _, labels in collect(batch, y, 6, shuffle=False)])
    assert np.array_equal(seen, y)


def test_batches_are_reproduced_from_a_saved_generator_state(batch):
    y = np.arange(16, dtype=np.int64)
    rng = np.random.default_rng(7)
    collect(batch, y, 4, rng=rng, augment=True)  # one epoch, then "checkpoint"
    saved_state = rng.bit_generator.state
    second_epoch = collect(batch, y, 4, rng=rng, augment=True)
    resumed = np.random.default_rng()
    resumed.bit_generator.state = saved_state
    for (x1, y1), (x2, y2) in zip(second_epoch, collect(batch, y, 4, rng=resumed, augment=True)):
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    plain = collect(batch, y, 16, shuffle=False)[0][0]
    augmented = collect(batch, y, 16, shuffle=False, augment=True, rng=np.random.default_rng(0))[0][0]
    assert not np.array_equal(plain, augmented)


def test_batches_need_a_generator_for_randomness(batch):
    y = np.arange(16, dtype=np.int64)
    with pytest.raises(ValueError, match="needs rng=np.random.default_rng"):
        data.iterate_batches(batch, y, 4, mean=np.zeros(3), std=np.ones(3))
    with pytest.raises(ValueError, match="same length"):
        data.iterate_batches(batch, y[:3], 4, shuffle=False, mean=np.zeros(3), std=np.ones(3))


def test_validation_split_is_fixed_balanced_and_disjoint_from_training():
    full = data.load("shapes")
    first = data.load("shapes", validation=1000)
    again = data.load("shapes", validation=1000, subset=(3000, 500))
    assert len(first.y_test) == 1000 and len(first.y_train) == len(full.y_train) - 1000
    assert np.bincount(first.y_test).tolist() == [100] * 10  # class-balanced
    # no validation image is a training image, and the validation images are training images
    train_rows = {image.tobytes() for image in first.x_train}
    assert not any(image.tobytes() in train_rows for image in first.x_test)
    full_rows = {image.tobytes() for image in full.x_train}
    assert all(image.tobytes() in full_rows for image in first.x_test)
    # a subset of a validation run picks from the same held-out images
    val_rows = {image.tobytes() for image in first.x_test}
    assert all(image.tobytes() in val_rows for image in again.x_test)
    assert len(again.y_train) == 3000 and len(again.y_test) == 500


def test_validation_split_larger_than_the_training_set_is_refused():
    with pytest.raises(ValueError, match="validation must be between 0 and"):
        data.load("shapes", validation=10_001)
