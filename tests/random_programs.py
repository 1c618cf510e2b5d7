"""A seeded generator of small NumPy programs for differential testing (tests/api/test_random_programs.py).

`program(seed)` returns the source of `def f(x, y, s): ...` (x, y float vectors of length N, s a Python
float) built from random steps: elementwise functions, arithmetic, reductions to NumPy and Python
floats, stable softmax and log-sum-exp (whose max AD drops, ir/shift_invariance.py) and near misses of
them, views (reversal, strided slices), in-place updates of copies, branches on data (which flip
between inputs), Python loops, `np.where`, a matrix read from the module (an environment input) and
cumulative sums.  Every step is smooth almost everywhere, so central differences check the gradient.
"""
import numpy as np

N = 6
M = np.random.default_rng(1234).standard_normal((N, N)) / N     # read by the programs as a global

_UNARY = ["np.sin({a})", "np.cos({a})", "np.tanh({a})", "np.exp(-{a} * {a})", "np.log1p({a} * {a})",
          "np.sqrt({a} * {a} + 1.0)", "{a} ** 2", "np.arctan({a})"]
_BINARY = ["{a} + {b}", "{a} - {b}", "{a} * {b}", "{a} / ({b} * {b} + 1.0)", "np.maximum({a}, {b})",
           "np.hypot({a}, {b} + 1.0)"]
_REDUCE = ["np.sum({a})", "np.mean({a})", "np.dot({a}, {b})", "float(np.sum({a} * 0.5))", "np.linalg.norm({a} + 0.1)",
           "np.log(np.sum(np.exp({a} - np.max({a})))) + np.max({a})",            # the max cancels
           "np.log(np.mean(np.exp({a} - np.max({a})))) + 2.0 * np.max({a})"]     # it does not
_VECTOR = ["{a}[::-1] * 1.0", "np.cumsum({a}) * 0.3", "M @ {a}", "np.concatenate([{a}[1:], {a}[:1]])",
           "np.where({a} > 0.1, {b}, {a} * {b})", "np.clip({a}, -1.0, 1.0)",
           "np.exp({a} - np.max({a})) / np.sum(np.exp({a} - np.max({a})))",       # softmax: it cancels
           "np.exp({a} - np.max({a})) * {b}"]                                        # it does not


class _Program:
    def __init__(self, rng):
        self.rng, self.lines, self.vectors, self.scalars, self.n = rng, [], ["x", "y"], ["s"], 0

    def new(self):
        self.n += 1
        return f"v{self.n}"

    def pick(self, pool):
        return pool[self.rng.integers(len(pool))]

    def emit(self, text, kind):
        name = self.new()
        self.lines.append(f"    {name} = {text}")
        (self.vectors if kind == "v" else self.scalars).append(name)
        return name

    def step(self):
        a, b = self.pick(self.vectors), self.pick(self.vectors)
        c = self.pick(self.scalars)
        choice = self.rng.integers(9)
        if choice == 0:
            self.emit(self.pick(_UNARY).format(a=a), "v")
        elif choice == 1:
            self.emit(self.pick(_BINARY).format(a=a, b=b), "v")
        elif choice == 2:
            self.emit(self.pick(_REDUCE).format(a=a, b=b), "s")
        elif choice == 3:
            self.emit(self.pick(_VECTOR).format(a=a, b=b), "v")
        elif choice == 4:
            self.emit(f"{a} * {c} + {b}", "v")
        elif choice == 5:                 # an in-place update of a copy, through a strided view
            name = self.emit(f"{a}.copy()", "v")
            self.lines.append(f"    {name}[1:] += {b}[:-1] * 0.5")
            self.lines.append(f"    {name}[::2] *= {self.rng.uniform(0.5, 1.5):.3f}")
        elif choice == 6:                 # a branch on data
            name = self.new()
            self.lines += [f"    if np.sum(np.sin({a})) > {self.rng.uniform(-0.5, 0.5):.3f}:",
                           f"        {name} = {b} * 2.0 + {c}", "    else:", f"        {name} = np.sin({b}) - {c}"]
            self.vectors.append(name)
        elif choice == 7:                 # a Python loop
            name = self.emit(f"{a} * 1.0", "v")
            self.lines += [f"    for i in range({self.rng.integers(1, 5)}):",
                           f"        {name} = {name} * 0.5 + np.tanh({name} + i * 0.1)"]
        else:                             # Python float arithmetic
            self.emit(f"{c} * {self.rng.uniform(0.2, 2.0):.3f} + 1.0 / ({c} * {c} + 1.0)", "s")


def program(seed, steps=None):
    """The source text of random program number `seed`."""
    rng = np.random.default_rng(seed)
    p = _Program(rng)
    for _ in range(steps or int(rng.integers(3, 9))):
        p.step()
    terms = [f"np.sum({p.vectors[-1]} ** 2)"] + [f"{s} * 0.5" for s in p.scalars[-2:]]
    return "def f(x, y, s):\n" + "\n".join(p.lines + [f"    return {' + '.join(terms)}"]) + "\n"


def compile_program(source, seed):
    """The function `f` that `source` defines, with this module's globals (np, M)."""
    namespace = {"np": np, "M": M}
    exec(compile(source, f"<random program {seed}>", "exec"), namespace)
    return namespace["f"]


def inputs(rng):
    """Arguments (x, y, s) for one call."""
    return rng.standard_normal(N), rng.standard_normal(N), float(rng.standard_normal())
