"""Rules reached with the zero placeholder: an adjoint (or tangent) that is still the 0.0
derivative code starts from, in a loop or after a branch, where no shape is known.

For every example call of tests/rule_examples.py (the rule matrix's wrappers), two
programs against central differences over every differentiated parameter:

* reverse mode: the call in a loop whose result counts in the first iteration only, so
  the adjoint sweep reaches the call's rule with the result's adjoint still 0.0 (the last
  iteration's value is never used)::

      s = 0.0
      for k in range(2):
          o = CALL(args)
          if k == 0:
              s = s + weighted(o)
      return s

* forward mode: the parameter is first a value held fixed (tangent 0.0), then the
  differentiated one, so the call's tangent rule meets a zero tangent first::

      s = 0.0
      x = x_fixed
      for k in range(2):
          o = CALL(x, ...)
          s = s + weighted(o)
          x = x_in
      return s

Either the derivative is right or the call is refused with a TranspileError; never an
internal exception. Plus the user program that found it (gradient descent steps whose last
update is never used).
"""
import importlib.util
import sys

import numpy as np
import pytest

import transpile
from transpile import TranspileError
from finite_differences import central, central_wrt
import rule_examples
from rule_examples import EXAMPLES
from test_rule_matrix import Wrapper, _close, _copy

RTOL, ATOL = 1e-4, 1e-6

# cells that fail today (strict xfail: a fixed one fails until removed here)
KNOWN = {}


def _float_params(w):
    return [p for p in w.ex.wrt if isinstance(w.ex.args[p], (float, np.ndarray))
            and np.asarray(w.ex.args[p]).dtype.kind == "f"]


def _programs(w):
    assign, ret = w.body
    weighted = ret.strip()[len("return "):]
    params = ", ".join(w.params + w.weight_names)
    lines = [f"def {w.name}({params}):", "    s = 0.0", "    for k in range(2):",
             "    " + assign, "        if k == 0:", "            s = s + " + weighted,
             "    return s", ""]
    for p in _float_params(w):
        signature = ", ".join([q if q != p else f"{p}_in" for q in w.params]
                              + w.weight_names + [f"{p}_fixed"])
        lines += [f"def {w.name}_fwd_{p}({signature}):", "    s = 0.0", f"    {p} = {p}_fixed",
                  "    for k in range(2):", "    " + assign, "        s = s + " + weighted,
                  f"        {p} = {p}_in", "    return s", ""]
    own = " + ".join(f"np.sum(np.sin({p}))" for p in _float_params(w)) or "0.0"
    lines += [f"def {w.name}_unused({params}):", assign, "    n = np.shape(o0)",
              f"    return {own}", ""]
    return lines


@pytest.fixture(scope="module")
def wrappers(tmp_path_factory):
    ws = [Wrapper(i, ex) for i, ex in enumerate(EXAMPLES) if not ex.zero]
    lines = ["import math", "import numpy as np", "import transpile", ""]
    if rule_examples.scipy is not None:          # examples may call SciPy
        lines += [f"import scipy.{m}" for m in ("integrate", "linalg", "signal", "special",
                                                "stats")] + [""]
    for w in ws:
        lines += _programs(w)
    path = tmp_path_factory.mktemp("zero_adjoints") / "zero_adjoint_programs.py"
    path.write_text("\n".join(lines))
    spec = importlib.util.spec_from_file_location("zero_adjoint_programs", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["zero_adjoint_programs"] = module
    spec.loader.exec_module(module)
    return {w.ex.id: (w, module) for w in ws}


IDS = [ex.id for ex in EXAMPLES if not ex.zero]


def _cell(example, mode):
    reason = KNOWN.get((example, mode))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(example, mode, marks=marks, id=f"{example}-{mode}")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("example, mode", [_cell(e, m) for e in IDS
                                           for m in ("reverse", "forward", "unused")])
def test_rule_reached_with_zero(wrappers, example, mode):
    """mode "unused": the call at the top level, its result read for its shape only, so
    its reverse rule meets the literal 0.0 (the adjoint sweep gives zeros shaped like its
    arguments instead: pipeline._zero_vjp_calls)."""
    w, module = wrappers[example]
    params = _float_params(w)
    if not params:
        pytest.skip("no float parameter")
    args = w.args()
    if mode == "unused" and not all(np.all(np.isfinite(w.ex.args[p])) for p in params):
        pytest.skip("a parameter holds nan or an infinity (the program's own terms)")
    if mode in ("reverse", "unused"):
        f = getattr(module, w.name if mode == "reverse" else f"{w.name}_unused")
        positions = [w.params.index(p) for p in params]
        try:
            grads = transpile.grad(f, wrt=tuple(positions))(*[_copy(a) for a in args])
        except TranspileError:
            return                                  # refused: allowed, never a crash
        for p, i, g in zip(params, positions, grads):
            ref = central_wrt(f, [_copy(a) for a in args], i)
            wrong = _close(g, ref, atol=ATOL)
            assert wrong is None, f"d{p}: {wrong}"
        return
    rng = np.random.default_rng(len(example))
    for p in params:
        f = getattr(module, f"{w.name}_fwd_{p}")
        i = w.params.index(p)
        full = args + [_copy(args[i])]                 # p_fixed: the same value, held fixed
        v = rng.normal(size=np.shape(args[i]))
        v = float(v) if np.ndim(args[i]) == 0 else v
        tangents = [None] * len(full)
        tangents[i] = v
        try:
            _, got = transpile.jvp(f, [_copy(a) for a in full], tangents)
        except TranspileError:
            continue

        def along(t):
            moved = [_copy(a) for a in full]
            moved[i] = moved[i] + t * v
            return f(*moved)
        ref = central(along, 0.0)
        wrong = _close(got, ref, atol=ATOL)
        assert wrong is None, f"d{p} along v: {wrong}"


# --- the user program ------------------------------------------------------------------
def descent(X, w, y):
    loss = 0.0
    for k in range(2):
        err = np.dot(X, w) - y
        w = w - 0.1 * (X.T @ err)        # the last w is never used: dw is 0.0 there
        loss = loss + np.sum(err ** 2)
    return loss


def _data():
    rng = np.random.default_rng(3)
    return rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=4)


@pytest.mark.parametrize("i", [0, 1, 2])
def test_descent_steps_reverse(i):
    args = _data()
    g = transpile.grad(descent, wrt=i)(*args)
    assert _close(g, central_wrt(descent, list(args), i), atol=ATOL) is None


def test_descent_steps_forward():
    args = _data()
    rng = np.random.default_rng(4)
    v = [rng.normal(size=np.shape(a)) for a in args]
    _, got = transpile.jvp(descent, args, v)
    ref = central(lambda t: descent(*[a + t * d for a, d in zip(args, v)]), 0.0)
    assert _close(got, ref, atol=ATOL) is None


def test_descent_steps_hvp():
    """Second order through the guard: H v against differences of the gradient."""
    X, w, y = _data()
    v = np.random.default_rng(5).normal(size=w.shape)
    grad = transpile.grad(descent, wrt=1)
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        hv = transpile.hvp(descent, wrt=1, mode=mode)(X, w, y, v=v)
        ref = (grad(X, w + 1e-5 * v, y) - grad(X, w - 1e-5 * v, y)) / 2e-5
        assert _close(hv, ref, atol=1e-5) is None, mode


def test_descent_steps_hessian():
    X, w, y = _data()
    H = transpile.hessian(descent, wrt=1)(X, w, y)
    grad = transpile.grad(descent, wrt=1)
    ref = np.array([(grad(X, w + 1e-5 * e, y) - grad(X, w - 1e-5 * e, y)) / 2e-5
                    for e in np.eye(3)]).T
    assert _close(H, ref, atol=1e-5) is None


def test_straight_line_code_has_no_guard():
    """The guard is emitted only where an adjoint can be the placeholder at run time."""
    def_source = transpile.grad(_straight, wrt=1).source
    assert "is_zero" not in def_source
    assert "is_zero" in transpile.grad(descent, wrt=1).source


def _straight(X, w, y):
    err = np.dot(X, w) - y
    w2 = w - 0.1 * (X.T @ err)
    return np.sum(err ** 2) + np.sum(w2 ** 2)


def descent_rate(rate, X, w, y):
    loss = 0.0
    for k in range(2):
        err = np.dot(X, w) - y
        w = w - rate * (X.T @ err)
        loss = loss + np.sum(err ** 2)
    return loss


def test_descent_steps_grad_of_grad():
    """Reverse over reverse through the guard (the step size as the one parameter)."""
    X, w, y = _data()
    second = transpile.grad(transpile.grad(descent_rate))(0.1, X, w, y)
    first = transpile.grad(descent_rate)
    ref = central(lambda r: first(r, X, w, y), 0.1)
    assert _close(second, ref, atol=1e-5) is None


def step(X, w):
    return np.reshape(X.T @ (X @ w), (-1,))


def calls_in_loop(X, w):
    s = 0.0
    for k in range(2):
        o = step(X, w)                   # the callee's result adjoint is 0.0 for k == 1
        if k == 0:
            s = s + np.sum(np.sin(o))
    return s


@pytest.mark.parametrize("checkpoint", [None, "sqrt"])
def test_user_call_reached_with_zero(checkpoint):
    X, w, _ = _data()
    X = X[:3]
    g = transpile.grad(calls_in_loop, wrt=(0, 1), checkpoint=checkpoint)(X, w)
    for i in (0, 1):
        assert _close(g[i], central_wrt(calls_in_loop, [X, w], i), atol=ATOL) is None


INDS = np.arange(5.0)[:, None]


def cast_indices(W):
    glued = np.concatenate((W, INDS), axis=1)      # never read: its adjoint stays 0.0
    new_W = W[:, :-1]
    new_inds = np.int64(W[:, -1])                  # a cast to int: no derivative
    return np.sum(new_W[new_inds] ** 2)


def test_unused_value_and_a_cast_to_int():
    """autograd's test_cast_to_int: concatenate's reverse rule is not called with the zero
    placeholder (its adjoint is zeros of its arguments' shapes)."""
    W = np.random.default_rng(6).normal(size=(5, 4))
    W[:, -1] = [3.3, 0.2, 2.4, 2.6, 1.5]         # away from integers: int() is constant
    g = transpile.grad(cast_indices)(W)
    assert _close(g, central_wrt(cast_indices, [W], 0), atol=ATOL) is None
    assert "concatenate_vjp" not in transpile.grad(cast_indices).source


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_product_nothing_reads_of_operands_broadcast_against_each_other(dtype):
    """t = sin(w) * (2 y) with w (2, 1) and y (3,), t never read: its adjoint is the zero
    placeholder, and each operand's share (the placeholder times the other operand) has
    that operand's shape, not the product's; summed back to w's and y's shapes as the
    product's adjoint would be (it raised a broadcasting ValueError)."""
    def f(y, w):
        t = np.sin(w) * (y * 2.0)
        return np.sum(w * w) + np.sum(y)
    y, w = np.linspace(0.1, 0.9, 3).astype(dtype), np.array([[0.3], [-0.7]], dtype)
    dy, dw = transpile.grad(f, wrt=(0, 1))(y, w)
    assert dy.shape == y.shape and dw.shape == w.shape
    assert np.allclose(dy, 1.0) and np.allclose(dw, 2 * w)
