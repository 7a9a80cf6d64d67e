"""Properties of the generated code itself: readable, minimal, cached, inspectable."""
import inspect
import math

import pytest

import transpile
from transpile import pipeline


def straight(x, y):
    a = x * y
    b = math.sin(a) + y
    return a * b


def collide(x):
    dx = x * 2.0          # the user already has a variable named dx
    return dx * x


def loop(x):
    y = x
    for i in range(50):
        y = math.tanh(y) * 1.1 + 0.01 * i
    return y


def central(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


def test_straight_line_code_uses_no_stack():
    g = transpile.grad(straight, wrt=(0, 1))
    assert "_push" not in g.source and "_pop" not in g.source
    gx, gy = g(0.3, 0.8)
    assert gx == pytest.approx((straight(0.3 + 1e-6, 0.8) - straight(0.3 - 1e-6, 0.8)) / 2e-6,
                               rel=1e-6)


def test_adjoint_names_avoid_user_names():
    g = transpile.grad(collide)
    assert g(1.5) == pytest.approx(4 * 1.5)
    assert "dx_2" in g.source or "dx_" in g.source


def test_loop_saves_only_what_the_adjoint_reads():
    g = transpile.grad(loop)
    src = g.source
    # y is read by tanh's derivative; i is not saved (the adjoint loop recomputes it)
    assert "_tape" in src or "_push(y)" in src
    assert "_push(i)" not in src
    assert g(0.4) == pytest.approx(central(loop, 0.4), rel=1e-6)


def test_generated_source_is_registered_for_inspect():
    g = transpile.grad(loop)
    text = inspect.getsource(g.generated)
    assert "def grad_loop" in text


def test_traceback_points_into_generated_code():
    def bad(x):
        return 1.0 / (x - x)
    g = transpile.grad(bad)
    with pytest.raises(ZeroDivisionError) as info:
        g(1.0)
    files = [entry.path for entry in info.traceback]
    assert any("<transpile" in str(p) for p in files)


def test_second_request_does_no_transform_work(monkeypatch):
    transpile.grad(straight, wrt=(0, 1))
    calls = []
    real = pipeline._transform
    monkeypatch.setattr(pipeline, "_transform", lambda *a, **k: calls.append(a) or real(*a, **k))
    g = transpile.grad(straight, wrt=(0, 1))
    assert calls == []
    assert g(0.1, 0.2) == transpile.grad(straight, wrt=(0, 1))(0.1, 0.2)


def test_pullback_can_be_called_repeatedly():
    value, pullback = transpile.vjp(loop, 0.3)
    first = pullback(1.0)
    assert pullback(1.0) == first
    assert pullback(2.0) == pytest.approx(2 * first)


def test_generated_code_runs_in_user_globals():
    # a module global changed after the transform is seen by the derivative
    global SCALE
    SCALE = 2.0
    g = transpile.grad(scaled)
    assert g(1.0) == pytest.approx(2.0)
    SCALE = 3.0
    assert g(1.0) == pytest.approx(3.0)


SCALE = 2.0


def scaled(x):
    return SCALE * x
