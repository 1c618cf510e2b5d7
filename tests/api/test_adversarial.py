"""Adversarial correctness: each test is a way a stale cache entry or an unguarded decision once gave a
wrong answer (or a crash).  The pattern: call twice (traced, then cached), change something the trace
depended on, call again and compare with what plain Python computes."""
import collections
import contextlib
import functools
import math

import numpy as np
import pytest

import jitgrad

X = np.array([0.5, -1.0, 2.0])


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the plain Python function."""
    x = np.asarray(x, dtype=float)
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


def agrees(g, f, x=X):
    """jit_grad(f) at x (traced or cached, called twice) equals the numeric gradient of plain f."""
    want = numeric_grad(f, x)
    return all(np.allclose(g(x), want, atol=1e-5) for _ in range(2))


# -- environment values: every way a value can change must be seen ----------------------------------
NESTED = ([2.0, 3.0],)
SIGNED_ZERO = 0.0
FLAGS = (True,)
WEIGHTS = {"a": 1.0, "b": 2.0}


def test_list_inside_tuple_is_snapshotted():
    f = lambda x: np.sum(x * NESTED[0][0])
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    NESTED[0][0] = 5.0                       # the tuple is the same object; the list in it changed
    try:
        assert agrees(g, f)
    finally:
        NESTED[0][0] = 2.0


def test_negative_zero_is_not_zero():
    global SIGNED_ZERO
    f = lambda x: np.sum(x) * np.copysign(1.0, SIGNED_ZERO)
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    SIGNED_ZERO = -0.0
    try:
        assert agrees(g, f)
    finally:
        SIGNED_ZERO = 0.0


def test_nested_values_compare_by_type():
    global FLAGS
    f = lambda x: np.sum(x) * len(str(FLAGS[0]))      # str(True) != str(1), though True == 1
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    FLAGS = (1,)
    try:
        assert agrees(g, f)
    finally:
        FLAGS = (True,)


def test_dict_order_is_part_of_the_value():
    global WEIGHTS
    f = lambda x: np.sum(x) * sum(v * (i + 1) for i, v in enumerate(WEIGHTS.values()))
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    WEIGHTS = {"b": 2.0, "a": 1.0}
    try:
        assert agrees(g, f)
    finally:
        WEIGHTS = {"a": 1.0, "b": 2.0}


def _scaled(x, scale=1.0):
    return np.sum(x ** 2) * scale


def test_partial_keywords_are_environment():
    p = functools.partial(_scaled, scale=2.0)
    inside = jitgrad.jit_grad(lambda x: p(x))
    direct = jitgrad.jit_grad(p)
    assert agrees(inside, p) and agrees(direct, p)
    p.keywords["scale"] = 5.0
    assert agrees(inside, p) and agrees(direct, p)


class Scaled:
    def __init__(self, k):
        self.k = k

    def loss(self, x):
        return np.sum(x) * self.k


MODEL = Scaled(1.0)
MODELS = [Scaled(1.0)]
ACTIVE = {"a", "b"}
LONG = [float(i) for i in range(100)]
SPAN = slice(0, 2)
ACTIVATIONS = {"act": np.sin}


def _restore(**saved):
    globals().update(saved)


@pytest.mark.parametrize("f, change", [
    (lambda x: MODEL.loss(x), lambda: _restore(MODEL=Scaled(5.0))),          # an object, rebound
    (lambda x: MODELS[0].loss(x), lambda: MODELS.__setitem__(0, Scaled(7.0))),  # ... replaced in a list
    (lambda x: np.sum(x) * (2.0 if "a" in ACTIVE else 3.0), lambda: ACTIVE.discard("a")),   # a set
    (lambda x: np.sum(x) * LONG[99], lambda: LONG.__setitem__(99, 1.0)),     # a list too long to be "small"
    (lambda x: np.sum(x[SPAN]), lambda: _restore(SPAN=slice(1, 3))),         # a slice object, rebound
    (lambda x: np.sum(ACTIVATIONS["act"](x)), lambda: ACTIVATIONS.update(act=np.cos)),  # a dict of functions
])
def test_rebinding_or_mutating_environment_objects_retraces(f, change):
    saved = dict(MODEL=MODEL, MODELS=list(MODELS), ACTIVE=set(ACTIVE), LONG=list(LONG), SPAN=SPAN,
                 ACTIVATIONS=dict(ACTIVATIONS))
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    change()
    try:
        assert agrees(g, f)
    finally:
        MODELS[:], LONG[:] = saved.pop("MODELS"), saved.pop("LONG")
        ACTIVE.clear()
        ACTIVE.update(saved.pop("ACTIVE"))
        _restore(**saved)


Params = collections.namedtuple("Params", "w scale")


@pytest.mark.parametrize("holder", [
    Params(np.ones(3), 2.0),
    collections.deque([np.ones(3), 2.0]),
    collections.OrderedDict(w=np.ones(3), scale=2.0),
])
def test_containers_of_arrays_in_environment(holder):
    key = "w" if isinstance(holder, dict) else 0
    f = lambda x: np.sum(x * holder[key]) * holder[-1 if key == 0 else "scale"]
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    holder[key][:] = 4.0                                # contents read afresh, without retracing
    assert agrees(g, f) and g.cache_info().traces == 1


def test_vars_of_an_object_is_an_environment_read():
    obj = Scaled(1.0)
    f = lambda x: np.sum(x) * sum(vars(obj).values())
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    obj.k = 4.0
    assert agrees(g, f)


def test_missing_attribute_added_later_retraces():
    cfg = Scaled(1.0)
    f = lambda x: np.sum(x) * (cfg.extra if hasattr(cfg, "extra") else getattr(cfg, "other", 2.0))
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    cfg.other = 3.0
    assert agrees(g, f)
    cfg.extra = 5.0
    assert agrees(g, f)


def test_closure_object_rebound_retraces():
    obj = Scaled(1.0)

    def f(x):
        return obj.loss(x)
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    obj = Scaled(3.0)                                    # noqa: F841 (read by f through its cell)
    assert agrees(g, f)


def test_traced_value_left_in_a_global_container_is_refused():
    memo = {}

    def f(x):
        k = float(x[0])
        if k not in memo:
            memo[k] = 1.0                   # stores a traced key in an outside dict
        return memo[k] * x[1] * k
    g = jitgrad.jit_grad(f)
    assert np.allclose(g(np.array([2.0, 1.0])), [1.0, 2.0])
    with pytest.raises(jitgrad.TraceError, match="traced value"):
        g(np.array([3.0, 1.0]))


def test_traced_values_logged_to_an_outside_list_still_retrace():
    log = []

    def f(x):
        loss = np.sum(x ** 2)
        log.append(loss)                    # a side effect while tracing, as documented
        return loss
    g = jitgrad.jit_grad(f)
    for n in (2, 3, 2):
        assert np.allclose(g(np.ones(n)), 2.0)


def test_ndarray_subclass_in_environment_is_refused():
    masked = np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    with pytest.raises(jitgrad.UnsupportedError, match="MaskedArray"):
        jitgrad.jit_grad(lambda x: float(np.sum(x * masked)))(X)


def test_global_generator_is_refused():
    def counter():
        k = 0.0
        while True:
            k += 1.0
            yield k
    gen = counter()
    with pytest.raises(jitgrad.UnsupportedError, match="generator"):
        jitgrad.jit_grad(lambda x: np.sum(x) * next(gen))(X)


# -- methods: redefining or rebinding one retraces ------------------------------------------------------
@contextlib.contextmanager
def redefined(cls, name, value):
    """Class attribute `cls.name` set to `value` for the duration (a method monkeypatched)."""
    saved = cls.__dict__[name]
    setattr(cls, name, value)
    try:
        yield
    finally:
        setattr(cls, name, saved)


def test_method_redefined_on_class_or_rebound_on_instance():
    m, other = Scaled(1.0), Scaled(5.0)
    f = lambda x: m.loss(x)
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    with redefined(Scaled, "loss", lambda self, x: np.sum(x ** 3) * self.k):
        assert agrees(g, f)
        m.loss = other.loss                      # another object's bound method stored on the instance
        assert agrees(g, f)


def test_method_of_object_created_inside_is_guarded_through_its_class():
    f = lambda x: Scaled(2.0).loss(x)
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    with redefined(Scaled, "loss", lambda self, x: np.sum(x ** 2) * self.k):
        assert agrees(g, f)


class CallableLoss:
    def __init__(self, k):
        self.k = k

    def __call__(self, x):
        return np.sum(x) * self.k


class Bag:
    def __init__(self):
        self.items = [1.0, 2.0, 3.0]

    def __getitem__(self, i):
        return self.items[i]


def test_special_method_redefined_retraces():
    bag = Bag()
    f = lambda x: np.sum(x) * bag[1]
    g = jitgrad.jit_grad(f)
    assert agrees(g, f)
    with redefined(Bag, "__getitem__", lambda self, i: self.items[i] * 10):
        assert agrees(g, f)


def test_call_method_redefined_retraces():
    loss = CallableLoss(2.0)
    direct, inside = jitgrad.jit_grad(loss), jitgrad.jit_grad(lambda x: loss(x))
    assert agrees(direct, loss) and agrees(inside, loss)
    with redefined(CallableLoss, "__call__", lambda self, x: np.sum(x ** 3) * self.k):
        assert agrees(direct, loss) and agrees(inside, loss)


# -- exceptions raised by the data: both paths are guarded --------------------------------------------
def _reciprocal_or_square(x):
    try:
        return 1.0 / float(x[0] - 0.5)
    except ZeroDivisionError:
        return np.sum(x ** 2)


def _log_or_square(x):
    try:
        return math.log(x[0]) * x[1]
    except ValueError:
        return np.sum(x ** 2)


@pytest.mark.parametrize("f, raising, plain, plain_grad", [
    (_reciprocal_or_square, [0.5, 1.0], [1.5, 1.0], [-1.0, 0.0]),
    (_log_or_square, [-1.0, 2.0], [1.0, 2.0], [2.0, 0.0]),
    (_log_or_square, [0.0, 2.0], [2.0, 2.0], [1.0, math.log(2.0)]),
])
def test_python_errors_on_traced_values_are_guarded(f, raising, plain, plain_grad):
    g = jitgrad.jit_grad(f)
    for _ in range(2):        # the raising path must not serve the plain one, nor the reverse
        assert np.allclose(g(np.array(raising)), 2 * np.array(raising))
        assert np.allclose(g(np.array(plain)), plain_grad)


def test_python_float_overflow_and_domain_are_guarded():
    f = lambda x: math.exp(x[0]) * x[1]
    g = jitgrad.jit_grad(f)
    assert np.allclose(g(np.array([1.0, 2.0])), [2 * math.e, math.e])
    with pytest.raises(OverflowError):                  # CPython raises; a cached trace must not give inf
        g(np.array([1000.0, 2.0]))
    with pytest.raises(ZeroDivisionError):
        jitgrad.jit_grad(lambda x: 1.0 / float(x[0]))(np.array([0.0]))


@pytest.mark.parametrize("jit", [True, False])
def test_linalg_error_caught_by_user_code(jit):
    def f(x):
        try:
            return np.sum(np.linalg.inv(x[:1, None] * np.ones((1, 1))))
        except np.linalg.LinAlgError:
            return np.sum(x ** 2)
    g = jitgrad.jit_grad(f, jit=jit)
    regular, singular = np.array([1.0, 2.0]), np.array([0.0, 2.0])
    for _ in range(2):
        assert np.allclose(g(regular), [-1.0, 0.0])
        assert np.allclose(g(singular), [0.0, 4.0])
    assert any("not cached" in r for r in g.cache_info().retraces)


def _reciprocal_unless_raising(x):
    try:
        return np.sum(1.0 / x)
    except FloatingPointError:
        return np.sum(x ** 2)


def _assert_raising_mode_respected(g):
    for x, want in [([1.0, 2.0], [-1.0, -0.25]), ([0.0, 2.0], [0.0, 4.0])] * 2:
        assert np.allclose(g(np.array(x)), want)
    assert g.cache_info().traces == 0


def test_errstate_raise_is_not_cached():
    def f(x):
        with np.errstate(divide="raise"):
            return _reciprocal_unless_raising(x)
    _assert_raising_mode_respected(jitgrad.jit_grad(f))


def test_caller_seterr_raise_is_not_cached():
    with np.errstate(divide="raise"):            # set by the caller, outside the traced function
        _assert_raising_mode_respected(jitgrad.jit_grad(_reciprocal_unless_raising))


def test_traced_scalars_are_hashable_and_guarded():
    f = lambda x: x[0] * {True: 2.0, False: 3.0}[x[0] == x[1]] + x[1] * {1.0: 4.0}.get(float(x[2]), 5.0)
    g = jitgrad.jit_grad(f)
    for x, want in [([1.0, 1.0, 1.0], [2.0, 4.0, 0.0]), ([1.0, 2.0, 3.0], [3.0, 5.0, 0.0]),
                    ([2.0, 2.0, 1.0], [2.0, 4.0, 0.0]), ([1.0, 1.0, 3.0], [2.0, 5.0, 0.0])]:
        assert np.allclose(g(np.array(x)), want)
    with pytest.raises(TypeError, match="unhashable"):
        jitgrad.jit_grad(lambda x: np.sum(x) * {x: 1.0}[x])(X)


# -- arguments -----------------------------------------------------------------------------------------
def test_function_arguments_are_keyed_by_the_object_not_its_reused_id():
    g = jitgrad.jit_grad(lambda x, act: np.sum(act(x)))
    power = lambda p: lambda t: t ** p
    for p in [2.0, 3.0, 4.0, 5.0, 2.0, 3.0]:   # each lambda is freed after its call: its id comes back
        assert np.allclose(g(X, power(p)), p * X ** (p - 1))


# -- outputs -------------------------------------------------------------------------------------------
def test_aux_keeps_kinds_and_constant_aux_is_a_copy():
    def f(x):
        return np.sum(x ** 2), (float(x[0]) > 0, x[0], np.arange(2.0))
    g = jitgrad.value_and_grad(f, has_aux=True)
    for _ in range(2):
        (value, (flag, first, const)), _ = g(np.array([1.0, 2.0]))
        assert type(flag) is bool and type(first) is np.float64 and type(value) is np.float64
        assert np.array_equal(const, [0.0, 1.0])
        const[:] = -1.0                                 # must not change what the next call returns


# -- arguments written in place that share memory with other inputs -------------------------------------
SHARED = np.array([1.0, 2.0, 3.0])


def _doubles_first(a, b):
    a *= 2.0                                 # Python: b sees this when b is a (or overlaps it)
    return np.sum(b * b)


def _doubles_argument_reads_global(a):
    a *= 2.0                                 # Python: SHARED sees this when a is SHARED
    return np.sum(SHARED * a)


def _refused_at_the_write(call, line_of):
    with pytest.raises(jitgrad.UnsupportedError, match="share memory") as refused:
        call()
    assert refused.value.loc.endswith(f":{line_of.__code__.co_firstlineno + 1}")
    return str(refused.value)


def test_aliased_arguments_written_in_place_are_refused_traced_and_cached():
    g = jitgrad.value_and_grad(_doubles_first, argnums=1)
    x = np.array([1.0, 2.0, 3.0])
    message = _refused_at_the_write(lambda: g(x, x), _doubles_first)     # the first call is the trace
    assert "arguments a and b" in message and "a is written in place" in message
    for _ in range(3):                                                  # traced, then cached calls
        value, grad = g(x.copy(), x)
        assert value == 14.0 and np.allclose(grad, 2 * x)
    _refused_at_the_write(lambda: g(x, x), _doubles_first)              # cached: aliasing seen per call
    _refused_at_the_write(lambda: g(x[1:], x[:-1]), _doubles_first)    # overlapping views
    assert np.array_equal(x, [1.0, 2.0, 3.0])
    info = g.cache_info()
    assert info.traces == 1 and info.hits >= 2


def test_interleaved_views_and_read_only_aliases_are_fine():
    g = jitgrad.value_and_grad(_doubles_first, argnums=1)
    x = np.arange(1.0, 7.0)
    for _ in range(2):
        value, grad = g(x[::2], x[1::2])                                # no element in common
        assert value == np.sum(x[1::2] ** 2) and np.allclose(grad, 2 * x[1::2])
    reads = jitgrad.jit_grad(lambda a, b: np.sum(a * b), argnums=(0, 1))
    for _ in range(2):
        ga, gb = reads(x, x)                                            # aliased, but nothing written
        assert np.allclose(ga, x) and np.allclose(gb, x)


def test_aliased_leaves_of_a_pytree_argument_are_refused():
    g = jitgrad.jit_grad(lambda d: _doubles_first(d["w"], d["v"]))
    x = np.array([1.0, 2.0, 3.0])
    grads = g({"w": x.copy(), "v": x})
    assert np.allclose(grads["w"], 0.0) and np.allclose(grads["v"], 2 * x)
    with pytest.raises(jitgrad.UnsupportedError, match=r"arguments d\['w'\] and d\['v'\] share memory"):
        g({"w": x, "v": x})


def test_argument_aliasing_a_global_written_in_place_is_refused():
    g = jitgrad.jit_grad(_doubles_argument_reads_global)
    message = _refused_at_the_write(lambda: g(SHARED), _doubles_argument_reads_global)
    assert "argument a and global 'SHARED'" in message
    for _ in range(3):
        assert np.allclose(g(SHARED.copy()), 2 * SHARED)
    _refused_at_the_write(lambda: g(SHARED), _doubles_argument_reads_global)
    assert np.array_equal(SHARED, [1.0, 2.0, 3.0])


# -- the environment predicates made per entry agree with the generic comparison -----------------------
_PLAIN = [0.0, -0.0, float("nan"), float("inf"), -1.5, 0.01, 1.0, 1, 0, True, False, None, 2 ** 70,
          "a", "", np.float64(0.01), np.float64(-0.0), (1.0,), [0.01]]


@pytest.mark.parametrize("expected", _PLAIN, ids=repr)
def test_value_entry_predicates_agree_with_same(expected):
    from jitgrad.tracer.recording.context import EnvEntry, _same
    holds = EnvEntry(None, "value", expected=expected).holds
    for value in _PLAIN + [float("-nan"), 1.0000000000000002, -float("inf"), 0.010000000000000002]:
        assert holds(value) == _same(value, expected), (value, expected)
