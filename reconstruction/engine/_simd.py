"""Eight-lane float32 updates for the projector kernels, as numba intrinsics (needs numba).

The kernels keep the slices innermost and loop over them for every (voxel, tilt) or ray sample.
LLVM vectorises that loop, but with a runtime aliasing check and a dispatch on the trip count for
every sample, and on a slab of 8–32 slices those cost more than the update itself. These helpers
update eight consecutive slices with explicit ``<8 x float>`` loads, multiplies, adds and a store:
no checks, no loop. Each lane gets the same IEEE multiplies and adds, in the same order, as the
scalar statement it replaces (no fused multiply-add; numba does not contract either), so the
numbers are bit for bit those of the scalar loop.

Offsets are in elements from the start of a C-contiguous array (any number of dimensions), which
the caller keeps within bounds: there is no bounds check.

numba's on-disk cache does not track this module: after changing it, touch ``projectors.py`` (or
clear its ``__pycache__``) so the kernels that inline these helpers are compiled again.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

__all__ = ["LANES", "v8_axpy2", "v8_bilerp", "v8_lerp"]

#: Slices per explicit vector update.
LANES = 8

_F32 = ir.FloatType()
_V8 = ir.VectorType(_F32, LANES)
_I32 = ir.IntType(32)


def _check(*arrays: types.Type) -> None:
    for a in arrays:
        if not (isinstance(a, types.Array) and a.dtype == types.float32 and a.layout == "C"):
            raise TypingError(f"8-lane update needs C-contiguous float32 arrays, got {a}")


def _ptr(context, builder, aty, arr, offset):
    base = make_array(aty)(context, builder, arr).data
    return builder.bitcast(builder.gep(base, [offset]), _V8.as_pointer())


def _load(context, builder, aty, arr, offset):
    return builder.load(_ptr(context, builder, aty, arr, offset), align=4)


def _splat(builder, x):
    v = builder.insert_element(ir.Constant(_V8, ir.Undefined), x, ir.Constant(_I32, 0))
    return builder.shuffle_vector(
        v, ir.Constant(_V8, ir.Undefined), ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES)
    )


def _add_into(context, builder, aty, arr, offset, value):
    p = _ptr(context, builder, aty, arr, offset)
    builder.store(builder.fadd(builder.load(p, align=4), value), p, align=4)


@intrinsic
def v8_axpy2(typingctx, o, i0, i1, w0, w1, v, iv):
    """``o[i0 + k] += w0 * v[iv + k]`` and ``o[i1 + k] += w1 * v[iv + k]`` for k < 8 (one load of ``v``)."""
    _check(o, v)
    f = types.float32
    sig = types.void(o, i0, i1, f, f, v, iv)

    def codegen(context, builder, sig, args):
        o_, i0_, i1_, w0_, w1_, v_, iv_ = args
        oty = sig.args[0]
        x = _load(context, builder, sig.args[5], v_, iv_)
        _add_into(context, builder, oty, o_, i0_, builder.fmul(_splat(builder, w0_), x))
        _add_into(context, builder, oty, o_, i1_, builder.fmul(_splat(builder, w1_), x))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def v8_lerp(typingctx, o, io, r, i0, i1, w0, w1):
    """``o[io + k] += w0 * r[i0 + k] + w1 * r[i1 + k]`` for k < 8."""
    _check(o, r)
    sig = types.void(o, io, r, i0, i1, types.float32, types.float32)

    def codegen(context, builder, sig, args):
        o_, io_, r_, i0_, i1_, w0_, w1_ = args
        rty = sig.args[2]
        a = builder.fmul(_splat(builder, w0_), _load(context, builder, rty, r_, i0_))
        b = builder.fmul(_splat(builder, w1_), _load(context, builder, rty, r_, i1_))
        _add_into(context, builder, sig.args[0], o_, io_, builder.fadd(a, b))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def v8_bilerp(typingctx, o, io, v, i00, i01, i10, i11, w00, w01, w10, w11):
    """``o[io + k] += (w00 * v[i00 + k] + w01 * v[i01 + k]) + (w10 * v[i10 + k] + w11 * v[i11 + k])``."""
    _check(o, v)
    f = types.float32
    sig = types.void(o, io, v, i00, i01, i10, i11, f, f, f, f)

    def codegen(context, builder, sig, args):
        o_, io_, v_, a00, a01, a10, a11, w00_, w01_, w10_, w11_ = args
        vty = sig.args[2]

        def term(w, i):
            return builder.fmul(_splat(builder, w), _load(context, builder, vty, v_, i))

        s = builder.fadd(builder.fadd(term(w00_, a00), term(w01_, a01)), builder.fadd(term(w10_, a10), term(w11_, a11)))
        _add_into(context, builder, sig.args[0], o_, io_, s)
        return context.get_dummy_value()

    return sig, codegen
