"""An 8x8 transposition in SIMD registers, for the depthwise kernels' batch-last copies.

Why this module exists: ``depthwise.py`` moves each block of images into a buffer with the image
index last and its output back out, which is a transposition. Written as Numba loops, LLVM's
auto-vectoriser turns a transposition into one load and one store per number, however the loops are
arranged. A CPU can do better: load 8 rows of 8 numbers as 8 vectors, reorder them in registers
with 24 "shuffles", and store 8 columns as 8 vectors. Numba cannot say that in Python, but Numba
is built on llvmlite, and ``numba.extending.intrinsic`` lets a function emit LLVM's own
instructions (here ``shufflevector``) into the compiled caller.

The shuffles transpose blocks of blocks: with h = 4, 2, 1, rows r and r + h (r & h == 0) swap
their h x h blocks: row r keeps its even blocks and takes the even blocks of row r + h, which
gets the odd ones of both. After the three rounds, row r holds column r.

Under ``NUMBA_DISABLE_JIT=1`` (debugging) ``transpose_8x8`` is the plain loop ``transpose_8x8_loop``.
"""

from llvmlite import ir
from numba import config, types
from numba.extending import intrinsic

LANES = 8   # numbers per row of the tile: a 256-bit vector of float32 (512 bits for float64)


def transpose_8x8_loop(src, src_at, src_stride, dst, dst_at, dst_stride):
    """dst[dst_at + k*dst_stride + r] = src[src_at + r*src_stride + k] for r, k in 0..7 (1-D arrays):
    row r of the tile in src (8 consecutive numbers) becomes column r of the tile in dst."""
    for r in range(LANES):
        for k in range(LANES):
            dst[dst_at + k * dst_stride + r] = src[src_at + r * src_stride + k]


def _swap_masks(h):
    """shufflevector masks (indices into the 16 numbers of rows a and b) that give the new rows a
    and b of the round that swaps h x h blocks: a = [a's block 0, b's block 0, a's block 2, ...]."""
    new_a = [(i // (2 * h)) * 2 * h + i % h + (LANES if i % (2 * h) >= h else 0) for i in range(LANES)]
    return new_a, [m + h for m in new_a]


@intrinsic
def _transpose_8x8_simd(typingctx, src, src_at, src_stride, dst, dst_at, dst_stride):
    signature = types.void(src, types.intp, types.intp, dst, types.intp, types.intp)

    def codegen(context, builder, sig, args):
        src_array, src_at, src_stride, dst_array, dst_at, dst_stride = args
        src_data = context.make_array(sig.args[0])(context, builder, src_array).data
        dst_data = context.make_array(sig.args[3])(context, builder, dst_array).data
        number = src_data.type.pointee
        vector = ir.VectorType(number, LANES)
        align = context.get_abi_sizeof(number)      # a row need not start at a vector boundary

        def row_pointer(data, at, stride, r):
            index = builder.add(at, builder.mul(stride, ir.Constant(at.type, r)))
            return builder.bitcast(builder.gep(data, [index]), vector.as_pointer())

        rows = [builder.load(row_pointer(src_data, src_at, src_stride, r), align=align) for r in range(LANES)]
        h = LANES // 2
        while h >= 1:
            masks = [ir.Constant(ir.VectorType(ir.IntType(32), LANES), m) for m in _swap_masks(h)]
            for r in range(LANES):
                if r & h == 0:
                    a, b = rows[r], rows[r + h]
                    rows[r], rows[r + h] = (builder.shuffle_vector(a, b, mask) for mask in masks)
            h //= 2
        for r in range(LANES):
            builder.store(rows[r], row_pointer(dst_data, dst_at, dst_stride, r), align=align)
        return context.get_dummy_value()

    return signature, codegen


transpose_8x8 = transpose_8x8_loop if config.DISABLE_JIT else _transpose_8x8_simd   # same arguments
