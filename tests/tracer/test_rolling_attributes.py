"""Loops whose state lives in attributes of objects made in the traced call (a solver's `step()` storing
`self.t`, `self.y`, `self.nfev`: tracer/interpretation/loopattrs.py) roll as loops over local variables
do: the attributes are compared at the headers, carried, stepped and set to the loop op's results.
Values against CPython, gradients against central differences, compiled against the reference executor;
a store the tracer cannot prove sound keeps the loop unrolled, with its reason."""
import numpy as np
import pytest

import scipy.integrate as si_integrate

import jitgrad
from e2e import assert_grad
from test_rolling import not_rolled, top_loops, traced

P = np.array([0.5, 0.3])


@pytest.fixture(autouse=True)
def roll_short_loops(monkeypatch):
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")


class Stepper:
    def __init__(self, y, dt):
        self.y, self.t, self.n, self.dt = y, 0.0, 0, dt

    def step(self, p):
        self.y = self.y + self.dt * (-p[0] * self.y + np.sin(p[1] * self.t))
        self.t = self.t + self.dt
        self.n += 1

    def run(self, p, steps):
        for _ in range(steps):
            self.step(p)


def stepped(p, steps):
    s = Stepper(np.array([1.0, 2.0]), 0.01)
    for _ in range(steps):
        s.step(p)
    return np.sum(s.y ** 2) + s.t + s.n


def until(p, t_end):
    s = Stepper(np.array([1.0, 2.0]), 0.01)
    while s.t < t_end:
        s.step(p)
    return np.sum(s.y ** 2) * s.n


def by_method(p, steps):
    s = Stepper(np.array([1.0, 2.0]), 0.01)
    s.run(p, steps)
    return np.sum(s.y ** 2) + s.t + s.n


@pytest.mark.parametrize("fn", [stepped, by_method])
@pytest.mark.parametrize("steps", [3, 40, 3000])
def test_a_for_loop_stepping_an_objects_attributes_rolls(fn, steps):
    trace, ctx = traced(fn, P, steps)
    if steps > 3:
        assert len(top_loops(trace)) == 1, ctx.loops.report()
        assert "rolled" in ctx.loops.report()[0] and "not rolled" not in not_rolled(ctx)
    for jit in (None, False):
        assert_grad(fn, P, steps, jit=jit)


def test_the_object_holds_the_loops_results_after_it():
    def f(p, steps):
        s = Stepper(np.array([1.0, 2.0]), 0.01)
        for _ in range(steps):
            s.step(p)
        return np.sum(s.y), (s.n, s.t, s.y)

    for jit in (None, False):
        g = jitgrad.value_and_grad(f, has_aux=True, jit=jit)
        for steps in (500, 500):
            (value, (n, t, y)), grad = g(P, steps)
            _, (n0, t0, y0) = f(P, steps)
            assert (n, type(n)) == (n0, int) and (t, type(t)) == (t0, float)
            np.testing.assert_allclose(y, y0, rtol=1e-13)
        assert g.cache_info().traces == 1


def test_a_while_loop_on_an_attribute_rolls_and_answers_other_end_times_on_one_trace():
    g = jitgrad.jit_grad(until, argnums=(0,))
    for t_end in (3.0, 3.0, 4.567, 7.0):
        assert_grad(until, P, t_end, grad_fn=g)
    info = g.cache_info()
    assert info.traces == 1
    assert any("rolled" in line and "leaves on data" in line for line in info.paths[0].loops), info.paths[0].loops
    np.testing.assert_allclose(g(P, 4.567)[0], jitgrad.jit_grad(until, jit=False)(P, 4.567), rtol=1e-10)


class RK4:
    """A fixed-step solver written as SciPy's OdeSolver is: state in attributes, stages written into a
    buffer attribute in place, a function-evaluation counter, a status string."""
    C = np.array([0.0, 0.5, 0.5, 1.0])
    B = np.array([1.0, 2.0, 2.0, 1.0]) / 6

    def __init__(self, fun, t0, y0, t_bound, h):
        self.t, self.y, self.t_bound, self.h = t0, y0, t_bound, h
        self.nfev, self.status = 0, "running"
        self.K = np.empty((4, len(y0)))
        self.fun = self._counted(fun)

    def _counted(self, fun):
        def counted(t, y):
            self.nfev += 1
            return fun(t, y)
        return counted

    def step(self):
        h, t, y = self.h, self.t, self.y
        self.K[0] = self.fun(t, y)
        for s in range(1, 4):
            self.K[s] = self.fun(t + self.C[s] * h, y + self.C[s] * h * self.K[s - 1])
        self.y = y + h * (self.B @ self.K)
        self.t = t + h
        if self.t >= self.t_bound:
            self.status = "finished"


def solve(p, t_end):
    solver = RK4(lambda t, y: np.array([y[1], -p[0] * y[0] - p[1] * y[1] + np.sin(t)]), 0.0,
                 np.array([1.0, -0.5]), t_end, 0.01)
    status = None
    while status is None:
        solver.step()
        if solver.status == "finished":
            status = 0
    return np.sum(solver.y ** 2) + solver.nfev * 1e-3


def test_a_solver_objects_step_loop_rolls():
    g = jitgrad.jit_grad(solve, argnums=(0,))
    for t_end in (2.0, 2.0, 3.5):
        assert_grad(solve, P, t_end, grad_fn=g)
    info = g.cache_info()
    rolled = [line for line in info.paths[0].loops if "solve" not in line and ": rolled" in line]
    assert info.traces == 1 and len(rolled) == 1 and "leaves on data" in rolled[0], info.paths[0].loops
    assert info.paths[0].ops < 1000      # (unrolled: 200 steps of 4 stages)
    assert_grad(solve, P, 2.5, jit=False)


def test_redefining_the_method_a_rolled_loop_runs_retraces(monkeypatch):
    g = jitgrad.jit_grad(stepped)
    first = g(P, 300)
    assert g(P, 300) is not None and g.cache_info().traces == 1

    def slower(self, p):
        self.y = self.y + 0.5 * self.dt * (-p[0] * self.y + np.sin(p[1] * self.t))
        self.t = self.t + self.dt
        self.n += 1

    monkeypatch.setattr(Stepper, "step", slower)
    second = g(P, 300)
    assert g.cache_info().traces == 2
    assert not np.allclose(first, second)
    assert_grad(stepped, P, 300)


# -- what keeps such a loop unrolled ---------------------------------------------------------------------------
class Slotted:
    __slots__ = ("y",)

    def __init__(self, y):
        self.y = y


class Hooked:
    def __init__(self, y):
        self.y = y

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)


class Positive:
    """A data descriptor written in Python, not a property."""

    def __set_name__(self, owner, name):
        self.name = "_" + name

    def __get__(self, obj, owner=None):
        return getattr(obj, self.name)

    def __set__(self, obj, value):
        setattr(obj, self.name, abs(value))


class Described:
    y = Positive()

    def __init__(self, y):
        self.y = y


class Plain:
    def __init__(self, y):
        self.y = y


def _looping(make):
    def f(x, n):
        box = make(x)
        for _ in range(n):
            box.y = box.y * 0.5 + 1.0
        return box.y
    return f


def _updater(box):
    return lambda: setattr(box, "y", box.y * 0.5 + 1.0)


def _hidden(x, n):
    update = _updater(Plain(x))          # (only the closure holds the object)
    for _ in range(n):
        update()
    return update.__closure__[0].cell_contents.y


def _outside(x, n):
    for _ in range(n):
        x = x * 0.5
        setattr(BOX, "v", BOX.v + 1.0)
    return x


def _uneven(x, n):
    box = Plain(x)
    box.k = 0
    for _ in range(n):
        box.y = box.y * 0.5
        box.k = box.k * 2 + 1       # (an int the loop changes, not by a constant step)
    return box.y * box.k


@pytest.mark.parametrize("fn, why", [
    (_looping(Slotted), "a store to the attribute 'y' of a Slotted object (Slotted defines __slots__)"),
    (_looping(Hooked), "a store to the attribute 'y' of a Hooked object (Hooked defines __setattr__)"),
    (_looping(Described), "a store to the attribute 'y', a descriptor of its class Described"),
    (_hidden, "a store to the attribute 'y' of an object the loop's function does not hold in a variable"),
    (_uneven, "the attribute 'k' changes between iterations other than as a counter"),
])
def test_stores_that_keep_the_loop_unrolled_say_why(fn, why):
    trace, ctx = traced(fn, np.float64(3.0), 12)
    assert not top_loops(trace)
    assert why in not_rolled(ctx), ctx.loops.report()
    assert_grad(fn, np.float64(3.0), 12)


class Box:
    v = 0.0


BOX = Box()


def test_setattr_on_an_outside_object_keeps_the_loop_unrolled_and_happens_every_iteration():
    trace, ctx = traced(_outside, np.float64(1.0), 300)
    assert not top_loops(trace)
    assert "a store to the attribute 'v' of an object made outside the traced call" in not_rolled(ctx)
    BOX.v = 0.0
    g = jitgrad.jit_grad(_outside, argnums=(0,))
    for _ in range(2):
        g(np.float64(1.0), 300)
    assert BOX.v == 600.0


class Counted:
    """A property whose Python setter stores the attribute it reads: the setter's store is checked."""

    def __init__(self, y):
        self._y, self.calls = y, 0

    @property
    def y(self):
        return self._y

    @y.setter
    def y(self, value):
        self.calls += 1
        self._y = value


class Nested:
    def __init__(self, y):
        self.inner = Plain(y)
        self.t = 0.0


def _nested(x, n):
    box = Nested(x)
    for _ in range(n):
        box.inner.y = np.sin(box.inner.y) + box.t
        box.t += 0.01
    return box.inner.y * box.t


@pytest.mark.parametrize("fn", [_looping(Counted), _looping(Plain), _nested])
def test_properties_and_objects_held_by_attributes_roll(fn):
    trace, ctx = traced(fn, np.float64(3.0), 300)
    assert len(top_loops(trace)) == 1, ctx.loops.report()
    for jit in (None, False):
        assert_grad(fn, np.float64(3.0), 300, jit=jit)


# -- counts: int attributes only added to (`self.nfev += 1`), by amounts that differ between iterations -----------
class Retrying:
    def __init__(self, y):
        self.y, self.nfev = y, 0

    def fun(self, y, p):
        self.nfev += 1
        return -p[0] * y

    def step(self, p):
        y1 = self.y + 0.01 * self.fun(self.y, p)
        if np.sum(y1 ** 2) > 1.0:                # a step retried: two more calls
            y1 = self.y + 0.005 * (self.fun(self.y, p) + self.fun(y1, p))
        self.y = y1


def retrying(p, steps):
    s = Retrying(np.array([1.0, 0.5]))
    for _ in range(steps):
        s.step(p)
    many = "many" if s.nfev > 500 else "few"      # a decision on the count after the loop: a guard
    return np.sum(s.y) + s.nfev * 1e-3, (s.nfev, many, type(s.nfev).__name__)


def test_a_count_that_differs_between_iterations_is_carried_and_answers_each_call():
    for jit in (None, False):
        g = jitgrad.value_and_grad(retrying, has_aux=True, jit=jit)
        for p, traces in ((0.3, 1), (0.31, 1), (0.1, 2), (0.3, 2)):       # 474, 470, 622 calls
            (value, aux), _ = g(np.array([p]), 400)
            assert (value, aux) == retrying(np.array([p]), 400) and aux[2] == "int"
            assert g.cache_info().traces == traces
        loops = g.cache_info().paths[0].loops
        assert len(loops) == 1 and "rolled" in loops[0] and "2 paths" in loops[0], loops
    assert_grad(lambda p: retrying(p, 400)[0], np.array([0.3]))


# -- scipy.integrate.solve_ivp: RK45's step loop (its state in the solver's attributes) -------------------------
def _forced(t, y, k):
    return np.array([y[1], -k[0] * y[0] - k[1] * y[1] + np.sin(t)])


def _final_state(theta, y0):
    sol = si_integrate.solve_ivp(_forced, (0.0, 10.0), y0, args=(theta,), rtol=1e-8, atol=1e-10)
    return np.sum(sol.y[:, -1] ** 2) + sol.t[-1] + sol.nfev * 0.0


def _at_times(theta, y0):
    sol = si_integrate.solve_ivp(_forced, (0.0, 10.0), y0, args=(theta,), rtol=1e-8, atol=1e-10,
                                 t_eval=np.linspace(0.0, 10.0, 4))
    return np.sum(sol.y ** 2) + sol.t[-1]


@pytest.mark.parametrize("fn, most", [(_final_state, 15000), (_at_times, 8000)])
def test_solve_ivp_step_loop_rolls(fn, most, monkeypatch):
    """(Unrolled, each of the ~170 steps recorded: 72,000 and 73,000 operations.)"""
    monkeypatch.delenv("JITGRAD_UNROLL_OPS")
    theta, y0 = np.array([2.0, 0.3]), np.array([1.0, -0.5])
    g = jitgrad.jit_grad(fn, argnums=(0, 1))
    for args in ((theta, y0), (theta * 1.00001, y0)):                # the same steps: one trace
        assert_grad(fn, *args, argnums=(0, 1), grad_fn=g)
    info = g.cache_info()
    assert info.traces == 1 and info.paths[0].ops < most, info.paths[0].ops
    assert any("ivp.py" in line and ": rolled" in line for line in info.paths[0].loops), info.paths[0].loops
    assert_grad(fn, theta, y0, argnums=(0, 1), jit=False)
