"""``prefetch_row``: ask the CPU to start loading a matrix row into cache.

A Numba kernel that streams through a large array block by block can hint
the memory system to fetch the next block while it computes on this one
(``llvm.prefetch``: a hint only, it never changes a result or faults).
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

CACHE_LINE_BYTES = 64


@intrinsic
def prefetch_row(typingctx, array, row):
    """Prefetch every cache line of ``array[row, :]`` (a 2-D C-contiguous array)."""
    if not (isinstance(array, types.Array) and array.ndim == 2 and isinstance(row, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        shape = cgutils.unpack_tuple(builder, view.shape, 2)
        strides = cgutils.unpack_tuple(builder, view.strides, 2)
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        row_index = context.cast(builder, args[1], signature.args[1], types.intp)
        start = cgutils.get_item_pointer2(context, builder, data=view.data, shape=shape,
                                          strides=strides, layout=array_type.layout,
                                          inds=[row_index, ir.Constant(i64, 0)])
        byte_pointer = ir.IntType(8).as_pointer()
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch.p0i8")
        base = builder.bitcast(start, byte_pointer)
        item_bytes = context.get_abi_sizeof(context.get_data_type(array_type.dtype))
        row_bytes = builder.mul(shape[1], ir.Constant(i64, item_bytes))
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), row_bytes,
                                     ir.Constant(i64, CACHE_LINE_BYTES)) as (offset, _):
            # (address, read = 0, locality = 3: keep in all cache levels, data = 1)
            builder.call(prefetch, [builder.gep(base, [offset]), ir.Constant(i32, 0),
                                    ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(array, row), codegen
