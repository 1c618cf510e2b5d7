"""Library-style helpers for tests/tracer/test_library_writes.py (the tests mark this file as library code):
arrays made with np.array / np.arange / .copy() / compiled code on constants, then filled with traced
values (also by the functions they are passed to), also while other names, lists, tuples, attributes and
views taken earlier hold them; and the cases where such a write cannot be tracked soundly (the array
kept by np.nditer or an iterator, viewed with another dtype)."""
import numpy as np


def recurrence(x):
    out = np.arange(1.0, len(x) + 1.0)
    for i in range(1, len(x)):
        out[i] = out[i - 1] * x[i] + out[i]
    return out


def rows_from_literal(x):
    out = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    for i in range(3):
        out[i, 0] += np.sin(x[i])
    return out


def copied_grid(x):
    grid = np.linspace(0.0, 1.0, len(x))
    out = grid.copy()
    for i in range(len(x)):
        out[i] = out[i] + x[i] ** 2
    return out * grid


def from_compiled_code(x):
    out = np.concatenate([np.cumsum(np.arange(1.0, 3.0)), np.arange(2.0)])
    for i in range(len(out)):
        out[i] *= x[i]
    return out


def through_closure(x):
    out = np.arange(4.0)

    def put(i):
        out[i] = np.exp(x[i])
    for i in (0, 2):
        put(i)
    return out


def constant_write_stays_plain(x):
    out = np.arange(3.0)
    out[0] = 7.0                                # no traced value: written natively
    plain = type(out) is np.ndarray
    out[1] = x[0]
    return out, plain


def view_before_write(x):
    out = np.arange(4.0)
    head = out[:2]
    out[0] = x[0]
    return head.sum() + out.sum()


def held_by_list(x):
    outs = [np.arange(4.0)]
    outs[0][1] = x[1]
    return outs[0]


def list_then_variable(x):
    out = np.arange(1.0, 5.0)
    rows = [out, out[::-1]]                     # the list holds it, and a reversed view of it
    out[0] = x[0] ** 2
    out[3] = rows[1][1] * x[3]                  # reads out[2] through the view in the list
    return rows[0] * rows[1]


class _State:
    def __init__(self, values):
        self.values = values


def held_by_attribute(x):
    out = np.arange(1.0, 5.0)
    state = _State(out)
    out[0] = x[0] * 2.0                         # written through the variable
    state.values[1] = np.exp(x[1])              # and through the attribute
    return state.values * x


def two_names(x):
    out = np.arange(1.0, 5.0)
    alias = out
    alias[1] = np.sin(x[1])
    out[2] = alias[1] * x[2]
    alias += x                                  # in place, seen through both names
    return out * (alias is out)


def write_through_earlier_view(x):
    out = np.ones((2, 3))
    column = out[:, 1]
    column[0] = x[0]                            # the first traced write goes through the view
    out[1] = out[1] * x[1]
    total = 0.0
    for v in column:                            # iterates the view after the writes
        total = total + v
    return out.reshape(-1) + total


def iterated_while_written(x):
    out = np.arange(1.0, 5.0)
    total = 0.0
    for i, v in zip(range(4), out):             # zip keeps NumPy's iterator: refused
        out[3 - i] = v * x[i]
        total = total + v
    return out * total


def loop_over_it_while_written(x):
    out = np.arange(1.0, 5.0)
    total = 0.0
    i = 0
    for v in out:                               # each step reads the current contents
        out[3 - i] = v * x[i]
        total = total + v
        i += 1
    return out * total


def viewed_with_another_dtype(x):
    out = np.arange(4.0)
    bits = out.view(np.int64)
    out[0] = x[0]
    return out * (bits[1] > 0)


def filled_by_numpy_writers(x):
    out = np.arange(1.0, 5.0)
    held = [out]
    np.copyto(out, x * 2.0, where=np.array([True, False, True, False]))
    np.add.at(held[0], [1, 1], x[:2])
    out.fill(out[0]) if out[3] > 1e9 else np.fill_diagonal(out.reshape(2, 2), x[2])
    return out


def written_by_callees(x):
    out = np.arange(4.0)
    _put_first(out, x)
    _put_first(x=x * 2.0, out=out)
    return out


def _put_first(out, x):
    out[0] = out[0] * x[0]


def passed_in_a_kept_tuple(x):
    out = np.arange(4.0)
    pair = (out, x)
    _put_first(*pair)                   # `pair` still holds the array: a traced write could not reach it
    return pair[0]


def kept_by_nditer(x):
    out = np.arange(4.0)
    it = np.nditer(out)
    out[2] = x[2]
    return out, it


TABLE = np.arange(4.0)


def write_into_table(x):
    TABLE[0] = x[0]
    return TABLE
