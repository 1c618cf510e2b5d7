/* W3: hand-written gradient of sum(tanh(x)*sin(y)**2 + exp(-x*x)*y); one vectorized loop (libmvec). */
#include <math.h>

void elementwise_grad(const double *restrict x, const double *restrict y, long n,
                      double *restrict gx, double *restrict gy)
{
    #pragma omp simd
    for (long i = 0; i < n; i++) {
        double t = tanh(x[i]), s = sin(y[i]), e = exp(-x[i] * x[i]);
        gx[i] = (1.0 - t * t) * s * s - 2.0 * x[i] * e * y[i];
        gy[i] = t * sin(2.0 * y[i]) + e;
    }
}
