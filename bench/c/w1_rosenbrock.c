/* W1b: hand-written gradient of the Rosenbrock loop (see workloads/w1_rosenbrock.py). */
void rosenbrock_grad(const double *x, long n, double *g)
{
    for (long i = 0; i < n; i++)
        g[i] = 0.0;
    for (long i = 0; i < n - 1; i++) {
        double r = x[i + 1] - x[i] * x[i];
        g[i] += -400.0 * x[i] * r - 2.0 * (1.0 - x[i]);
        g[i + 1] += 200.0 * r;
    }
}
