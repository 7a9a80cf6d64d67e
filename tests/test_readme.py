"""The documentation runs as written.

* The README's API tour: its ```python blocks, from `## API tour` to the next `## `
  heading, are written in order to one file and imported (transpile reads function
  source, so the tour has to be a file). A line `expression  # -> 1.2345  words` must
  evaluate to the number(s) shown, to the digits shown. A block preceded by
  `<!-- output: EXPR -->` is generated code: it must be EXPR (evaluated at that point of
  the tour) exactly. A block preceded by `<!-- requires: MODULE -->` runs when MODULE
  can be imported.
* The numbers the tour computes are checked against central finite differences, so the
  numbers shown are right, not only reproduced.
* The examples of the public docstrings pass under doctest, and every public function
  documents its Parameters, Returns and Examples (NumPy style).

The file runs against whatever `transpile` imports: the source tree under pytest, the
installed wheel where `.ci/wheel_check` copies it next to README.md.
"""
import ast
import contextlib
import doctest
import importlib.util
import inspect
import io
import math
import os
import re
import sys

import numpy as np
import pytest

import transpile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")

SHOWN = re.compile(r"^(?P<code>\S.*?)\s*# -> (?P<shown>.*)$")
MARKER = re.compile(r"^<!--\s*(?P<kind>output|requires):\s*(?P<what>.*?)\s*-->\s*$")
NUMBER = re.compile(r"-?\d+(?:\.(\d*))?(?:[eE][-+]?\d+)?")


class Block:
    def __init__(self, line, text, marker):
        self.line, self.text, self.marker = line, text, marker   # line: README line of ```

    @property
    def kind(self):
        return self.marker[0] if self.marker else "code"


def tour_blocks(path=README):
    """The ```python blocks of the API tour, with the marker comment before each."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    start = lines.index("## API tour")
    end = next(k for k in range(start + 1, len(lines)) if lines[k].startswith("## "))
    blocks, k = [], start + 1
    while k < end:
        if lines[k].strip() == "```python":
            j = k + 1
            while lines[j].strip() != "```":
                j += 1
            m = MARKER.match(lines[k - 1])
            blocks.append(Block(k + 1, "\n".join(lines[k + 1:j]),
                                (m.group("kind"), m.group("what")) if m else None))
            k = j
        k += 1
    return blocks


def tour_source(blocks):
    """The tour as one module: shown numbers recorded as (README line, shown text,
    value); generated-code blocks recorded as (README line, expected text, actual)."""
    out = ["_shown = []", "_outputs = []", "_skipped = []"]
    for b in blocks:
        if b.kind == "output":
            ast.parse(b.marker[1], mode="eval")
            out.append(f"_outputs.append(({b.line}, {b.text!r}, {b.marker[1]}))")
            continue
        if b.kind == "requires" and importlib.util.find_spec(b.marker[1]) is None:
            out.append(f"_skipped.append(({b.line}, {b.marker[1]!r}))")
            continue
        for k, line in enumerate(b.text.splitlines(), b.line + 1):
            m = SHOWN.match(line)
            if m:
                code, shown = m.group("code"), m.group("shown").split("  ")[0]
                ast.parse(code, mode="eval")        # a shown value follows an expression
                ast.literal_eval(shown)             # and is a number or a literal of them
                line = f"_shown.append(({k}, {shown!r}, ({code})))"
            out.append(line)
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    path = tmp_path_factory.mktemp("readme") / "readme_tour.py"
    path.write_text(tour_source(tour_blocks()), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("readme_tour", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_tour"] = module
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("readme_tour", None)


def _numbers(value):
    """A value (number, array, nested tuples/lists of them) as a flat list of floats
    (complex ones as their real and imaginary parts)."""
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _numbers(item)]
    a = np.asarray(value)
    if a.dtype.kind == "c":          # a complex number shows its real and imaginary part
        return [float(part) for v in a.ravel() for part in (v.real, v.imag)]
    return [float(v) for v in np.asarray(value, dtype=float).ravel()]


def test_readme_tour_has_blocks_of_each_kind():
    kinds = [b.kind for b in tour_blocks()]
    assert kinds.count("code") >= 6 and kinds.count("output") == 4, kinds


def test_readme_tour_runs_and_shows_what_it_computes(tour):
    assert len(tour._shown) >= 20, tour._shown
    wrong = []
    for line, shown, value in tour._shown:
        texts = [m for m in NUMBER.finditer(shown)]
        got = _numbers(value)
        if len(texts) != len(got):
            wrong.append(f"README line {line}: shows {shown}, computes {value!r}")
            continue
        for m, x in zip(texts, got):
            decimals = len(m.group(1) or "")
            assert "e" not in m.group(0).lower(), "show plain decimals"
            if not abs(x - float(m.group(0))) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9):
                wrong.append(f"README line {line}: shows {shown}, computes {value!r}")
                break
    assert not wrong, "\n".join(wrong)


def test_readme_generated_code_is_what_transpile_generates(tour):
    assert len(tour._outputs) == 4
    for line, expected, actual in tour._outputs:
        assert actual.rstrip("\n") == expected.rstrip("\n"), (
            f"README line {line}: the block shows\n{expected}\n\nbut transpile "
            f"generates\n{actual}")


def test_readme_blocks_needing_optional_packages_ran(tour):
    if tour._skipped:
        pytest.skip(f"README blocks not run, a package is missing: {tour._skipped}")


# --- the tour's numbers against central finite differences -------------------------------

def fd(fn, x, eps=1e-6):
    """Central differences of fn at x (a number or an array)."""
    if np.ndim(x) == 0:
        return (fn(x + eps) - fn(x - eps)) / (2 * eps)
    x = np.asarray(x, dtype=float)
    out = None
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        d = (np.asarray(fn(xp)) - np.asarray(fn(xm))) / (2 * eps)
        if out is None:
            out = np.zeros(d.shape + x.shape)
        out[(Ellipsis,) + idx] = d
    return out


def test_readme_tour_gradients_match_finite_differences(tour):
    f = tour.f
    dx = fd(lambda x: f(x, 0.7), 0.3)
    dw = fd(lambda w: f(0.3, w), 0.7)
    assert abs(dx) > 0.1 and abs(dw) > 0.1            # the tour shows real numbers
    assert f.grad(0.3, 0.7) == pytest.approx(dx, rel=1e-7)
    assert transpile.grad(f, wrt=1)(0.3, 0.7) == pytest.approx(dw, rel=1e-7)
    _, pullback = transpile.vjp(f, 0.3, 0.7, wrt="w")
    assert pullback(1.0) == pytest.approx(dw, rel=1e-7)
    # second derivatives: differences of differences
    h = 1e-4
    hxx = (f(0.3 + h, 0.7) - 2 * f(0.3, 0.7) + f(0.3 - h, 0.7)) / h ** 2
    hww = (f(0.3, 0.7 + h) - 2 * f(0.3, 0.7) + f(0.3, 0.7 - h)) / h ** 2
    hxw = (f(0.3 + h, 0.7 + h) - f(0.3 + h, 0.7 - h) - f(0.3 - h, 0.7 + h)
           + f(0.3 - h, 0.7 - h)) / (4 * h * h)
    H = transpile.hessian(f, wrt=(0, 1))(0.3, 0.7)
    assert np.allclose(H, [[hxx, hxw], [hxw, hww]], rtol=1e-5)
    assert transpile.grad(transpile.grad(f))(0.3, 0.7) == pytest.approx(hxx, rel=1e-5)
    assert np.allclose(transpile.jacobian(tour.g)(tour.np.array([0.3, 0.7])),
                       fd(tour.g, np.array([0.3, 0.7])), rtol=1e-7)


def test_readme_tour_rules_and_hooks_match_finite_differences(tour):
    for x in (-0.5, 1.0):
        assert transpile.grad(tour.model)(x) == pytest.approx(fd(tour.model, x), abs=1e-8)
    assert transpile.jvp(tour.model, (-0.5,), (1.0,))[1] == pytest.approx(
        fd(tour.model, -0.5), rel=1e-7)
    x, W = tour.x, tour.W
    # the hook clips the 3.0 arriving at h to 1.0: the gradient of sum(tanh(x @ W))
    dx, dscale = transpile.grad(tour.loss, wrt=(0, 2))(x, W, 3.0)
    assert np.allclose(dx, fd(lambda x: np.sum(np.tanh(x @ W)), x), rtol=1e-7)
    assert dscale == 0.0
    # forward mode: the hook is the identity, the tangent that of the plain function
    v = np.array([1.0, -2.0])
    _, tangent = transpile.jvp(tour.loss, (x, W, 3.0), (v, None, None))
    assert tangent == pytest.approx(np.dot(fd(lambda x: tour.loss(x, W, 3.0), x), v),
                                    rel=1e-7)


def test_readme_tour_checkpointing_matches_finite_differences(tour):
    f_n = tour.f_n
    for n in (10, 1000):
        want = (fd(lambda x: f_n(x, 0.7, n), 0.3), fd(lambda w: f_n(0.3, w, n), 0.7))
        got = transpile.grad(f_n, wrt=("x", "w"), checkpoint="sqrt")(0.3, 0.7, n)
        assert np.allclose(got, want, rtol=1e-6, atol=1e-9)
        assert tour.f_sqrt.grad(0.3, 0.7, n) == got
    # 10,000 steps: a snapshot every 100 iterations, the gradient of the plain tape
    n = 10_000
    value, dw = transpile.value_and_grad(f_n, wrt="w", checkpoint=100)(0.3, 0.7, n)
    assert (value, dw) == transpile.value_and_grad(f_n, wrt="w")(0.3, 0.7, n)
    assert dw == pytest.approx(fd(lambda w: f_n(0.3, w, n), 0.7), rel=1e-6)
    assert tour.pullback(1.0) == dw                  # the tour's checkpointed vjp


def test_readme_tour_jit_matches_finite_differences(tour):
    if not hasattr(tour, "f_jit"):
        pytest.skip("numba is not installed: the jit=True block did not run")
    assert np.allclose(tour.df_jit(0.3, 0.7), transpile.grad(tour.f, wrt=(0, 1))(0.3, 0.7),
                       rtol=1e-12)
    assert np.allclose(tour.f_jit.grad(0.3, 0.7),
                       (math.cos(0.3) * 0.7, math.sin(0.3)), rtol=1e-12)


# --- docstrings -------------------------------------------------------------------------------

DOCUMENTED = ["transpile.errors", "transpile.api", "transpile.higher", "transpile.hooks",
              "transpile.check", "transpile.rules.registry"]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docstring_examples_pass(name):
    """The `>>>` examples of the public modules run (under doctest, which gives the
    functions they define a source transpile can read)."""
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(module) if t.examples]
    assert tests, f"{name} has no examples"
    out = io.StringIO()
    for t in tests:
        runner.run(t, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, out.getvalue()


PUBLIC_FUNCTIONS = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp",
                    "differentiate", "defvjp", "defjvp", "check_grads", "grad_hook",
                    "stop_gradient"]


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_public_functions_have_numpy_docstrings(name):
    doc = inspect.getdoc(getattr(transpile, name)) or ""
    for section in ("Parameters", "Returns", "Examples"):
        assert re.search(rf"^{section}\n-{{{len(section)}}}$", doc, re.M), (name, section)
    assert ">>> " in doc
    if name not in ("grad_hook", "stop_gradient"):
        assert re.search(r"^Raises\n------$", doc, re.M), name
    # help(transpile.NAME) shows the real signature, not (*args, **kwargs)
    params = inspect.signature(getattr(transpile, name)).parameters
    assert list(params)[0] in ("f", "fn", "x"), (name, params)


# --- a claim of the tour: differentiate() of a Differentiable takes the new options ---------

def _tour_f(x, w):
    y = x
    for i in range(10):
        y = math.sin(y) * w + 0.5 * y
    return y


def test_differentiate_of_a_differentiable_takes_its_own_wrt_and_mode():
    """differentiate(f, wrt=..., mode="forward") on an f made by @differentiate used to
    keep f's wrt and mode (its __dict__ was copied over the new object's): .source showed
    the gradient, not the tangent code."""
    f = transpile.differentiate(_tour_f, wrt=("x", "w"))
    f_fwd = transpile.differentiate(f, wrt="w", mode="forward")
    assert (f_fwd.wrt, f_fwd.mode) == ("w", "forward") and (f.wrt, f.mode) == (("x", "w"),
                                                                             "reverse")
    assert f_fwd.source.startswith("def _tour_f_jvp(")
    assert f.source.startswith("def grad__tour_f(")
    assert f_fwd.grad(0.3, 0.7) == pytest.approx(fd(lambda w: _tour_f(0.3, w), 0.7),
                                                 rel=1e-7)
    assert f.grad(0.3, 0.7)[0] == pytest.approx(fd(lambda x: _tour_f(x, 0.7), 0.3), rel=1e-7)
