/* W8: hand-written gradient of the softmax cross-entropy of a linear classifier (see
 * workloads/w8_softmax.py).  Both matrix products go through the Fortran dgemm passed in by the caller
 * (scipy's OpenBLAS); the softmax is one pass per row over the logits. */
#include <math.h>

typedef void (*dgemm_t)(const char *, const char *, const int *, const int *, const int *,
                        const double *, const double *, const int *, const double *, const int *,
                        const double *, double *, const int *);

void softmax_xent_grad(dgemm_t dgemm, const double *W, const double *b, const double *X, const double *Y,
                       long n, long f, long c, double *gW, double *gb, double *work)
{
    const double one = 1.0, zero = 0.0;
    int in = (int)n, inf = (int)f, ic = (int)c;
    /* row-major logits[n x c] = X[n x f] W[f x c], as column-major logits^T = W^T X^T */
    dgemm("N", "N", &ic, &in, &inf, &one, W, &ic, X, &inf, &zero, work, &ic);
    for (long j = 0; j < c; j++)
        gb[j] = 0.0;
    for (long r = 0; r < n; r++) {
        double *row = work + r * c;
        const double *y = Y + r * c;
        double top = -INFINITY, total = 0.0;
        for (long j = 0; j < c; j++) {
            row[j] += b[j];
            top = row[j] > top ? row[j] : top;
        }
        #pragma omp simd reduction(+:total)
        for (long j = 0; j < c; j++) {
            row[j] = exp(row[j] - top);
            total += row[j];
        }
        double scale = 1.0 / (total * (double)n);
        #pragma omp simd
        for (long j = 0; j < c; j++) {
            row[j] = row[j] * scale - y[j] / (double)n;
            gb[j] += row[j];
        }
    }
    /* row-major gW[f x c] = X^T[f x n] G[n x c], as column-major gW^T = G^T X */
    dgemm("N", "T", &ic, &inf, &in, &one, work, &ic, X, &inf, &zero, gW, &ic);
}
