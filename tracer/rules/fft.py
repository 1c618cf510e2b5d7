"""Rules for numpy.fft's one-dimensional transforms fft, ifft, rfft and irfft, on the public functions.

Each rule computes the concrete result with NumPy, casts an integer or bool operand to float64 (float and
complex operands are transformed as they are, as NumPy does), zero-pads or truncates it along the axis to
the length the transform reads (n, or n // 2 + 1 for irfft) with index/concatenate ops, and applies the
IR op (ir/ops.py FFT) with norm None read as "backward".  The results equal NumPy's bit for bit (NumPy
pads and truncates the same way).  Everything else in numpy.fft is Python code over these four (fft2,
fftn, rfftn, irfftn, hfft, ihfft...) or over np.roll and constants (fftshift, fftfreq), and is traced as
written.  `out=` is refused.
"""
import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from ..arrays import array_api as A
from ..recording.registry import register
from ..arrays.values import astype, builder, make, unwrap
from ..arrays.refusals import refuse_options


def _resized(v, axis, length):
    """`v` truncated or zero-padded at the end of `axis` to `length` entries (as numpy.fft does)."""
    have = v.shape[axis]
    if length < have:
        whole = tuple(("slice", 0, d, 1) for d in v.shape[:axis])
        return builder().index(v, spec=whole + (("slice", 0, length, 1),))
    if length > have:
        zeros = builder().fill(v.shape[:axis] + (length - have,) + v.shape[axis + 1:], v.dtype, 0)
        return builder().concatenate(v, zeros, axis=axis)
    return v


def _transform(np_fn, emit, read_length):
    """The rule for `np_fn`: `emit(b, operand, axis, n, norm)` builds the IR of the transform of the
    operand (as float64 if it is not float or complex) resized to `read_length(n)` along the axis."""
    def rule(a, n=None, axis=-1, norm=None, out=None):
        refuse_options(f"np.fft.{np_fn.__name__}", out=out)
        concrete = np_fn(unwrap(a), n=n, axis=axis, norm=norm)        # NumPy's checks and result
        x = A.as_traced(a)
        axis = normalize_axis_index(axis, x.ir.ndim)
        n = n if n is not None else _default_n(np_fn, x.ir.shape[axis])
        v = x.ir if x.ir.dtype.kind in "fc" else astype(x.ir, np.float64)
        v = _resized(v, axis, read_length(n))
        return make(emit(builder(), v, axis, n, norm or "backward"), concrete)
    rule.__name__ = np_fn.__name__
    rule.__doc__ = f"np.fft.{np_fn.__name__}, traced (see the module docstring)."
    return rule


def _default_n(np_fn, length):
    return 2 * (length - 1) if np_fn is np.fft.irfft else length


def _same_length(n):
    return n


def _complex_fft(inverse):
    return lambda b, v, axis, n, norm: b.fft(v, axis=axis, norm=norm, inverse=inverse)


for _fn, _emit, _length in (
        (np.fft.fft, _complex_fft(False), _same_length),
        (np.fft.ifft, _complex_fft(True), _same_length),
        (np.fft.rfft, lambda b, v, axis, n, norm: b.rfft(v, axis=axis, norm=norm), _same_length),
        (np.fft.irfft, lambda b, v, axis, n, norm: b.irfft(v, axis=axis, n=n, norm=norm), lambda n: n // 2 + 1)):
    register(_fn)(_transform(_fn, _emit, _length))
