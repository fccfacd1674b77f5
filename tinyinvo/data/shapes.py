"""A synthetic data set of 32x32 colour images of 10 shapes, generated in NumPy in about a second.

Each image shows one shape (the class) of random position, size, thickness and colour on a
background of another random colour with a gentle colour gradient, pixel noise and random
single-pixel specks. Shape and background colours are drawn from the same distribution, so
colour says nothing about the class: a model has to find the shape, wherever it is.

Each shape is drawn from a "distance" function d(u, v) of the pixel's offset (u, v) from the
shape's centre: d < 0 inside, d > 0 outside, in pixels. The pixel's coverage is
clip(0.5 - d, 0, 1), which gives a one-pixel soft (anti-aliased) edge. Unions of parts are
minima of their distances; intersections are maxima.

The same seed always gives the same images. The train and test splits come from separate
random streams, so the test set does not change when you ask for more training images.
"""

import numpy as np

from tinyinvo.data.dataset import Dataset

CLASSES = ["circle", "square", "triangle", "ring", "plus", "cross",
           "horizontal_bars", "vertical_bars", "diagonal", "dots"]

SIZE = 32  # images are SIZE x SIZE pixels
CHUNK = 1000  # images drawn per step, to keep the float32 temporaries small


def circle(u, v, size, width):
    return np.hypot(u, v) - size


def square(u, v, size, width):
    return np.maximum(np.abs(u), np.abs(v)) - 0.85 * size


def triangle(u, v, size, width):
    # apex at (0, -size), base corners at (+-size, 0.8 size); v is flipped for half of the images
    slanted_edges = (1.8 * np.abs(u) - v - size) / np.hypot(1.8, 1.0)
    return np.maximum(v - 0.8 * size, slanted_edges)


def ring(u, v, size, width):
    return np.abs(np.hypot(u, v) - (size - width / 2)) - width / 2


def bar(along, across, length, width):
    """A straight bar of half-length ``length`` and thickness ``width`` centred on the origin."""
    return np.maximum(np.abs(along) - length, np.abs(across) - width / 2)


def plus(u, v, size, width):
    return np.minimum(bar(u, v, size, width), bar(v, u, size, width))


def cross(u, v, size, width):
    return plus((u + v) / np.sqrt(2), (u - v) / np.sqrt(2), size, width)


def horizontal_bars(u, v, size, width):
    gap = 0.7 * size  # three bars at v = -gap, 0, +gap
    nearest_bar = np.minimum(np.abs(v), np.abs(np.abs(v) - gap))
    return np.maximum(np.abs(u) - size, nearest_bar - width / 2)


def vertical_bars(u, v, size, width):
    return horizontal_bars(v, u, size, width)


def diagonal(u, v, size, width):
    # one bar along the '\' diagonal ('/' for the images whose v is flipped)
    return bar((u + v) / np.sqrt(2), (u - v) / np.sqrt(2), 1.2 * size, width)


def dots(u, v, size, width):
    gap = 0.65 * size  # a 3x3 grid of dots at offsets -gap, 0, +gap
    du = np.minimum(np.abs(u), np.abs(np.abs(u) - gap))
    dv = np.minimum(np.abs(v), np.abs(np.abs(v) - gap))
    return np.hypot(du, dv) - 0.45 * width - 0.5


DISTANCE_FUNCTIONS = [circle, square, triangle, ring, plus, cross,
                      horizontal_bars, vertical_bars, diagonal, dots]


def make_shapes(n_train=10_000, n_test=2_000, seed=0):
    """Generate the shapes data set.

    Inputs:
    - n_train, n_test: number of images in each split (classes are balanced to within one image)
    - seed: int; the same seed gives the same data set
    Returns a Dataset with x_train uint8 (n_train, 3, 32, 32), y_train int64 (n_train,), etc.
    """
    x_train, y_train = make_split(n_train, np.random.default_rng([seed, 0]))
    x_test, y_test = make_split(n_test, np.random.default_rng([seed, 1]))
    return Dataset(x_train, y_train, x_test, y_test, list(CLASSES), "shapes")


def make_split(n, rng):
    """n images with balanced labels, in random order. Returns (x uint8 (n,3,32,32), y int64 (n,))."""
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    images = np.empty((n, 3, SIZE, SIZE), dtype=np.uint8)
    for start in range(0, n, CHUNK):
        images[start:start + CHUNK] = draw_images(labels[start:start + CHUNK], rng)
    return images, labels


def draw_images(labels, rng):
    """Draw one image per label: uint8 array of shape (N, 3, 32, 32) for labels of shape (N,)."""
    N = len(labels)
    size = rng.uniform(6, 11, N)  # half-extent of the shape in pixels
    width = size * rng.uniform(0.22, 0.38, N)  # thickness of strokes (bars, rings, dots)
    centre = rng.uniform(size + 1, SIZE - 2 - size, (2, N))  # keeps the shape inside the image
    flip = rng.choice([-1.0, 1.0], N)  # mirrors triangles and diagonals for half of the images

    grid = np.arange(SIZE, dtype=np.float32)
    u = grid[None, None, :] - centre[0, :, None, None]  # (N, 1, W) horizontal offset
    v = (grid[None, :, None] - centre[1, :, None, None]) * flip[:, None, None]  # (N, H, 1)
    distance = np.empty((N, SIZE, SIZE), dtype=np.float32)
    for k, distance_function in enumerate(DISTANCE_FUNCTIONS):
        idx = np.flatnonzero(labels == k)
        distance[idx] = distance_function(u[idx], v[idx], size[idx, None, None], width[idx, None, None])
    coverage = np.clip(0.5 - distance, 0, 1)[:, None]  # (N, 1, H, W)

    foreground, background = contrasting_colours(N, rng)
    # blend: coverage 0 shows the background, 1 the shape's colour
    images = (background_images(background, rng) * (1 - coverage)
              + foreground[:, :, None, None] * coverage)
    images += rng.uniform(0.01, 0.06, (N, 1, 1, 1)) * rng.standard_normal(images.shape)
    specks = rng.random((N, 1, SIZE, SIZE)) < rng.uniform(0, 0.04, (N, 1, 1, 1))
    images = np.where(specks, rng.random(images.shape), images)
    return np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)


def contrasting_colours(N, rng, min_distance=0.45):
    """Two random RGB colours per image, at least ``min_distance`` apart. Returns two (N, 3) arrays."""
    first, second = rng.random((N, 3)), rng.random((N, 3))
    too_close = np.linalg.norm(first - second, axis=1) < min_distance
    while too_close.any():  # redraw the pairs that are too similar (about 1 in 6 each round)
        first[too_close], second[too_close] = rng.random((2, too_close.sum(), 3))
        too_close = np.linalg.norm(first - second, axis=1) < min_distance
    return first, second


def background_images(colour, rng):
    """Backgrounds (N, 3, 32, 32): ``colour`` (N, 3) plus a linear gradient in a random direction."""
    N = len(colour)
    angle = rng.uniform(0, 2 * np.pi, (N, 1, 1, 1))
    grid = np.linspace(-0.5, 0.5, SIZE, dtype=np.float32)
    ramp = np.cos(angle) * grid[None, None, None, :] + np.sin(angle) * grid[None, None, :, None]
    tilt = rng.normal(0, 0.15, (N, 3, 1, 1))  # colour change from one side to the other
    return colour[:, :, None, None] + tilt * ramp
