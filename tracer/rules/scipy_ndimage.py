"""Rules for scipy.ndimage: the compiled 1-d correlation `_nd_image.correlate1d`, which correlate1d,
convolve1d, gaussian_filter(1d), uniform_filter(1d), sobel, prewitt... reach through SciPy's Python code
(traced, so a traced sigma reaches the weights).

The output is sum_j w[j] * input[p_j(i)] along the axis, one gather per tap: where each tap reads from,
boundary extension included, is found by running the compiled routine itself on element numbers (one tap
at a time, exact in float64), with a fill position for `cval` ('constant' modes).  It is linear in the
input, the weights and cval, and differentiable w.r.t. all three.  uniform_filter1d's compiled running sum
is the correlation with equal weights 1 / size (its values agree to rounding).
"""
import numpy as np

from ..arrays.aliasing import adopt_for_write
from ..arrays.array_api import as_traced
from ..recording.registry import register
from ..arrays.values import TracedArray, astype, builder, const, rebind, reshape, unwrap
from ..arrays.refusals import refuse

try:
    from scipy.ndimage import _nd_image
except ImportError:       # SciPy is optional
    _nd_image = None


def _tap_positions(n, taps, mode, origin):
    """(taps, n) int array: the element of a length-n line that tap j of output i reads, n for cval."""
    numbers, positions = np.arange(1.0, n + 1), np.empty((taps, n))
    for j in range(taps):
        one_hot = np.zeros(taps)
        one_hot[j] = 1.0
        _nd_image.correlate1d(numbers, one_hot, 0, positions[j], mode, 0.0, origin)
    return np.where(positions == 0, n + 1, positions).astype(np.intp) - 1


def correlate1d(input, weights, axis, output, mode, cval, origin):
    """_nd_image.correlate1d(input, weights (k,), axis, output, mode code, cval, origin): output filled."""
    written = output if type(output) is TracedArray else adopt_for_write(
        output, "scipy.ndimage.correlate1d", input, weights, cval)
    if written is None:
        return _nd_image.correlate1d(*unwrap((input, weights)), axis, output, mode, unwrap(cval), origin)
    if written.value.dtype.kind != "f":
        refuse("scipy.ndimage with an integer or complex output is not traced (its rounding has no derivative)")
    new_value = written.value.copy()
    _nd_image.correlate1d(*unwrap((input, weights)), axis, new_value, mode, unwrap(cval), origin)
    b, dtype = builder(), new_value.dtype
    x, w = as_traced(input).ir, astype(as_traced(weights).ir, np.float64)
    n = x.shape[axis]
    fill = b.broadcast_to(reshape(astype(as_traced(cval).ir, x.dtype), (1,) * x.ndim),
                          shape=x.shape[:axis] + (1,) + x.shape[axis + 1:])
    line = astype(b.concatenate(x, fill, axis=axis), np.float64)
    positions = _tap_positions(n, w.shape[0], mode, origin)
    before = tuple(("slice", 0, d, 1) for d in x.shape[:axis])
    after = tuple(("slice", 0, d, 1) for d in x.shape[axis + 1:])
    total = None
    for j, taps in enumerate(positions):
        tap = b.index(line, const(taps), spec=before + (("array", 0),) + after)
        term = b.multiply(tap, b.index(w, spec=(("int", j),)))
        total = term if total is None else b.add(total, term)
    rebind(written, astype(total, dtype), new_value)


def uniform_filter1d(input, size, axis, output, mode, cval, origin):
    """_nd_image.uniform_filter1d: correlate1d with `size` equal weights."""
    return correlate1d(input, np.full(size, 1.0 / size), axis, output, mode, cval, origin)


if _nd_image is not None:
    register(_nd_image.correlate1d)(correlate1d)
    register(_nd_image.uniform_filter1d)(uniform_filter1d)
