"""Side effects of traced code happen on every call, in order, with that call's values: a cached call
replays the appends, counters, stores and prints the tracing run made (tracer/interpretation/sideeffects.py), and state
the trace only writes (or reads only to update it) is not a guard, so such functions trace once."""
import warnings

import numpy as np
import pytest

import jitgrad

X = np.array([0.5, -1.0, 2.0])
N_CALLS = 30
calls = 0
history = []
best = {}


def _loss(x):
    return np.sum(np.sin(x) ** 2)


def _expected_loss(k):
    return float(np.sum(np.sin(X + k) ** 2))


def logged(x):
    global calls
    calls += 1
    value = _loss(x)
    history.append(float(value))
    best["last"] = float(value)
    return value


def test_global_counter_and_log_over_many_calls_trace_once():
    global calls
    calls = 0
    history.clear()
    g = jitgrad.jit_grad(logged)
    for k in range(N_CALLS):
        assert np.allclose(g(X + k), np.sin(2 * (X + k)))
    assert calls == N_CALLS
    assert np.allclose(history, [_expected_loss(k) for k in range(N_CALLS)], rtol=1e-13)
    assert all(type(h) is float for h in history)
    assert best["last"] == history[-1]
    assert g.cache_info().traces == 1
    calls = 100                     # the counter is not a guard: the replay reads it afresh
    history.clear()
    g(X)
    assert calls == 101 and len(history) == 1 and g.cache_info().traces == 1


class Problem:
    def __init__(self):
        self.n_fe = 0
        self.total = 0.0
        self.log = []

    def loss(self, x):
        self.n_fe += 1
        value = _loss(x)
        self.total += value
        self.log.append(("f", float(value)))
        return value


def test_attribute_counter_accumulator_and_tuples_logged():
    p = Problem()
    g = jitgrad.value_and_grad(p.loss)
    for k in range(N_CALLS):
        value, grad = g(X + k)
        assert np.isclose(value, _expected_loss(k))
    assert p.n_fe == N_CALLS
    assert np.isclose(p.total, sum(_expected_loss(k) for k in range(N_CALLS)), rtol=1e-12)
    assert type(p.total) is np.float64          # as in Python: 0.0 + np.float64
    assert [v for _, v in p.log] == pytest.approx([_expected_loss(k) for k in range(N_CALLS)], rel=1e-13)
    assert g.cache_info().traces == 1


def test_closure_counter_and_nonlocal_store():
    count, last = 0, None

    def loss(x):
        nonlocal count, last
        count += 2
        value = _loss(x)
        last = float(value)
        return value
    g = jitgrad.jit_grad(loss)
    for k in range(5):
        g(X + k)
        assert last == pytest.approx(_expected_loss(k), rel=1e-13)
    assert count == 10 and g.cache_info().traces == 1


def test_a_counter_read_for_a_decision_is_guarded():
    state = {"n": 0}

    class Counter:
        n = 0
    c = Counter()

    def loss(x):
        c.n += 1
        if c.n % 2:                 # the counter decides the path: it is an input after all
            return np.sum(x ** 2)
        return np.sum(x ** 3)
    g = jitgrad.jit_grad(loss)
    for k in range(6):
        grad = g(X)
        expected = 2 * X if (k + 1) % 2 else 3 * X ** 2
        assert np.allclose(grad, expected)
    assert c.n == 6
    del state


def test_appending_to_a_list_that_is_read_back_stays_right():
    log = []

    def loss(x):
        log.append(1.0)
        return np.sum(x) * len(log)          # reads the list it appends to: guarded on its contents
    g = jitgrad.jit_grad(loss, max_traces=100)
    for k in range(4):
        assert np.allclose(g(X), np.full(3, k + 1.0))
    assert log == [1.0] * 4


def test_rebinding_the_log_list_retraces_and_appends_to_the_new_one():
    global history
    history = []
    g = jitgrad.jit_grad(logged)
    g(X)
    g(X + 1)
    first = history
    history = []
    g(X + 2)
    assert len(first) == 2 and history == [pytest.approx(_expected_loss(2), rel=1e-13)]
    assert g.cache_info().traces == 2


def test_print_of_traced_values_is_replayed(capsys):
    def loss(x):
        value = _loss(x)
        print("loss", float(value))
        return value
    g = jitgrad.jit_grad(loss)
    for k in range(3):
        g(X + k)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["loss"] * 3
    assert [float(line.split()[1]) for line in lines] == pytest.approx([_expected_loss(k) for k in range(3)],
                                                                      rel=1e-13)
    assert g.cache_info().traces == 1


def test_print_of_formatted_text_warns_once():
    def loss(x):
        value = _loss(x)
        print(f"loss {float(value):.3f}")
        return value
    g = jitgrad.jit_grad(loss)
    with pytest.warns(jitgrad.JitgradWarning, match=r"formatted from a traced value at .*test_side_effects"):
        g(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g(X + 1)


def test_store_of_an_object_made_in_the_call_warns_once():
    class Box:
        pass
    holder = Box()

    def loss(x):
        holder.state = Box()        # a new object each call: a cached call cannot remake it
        return _loss(x)
    g = jitgrad.jit_grad(loss)
    with pytest.warns(jitgrad.JitgradWarning, match="cannot remake"):
        g(X)


def test_an_update_that_raised_guards_the_place():
    class State:
        n = None
    state = State()

    def loss(x):
        try:
            state.n += 1            # raises TypeError while n is None: the path depends on n after all
        except TypeError:
            return np.sum(x)
        return np.sum(x ** 2)
    g = jitgrad.jit_grad(loss)
    assert np.allclose(g(X), 1.0)
    state.n = 0
    assert np.allclose(g(X), 2 * X) and state.n == 1
    assert np.allclose(g(X), 2 * X) and state.n == 2
    assert g.cache_info().traces == 2


def test_side_effect_traces_are_not_restored_in_another_process(tmp_path, monkeypatch):
    from jitgrad import persist
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("JITGRAD_DISK_CACHE", "1")
    stored = []
    monkeypatch.setattr(persist.tracestore, "store", stored.append)
    global calls
    calls = 0
    g = jitgrad.jit_grad(logged)
    g(X)
    assert stored and not stored[-1]["reusable"]
    assert "side effects replayed" in " ".join(stored[-1]["why_not"])


def _vector_logged(x):
    global calls
    calls += 1
    y = np.sin(x) * 2.0
    history.append(float(np.sum(y)))
    print("sum", np.sum(y))
    return y


def _of(cls):
    return jitgrad.transforms._transform_of(_vector_logged, cls, 1)


def _hvp():
    h = jitgrad.hvp(lambda x: np.sum(_vector_logged(x)))
    return (lambda x: h(x, np.ones(3))), h


TRANSFORMS = {   # name -> () -> (call, the Transformed whose cache it uses)
    "jvp": lambda: (lambda x: jitgrad.jvp(_vector_logged, (x,), (np.ones(3),)), _of(jitgrad.transforms.JvpFunction)),
    "vjp": lambda: (lambda x: jitgrad.vjp(_vector_logged, x)[1](np.ones(3)), _of(jitgrad.transforms.VjpFunction)),
    "jacobian_fwd": lambda: (jitgrad.jacobian(_vector_logged, mode="fwd"),) * 2,
    "jacobian_rev": lambda: (jitgrad.jacobian(_vector_logged, mode="rev"),) * 2,
    "hvp": _hvp,
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_transform_replays_side_effects(name, capsys):
    """jvp, vjp, jacobian and hvp replay the appends, counters and prints of each call, with its values,
    and trace once (a counter is not a guard there either)."""
    global calls
    calls = 0
    history.clear()
    call, transformed = TRANSFORMS[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in range(N_CALLS):
            call(X + k)
    sums = [float(np.sum(np.sin(X + k) * 2.0)) for k in range(N_CALLS)]
    assert calls == N_CALLS
    np.testing.assert_allclose(history, sums, rtol=1e-13)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == N_CALLS and float(printed[-1].split()[1]) == pytest.approx(sums[-1], rel=1e-12)
    assert transformed.cache_info().traces == 1


def test_effects_inside_a_nested_transform_warn_once_and_do_not_retrace():
    """hessian is the Jacobian of jit_grad called inside the trace: effects there happen while tracing
    only, with one warning naming the line, and the counter is no guard (one trace, not one per call)."""
    global calls
    calls = 0
    history.clear()
    h = jitgrad.hessian(lambda x: np.sum(_vector_logged(x)))
    with pytest.warns(jitgrad.JitgradWarning, match="inside a jitgrad transform called from traced code"):
        h(X)
    for k in range(1, 5):
        np.testing.assert_allclose(h(X + k), np.diag(-2.0 * np.sin(X + k)), atol=1e-12)
    assert calls == 1 and len(history) == 1
    assert h.cache_info().traces == 1
