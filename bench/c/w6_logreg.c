/* W6: hand-written gradient of the L2-regularized logistic-regression NLL (see workloads/w6_logreg.py). */
#include <math.h>

void logreg_grad(const double *restrict w, const double *restrict X, const double *restrict y,
                 double lam, long rows, long cols, double *restrict g, double *restrict gz)
{
    for (long i = 0; i < rows; i++) {
        double z = 0.0;
        #pragma omp simd reduction(+:z)
        for (long j = 0; j < cols; j++)
            z += X[i * cols + j] * w[j];
        gz[i] = z;
    }
    #pragma omp simd
    for (long i = 0; i < rows; i++)
        gz[i] = 0.5 * (1.0 + tanh(0.5 * gz[i])) - y[i];
    for (long j = 0; j < cols; j++)
        g[j] = lam * w[j];
    for (long i = 0; i < rows; i++)
        #pragma omp simd
        for (long j = 0; j < cols; j++)
            g[j] += X[i * cols + j] * gz[i];
}
