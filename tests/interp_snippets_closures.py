"""Snippets of comprehensions and closures for the interpreter tests (run as interp_snippets.py's are):
the forms where 3.12+ inlines a comprehension into its function and a loop variable is also a cell
variable, so that fast-local opcodes (and 3.13's LOAD_FAST_LOAD_FAST, STORE_FAST_LOAD_FAST and
STORE_FAST_STORE_FAST superinstructions) name cell variables.  The functions are plain Python + NumPy,
also differentiated by test_versions.py."""
import math

import numpy as np

from interp_snippets import snippet_registrar

SNIPPETS = []
snippet = snippet_registrar(SNIPPETS)


@snippet(np.linspace(0.5, 1.0, 6).reshape(2, 3))
def loop_variable_captured_by_generator(icf):
    """The loop variable `ik` is a cell (a generator expression captures it) and a plain local of the
    second comprehension: 3.13 loads it with LOAD_FAST_LOAD_FAST (issue 9)."""
    k, d = icf.shape
    s = [sum(icf[ik, j] for j in range(d)) for ik in range(k)]
    q = [[math.exp(icf[ik, j]) for j in range(d)] for ik in range(k)]
    t = 0.0
    for ik in range(k):
        t = t + sum(v * v for v in q[ik]) - s[ik]
    return t


@snippet(np.array([0.5, -1.0, 2.0]))
def nested_comprehensions_capture_loop_variables(x):
    """Lambdas made in nested comprehensions, called late: each sees the last value of what it closes
    over in its own comprehension, and the outer `i` and `j` are cells while the comprehensions run."""
    n = len(x)
    table = [[lambda: x[i] * x[j] for j in range(n)] for i in range(n)]
    late = [[f() for f in row] for row in table]
    now = [[(lambda: x[i] - x[j])() for j in range(n)] for i in range(n)]
    i, j = 0, n - 1
    return late, now, x[i] + x[j]


@snippet(np.array([1.0, 2.0, 3.0]), 2.0)
def lambda_in_comprehension_closes_over_loop_variable(x, scale):
    """A lambda built per item, closing over the comprehension's variable and an argument of the
    function (both cells); the function's own `v`, bound before, survives the comprehension."""
    v = scale + 1.0
    scaled = [(lambda: v * scale)() for v in x]
    makers = [lambda w=w: w * scale + v for w in x]
    return scaled, [m() for m in makers], v


@snippet(np.array([0.5, 1.5, 2.5, 3.5]))
def generator_inside_comprehension(x):
    """A generator expression per item of a comprehension, capturing the item; then a comprehension
    inside a generator expression."""
    n = len(x)
    partial = [sum(x[i] * x[k] for k in range(i + 1)) for i in range(n)]
    nested = sum(max([x[i] * k for k in range(3)]) for i in range(n))
    a, b = partial[0], partial[-1]
    return partial, nested, a * b


@snippet(np.array([0.25, -0.5, 1.0]), 4)
def nonlocal_updates_in_loop(x, steps):
    """A closure updating `nonlocal` state on every iteration of a loop, read by a comprehension."""
    total = 0.0
    history = []

    def accumulate(value):
        nonlocal total
        total = total + value
        history.append(total)
    for step in range(steps):
        accumulate(sum(x * step))
        total = total * 0.5
    return total, [h * 2 for h in history], [(lambda: total + step)() for step in range(2)]


@snippet(3)
def comprehension_shadows_cell_variables(n):
    """The comprehension's variables shadow cell variables of the function (read by closures made before
    and after): saved, replaced and restored around the inlined comprehension, also when it raises."""
    a, b = 10, 20
    read = lambda: (a, b)   # noqa: E731
    pairs = [(a, b) for a, b in zip(range(n), range(n, 2 * n))]
    doubled = [a * 2 for a in range(n)]
    swapped = [(lambda: b - a)() for a, b in pairs]
    try:
        [a // (b - n) for a, b in pairs]
    except ZeroDivisionError as e:
        error = str(e)
    return pairs, doubled, swapped, read(), a, b, error


@snippet([1.5, -2.0, 0.5])
def walrus_in_comprehension_binds_captured_variable(xs):
    """`:=` in a comprehension binds the function's `last`, a cell variable a lambda made before reads."""
    get = lambda: last   # noqa: E731
    squares = [(last := x) ** 2 for x in xs]
    return squares, last, get()


@snippet(3)
def comprehensions_in_class_body(n):
    """3.12+ inlines comprehensions into class bodies too (fast locals in a frame of names)."""
    class Table:
        rows = [i * 2 for i in range(n)]
        called = [(lambda: i)() for i in range(n)]
    return Table.rows, Table.called
