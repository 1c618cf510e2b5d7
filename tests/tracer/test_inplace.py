"""NumPy in-place semantics under jit_grad: every form of writing into an array, inside loops and
branches, gives CPython's values and gradients equal to finite differences; user arguments are never
modified; aliasing cases either give the right gradient or refuse with UnsupportedError at the user's
line."""
import dataclasses

import numpy as np
import pytest

import jitgrad
from e2e import assert_grad

HERE = __file__
rng = np.random.default_rng(3)
X6 = rng.uniform(0.3, 1.7, 6)
M33 = rng.uniform(0.3, 1.7, (3, 3))


def check(fn, *args):
    """Gradient equals finite differences, the value equals CPython's, and the arguments are unchanged."""
    copies = [np.copy(a) for a in args]
    assert_grad(fn, *args)
    value, _ = jitgrad.value_and_grad(fn)(*args)
    np.testing.assert_allclose(value, fn(*[np.copy(a) for a in args]), rtol=1e-12)
    for a, c in zip(args, copies):
        np.testing.assert_array_equal(a, c)


# --- filling arrays created inside the function, element by element --------------------------------------
def fill_loop_with_branch(x):
    out = np.zeros(len(x))
    for i in range(len(x)):
        if x[i] > 1.0:
            out[i] = np.sin(x[i]) * x[i]
        else:
            out[i] = x[i] ** 3
    return np.sum(out * out)


def recurrence(x):                      # a simulation: each step reads what the previous one wrote
    n = len(x)
    state = np.empty(n + 1)
    state[0] = 1.0
    for t in range(n):
        state[t + 1] = state[t] + 0.1 * np.cos(state[t]) * x[t]
    return state[-1] + state.mean()


def matrix_fill(x):
    a = np.ones((3, 3))
    for i in range(3):
        for j in range(3):
            if i != j:
                a[i, j] = x[i] * x[j]
            a[i, i] += x[i]
    return np.sum(a @ a)


CREATIONS = {
    "zeros": lambda n: np.zeros(n), "empty": lambda n: np.empty(n), "ones": lambda n: np.ones(n),
    "full": lambda n: np.full(n, 2.5), "zeros_like": lambda n: np.zeros_like(np.arange(n, dtype=float)),
    "array": lambda n: np.array([0.5] * n), "arange": lambda n: np.arange(n, dtype=float),
    "asarray": lambda n: np.asarray([1.0] * n), "copy_method": lambda n: np.linspace(0, 1, n).copy(),
    "np_copy": lambda n: np.copy(np.linspace(0, 1, n)), "astype": lambda n: np.linspace(0, 1, n).astype(float),
    "empty_like": lambda n: np.empty_like(np.linspace(0, 1, n)),
    "eye": lambda n: np.eye(n)[0], "identity": lambda n: np.identity(n)[:, 1],
    "tri": lambda n: np.tri(n)[n - 1],
}


@pytest.mark.parametrize("create", CREATIONS.values(), ids=CREATIONS.keys())
def test_created_arrays_take_traced_writes(create):
    step = 1 if create in (CREATIONS["empty"], CREATIONS["empty_like"]) else 2    # np.empty: garbage

    def fn(x):
        out = create(len(x))
        for i in range(0, len(x), step):
            out[i] = x[i] * x[i]
        return np.sum(out * x)
    check(fn, X6)


@pytest.mark.parametrize("fn", [fill_loop_with_branch, recurrence, matrix_fill])
def test_element_by_element_programs(fn):
    check(fn, X6 if fn is not matrix_fill else X6[:3])


def test_full_with_traced_fill_value():
    check(lambda x: np.sum(np.full((2, 3), x[0]) * x[:3]), X6)


# --- indexed, slice and mask assignment ------------------------------------------------------------------
def repeated_index_augmented(x):
    a = np.zeros(4)
    idx = np.array([0, 1, 1, 3, 0])
    a[idx] += x[:5]                     # numpy: a[idx] = a[idx] + v, the last write wins
    return np.sum(a * np.arange(1.0, 5.0))


def add_at_accumulates(x):
    a = np.zeros(4)
    np.add.at(a, [0, 1, 1, 3, 0], x[:5])
    np.subtract.at(a, np.array([2, 2]), x[1])
    return np.sum(a * np.arange(1.0, 5.0))


def slices_and_masks(x):
    a = x * 1.0
    a[1:4] = x[:3] ** 2
    a[::2] *= 3.0
    a[a > 2.0] = 0.5                    # traced mask, scalar value
    b = np.zeros(6)
    mask = np.array([True, False, True, True, False, True])
    b[mask] = x[:4]                     # plain mask, array value
    b[mask] += x[2:]
    b[x < 1.0] -= x[x < 1.0] * 2.0
    return np.sum(a * b) + np.sum(b)


def two_d_rows(x):
    m = np.zeros((3, 2))
    for i in range(3):
        m[i] = x[2 * i: 2 * i + 2]
        m[i, :] *= i + 1.0
    m[:, 1] += m[:, 0]
    return np.sum(m ** 2)


@pytest.mark.parametrize("fn", [repeated_index_augmented, add_at_accumulates, slices_and_masks, two_d_rows])
def test_indexed_writes(fn):
    check(fn, X6)


# --- augmented assignment and ufuncs with out= ------------------------------------------------------------
def augmented(x):
    y = x * 1.0
    y *= 2.0
    y += x
    acc = np.zeros(6)
    for k in range(3):
        acc += y ** k
        if k == 1:
            acc /= 2.0
    return np.sum(acc)


def ufunc_out(x):
    y = x * 1.0
    np.sin(y, out=y)                    # out= the input
    np.multiply(y, x, out=y)
    buf = np.empty(6)                   # out= a plain array created here
    np.exp(x, out=buf)
    np.add(buf, 1.0, out=buf, where=x > 1.0)
    return np.sum(y * buf)


@pytest.mark.parametrize("fn", [augmented, ufunc_out])
def test_augmented_and_out(fn):
    check(fn, X6)


# --- np.copyto, fill_diagonal, sort, fill -----------------------------------------------------------------
def copyto_where(x):
    a = np.ones(6)
    np.copyto(a, x ** 2, where=x > 1.0)
    np.copyto(a[:3], x[3:])
    return np.sum(a * x)


def fill_diagonal(m):
    a = m * 1.0
    np.fill_diagonal(a, m[0, 0] ** 2)
    b = np.zeros((4, 3))
    np.fill_diagonal(b, m[1], wrap=True)        # vector values, repeated cyclically
    return np.sum(a @ a) + np.sum(b * np.arange(12.0).reshape(4, 3))


def sort_in_place(x):
    y = x * np.arange(6.0)
    y.sort()
    z = np.zeros((2, 3))
    z[:] = x.reshape(2, 3)
    z.sort(axis=0)
    return np.sum(y * np.arange(6.0)) + np.sum(z * np.array([[1.0], [3.0]]))


def fill_method(x):
    a = np.empty(6)
    a.fill(x[0])
    a[2:] = x[2:]
    if x[1] > 0:
        a[:2].fill(x[1] * 3.0)          # through a view
    return np.sum(a * x)


@pytest.mark.parametrize("fn, arg", [(copyto_where, X6), (fill_diagonal, M33), (sort_in_place, X6),
                                     (fill_method, X6)])
def test_inplace_functions(fn, arg):
    check(fn, arg)


# --- views --------------------------------------------------------------------------------------------------
def view_writes(x):
    a = np.zeros(6)
    a[:] = x
    v = a[::2]
    v *= 3.0                            # changes a
    r = a.reshape(2, 3)
    r[1] += x[:3]                       # changes a
    t = r.T
    t[0, 1] = x[5] ** 2                 # changes a[3]
    return np.sum(a * np.arange(1.0, 7.0)) + np.sum(v)


def test_writes_through_views_reach_the_base():
    check(view_writes, X6)


# --- arguments are never modified -----------------------------------------------------------------------
def writes_into_arguments(x, m):
    x[0] = x[1] * 2.0
    x *= 3.0
    np.add(m, x[:3], out=m)
    m[1, :] = 0.0
    x.sort()
    return np.sum(x * np.arange(6.0)) + np.sum(m ** 2)


def test_user_arguments_are_unchanged():
    x, m = X6.copy(), M33.copy()
    for _ in range(2):                  # tracing run, then the cached kernel
        grads = jitgrad.jit_grad(writes_into_arguments, argnums=(0, 1))(x, m)
        np.testing.assert_array_equal(x, X6)
        np.testing.assert_array_equal(m, M33)
    # CPython modifies the arguments, so finite differences run on copies
    expected = assert_grad(lambda x, m: writes_into_arguments(x.copy(), m.copy()), x, m, argnums=(0, 1))
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12)


# --- compiled code on constant arrays ---------------------------------------------------------------------
def compiled_code_on_constants(x):
    grid = np.arange(6.0)
    k = np.searchsorted(grid, 2.5)      # compiled code, constant array: runs natively
    a = np.zeros(6)
    np.put(a, [1], 7.0)                 # compiled code writing into a constant array
    a[k] = x[k] * 2.0
    return np.sum(a * x)


def constants_into_library_arrays(x):
    grid = np.fromiter((0.0, 0.2, 0.4, 0.6, 0.8, 1.0), float)  # made by compiled code: a plain array
    c = np.arange(6.0)                  # a constant array of the trace
    grid[0] = c[2]
    np.multiply(c, 2.0, out=grid, where=c > 3.0)
    np.copyto(grid[:2], c[:2] + 1.0)
    return np.sum(grid * x)


@pytest.mark.parametrize("fn", [compiled_code_on_constants, constants_into_library_arrays])
def test_compiled_code_and_plain_arrays_with_constants(fn):
    check(fn, X6)


# --- aliasing that cannot be tracked: refused at the user's line ---------------------------------------------
GLOBAL = np.ones(3)


def write_through_broadcast(x):
    a = np.zeros(3)
    b = np.broadcast_to(a, (2, 3))
    a[0] = x[0]
    return np.sum(b)                    # b would show the write: refused here


def write_into_global(x):
    GLOBAL[0] = x[0]
    return np.sum(GLOBAL)


def write_after_escape(x):
    a = np.zeros(3)
    it = np.nditer(a)                   # compiled code keeps a reference to a
    a[0] = x[0]
    return np.sum(a) + 0.0 * len(str(it))


def test_plain_array_made_by_compiled_code_is_adopted_at_the_first_traced_write():
    def f(x):
        a = np.fromiter((0.0, 0.5, 1.0), float)     # plain until a traced value is written into it
        for i in range(3):
            a[i] = a[i] * x[i] + np.sin(x[i])
        return np.sum(a * a)
    assert_grad(f, X6[:3].copy())


# --- plain arrays (made by compiled code) held by several names, lists, attributes, views ---------------
def plain():
    return np.fromiter((0.0, 0.5, 1.0), float)    # made by compiled code without a rule: a plain array


def write_into_viewed_plain_array(x):
    a = plain()
    head = a[:2]                        # a view taken before the write sees it
    a[0] = x[0]
    return np.sum(a) + np.sum(head * head)


def write_through_earlier_view(x):
    a = plain()
    tail = a[::-2]
    tail[1] = x[1] * x[0]               # the first traced write goes through the view
    a[0] = a[0] + x[2]
    return np.sum(a * a) + tail[0] * x[0]


def plain_held_by_list(x):
    rows = [plain(), plain()]
    for i in range(3):
        rows[i % 2][i] = np.cos(x[i])
    first, second = rows
    return np.sum(first * second) + np.sum(rows[1])


class Holder:
    def __init__(self):
        self.buffer = plain()


def plain_held_by_attribute(x):
    holder = Holder()
    buffer = holder.buffer
    buffer[1] = x[1] ** 2               # written through a variable, read through the attribute
    holder.buffer[2] *= x[2]
    return np.sum(holder.buffer ** 3) + buffer[2]


def plain_with_two_names(x):
    a = plain()
    b = a
    b[2] = x[0] * x[1]
    a[1] = b[2] + x[2]
    b += a                              # in place through one name: the same array, doubled
    return np.sum(a * b) * (a is b)


def fortran_plain():
    return np.asfortranarray(np.fromiter(range(6), float).reshape(2, 3))


def write_into_fortran_plain_array(x):
    a = fortran_plain()
    column, row, t = a[:, 1], a[1, ::-1], a.T       # views taken before the writes
    a[0, 1] = x[0] * x[1]
    row[0] = x[2]                       # a write through a reversed view
    return np.sum(column * column) + np.sum(row * t[::-1, 1]) + np.sum(a)


def _yield_twice(a):
    yield a
    yield a * 2.0


def plain_read_by_a_generator(x):
    a = plain()
    reader = _yield_twice(a)            # a suspended generator holds it while it is written
    next(reader)
    a[0] = x[0] * x[1]
    return np.sum(next(reader) * x)


def plain_held_by_a_dict(x):
    d = {"a": plain()}
    d["a"][1] = x[1] * x[0]
    d["a"][2] = 5.0                     # a constant write after the traced one
    return np.sum(np.stack([d["a"], x])) + np.sum(np.concatenate(list(d.values())) ** 2)


def plain_read_by_a_nested_jit_grad(x):
    rows = [plain()]
    rows[0][0] = x[0] * x[1]
    inner = jitgrad.jit_grad(lambda y: np.sum(rows[0] * y * y))     # reads it through the list
    return np.sum(inner(x) * x)


@pytest.mark.parametrize("fn", [write_into_viewed_plain_array, write_through_earlier_view, plain_held_by_list,
                                plain_held_by_attribute, plain_with_two_names, plain_read_by_a_generator,
                                plain_held_by_a_dict, plain_read_by_a_nested_jit_grad,
                                write_into_fortran_plain_array])
def test_plain_arrays_held_elsewhere_take_traced_writes(fn):
    check(fn, X6[:3].copy())


def viewed_with_another_dtype(x):
    a = plain()
    bits = a.view(np.int64)
    a[0] = x[0]
    return np.sum(a) * bits[1]


def viewed_in_fortran_memory_order(x):
    a = fortran_plain()
    memory_order = a.ravel(order="K")   # a view: a permutation of a's entries, not a strided view
    a[0, 1] = x[0]
    return np.sum(memory_order * a.ravel())


@pytest.mark.parametrize("fn", [viewed_with_another_dtype, viewed_in_fortran_memory_order])
def test_plain_array_read_through_a_view_jitgrad_cannot_express_is_refused(fn):
    with pytest.raises(jitgrad.UnsupportedError, match="relation to it jitgrad cannot express") as info:
        jitgrad.jit_grad(fn)(X6[:3].copy())
    assert f"{HERE}:{fn.__code__.co_firstlineno + 4}" in str(info.value)


@pytest.mark.parametrize("fn, line, match", [
    (write_through_broadcast, 4, "view"), (write_into_global, 1, "global"), (write_after_escape, 3, "compiled code"),
])
def test_untrackable_aliasing_is_refused_at_the_users_line(fn, line, match):
    with pytest.raises(jitgrad.UnsupportedError, match=match) as info:
        jitgrad.jit_grad(fn)(X6[:3].copy())
    assert f"{HERE}:{fn.__code__.co_firstlineno + line}" in str(info.value)


def place_into_vector(x):
    a = np.zeros(5)
    np.place(a, np.array([True, False, True, True, False]), x[:2] * 3.0)    # values repeat cyclically
    return np.sum(a * np.arange(1.0, 6.0))


def place_into_scalar(x):
    a = np.array(0.0)
    np.place(a, np.array(True), [x[0] * x[1]])                              # a 0-d target
    return float(a) * 2.0


@pytest.mark.parametrize("fn", [place_into_vector, place_into_scalar])
def test_np_place_with_traced_values(fn):
    assert_grad(fn, np.array([0.7, -1.3]))


@dataclasses.dataclass
class Rows:
    rows: np.ndarray


def test_plain_array_returned_inside_aux_structures_follows_the_inputs():
    def f(x):
        rows = [plain()]
        rows[0][0] = x[0] * x[1]
        return np.sum(x * x), (Rows(rows[0]), {"k": [rows[0]]})
    g = jitgrad.value_and_grad(f, has_aux=True)
    for x in (X6[:3], X6[3:], X6[3:]):               # the last call runs the compiled kernel
        (_, (held, nested)), _ = g(x)
        expected = np.array([x[0] * x[1], 0.5, 1.0])
        np.testing.assert_allclose(held.rows, expected, rtol=1e-14)
        np.testing.assert_allclose(nested["k"][0], expected, rtol=1e-14)
    assert g.cache_info().traces == 1
