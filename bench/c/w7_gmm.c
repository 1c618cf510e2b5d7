/* W7: hand-written gradient of the ADBench GMM objective (see workloads/w7_gmm.py, gmm_grad_loops).
 * icf[j] = (log diagonal of Q_j (d), strictly lower part of Q_j column by column). */
#include <math.h>

#define LOWER(c, r) (d + (c) * d - (c) * ((c) + 1) / 2 + (r) - (c) - 1)

void gmm_grad(const double *alphas, const double *means, const double *icf, const double *x,
              long k, long d, long n, double wishart_gamma, double wishart_m,
              double *g_alphas, double *g_means, double *g_icf, double *work)
{
    long m = d + d * (d - 1) / 2;
    double *xc = work, *y = work + k * n * d, *inner = work + 2 * k * n * d;
    for (long j = 0; j < k * d; j++)
        g_means[j] = 0.0;
    for (long j = 0; j < k * m; j++)
        g_icf[j] = 0.0;
    for (long j = 0; j < k; j++) {
        const double *q = icf + j * m;
        double sum_qs = 0.0;
        for (long r = 0; r < d; r++)
            sum_qs += q[r];
        for (long i = 0; i < n; i++) {
            double *xci = xc + (j * n + i) * d, *yi = y + (j * n + i) * d, sq = 0.0;
            for (long r = 0; r < d; r++)
                xci[r] = x[i * d + r] - means[j * d + r];
            for (long r = 0; r < d; r++) {
                double acc = exp(q[r]) * xci[r];
                for (long c = 0; c < r; c++)
                    acc += q[LOWER(c, r)] * xci[c];
                yi[r] = acc;
                sq += acc * acc;
            }
            inner[j * n + i] = alphas[j] + sum_qs - 0.5 * sq;
        }
    }
    for (long i = 0; i < n; i++) {
        double top = inner[i], total = 0.0;
        for (long j = 1; j < k; j++)
            top = fmax(top, inner[j * n + i]);
        for (long j = 0; j < k; j++)
            total += (inner[j * n + i] = exp(inner[j * n + i] - top));
        for (long j = 0; j < k; j++)
            inner[j * n + i] /= total;
    }
    double top_alpha = alphas[0], alpha_total = 0.0;
    for (long j = 1; j < k; j++)
        top_alpha = fmax(top_alpha, alphas[j]);
    for (long j = 0; j < k; j++)
        alpha_total += exp(alphas[j] - top_alpha);
    for (long j = 0; j < k; j++) {
        const double *q = icf + j * m;
        double *gq = g_icf + j * m, *gm = g_means + j * d, resp_total = 0.0;
        for (long i = 0; i < n; i++) {
            double w = inner[j * n + i];
            const double *xci = xc + (j * n + i) * d, *yi = y + (j * n + i) * d;
            resp_total += w;
            for (long r = 0; r < d; r++) {
                double g_y = -w * yi[r], e = exp(q[r]);
                gq[r] += g_y * xci[r] * e;
                gm[r] -= g_y * e;
                for (long c = 0; c < r; c++) {
                    gm[c] -= g_y * q[LOWER(c, r)];
                    gq[LOWER(c, r)] += g_y * xci[c];
                }
            }
        }
        g_alphas[j] = resp_total - n * exp(alphas[j] - top_alpha) / alpha_total;
        for (long r = 0; r < d; r++)
            gq[r] += resp_total + wishart_gamma * wishart_gamma * exp(2.0 * q[r]) - wishart_m;
        for (long idx = d; idx < m; idx++)
            gq[idx] += wishart_gamma * wishart_gamma * q[idx];
    }
}
