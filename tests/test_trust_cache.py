"""A cached derivative is reused only while everything it was built from is unchanged: the
globals and closure cells the function reads, its callees, the derivative rules, and the
source file on disk (edited after import: one clear TranspileError). Every gradient is
checked against central finite differences of the function as it runs now."""
import importlib
import math
import os
import sys
import textwrap

import numpy as np
import pytest

import transpile
from transpile import pipeline
from transpile.rules import registry
from oracle import fd_grad

THIS = sys.modules[__name__]


def fd(fn, *args, wrt=0):
    return fd_grad(fn, args, wrt)


def close(a, b, tol=1e-6):
    return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=tol, atol=tol)


# --- programs ------------------------------------------------------------------------

act = math.sin


def uses_act(x):
    y = x
    for i in range(3):
        y = act(y) * 0.9 + 0.1 * y
    return y


def callee_square(x):
    return x * x


def callee_cube(x):
    return x * x * x


callee = callee_square


def calls_callee(x):
    return callee(x) + math.sin(x)


def outer_of_inner(x):
    return calls_callee(x) * 2.0


scale = 2.0


def scaled(x):
    return scale * x * x


def cube(x):
    return x * x * x


def calls_cube(x):
    return cube(x) + x


def calls_helper_module(x):
    return helpers.helper(x) + x


helpers = None          # a module written to a temporary folder (fixture below)


def make_closure(fn):
    def closed(x):
        return fn(x) * x
    return closed


# --- globals -------------------------------------------------------------------------

def test_rebound_global_function_is_not_reused(monkeypatch):
    g = transpile.grad(uses_act)
    assert close(g(0.3), fd(uses_act, 0.3))
    monkeypatch.setattr(THIS, "act", math.cos)
    assert close(g(0.3), fd(uses_act, 0.3))                       # the same grad object
    assert close(transpile.grad(uses_act)(0.3), fd(uses_act, 0.3))   # a new one
    assert close(transpile.value_and_grad(uses_act)(0.3)[1], fd(uses_act, 0.3))
    value, pullback = transpile.vjp(uses_act, 0.3)
    assert close(pullback(1.0), fd(uses_act, 0.3))
    assert close(transpile.jvp(uses_act, (0.3,), (1.0,))[1], fd(uses_act, 0.3))
    monkeypatch.setattr(THIS, "act", math.tanh)
    assert close(g(0.3), fd(uses_act, 0.3))
    assert close(transpile.jvp(uses_act, (0.3,), (1.0,))[1], fd(uses_act, 0.3))


def test_decorated_function_follows_a_rebound_global(monkeypatch):
    d = transpile.differentiate(uses_act)
    assert close(d.grad(0.4), fd(uses_act, 0.4))
    monkeypatch.setattr(THIS, "act", math.atan)
    assert close(d.grad(0.4), fd(uses_act, 0.4))
    assert close(d.vjp(0.4)[1](1.0), fd(uses_act, 0.4))
    assert "atan" in d.source or "act" in d.source


def test_higher_order_follows_a_rebound_global(monkeypatch):
    h = transpile.hessian(uses_act)
    gg = transpile.grad(transpile.grad(uses_act))
    d1 = transpile.grad(uses_act)
    second = lambda x: fd(lambda z: d1(z), x)           # noqa: E731  (d1 as it is now)
    assert close(h(0.3), second(0.3), 1e-5)
    assert close(gg(0.3), second(0.3), 1e-5)
    monkeypatch.setattr(THIS, "act", math.cos)
    assert close(d1(0.3), fd(uses_act, 0.3))
    assert close(h(0.3), second(0.3), 1e-5)
    assert close(gg(0.3), second(0.3), 1e-5)
    hv = transpile.hvp(uses_act, mode="reverse-over-forward")
    assert close(hv(0.3, v=1.0), second(0.3), 1e-5)
    monkeypatch.setattr(THIS, "act", math.tanh)
    assert close(hv(0.3, v=1.0), second(0.3), 1e-5)


def test_rebound_data_global_of_the_same_kind_keeps_the_derivative(monkeypatch):
    g = transpile.grad(scaled)
    assert close(g(1.5), fd(scaled, 1.5))
    compiled = g.variants.last
    monkeypatch.setattr(THIS, "scale", 3.0)
    assert close(g(1.5), fd(scaled, 1.5))
    assert g.variants.last is compiled and compiled.generation == 0   # no new transform
    monkeypatch.setattr(THIS, "scale", np.array([1.0, 2.0]))          # another kind: rebuilt
    with pytest.raises(transpile.TranspileError):   # no longer a scalar: grad says so
        g(1.5)
    assert compiled.generation == 1


def test_closure_cell_rebound():
    fn = make_closure(math.sin)
    g = transpile.grad(fn)
    assert close(g(0.7), fd(fn, 0.7))
    cell = fn.__closure__[0]
    cell.cell_contents = math.exp
    assert close(g(0.7), fd(fn, 0.7))


# --- callees -------------------------------------------------------------------------

def test_replaced_callee(monkeypatch):
    g = transpile.grad(calls_callee)
    h = transpile.grad(outer_of_inner)          # the callee two calls down
    assert close(g(0.8), fd(calls_callee, 0.8))
    assert close(h(0.8), fd(outer_of_inner, 0.8))
    monkeypatch.setattr(THIS, "callee", callee_cube)
    assert close(g(0.8), fd(calls_callee, 0.8))
    assert close(h(0.8), fd(outer_of_inner, 0.8))
    value, pullback = transpile.vjp(outer_of_inner, 0.8)
    assert close(pullback(1.0), fd(outer_of_inner, 0.8))


def test_callee_code_replaced(monkeypatch):
    g = transpile.grad(calls_callee)
    assert close(g(0.8), fd(calls_callee, 0.8))
    monkeypatch.setattr(callee_square, "__code__", callee_cube.__code__)
    assert close(g(0.8), fd(calls_callee, 0.8))


HELPERS_A = "def helper(x):\n    return x * x\n"
HELPERS_B = "import math\n\n\ndef helper(x):\n    return math.exp(x) * 3.0\n"


def _import_from(tmp_path, name, text):
    (tmp_path / f"{name}.py").write_text(text)
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.invalidate_caches()
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


@pytest.fixture
def helper_modules(tmp_path, monkeypatch):
    a = _import_from(tmp_path, "trust_helpers_a", HELPERS_A)
    b = _import_from(tmp_path, "trust_helpers_b", HELPERS_B)
    monkeypatch.setattr(THIS, "helpers", a)
    yield a, b
    for name in ("trust_helpers_a", "trust_helpers_b"):
        sys.modules.pop(name, None)


def test_monkeypatched_module_function(helper_modules, monkeypatch):
    a, b = helper_modules
    g = transpile.grad(calls_helper_module)
    assert close(g(0.5), fd(calls_helper_module, 0.5))
    monkeypatch.setattr(a, "helper", b.helper)          # module.helper = other
    assert close(g(0.5), fd(calls_helper_module, 0.5))


def test_name_bound_to_another_module(helper_modules, monkeypatch):
    a, b = helper_modules
    g = transpile.grad(calls_helper_module)
    assert close(g(0.5), fd(calls_helper_module, 0.5))
    monkeypatch.setattr(THIS, "helpers", b)             # another module's helper
    assert close(g(0.5), fd(calls_helper_module, 0.5))


# --- rules ---------------------------------------------------------------------------

@pytest.fixture
def cube_rule():
    yield
    for key in [k for k in registry._RULES if k[0] is cube]:
        del registry._RULES[key]


def test_rule_registered_again(cube_rule):
    transpile.defvjp(cube, lambda g, ans, x: g * 2.0 * x)        # a wrong rule first
    g = transpile.grad(calls_cube)
    assert close(g(1.5), 2.0 * 1.5 + 1.0)                          # what the rule says
    transpile.defvjp(cube, lambda g, ans, x: g * 3.0 * x * x)    # corrected
    assert close(g(1.5), fd(calls_cube, 1.5))
    transpile.defvjp(cube, "2.0 * x")                              # a template: inlined
    assert close(g(1.5), 2.0 * 1.5 + 1.0)
    transpile.defvjp(cube, "3.0 * x * x")
    assert close(g(1.5), fd(calls_cube, 1.5))
    assert close(transpile.vjp(calls_cube, 1.5)[1](1.0), fd(calls_cube, 1.5))


# --- the source file on disk ---------------------------------------------------------

EDITED_V1 = textwrap.dedent("""
    import math


    def f(x):
        return x * x * x


    def g(x):
        return math.sin(x) * x


    def h(x):
        return g(x) + f(x)
""")


def test_source_edited_after_import(tmp_path):
    mod = _import_from(tmp_path, "trust_edited", EDITED_V1)
    try:
        gf = transpile.grad(mod.f)
        assert close(gf(2.0), fd(mod.f, 2.0))
        path = tmp_path / "trust_edited.py"
        path.write_text(EDITED_V1.replace("math.sin(x) * x", "math.cos(x) + x")
                        .replace("x * x * x", "x * x + 1"))
        st = os.stat(path)
        os.utime(path, (st.st_atime, st.st_mtime + 5))
        assert close(gf(2.0), fd(mod.f, 2.0))      # built before the edit: still what runs
        with pytest.raises(transpile.TranspileError) as err:
            transpile.grad(mod.g)(0.5)             # the text on disk is not what runs
        assert "trust_edited.py" in str(err.value)
        assert "changed" in str(err.value)
        with pytest.raises(transpile.TranspileError):
            transpile.grad(mod.h)(0.5)             # h's own text still matches; g's not
        path.write_text(EDITED_V1)                 # back as it was: fine again
        os.utime(path, (st.st_atime, st.st_mtime + 10))
        assert close(transpile.grad(mod.g)(0.5), fd(mod.g, 0.5))
    finally:
        sys.modules.pop("trust_edited", None)


def test_source_with_lines_shifted_after_import(tmp_path):
    mod = _import_from(tmp_path, "trust_shifted", EDITED_V1)
    try:
        path = tmp_path / "trust_shifted.py"
        path.write_text("# a new first line\n" + EDITED_V1)
        st = os.stat(path)
        os.utime(path, (st.st_atime, st.st_mtime + 5))
        with pytest.raises(transpile.TranspileError) as err:
            transpile.grad(mod.g)(0.5)
        assert "changed" in str(err.value)
    finally:
        sys.modules.pop("trust_shifted", None)


class Model:
    @staticmethod
    def loss(x, w):
        return math.sin(w * x) * x


def test_class_and_nested_functions_still_pass_the_source_check():
    assert close(transpile.grad(Model.loss)(0.4, 0.7), fd(Model.loss, 0.4, 0.7))
    fn = make_closure(math.tanh)
    assert close(transpile.grad(fn)(0.4), fd(fn, 0.4))


def with_assert(x):
    assert x > 0, "a positive x"            # pytest rewrites this module's asserts
    return math.sin(x) * x


def test_a_pytest_module_with_asserts_passes_the_source_check():
    assert close(transpile.grad(with_assert)(0.6), fd(with_assert, 0.6))


def jit_act(x):
    return act(x) * x


def test_jitted_gradient_follows_a_rebound_global(monkeypatch):
    pytest.importorskip("numba")
    g = transpile.grad(jit_act, jit=True)
    assert close(g(0.5), fd(jit_act, 0.5))
    monkeypatch.setattr(THIS, "act", math.cos)
    assert close(g(0.5), fd(jit_act, 0.5))
