"""The two backends against each other: the same functions and signatures, the same numbers, and the
Numba kernels' bitwise reproducibility.

Numba against the NumPy reference on a grid of geometries (stride 1 and 2, padding 0 up to K // 2, odd
and even H and W, batch 1 and 2, K = 1, 3, 7, involution with G = 1 and 2, float32 and float64) and on
geometries drawn by hypothesis. Tolerances: relative 1e-4 in float32 (plus an absolute 1e-4 of the
output's largest entry, since a sum of many terms can be near zero where its rounding error is not),
1e-10 in float64. Also: the results are bitwise the same run to run and for any number of Numba
threads (a resumed training must equal an unbroken one).
"""

import inspect

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_table import ELEMENTWISE_OPS, OPS, every_output, make_batchnorm_inputs, make_inputs, run, run_batchnorm

from tinyinvo import ops
from tinyinvo.backend import set_num_threads
from tinyinvo.ops import numba_backend, numpy_backend
from tinyinvo.ops.checks import output_size

C = 32  # channels of the inputs below: enough planes to split among threads

TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}

# (N, H, W): batch 1 with odd H and even W, batch 2 with even H and odd W; K=7 still fits with padding 0
SHAPES = [(1, 9, 8), (2, 8, 11)]

GRID = [(N, H, W, K, stride, padding)
        for K in (1, 3, 7)
        for stride in (1, 2)
        for padding in sorted({0, 1, K // 2}) if padding <= K // 2
        for N, H, W in SHAPES]


def assert_close(got, expected, dtype, names):
    tolerance = TOLERANCE[dtype]
    for name, a, b in zip(names, got, expected):
        assert a.dtype == dtype and a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance * np.abs(b).max(), err_msg=name)


# ---------------------------------------------------------------- the same functions


def public_functions(module):
    """name -> signature of every public function a module offers (its ``__all__``)."""
    return {name: inspect.signature(getattr(module, name)) for name in module.__all__}


def test_both_backends_define_the_same_functions_with_the_same_signatures():
    numpy_functions, numba_functions = public_functions(numpy_backend), public_functions(numba_backend)
    assert numpy_functions == numba_functions
    for module in (numpy_backend, numba_backend):  # and nothing public outside __all__
        defined = {name for name, value in vars(module).items() if inspect.isfunction(value)}
        assert defined == set(module.__all__), module.__name__


def test_the_front_door_offers_every_backend_function_with_backend_added():
    # same names, order and kinds of parameters; only the defaults may differ where the door resolves
    # them (involution's padding=None becomes an int before a backend sees it)
    assert set(ops.__all__) == set(numpy_backend.__all__)
    for name, backend_signature in public_functions(numpy_backend).items():
        door = inspect.signature(getattr(ops, name)).parameters
        assert list(door)[-1] == "backend" and door["backend"].default is None, name
        expected = [(p.name, p.kind) for p in backend_signature.parameters.values()]
        assert [(p.name, p.kind) for p in door.values()][:-1] == expected, name
    assert inspect.signature(ops.involution_forward).parameters["padding"].default is None


# ---------------------------------------------------------------- the same numbers


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("op_name", OPS)
@pytest.mark.parametrize("geometry", GRID, ids=[f"K{K}-s{s}-p{p}-N{N}-{H}x{W}" for N, H, W, K, s, p in GRID])
def test_numba_matches_numpy(op_name, geometry, dtype):
    inputs = make_inputs(op_name, geometry, C=C, dtype=dtype, seed=0)
    assert_close(run(op_name, "numba", *inputs), run(op_name, "numpy", *inputs), dtype, ["y", "dx", "dweight"])


@st.composite
def geometries(draw):
    """(N, C, H, W, K, stride, padding) with an output of at least one pixel."""
    K = draw(st.sampled_from([1, 2, 3, 5, 7]))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, K))                       # up to K: whole windows in the zero border
    H = draw(st.integers(max(1, K - 2 * padding), 12))
    W = draw(st.integers(max(1, K - 2 * padding), 12))
    return draw(st.integers(1, 3)), draw(st.sampled_from([2, 4, 6])), H, W, K, stride, padding


@settings(max_examples=60, deadline=None, derandomize=True, database=None)  # the same examples every run
@given(op_name=st.sampled_from(sorted(OPS)), geometry=geometries())
def test_numba_matches_numpy_on_any_geometry(op_name, geometry):
    N, channels, H, W, K, stride, padding = geometry
    assert output_size(H, K, stride, padding) >= 1 and output_size(W, K, stride, padding) >= 1
    inputs = make_inputs(op_name, (N, H, W, K, stride, padding), C=channels, seed=0)
    assert_close(run(op_name, "numba", *inputs), run(op_name, "numpy", *inputs), np.float64,
                 ["y", "dx", "dweight"])


@pytest.mark.parametrize("relu", [False, True], ids=["alone", "fused-relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 3, 2, 3), (2, 5, 7, 6), (16, 4, 8, 8)])
def test_numba_batchnorm_matches_numpy(shape, dtype, relu):
    # The reference runs in float64: with few values per channel, dx is a difference of nearly
    # equal terms, and the float32 reference's own rounding error would exceed the tolerance.
    inputs = make_batchnorm_inputs(shape, dtype)
    expected = run_batchnorm("numpy", *(array.astype(np.float64) for array in inputs), relu=relu)
    outputs = run_batchnorm("numba", *inputs, relu=relu)
    assert_close(outputs, expected, dtype, ["y", "mean", "var", "dx", "dgamma", "dbeta"])
    if relu:  # the ReLU did something: some outputs, and their gradients, are zero
        assert 0 < np.count_nonzero(outputs[0] == 0) < outputs[0].size


def assert_backends_agree(op_name, inputs):
    """y, dx and dw of the two backends agree to float64 rounding."""
    for a, b in zip(run(op_name, "numba", *inputs), run(op_name, "numpy", *inputs)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_pointwise_conv_matches_numpy_on_a_larger_batch(stride):
    # 1x1 with padding 0 takes the pure matrix-product path (on every stride-th pixel for stride > 1,
    # a ResNet's projection shortcut): check it on more than a few pixels, H and W not multiples of 3
    assert_backends_agree("conv", make_inputs("conv", (3, 16, 17, 1, stride, 0), C=C, seed=0))


def test_conv_in_several_im2col_batches_matches_numpy(monkeypatch):
    # The Numba conv unfolds at most COLS_BUDGET entries' worth of images at a time; with a budget
    # of two images' cols, 5 images go through in batches of 1, 1, 1 and 2 (team.even_batches):
    # later batches start at an offset, and the last one is larger than the first three.
    from tinyinvo.ops.numba_backend import conv as numba_conv

    inputs = make_inputs("conv", (5, 9, 8, 3, 2, 1), C=C, seed=0)
    x = inputs[0]
    one_image = C * 3 * 3 * numba_conv._Unfold(x.shape, 3, 2, 1).pixels
    monkeypatch.setattr(numba_conv, "COLS_BUDGET", 2 * one_image)
    assert numba_conv._Unfold(x.shape, 3, 2, 1).batches == [(0, 1), (1, 2), (2, 3), (3, 5)]
    assert_backends_agree("conv", inputs)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads (NUMBA_NUM_THREADS=1)")
@pytest.mark.parametrize("K, stride, padding", [(1, 1, 0), (1, 2, 0), (3, 2, 1)])
def test_conv_pieces_on_two_threads_give_the_bits_of_one_thread(monkeypatch, K, stride, padding):
    # The Numba conv hands its batches of images to the threads (team.py), one image per piece
    # here, and adds the pieces' dw in piece order: two threads must give exactly one thread's
    # numbers, and both the reference's.
    from tinyinvo.ops.numba_backend import conv as numba_conv

    monkeypatch.setattr(numba_conv, "COLS_BUDGET", 1)
    monkeypatch.setattr(numba_conv, "POINTWISE_IMAGES", 1)
    inputs = make_inputs("conv", (7, 9, 8, K, stride, padding), C=C, seed=0)
    threads = numba.get_num_threads()
    try:
        set_num_threads(2)
        two = run("conv", "numba", *inputs)
        set_num_threads(1)
        one = run("conv", "numba", *inputs)
    finally:
        set_num_threads(threads)
    for a, b in zip(two, one):
        assert np.array_equal(a, b)
    assert_backends_agree("conv", inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K, stride, W, B", [(3, 1, 8, 16), (7, 2, 8, 16), (3, 1, 17, 8), (7, 2, 33, 8),
                                             (7, 1, 8, 16), (5, 1, 17, 8)])
def test_depthwise_matches_numpy_across_blocks_of_images(K, stride, W, B, dtype):
    # The Numba depthwise kernels take one channel of B images at a time (8 on wide maps, 16 on
    # narrow ones). Three more images end the batch in a partial block, which the same piece of
    # work handles right after a full one (5 channels x 2 blocks): the lanes of its missing images
    # still hold the full block's numbers, and must change neither y, dx nor the dw summed over
    # the blocks. With stride 1 and K >= 5 the forward takes output rows in pairs: 9 rows are
    # four pairs and one row alone. A full block moves in 8x8 SIMD tiles where it can (stride 1;
    # W = 17 leaves one column to the one-number-at-a-time loops), a partial one never does.
    from tinyinvo.ops.numba_backend.depthwise import images_per_block

    assert images_per_block(output_size(W, K, stride, K // 2)) == B
    geometry = (B + 3, 9, W, K, stride, K // 2)
    inputs = make_inputs("depthwise", geometry, C=5, dtype=dtype, seed=0)
    assert_close(run("depthwise", "numba", *inputs), run("depthwise", "numpy", *inputs), dtype, ["y", "dx", "dw"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_simd_transpose_8x8_equals_its_loop_and_touches_nothing_else(dtype):
    from tinyinvo.ops.numba_backend.simd import transpose_8x8, transpose_8x8_loop

    @numba.njit
    def transpose(src, src_at, src_stride, dst, dst_at, dst_stride):
        transpose_8x8(src, src_at, src_stride, dst, dst_at, dst_stride)

    rng = np.random.default_rng(0)
    src = rng.standard_normal(3 + 7 * 11 + 8 + 5).astype(dtype)     # rows 11 apart, from 3 on
    dst, expected = (np.full(2 + 7 * 13 + 8 + 4, -1.0, dtype) for _ in range(2))
    transpose(src, 3, 11, dst, 2, 13)
    transpose_8x8_loop(src, 3, 11, expected, 2, 13)
    assert np.array_equal(dst, expected)
    assert np.array_equal(dst[2:2 + 8 * 13:13][:8], src[3:3 + 8])     # source row 0 -> column 0
    assert np.count_nonzero(dst == -1.0) == dst.size - 64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 2])
def test_simd_taps_in_registers_equal_their_loop(rows, dtype):
    # one chunk of CHUNK lanes of `rows` output rows, from lane `at` on, summed over 11 taps whose
    # offsets go up and down; the lanes around the chunk must not change
    from tinyinvo.ops.numba_backend.simd import CHUNK, add_tap_pairs_in_registers, add_taps_in_registers, add_taps_loop

    @numba.njit
    def add_taps(row, weights, offsets, y, at):
        if y.shape[0] == 2:
            add_tap_pairs_in_registers(row, weights, offsets, y, at)
        else:
            add_taps_in_registers(row, weights, offsets, y, at)

    rng = np.random.default_rng(rows)
    row = rng.standard_normal(3 * CHUNK + 40).astype(dtype)
    weights = rng.standard_normal((rows, 11)).astype(dtype)
    offsets = rng.permutation(40)[:11].astype(np.int64)
    y = rng.standard_normal((rows, 3 * CHUNK)).astype(dtype)
    before, expected = y.copy(), y.copy()
    add_taps(row, weights, offsets, y, CHUNK + 3)
    add_taps_loop(row, weights, offsets, expected, CHUNK + 3)
    np.testing.assert_allclose(y, expected, rtol=TOLERANCE[dtype])
    outside = np.ones(y.shape, bool)
    outside[:, CHUNK + 3:2 * CHUNK + 3] = False
    assert np.array_equal(y[outside], before[outside])
    assert not np.any(y[~outside] == before[~outside])


def test_the_numba_kernels_run_as_plain_python_under_numba_disable_jit():
    # The debugging route the README and lecture 6 promise: NUMBA_DISABLE_JIT=1 runs the kernels'
    # own code as Python, the SIMD transposition (an LLVM intrinsic) as its plain loop.
    script = """
import numpy as np
from tinyinvo import ops
rng = np.random.default_rng(0)
x, w = rng.standard_normal((8, 2, 9, 9)), rng.standard_normal((2, 5, 5))
for backend in ("numba", "numpy"):
    y = ops.depthwise_conv2d_forward(x, w, padding=2, backend=backend)
    dx, dw = ops.depthwise_conv2d_backward(y, x, w, padding=2, backend=backend)
    np.save(backend, np.concatenate([y.ravel(), dx.ravel(), dw.ravel()]))
"""
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
        subprocess.run([sys.executable, "-c", script], cwd=folder, env=env, check=True, timeout=300)
        numba_result, numpy_result = (np.load(os.path.join(folder, f"{b}.npy")) for b in ("numba", "numpy"))
    np.testing.assert_allclose(numba_result, numpy_result, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- reproducible to the bit


@pytest.mark.parametrize("op_name", [*OPS, *ELEMENTWISE_OPS])
def test_numba_results_are_bitwise_reproducible_for_any_thread_count(op_name):
    # every output element is written by one thread and every sum runs in a fixed order (a conv's
    # matrix products run whole on one thread, see team.py), so neither a second run nor a
    # different number of threads may change a single bit.
    def outputs():
        return every_output(op_name, "numba", (4, 12, 10, 7, 1, 3), C=C, dtype=np.float32, seed=1)

    threads = numba.get_num_threads()
    try:
        set_num_threads(threads)
        first, again = outputs(), outputs()
        set_num_threads(1)
        one_thread = outputs()
    finally:
        set_num_threads(threads)
    for a, b, c in zip(first, again, one_thread):
        assert np.array_equal(a, b) and np.array_equal(a, c)
