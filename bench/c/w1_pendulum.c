/* W1a: hand-written adjoint of the damped-pendulum Euler loop (see workloads/w1_pendulum.py). */
#include <math.h>
#include <stdlib.h>

#define DT 0.01

void pendulum_grad(const double *p, long steps, double *grad)
{
    double a = p[0], b = p[1];
    double *th = malloc(sizeof(double) * (steps + 1)), *om = malloc(sizeof(double) * (steps + 1));
    th[0] = p[2];
    om[0] = p[3];
    for (long t = 0; t < steps; t++) {
        th[t + 1] = th[t] + DT * om[t];
        om[t + 1] = om[t] - DT * (a * sin(th[t]) + b * om[t]);
    }
    double lt = 2.0 * DT * th[steps], lo = 0.0, ga = 0.0, gb = 0.0;
    for (long t = steps - 1; t >= 0; t--) {
        ga -= lo * DT * sin(th[t]);
        gb -= lo * DT * om[t];
        double nt = lt - lo * DT * a * cos(th[t]);
        lo = lt * DT + lo * (1.0 - DT * b);
        lt = nt + (t > 0 ? 2.0 * DT * th[t] : 0.0);
    }
    grad[0] = ga; grad[1] = gb; grad[2] = lt; grad[3] = lo;
    free(th);
    free(om);
}
