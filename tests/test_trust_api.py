"""The API can be trusted: the right lambda is differentiated, gradient hooks run on the
adjoint, printed modules never rebind the user's names, nested differentiation and
arguments transpile cannot differentiate are refused at the user's line, and a
TranspileError reaches the user as one short message with the user's frames.

Every derivative is checked against central finite differences (`fd`), or against a value
derived by hand from the documented semantics (hooks)."""
import decimal
import fractions
import importlib.util
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import transpile
from finite_differences import central as fd
from transpile import grad  # noqa: F401 - shadowed in shadows_grad
from transpile import frontend

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
PACKAGE = os.path.dirname(os.path.abspath(transpile.__file__))


def line_of(text):
    """The line of this file holding `text` (where an error must point)."""
    with open(HERE, encoding="utf-8") as fh:
        for k, line in enumerate(fh, 1):
            if text in line and "line_of(" not in line:
                return k
    raise AssertionError(text)


# --- 1. which lambda --------------------------------------------------------------------

sq = lambda x: x ** 2; cube = lambda x: x ** 3  # noqa: E731,E702
fs = [lambda x: x ** 2, lambda x: x ** 3]
table = {"exp": lambda x: np.exp(x) * 2.0, "sin": lambda x: np.sin(x) * 3.0}
k = 2.0
pair = (lambda x: x * k, (lambda k: lambda x: x * k)(5.0))          # same text, two scopes
twins = [lambda x: x * x * k, lambda x: x * x * k]
folded = [lambda x: 1.0 + 2.0 + x * x, lambda x: 3.0 + x * x]
A = np.array([1.0, -2.0, 0.5])
inside = lambda: transpile.grad(lambda x: np.sum(x * x * x))(A)    # noqa: E731
in_call = lambda: transpile.value_and_grad(lambda x, y: np.sum(x * y) * y, wrt=1)(A, 3.0)


def with_default(x, f=lambda y: y * y * y):
    return f(x)


def apply_to(f, x):
    return f(x)


def test_two_lambdas_on_one_line():
    assert transpile.grad(cube)(2.0) == pytest.approx(fd(cube, 2.0), rel=1e-7)
    assert transpile.grad(sq)(2.0) == pytest.approx(fd(sq, 2.0), rel=1e-7)
    assert transpile.grad(cube)(2.0) == pytest.approx(12.0)


def test_list_and_dict_of_lambdas():
    for f in fs:
        assert transpile.grad(f)(1.5) == pytest.approx(fd(f, 1.5), rel=1e-7)
    for f in table.values():
        assert transpile.grad(f)(0.3) == pytest.approx(fd(f, 0.3), rel=1e-7)


def test_lambda_inside_a_lambda_and_inside_a_call():
    np.testing.assert_allclose(inside(), fd(lambda x: np.sum(x * x * x), A), rtol=1e-6)
    value, g = in_call()
    assert value == pytest.approx(np.sum(A * 3.0) * 3.0)
    assert g == pytest.approx(fd(lambda y: np.sum(A * y) * y, 3.0), rel=1e-7)


def test_lambda_in_a_default_argument():
    f = with_default.__defaults__[0]
    assert transpile.grad(f)(2.0) == pytest.approx(fd(f, 2.0), rel=1e-7)
    assert transpile.grad(apply_to(lambda f: f, lambda x: x * np.sin(x)))(0.4) == \
        pytest.approx(fd(lambda x: x * np.sin(x), 0.4), rel=1e-7)


def test_same_text_in_two_scopes():
    """`lambda x: x * k` twice on one line, k global in one and a closure cell in the
    other: each gets its own derivative (names resolve through the function itself)."""
    for f in pair:
        assert transpile.grad(f)(1.0) == pytest.approx(fd(f, 1.0), rel=1e-7)
    assert transpile.grad(pair[1])(1.0) == pytest.approx(5.0)
    for f in twins:
        assert transpile.grad(f)(1.5) == pytest.approx(fd(f, 1.5), rel=1e-7)


def test_without_code_positions(monkeypatch):
    """The Python 3.10 route (no column positions in code objects): the code's names,
    constants and bytecode pick the lambda, and different lambdas it cannot tell apart
    are refused."""
    monkeypatch.setattr(frontend, "_by_positions", lambda candidates, code: None)
    for f in (sq, cube) + tuple(fs) + tuple(table.values()) + pair:
        frontend._FILE_TREES.clear()
        unit = frontend.unit_from_function(f)
        assert unit.node is not None
    for f in (cube, fs[1], table["sin"], pair[1]):
        g = transpile.grad(lambda x: f(x))  # noqa: B023 - called at once
        assert g(0.7) == pytest.approx(fd(f, 0.7), rel=1e-7)
    with pytest.raises(transpile.TranspileError, match="cannot tell which one"):
        frontend.unit_from_function(folded[1])


def test_folded_lambdas_with_positions():
    if not hasattr(folded[1].__code__, "co_positions"):
        pytest.skip("Python 3.10: no code positions (refused, see above)")
    for f in folded:
        assert transpile.grad(f)(0.5) == pytest.approx(fd(f, 0.5), rel=1e-7)


def own_params_only(x):
    return np.sum(x * x)


def test_lambda_passed_directly_to_every_entry_point():
    x = np.array([0.5, -1.0])
    v = np.array([1.0, 2.0])
    ref = fd(lambda x: np.sum(np.sin(x) * x), x)
    np.testing.assert_allclose(transpile.grad(lambda x: np.sum(np.sin(x) * x))(x), ref,
                               rtol=1e-6)
    value, g = transpile.value_and_grad(lambda x: np.sum(np.sin(x) * x))(x)
    np.testing.assert_allclose(g, ref, rtol=1e-6)
    value, pullback = transpile.vjp(lambda x: np.sin(x) * x, x)
    np.testing.assert_allclose(pullback(np.ones(2)), ref, rtol=1e-6)
    value, tangent = transpile.jvp(lambda x: np.sum(np.sin(x) * x), (x,), (v,))
    assert tangent == pytest.approx(float(ref @ v), rel=1e-6)
    h = transpile.hessian(lambda x: np.sum(np.sin(x) * x))(x)
    href = np.array([fd(lambda y: fd(lambda z: np.sum(np.sin(z) * z), y)[i], x)
                     for i in range(2)])
    np.testing.assert_allclose(h, href, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(transpile.hvp(lambda x: np.sum(np.sin(x) * x))(x, v=v),
                               href @ v, rtol=1e-4, atol=1e-6)


# --- 2. gradient hooks with a lambda ------------------------------------------------------

def hooked_clip(x):
    h = x * x
    h = transpile.grad_hook(h, lambda g: np.clip(g, -1, 1))
    return 3.0 * h


def hooked_scale(x, s):
    g = x * 2.0                                   # a user variable named like the parameter
    h = g * x
    h = transpile.grad_hook(h, lambda g: g * s)
    return h + g


def hooked_array(x, c):
    h = np.sin(x)
    h = transpile.grad_hook(h, lambda g: np.clip(g, -1.0, 1.0))
    return np.sum(c * h)


def test_grad_hook_lambda_runs_on_the_adjoint():
    # the adjoint reaching h is 3.0; the hook makes it clip(3, -1, 1) = 1; dh/dx = 2x
    for x in (3.0, 0.1, -2.0):
        assert transpile.grad(hooked_clip)(x) == pytest.approx(2 * x * np.clip(3.0, -1, 1))
    # a scaling hook: the gradient through h is s times the plain one, and h + g's other
    # path (g = 2x, derivative 2) is untouched
    s = 0.25
    plain = fd(lambda x: (x * 2.0) * x, 1.5)
    assert transpile.grad(hooked_scale)(1.5, s) == pytest.approx(s * plain + 2.0, rel=1e-7)
    x, c = np.array([0.1, 2.0, -1.0]), np.array([0.05, 3.0, -4.0])
    np.testing.assert_allclose(transpile.grad(hooked_array)(x, c),
                               fd(lambda x: np.sum(np.clip(c, -1, 1) * np.sin(x)), x),
                               rtol=1e-6)


# --- 3. the printed module keeps the user's names -----------------------------------------

CLASHING = '''\
import numpy as np
import math


def sign(x):
    return 42.0


def add(a, b):
    return a - b


def unbroadcast(x):
    return x + 100.0


def lookup(x):
    return -1.0


def f(x, y):
    return np.sum(np.abs(x) * y) + add(1.0, 2.0) + sign(3.0) + lookup(0.0)


def g(x):
    return abs(x) + math.sin(x)


def grad_g(x):
    return "the user's own grad_g"
'''


def test_cli_helpers_never_rebind_user_names(tmp_path):
    src = tmp_path / "clash.py"
    src.write_text(CLASHING)
    out = tmp_path / "clash_grad.py"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "transpile.cli", "-o", str(out), str(src)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    spec = importlib.util.spec_from_file_location("clash_grad", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.sign(3.0) == 42.0 and module.add(1.0, 2.0) == -1.0
    assert module.unbroadcast(1.0) == 101.0 and module.lookup(0.0) == -1.0
    x, y = np.array([1.0, -2.0]), np.array([3.0, 4.0])
    user_f = lambda x: np.sum(np.abs(x) * y) - 1.0 + 42.0 - 1.0  # noqa: E731
    value, dx = module.grad_f(x, y)
    assert value == pytest.approx(user_f(x))
    np.testing.assert_allclose(dx, fd(user_f, x), rtol=1e-6)
    assert module.grad_g(0.5) == "the user's own grad_g"
    value, dx = module.grad_g_v(0.5)            # the derivative of g, renamed
    assert dx == pytest.approx(fd(lambda x: abs(x) + np.sin(x), 0.5), rel=1e-7)
    assert "# derivative of g (" in out.read_text().split("def grad_g_v(")[0].splitlines()[-1]


# --- 4. nested differentiation: transpile.grad inside ------------------------------

def nest(x):
    f = lambda y: x * y * y  # noqa: E731
    return transpile.grad(f)(x)                     # nested: grad of a closure


def nest_constant_point(x):
    def f(y):
        return x * y * y
    return transpile.grad(f)(1.0)                   # nested: at a constant point


def nest_alias(x):
    d = transpile.value_and_grad                    # nested: an alias
    return d(lambda y: y * x)(x)[1]


def cubic(y):
    return y * y * y


grad_cubic = transpile.grad(cubic)


def nest_prebuilt(x):
    return grad_cubic(x) * x                        # nested: a gradient built outside


def make_closure(c):
    f = lambda y: c * y * y  # noqa: E731

    def inner(x):
        return transpile.grad(f)(x) * x             # nested: from a closure
    return inner


@pytest.mark.parametrize("fn", [nest, nest_constant_point, nest_prebuilt, make_closure(2.0)],
                         ids=["closure", "constant_point", "prebuilt", "from_closure"])
def test_nested_grad_is_differentiated(fn):
    """transpile.grad inside a differentiated function (closure conversion): reverse,
    forward and second order agree with differences of the plain call."""
    h = 1e-4
    x = 1.1
    assert transpile.grad(fn)(x) == pytest.approx(fd(fn, x), rel=1e-7)
    assert transpile.jvp(fn, (x,), (1.0,))[1] == pytest.approx(fd(fn, x), rel=1e-7)
    second = (fn(x + h) - 2 * fn(x) + fn(x - h)) / h ** 2
    assert transpile.hessian(fn)(x) == pytest.approx(second, rel=1e-5)


def test_an_alias_of_grad_inside_is_refused_at_the_users_line():
    for entry in (lambda: transpile.grad(nest_alias)(1.0),
                  lambda: transpile.jvp(nest_alias, (1.0,), (1.0,)),
                  lambda: transpile.hessian(nest_alias)(1.0)):
        with pytest.raises(transpile.TranspileError) as info:
            entry()
        assert "nested differentiation: inside a differentiated function" in str(info.value)
        assert info.value.filename == HERE
        assert info.value.lineno == line_of("# nested: an alias")


# --- 5. arguments transpile cannot differentiate -------------------------------------------

class Box:
    k = 3.0


class Holder:
    def __init__(self, k):
        self.k = k


def a_matrix():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix([[1.0, 2.0]])


def times_two(x, c):
    return x * 2.0


def square(x):
    return x * x


def array_square(x):
    return np.sum(x * x)


def mixed(x, obj, name, table, flag):
    return x * obj.k * table["a"] * (2.0 if flag else 1.0) * len(name)


@pytest.mark.parametrize("value, kind", [
    (Holder(fractions.Fraction(1, 2)), "c.k is a Fraction"),
    ({1}, "an object of class set"),
    ("abc", "a str"),
    (fractions.Fraction(1, 2), "a Fraction"),
    (decimal.Decimal("0.5"), "a Decimal"),
    (a_matrix(), "an np.matrix"),
    ({"a": "text", "b": [np.arange(2)]}, "a dict holding no number and no float array "
                                        "(only leaves without derivative: ndarray, str)"),
    (True, "a bool"),
])
def test_undifferentiable_arguments_are_refused(value, kind):
    calls = [lambda: transpile.grad(times_two, wrt=1)(1.0, value),
             lambda: transpile.value_and_grad(times_two, wrt="c")(1.0, value),
             lambda: transpile.vjp(times_two, 1.0, value, wrt=1),
             lambda: transpile.jvp(times_two, (1.0, value), (None, value)),
             lambda: transpile.hessian(times_two, wrt=1)(1.0, value),
             lambda: transpile.hvp(times_two, wrt=1)(1.0, value, v=1.0)]
    for call in calls:
        with pytest.raises(transpile.TranspileError) as info:
            call()
        message = str(info.value)
        assert "with respect to 'c'" in message and kind in message
        assert info.value.filename == HERE
        assert info.value.lineno == times_two.__code__.co_firstlineno


def test_integer_scalars_and_other_arguments_keep_working():
    assert transpile.grad(square)(3) == pytest.approx(fd(square, 3.0), rel=1e-7)
    assert isinstance(transpile.grad(square)(3), float)
    args = (Box(), "ab", {"a": 0.5}, True)
    assert transpile.grad(mixed)(1.5, *args) == pytest.approx(
        fd(lambda x: mixed(x, *args), 1.5), rel=1e-7)
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(transpile.grad(array_square)(x), fd(array_square, x),
                               rtol=1e-6)
    # same function, a new dtype: a complex result is refused (grad needs a real number)
    with pytest.raises(transpile.TranspileError, match="returned a complex one"):
        transpile.grad(array_square)(x + 0j)
    np.testing.assert_allclose(transpile.grad(array_square)(x), 2 * x)


def returns_nothing(x):
    y = x * 2.0  # noqa: F841


@pytest.mark.parametrize("jit", [False, True])
def test_function_returning_none_is_an_error(jit):
    if jit:
        pytest.importorskip("numba")
    with pytest.raises(transpile.TranspileError, match="returns None"):
        transpile.value_and_grad(returns_nothing, jit=jit)(1.0)


# --- 7. one short error with the user's frames ----------------------------------------------

def uses_try(x):
    try:
        return x * 2.0
    except ValueError:
        return x


def transpile_frames(exc):
    frames, tb = [], exc.__traceback__
    while tb is not None:
        name = os.path.abspath(tb.tb_frame.f_code.co_filename)
        if name.startswith(PACKAGE + os.sep):
            frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return frames


@pytest.mark.parametrize("call", [
    lambda: transpile.grad(uses_try)(1.0),
    lambda: transpile.value_and_grad(uses_try)(1.0),
    lambda: transpile.vjp(uses_try, 1.0),
    lambda: transpile.jvp(uses_try, (1.0,), (1.0,)),
    lambda: transpile.hessian(uses_try)(1.0),
    lambda: transpile.hvp(uses_try)(1.0, v=1.0),
    lambda: transpile.jacobian(uses_try)(1.0),
    lambda: transpile.differentiate(uses_try).grad(1.0),
    lambda: transpile.grad(transpile.grad(uses_try))(1.0),
    lambda: transpile.grad(uses_try).source,
    lambda: transpile.grad(times_two, wrt=1)(1.0, "abc"),
])
def test_transpile_error_shows_the_users_frames(call):
    with pytest.raises(transpile.TranspileError) as info:
        call()
    exc = info.value
    assert len(transpile_frames(exc)) <= 3, transpile_frames(exc)
    assert exc.__cause__ is None and exc.__suppress_context__
    assert exc.__context__ is None
    assert str(exc).startswith(f"{HERE}:")
    assert " in uses_try: " in str(exc) or " in times_two: " in str(exc)


def shadows_grad(x):
    def grad(y):                                    # a local function named like the API
        return y * y
    return grad(x) * 2.0


def test_a_local_name_like_the_api_is_not_nested_differentiation():
    assert transpile.grad(shadows_grad)(1.5) == pytest.approx(fd(shadows_grad, 1.5),
                                                              rel=1e-7)


def test_a_gradient_function_is_not_differentiated_as_its_function():
    """grad(f) wraps f (functools.update_wrapper): differentiating it must not
    differentiate f instead (that gave f' where f'' was asked for)."""
    g = transpile.grad(square)
    h = 1e-4
    first = (square(1.5 + h) - square(1.5 - h)) / (2 * h)
    second = (square(1.5 + h) - 2 * square(1.5) + square(1.5 - h)) / h ** 2
    assert transpile.grad(g)(1.5) == pytest.approx(second, rel=1e-6)
    value, pullback = transpile.vjp(g, 1.5)
    assert value == pytest.approx(first) and pullback(1.0) == pytest.approx(second)
    assert transpile.jvp(g, (1.5,), (1.0,)) == pytest.approx((first, second))
    assert transpile.value_and_grad(g)(1.5) == pytest.approx((first, second))
    # a Jacobian has no generated code of its own to differentiate: refused
    with pytest.raises(transpile.TranspileError, match="is a derivative made by"):
        transpile.grad(transpile.jacobian(square))(1.5)
