"""Two loops that Numba cannot make fast by itself, written in LLVM's own instructions.

Numba compiles Python loops through LLVM, whose auto-vectoriser turns a simple loop into SIMD
instructions, but only in the shapes it recognises. Numba is built on llvmlite, and
``numba.extending.intrinsic`` lets a function emit LLVM instructions into the compiled caller, so
where the vectoriser gives up we can say it ourselves. Both functions serve ``depthwise.py``:

- ``transpose_8x8``: a transposition, which the vectoriser does one number at a time however the
  loops are arranged. Here 8 rows are loaded as 8 vectors, reordered in registers by 24
  ``shufflevector``s, and stored as 8 columns. The shuffles transpose blocks of blocks: with
  h = 4, 2, 1, rows r and r + h (r & h == 0) swap their h x h blocks: row r keeps its even blocks
  and takes the even blocks of row r + h, which gets the odd ones of both. After the three rounds,
  row r holds column r.
- ``add_taps_in_registers`` (one output row) and ``add_tap_pairs_in_registers`` (two rows sharing
  their loads): a chunk of output rows summed over all of a filter's taps. As a loop over taps
  with a vectorised loop over the row inside, every tap loads and stores the outputs again. Here
  the chunk's outputs stay in vector registers (``ROW_VECTORS`` vectors per row) while the taps go
  by, and only the inputs are loaded, each feeding one fused multiply-add per row: what a
  hand-written convolution kernel does.

Under ``NUMBA_DISABLE_JIT=1`` (debugging) each is its plain loop of the same name + ``_loop``.
Editing this file? Numba's disk cache keys each compiled kernel on the kernel's own source file,
so the depthwise kernels would keep the old code: delete their ``__pycache__/depthwise*.nbi`` files.
"""

from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8         # numbers per vector: 256 bits of float32 (512 of float64); the transposition's tile
ROW_VECTORS = 8   # vectors of each output row held in registers: 16 registers for a pair of rows
CHUNK = LANES * ROW_VECTORS   # lanes of an output row per call of add_taps_in_registers


def transpose_8x8_loop(src, src_at, src_stride, dst, dst_at, dst_stride):
    """dst[dst_at + k*dst_stride + r] = src[src_at + r*src_stride + k] for r, k in 0..7 (1-D arrays):
    row r of the tile in src (8 consecutive numbers) becomes column r of the tile in dst."""
    for r in range(LANES):
        for k in range(LANES):
            dst[dst_at + k * dst_stride + r] = src[src_at + r * src_stride + k]


def add_taps_loop(row, weights, offsets, y, at):
    """y[s, at + l] += sum_t weights[s, t] * row[at + offsets[t] + l] for every output row s of y
    (S, L) and l < CHUNK; weights (S, T), offsets (T,) ints, row 1-D. Each y is summed in tap order."""
    for s in range(y.shape[0]):
        for l in range(CHUNK):
            for t in range(len(offsets)):
                y[s, at + l] += weights[s, t] * row[at + offsets[t] + l]


def _swap_masks(h):
    """shufflevector masks (indices into the 16 numbers of rows a and b) that give the new rows a
    and b of the round that swaps h x h blocks: a = [a's block 0, b's block 0, a's block 2, ...]."""
    new_a = [(i // (2 * h)) * 2 * h + i % h + (LANES if i % (2 * h) >= h else 0) for i in range(LANES)]
    return new_a, [m + h for m in new_a]


def _int_vector(values):
    return ir.Constant(ir.VectorType(ir.IntType(32), LANES), values)


def _vector_at(builder, pointer, number):
    """pointer (to one number) as a pointer to the LANES numbers from there on."""
    return builder.bitcast(pointer, ir.VectorType(number, LANES).as_pointer())


def _splat(builder, value, vector):
    """A vector with ``value`` in every lane."""
    one = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vector, ir.Undefined), _int_vector([0] * LANES))


@intrinsic
def _transpose_8x8_simd(typingctx, src, src_at, src_stride, dst, dst_at, dst_stride):
    signature = types.void(src, types.intp, types.intp, dst, types.intp, types.intp)

    def codegen(context, builder, sig, args):
        src_array, src_at, src_stride, dst_array, dst_at, dst_stride = args
        src_data = context.make_array(sig.args[0])(context, builder, src_array).data
        dst_data = context.make_array(sig.args[3])(context, builder, dst_array).data
        number = src_data.type.pointee
        align = context.get_abi_sizeof(number)      # a row need not start at a vector boundary

        def row_pointer(data, at, stride, r):
            index = builder.add(at, builder.mul(stride, ir.Constant(at.type, r)))
            return _vector_at(builder, builder.gep(data, [index]), number)

        rows = [builder.load(row_pointer(src_data, src_at, src_stride, r), align=align) for r in range(LANES)]
        h = LANES // 2
        while h >= 1:
            masks = [_int_vector(m) for m in _swap_masks(h)]
            for r in range(LANES):
                if r & h == 0:
                    a, b = rows[r], rows[r + h]
                    rows[r], rows[r + h] = (builder.shuffle_vector(a, b, mask) for mask in masks)
            h //= 2
        for r in range(LANES):
            builder.store(rows[r], row_pointer(dst_data, dst_at, dst_stride, r), align=align)
        return context.get_dummy_value()

    return signature, codegen


def _taps_in_registers(outputs):
    """The intrinsic add_taps(row, weights, offsets, y, at) of add_taps_loop for y of ``outputs``
    rows (a number known when it compiles, so that the accumulators are named registers)."""

    @intrinsic
    def add_taps(typingctx, row, weights, offsets, y, at):
        signature = types.void(row, weights, offsets, y, types.intp)

        def codegen(context, builder, sig, args):
            arrays = [context.make_array(kind)(context, builder, value)
                      for kind, value in zip(sig.args[:4], args[:4])]
            at = args[4]

            def pointer(i, *indices):              # to element [indices] of argument i
                index = [ir.Constant(at.type, k) if isinstance(k, int) else k for k in indices]
                return cgutils.get_item_pointer(context, builder, sig.args[i], arrays[i], index)

            def vector_pointer(i, first, *at_lane):     # to argument i's LANES numbers from [first, *at_lane]
                return _vector_at(builder, pointer(i, first, *at_lane), number)

            def plus(index, lanes):
                return builder.add(index, ir.Constant(at.type, lanes))

            number = arrays[0].data.type.pointee
            vector, align = ir.VectorType(number, LANES), context.get_abi_sizeof(number)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3),
                                                 f"llvm.fma.v{LANES}f{8 * align}")
            # The sums start as y's numbers, in stack slots that LLVM's first optimisation (mem2reg)
            # turns into registers: nothing in the loop below goes through memory but the inputs.
            sums = [[cgutils.alloca_once_value(builder, builder.load(vector_pointer(3, s, plus(at, r * LANES)),
                                                                     align=align))
                     for r in range(ROW_VECTORS)] for s in range(outputs)]
            with cgutils.for_range(builder, builder.extract_value(arrays[2].shape, 0)) as loop:   # the taps
                t = loop.index
                start = builder.add(at, builder.load(pointer(2, t)))
                weights = [_splat(builder, builder.load(pointer(1, s, t)), vector) for s in range(outputs)]
                for r in range(ROW_VECTORS):
                    x = builder.load(vector_pointer(0, plus(start, r * LANES)), align=align)
                    for s in range(outputs):
                        builder.store(builder.call(fma, [weights[s], x, builder.load(sums[s][r])]), sums[s][r])
            for s in range(outputs):
                for r in range(ROW_VECTORS):
                    builder.store(builder.load(sums[s][r]), vector_pointer(3, s, plus(at, r * LANES)), align=align)
            return context.get_dummy_value()

        return signature, codegen

    return add_taps


if config.DISABLE_JIT:
    transpose_8x8 = transpose_8x8_loop
    add_taps_in_registers = add_tap_pairs_in_registers = add_taps_loop
else:
    transpose_8x8 = _transpose_8x8_simd
    add_taps_in_registers, add_tap_pairs_in_registers = _taps_in_registers(1), _taps_in_registers(2)
