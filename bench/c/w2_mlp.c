/* W2: hand-written backpropagation of the 64-256-256-1 tanh MLP (see workloads/w2_mlp.py).
 * Matrix products go through the Fortran dgemm passed in by the caller (scipy's OpenBLAS). */
#include <math.h>

typedef void (*dgemm_t)(const char *, const char *, const int *, const int *, const int *,
                        const double *, const double *, const int *, const double *, const int *,
                        const double *, double *, const int *);

#define IN 64
#define H 256

/* Row-major C[m x n] = op(A)[m x k] @ op(B)[k x n]; lda/ldb are the stored row lengths. */
static void mm(dgemm_t dgemm, int ta, int tb, int m, int n, int k,
               const double *A, int lda, const double *B, int ldb, double *C)
{
    const double one = 1.0, zero = 0.0;
    dgemm(tb ? "T" : "N", ta ? "T" : "N", &n, &m, &k, &one, B, &ldb, A, &lda, &zero, C, &n);
}

static void bias_tanh(double *restrict a, const double *restrict bias, long rows)
{
    for (long r = 0; r < rows; r++) {
        #pragma omp simd
        for (long j = 0; j < H; j++)
            a[r * H + j] = tanh(a[r * H + j] + bias[j]);
    }
}

static void column_sums(const double *restrict a, double *restrict out, long rows)
{
    for (long j = 0; j < H; j++)
        out[j] = 0.0;
    for (long r = 0; r < rows; r++)
        #pragma omp simd
        for (long j = 0; j < H; j++)
            out[j] += a[r * H + j];
}

void mlp_grad(dgemm_t dgemm, const double *X, const double *y, long batch,
              const double *W1, const double *b1, const double *W2, const double *b2,
              const double *W3, const double *b3,
              double *gW1, double *gb1, double *gW2, double *gb2, double *gW3, double *gb3,
              double *work)
{
    int B = (int)batch;
    double *h1 = work, *h2 = work + B * H, *ga2 = work + 2 * B * H, *ga1 = work + 3 * B * H;
    double *gout = work + 4 * B * H;
    mm(dgemm, 0, 0, B, H, IN, X, IN, W1, H, h1);
    bias_tanh(h1, b1, B);
    mm(dgemm, 0, 0, B, H, H, h1, H, W2, H, h2);
    bias_tanh(h2, b2, B);
    gb3[0] = 0.0;
    for (long r = 0; r < B; r++) {
        double out = b3[0];
        for (long j = 0; j < H; j++)
            out += h2[r * H + j] * W3[j];
        gout[r] = 2.0 / B * (out - y[r]);
        gb3[0] += gout[r];
    }
    for (long j = 0; j < H; j++)
        gW3[j] = 0.0;
    for (long r = 0; r < B; r++)
        #pragma omp simd
        for (long j = 0; j < H; j++) {
            double h = h2[r * H + j];
            gW3[j] += h * gout[r];
            ga2[r * H + j] = gout[r] * W3[j] * (1.0 - h * h);
        }
    mm(dgemm, 1, 0, H, H, B, h1, H, ga2, H, gW2);
    column_sums(ga2, gb2, B);
    mm(dgemm, 0, 1, B, H, H, ga2, H, W2, H, ga1);
    for (long i = 0; i < (long)B * H; i++)
        ga1[i] *= 1.0 - h1[i] * h1[i];
    mm(dgemm, 1, 0, IN, H, B, X, IN, ga1, H, gW1);
    column_sums(ga1, gb1, B);
}
