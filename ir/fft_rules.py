"""VJP and JVP rules of conj and of the Fourier transforms (fft, rfft, irfft), used by ir/vjp.py and
ir/jvp.py.

Cotangents of complex values follow ir/autodiff.py: ct = dL/dx + i dL/dy for z = x + iy, so the VJP of
a complex-linear map A is its adjoint A^H, and of a real-linear one its real adjoint.  With s the scale
`norm` gives a transform (backward: 1 forward, 1/n inverse; ortho: 1/sqrt(n); forward: the other way
round), the adjoint of fft(norm) is ifft with the dual norm (backward <-> forward, ortho stays):
    fft  : VJP  fft(g, inverse=not inverse, norm=dual) (of g's real float64 operand when g is its cast
           to complex128: the same values, and the JIT transforms a real operand with half the work),
           JVP the transform of the tangent.  A real operand's cotangent is the real part of that,
           Re T(g) = T(H g) with H g = (g_k + conj(g_(n-k)))/2 the Hermitian part of g, whose transform
           is real: irfft of the first n//2+1 entries of H g (of H conj(g) with the norm undualled for
           an inverse fft, as Re fft_s(g) = s * unnormalized-ifft(conj H g)): one real transform
           instead of a complex one;
    rfft : the first n//2+1 rows R of the DFT; the cotangent of the real operand is Re(s R^H g) =
           irfft(c g, norm=dual) with c = 1 on the first and (n even) Nyquist bins, which irfft counts
           once (reading their real parts only, as Re does), and 1/2 on the others, which it counts twice;
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
    axis, norm, inverse = node.params["axis"], node.params["norm"], node.params["inverse"]
    if node.args[0].dtype.kind == "f":      # the real part of the adjoint, by a real transform
        n = node.shape[axis]
        if inverse:
            return (b.irfft(_hermitian_part(b, b.conj(g), axis), axis=axis, n=n, norm=norm),)
        return (b.irfft(_hermitian_part(b, g, axis), axis=axis, n=n, norm=DUAL_NORM[norm]),)
    if g.op == "astype" and g.args[0].dtype == np.float64 and g.dtype == np.complex128:
        g = g.args[0]       # a real cotangent (of real(z), say): transformed as real, as NumPy casts it
    return (b.fft(g, **{**_dual(node.params), "inverse": not inverse}),)


def _hermitian_part(b, g, axis):
    """The first n // 2 + 1 entries along `axis` of (g_k + conj(g_(n-k) mod n)) / 2, the Hermitian part
    of g (whose inverse transform is the real part of g's)."""
    n = g.shape[axis]
    m = n // 2 + 1
    lead = tuple(("slice", 0, d, 1) for d in g.shape[:axis])
    half = b.fill((), g.dtype, 0.5)
    first = b.index(g, spec=lead + (("slice", 0, 1, 1),))
    part = b.multiply(b.add(first, b.conj(first)), half)
    if m == 1:
        return part
    rest = b.index(g, spec=lead + (("slice", 1, m - 1, 1),))
    mirrored = b.index(g, spec=lead + (("slice", n - 1, m - 1, -1),))
    return b.concatenate(part, b.multiply(b.add(rest, b.conj(mirrored)), half), axis=axis)


def _rfft_vjp(b, node, g):
    axis, n = node.params["axis"], node.args[0].shape[node.params["axis"]]
    return (b.irfft(b.multiply(g, b.const(_bin_weights(n, g.dtype, 1.0, 0.5, g.ndim, axis))),
                    axis=axis, n=n, norm=DUAL_NORM[node.params["norm"]]),)


def _bin_weights(n, dtype, edge, interior, ndim, axis):
    """Weights of the n // 2 + 1 bins of a real transform along `axis`: `edge` on the first bin and (n
    even) the Nyquist bin, which a real transform counts once, `interior` on the others."""
    weights = np.full(n // 2 + 1, interior, dtype=dtype)
    weights[0] = edge
    if n % 2 == 0:
        weights[-1] = edge
    shape = [1] * ndim
    shape[axis] = weights.size
    return weights.reshape(shape)


def _irfft_vjp(b, node, g):
    axis, n = node.params["axis"], node.params["n"]
    spectrum = b.rfft(g, **_dual({"axis": axis, "norm": node.params["norm"]}))
    return (b.multiply(spectrum, b.const(_bin_weights(n, g.dtype, 1.0, 2.0, g.ndim, axis))),)


VJP_RULES = {
    "conj": lambda b, node, g: (b.conj(g),),
    "fft": _fft_vjp,
    "rfft": _rfft_vjp,
    "irfft": _irfft_vjp,
}

# Linear ops: the tangent goes through the op itself (rules see the operand's tangent in ts[0]).
JVP_RULES = {op: (lambda b, node, ts: b.emit(node.op, ts[0], **node.params))
             for op in ("conj", "fft", "rfft", "irfft")}
