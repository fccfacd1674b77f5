"""CIFAR-10: find a copy, decode it once into a uint8 .npz cache, load it from there afterwards.

Where the images come from (``data_dir`` is the ``--data-dir`` option):
1. An image folder, as a directory or as a .tar.gz of one (read straight from the archive):
   ``train/<class>/*.png|jpg`` and ``test/<class>/*.png|jpg``, each image 32x32 RGB.
2. The official ``cifar-10-python.tar.gz``, or the ``cifar-10-batches-py/`` folder it extracts to.
3. ``data_dir=None``: the official archive in the cache directory, downloaded from ``URL`` if missing.

``find_cifar10()`` says where a copy is on this machine without downloading anything (the lectures
and the tests use it). The cache directory is ``$TINYINVO_CACHE`` or ``~/.cache/tinyinvo``. Decoding 60,000 JPEGs takes
several seconds; the cached .npz (about 180 MB) loads in a fraction of a second. A cache file is
named after the source's absolute path, size and modification time, so it is rebuilt when the
source changes.

Safety: the official batches are Python pickles, and unpickling runs code chosen by whoever made
the file. So an archive is unpickled only after its MD5 checksum matches the official one.
"""

import contextlib
import gzip
import hashlib
import io
import os
import pickle
import sys
import tarfile
import time
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm import tqdm

from tinyinvo.data.dataset import Dataset
from tinyinvo.plumbing import atomic_write

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]
TEST_BATCHES = ["test_batch"]

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
# find_cifar10: the variable that names a copy, and the course machines' copy next to the repository
CIFAR10_VARIABLE = "TINYINVO_CIFAR10"
SHARED_COPY = Path("..", "shared", "data", "cifar10-jpg.tar.gz")
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
HOW_TO_GET = (f"CIFAR-10 was not found: set ${CIFAR10_VARIABLE} to a copy (a folder or an archive), "
              f"put the official {ARCHIVE_NAME} (from {URL}) in the cache directory "
              f"($TINYINVO_CACHE, default ~/.cache/tinyinvo), or the course's cifar10-jpg.tar.gz in "
              f"shared/data/ next to the repository")
CACHE_VERSION = 1  # bump when decoding changes, so that old cache files are not used

LAYOUTS = (f"data_dir may be (1) an image folder, as a directory or a .tar.gz of it, holding "
           f"train/<class>/*.png|jpg and test/<class>/*.png|jpg (32x32 RGB images; <class> one of "
           f"{', '.join(CLASSES)}), or (2) the official {ARCHIVE_NAME} (from {URL}) or the "
           f"{BATCHES_FOLDER}/ folder it extracts to.")


def load_cifar10(data_dir=None, *, cache_dir=None):
    """Load CIFAR-10 as a Dataset (uint8 (N, 3, 32, 32) images, official class order).

    Inputs:
    - data_dir: where the data is (see the module docstring), or None for the official archive
      in the cache directory (downloaded when missing)
    - cache_dir: where decoded arrays (and a downloaded archive) are kept; None: default_cache_dir()
    Returns a Dataset with 50,000 train and 10,000 test images for the full data set.
    """
    cache_dir = Path(cache_dir or default_cache_dir()).expanduser().resolve()
    source, decode = find_source(data_dir, cache_dir)
    cache_file = cache_dir / f"cifar10-{fingerprint(source)}.npz"
    arrays = read_cache(cache_file)
    if arrays is None:
        start = time.perf_counter()
        arrays = decode(source)
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(cache_file, lambda file: np.savez(file, **dict(zip(ARRAY_NAMES, arrays))))
        print(f"decoded {len(arrays[0]) + len(arrays[2]):,} images from {source} in "
              f"{time.perf_counter() - start:.1f} s; cached in {cache_file}", file=sys.stderr)
    return Dataset(*arrays, list(CLASSES), "cifar10")


def default_cache_dir():
    return Path(os.environ.get("TINYINVO_CACHE", "~/.cache/tinyinvo")).expanduser()


def find_cifar10(cache_dir=None):
    """The path of a copy of CIFAR-10 on this machine, or None if there is none; never downloads.

    Looks, in this order, at:
    1. ``$TINYINVO_CIFAR10``: a folder or an archive in any layout ``load_cifar10`` reads;
    2. the official archive in the cache directory (where ``load_cifar10(None)`` downloads it);
    3. ``SHARED_COPY``, the course machines' JPEG copy, relative to the repository root.
    Pass the result to ``load("cifar10", data_dir=...)``. A ``$TINYINVO_CIFAR10`` that names no
    file or folder is an error, not a reason to look elsewhere.
    """
    chosen = os.environ.get(CIFAR10_VARIABLE)
    if chosen:
        path = Path(chosen).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"${CIFAR10_VARIABLE} is {chosen!r}, which does not exist. {LAYOUTS}")
        return path
    candidates = [Path(cache_dir or default_cache_dir()).expanduser() / ARCHIVE_NAME]
    if (REPOSITORY_ROOT / "pyproject.toml").is_file():  # a checkout, not an installed copy
        candidates.append(REPOSITORY_ROOT / SHARED_COPY)
    return next((path.resolve() for path in candidates if path.exists()), None)


# ---- where is the data? ----

def find_source(data_dir, cache_dir):
    """The copy of CIFAR-10 to read and the function that decodes it: (absolute Path, decode)."""
    if data_dir is None:
        return download_if_missing(cache_dir), decode_official_archive
    path = Path(data_dir).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"data_dir {path} does not exist. {LAYOUTS}")
    if path.is_file():
        if path.name == ARCHIVE_NAME or first_file_name(path).startswith(BATCHES_FOLDER + "/"):
            return path, decode_official_archive
        return path, decode_image_archive
    if (path / "train").is_dir() or (path / "test").is_dir():
        return path, decode_image_folder
    if (path / TRAIN_BATCHES[0]).is_file():
        return path, decode_batches_folder
    if (path / BATCHES_FOLDER).is_dir():
        return path / BATCHES_FOLDER, decode_batches_folder
    if (path / ARCHIVE_NAME).is_file():
        return path / ARCHIVE_NAME, decode_official_archive
    raise FileNotFoundError(f"found no CIFAR-10 data in the folder {path}. {LAYOUTS}")


def download_if_missing(cache_dir):
    """The path of the official archive in cache_dir, downloading it first if it is not there."""
    archive = cache_dir / ARCHIVE_NAME
    if archive.exists():
        return archive
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(archive, download)
    except OSError as err:  # no network, server error, timeout (URLError is an OSError)
        raise FileNotFoundError(
            f"CIFAR-10 is not in {cache_dir} and downloading {URL} failed ({err}). Download it on "
            f"another machine and pass --data-dir PATH (data_dir=PATH). {LAYOUTS}") from err
    return archive


def download(file):
    """Write the official archive from URL into the open binary ``file``, checking its MD5."""
    md5 = hashlib.md5()
    with urllib.request.urlopen(URL, timeout=60) as response:
        size = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=size, unit="B", unit_scale=True, desc=f"downloading {ARCHIVE_NAME}") as bar:
            while chunk := response.read(1 << 20):
                file.write(chunk)
                md5.update(chunk)
                bar.update(len(chunk))
    if md5.hexdigest() != ARCHIVE_MD5:
        raise ValueError(f"the download from {URL} is corrupt: MD5 {md5.hexdigest()}, expected "
                         f"{ARCHIVE_MD5}. Try again, or download it yourself and pass --data-dir.")


# ---- decoders: each returns (x_train, y_train, x_test, y_test) ----

def decode_official_archive(archive):
    """Read the pickled batches of the official cifar-10-python.tar.gz, after checking its MD5."""
    md5 = file_md5(archive)
    if md5 != ARCHIVE_MD5:
        raise ValueError(f"{archive} is not the official CIFAR-10 archive (truncated or corrupt?): "
                         f"its MD5 is {md5}, expected {ARCHIVE_MD5}. Delete it and download it again "
                         f"from {URL}.")
    wanted = set(TRAIN_BATCHES + TEST_BATCHES)
    batches = {PurePosixPath(name).name: unpickle(data, name)
               for name, data in tar_files(archive) if PurePosixPath(name).name in wanted}
    return arrays_from_batches(batches, archive)


def decode_batches_folder(folder):
    """Read data_batch_1..5 and test_batch from an extracted cifar-10-batches-py/ folder."""
    batches = {}
    for name in TRAIN_BATCHES + TEST_BATCHES:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing: the {BATCHES_FOLDER}/ folder must "
                                    f"hold {', '.join(TRAIN_BATCHES + TEST_BATCHES)}. {LAYOUTS}")
        # No checksum here: these are local files the user extracted and chose to trust.
        batches[name] = unpickle((folder / name).read_bytes(), folder / name)
    return arrays_from_batches(batches, folder)


def decode_image_folder(folder):
    """Decode every image of a train/<class>/, test/<class>/ directory tree."""
    files = ((path.relative_to(folder).as_posix(), path.read_bytes())
             for path in sorted(folder.rglob("*")) if path.is_file())
    return arrays_from_image_files(files, folder)


def decode_image_archive(archive):
    """Decode every image of a tar archive of a train/<class>/, test/<class>/ tree, in one pass."""
    return arrays_from_image_files(tar_files(archive), archive)


# ---- the official format ----

def unpickle(data, name):
    """A batch dict {b"data": uint8 (n, 3072), b"labels": list of n ints, ...} from pickled bytes."""
    batch = pickle.loads(data, encoding="bytes")
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{name} is not a CIFAR-10 batch: expected a dict with keys b'data', b'labels'")
    return batch


def arrays_from_batches(batches, source):
    """Concatenate the train and test batches: each row of b"data" is 1024 R, then G, then B values."""
    missing = [name for name in TRAIN_BATCHES + TEST_BATCHES if name not in batches]
    if missing:
        raise ValueError(f"{source} lacks the batches {missing}; is it the complete official archive? "
                         f"Download it again from {URL}.")
    arrays = []
    for names in (TRAIN_BATCHES, TEST_BATCHES):
        data = np.concatenate([np.asarray(batches[name][b"data"], dtype=np.uint8) for name in names])
        labels = np.concatenate([np.asarray(batches[name][b"labels"], dtype=np.int64) for name in names])
        if data.shape != (len(labels), 3 * 32 * 32):
            raise ValueError(f"{source}: expected b'data' of shape ({len(labels)}, 3072), "
                             f"got {data.shape}")
        arrays += [data.reshape(-1, 3, 32, 32), labels]
    return tuple(arrays)


# ---- the image-folder format ----

def arrays_from_image_files(files, source):
    """Decode (path inside the tree, file bytes) pairs laid out as <split>/<class>/<image>.

    Images are sorted by class, then file name, so the result does not depend on the order in
    which the files were read.
    """
    found = {split: [] for split in SPLITS}  # split -> list of (label, name, (32, 32, 3) array)
    for name, data in tqdm(files, desc=f"decoding {source.name}", unit=" files", mininterval=1):
        place = place_in_layout(name, source)
        if place is not None:
            split, label = place
            found[split].append((label, name, decode_image(data, name, source)))
    arrays = []
    for split in SPLITS:
        if not found[split]:
            raise ValueError(f"{source}: no images under {split}/. {LAYOUTS}")
        found[split].sort(key=lambda item: item[:2])
        images = np.stack([image for _, _, image in found[split]])  # (N, H, W, C)
        arrays += [np.ascontiguousarray(images.transpose(0, 3, 1, 2)),
                   np.array([label for label, _, _ in found[split]], dtype=np.int64)]
    return tuple(arrays)


def place_in_layout(name, source):
    """(split, label) for a file at ``[root/]<split>/<class>/<image>``; None for a file to skip.

    Hidden files (".DS_Store", "._x.png") and files outside train/ and test/ (a README, say)
    are skipped; anything else that does not fit the layout is an error.
    """
    parts = PurePosixPath(name).parts
    if any(part.startswith(".") for part in parts) or not set(SPLITS) & set(parts):
        return None
    split_index = next(i for i, part in enumerate(parts) if part in SPLITS)
    inside_split = parts[split_index + 1:]
    if len(inside_split) != 2 or not inside_split[1].lower().endswith(IMAGE_SUFFIXES):
        raise ValueError(f"{source}: unexpected file {name}. {LAYOUTS}")
    if inside_split[0] not in CLASSES:
        raise ValueError(f"{source}: unknown class folder {inside_split[0]!r} in {name}. {LAYOUTS}")
    return parts[split_index], CLASSES.index(inside_split[0])


def decode_image(data, name, source):
    """Decode PNG or JPEG bytes into a uint8 (32, 32, 3) array, insisting on 32x32 RGB."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size != (32, 32) or image.mode != "RGB":
                raise ValueError(f"{source}: {name} is a {image.size[0]}x{image.size[1]} {image.mode} "
                                 f"image; CIFAR-10 images must be 32x32 RGB")
            return np.asarray(image)
    except OSError as err:  # Pillow's "cannot identify image file", truncated image data
        raise ValueError(f"{source}: cannot decode {name} as an image ({err})") from err


# ---- files, archives and the cache ----

@contextlib.contextmanager
def tar_errors(archive):
    """Turn the many ways a damaged archive fails into one ValueError that names the file."""
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(f"cannot read the tar archive {archive} (truncated or corrupt? {err}). "
                         f"Get a fresh copy. {LAYOUTS}") from err


def tar_files(archive):
    """Yield (member name, file bytes) for each regular file of a tar archive, reading it once."""
    with tar_errors(archive), tarfile.open(archive, "r|*") as tar:  # "r|*": one sequential pass
        for member in tar:
            if member.isfile():
                yield member.name, tar.extractfile(member).read()


def first_file_name(archive):
    """The name of the first regular file in a tar archive ("" if it has none), without reading it."""
    with tar_errors(archive), tarfile.open(archive, "r|*") as tar:
        return next((member.name for member in tar if member.isfile()), "")


def file_md5(path):
    md5 = hashlib.md5()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            md5.update(chunk)
    return md5.hexdigest()


def fingerprint(source):
    """A short hash of the source's absolute path, size and modification time.

    For a folder, size and time are the total size and the newest time of the files inside it.
    """
    files = [source] if source.is_file() else [path for path in source.rglob("*") if path.is_file()]
    stats = [path.stat() for path in files]
    key = (f"{CACHE_VERSION}|{source}|{len(stats)}|{sum(s.st_size for s in stats)}|"
           f"{max((s.st_mtime_ns for s in stats), default=0)}")
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def read_cache(cache_file):
    """The four arrays stored in cache_file, or None if it is missing or unreadable."""
    if not cache_file.exists():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as npz:
            return tuple(npz[name] for name in ARRAY_NAMES)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        print(f"ignoring the unreadable cache file {cache_file} ({err}); decoding again",
              file=sys.stderr)
        return None
