/* W4: gradient of sum(x*x): the call overhead floor. */
void sum_of_squares_grad(const double *restrict x, long n, double *restrict g)
{
    for (long i = 0; i < n; i++)
        g[i] = 2.0 * x[i];
}
