"""VJP and JVP rules of conj and of the Fourier transforms (fft, rfft, irfft), used by ir/vjp.py and
ir/jvp.py.

Cotangents of complex values follow ir/autodiff.py: ct = dL/dx + i dL/dy for z = x + iy, so the VJP of
a complex-linear map A is its adjoint A^H, and of a real-linear one its real adjoint.  With s the scale
`norm` gives a transform (backward: 1 forward, 1/n inverse; ortho: 1/sqrt(n); forward: the other way
round), the adjoint of fft(norm) is ifft with the dual norm (backward <-> forward, ortho stays):
    fft  : VJP  fft(g, inverse=not inverse, norm=dual), JVP the transform of the tangent;
    rfft : the first n//2+1 rows R of the DFT; R^H g = ifft(g zero-padded to n, norm=dual); the real
           part of it (taken centrally by the AD transform) is the cotangent of the real operand;
    irfft: x = s (X_0 + 2 sum_k Re(X_k w^jk) + X_{n/2} (-1)^j) reads only the real parts of the first
           and (n even) Nyquist bins, and counts the interior bins twice: its real adjoint is
           c * rfft(g, norm=dual) with c = 1 on those two bins and 2 on the others (rfft of a real g has
           zero imaginary parts there, as the ignored parts' cotangent must be).
conj: VJP conj(g), JVP conj(t).
"""
import numpy as np

DUAL_NORM = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _dual(params):
    return {**params, "norm": DUAL_NORM[params["norm"]]}


def _fft_vjp(b, node, g):
    return (b.fft(g, **{**_dual(node.params), "inverse": not node.params["inverse"]}),)


def _rfft_vjp(b, node, g):
    axis, n = node.params["axis"], node.args[0].shape[node.params["axis"]]
    missing = n - g.shape[axis]
    if missing:
        zeros_shape = g.shape[:axis] + (missing,) + g.shape[axis + 1:]
        g = b.concatenate(g, b.fill(zeros_shape, g.dtype, 0), axis=axis)
    return (b.fft(g, axis=axis, norm=DUAL_NORM[node.params["norm"]], inverse=True),)


def _irfft_vjp(b, node, g):
    axis, n = node.params["axis"], node.params["n"]
    spectrum = b.rfft(g, **_dual({"axis": axis, "norm": node.params["norm"]}))
    weights = np.full(n // 2 + 1, 2.0, dtype=g.dtype)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    shape = [1] * g.ndim
    shape[axis] = weights.size
    return (b.multiply(spectrum, b.const(weights.reshape(shape))),)


VJP_RULES = {
    "conj": lambda b, node, g: (b.conj(g),),
    "fft": _fft_vjp,
    "rfft": _rfft_vjp,
    "irfft": _irfft_vjp,
}

# Linear ops: the tangent goes through the op itself (rules see the operand's tangent in ts[0]).
JVP_RULES = {op: (lambda b, node, ts: b.emit(node.op, ts[0], **node.params))
             for op in ("conj", "fft", "rfft", "irfft")}
