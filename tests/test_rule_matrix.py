"""The rule matrix: every primitive in `transpile.rules.supported()`, every mode, against
central finite differences.

For each example call in tests/rule_examples.py a wrapper program is written as source
into a temporary module (transpile reads source, so wrappers are real functions in a
file): the call, each float output passed through sin and weighted by a fixed random
array (so every output element matters), summed to a number. For each float parameter of
the call and each mode, one cell:

* "reverse": `transpile.value_and_grad` against central differences of the wrapper;
* "forward": `transpile.jvp` along a random tangent against the directional difference;
* "forward-over-reverse", "reverse-over-forward": `transpile.hvp(f, mode=...)` along a
  random v against central differences of the gradient along v;
* "reverse-over-reverse": `transpile.grad(transpile.grad(f))`, which needs one number:
  for a scalar parameter directly, for an array parameter on the line x + t v (the
  wrapper `f(x + t v)` differentiated twice in t at 0 gives v . H v).

The expected availability of each mode comes from the registry,
``transpile.rules.supported(modes=True) -> {name: {mode: None | reason}}`` (None:
available; every mode is expected where the registry does not say). Where a mode is
available the numbers must match; where it is not, the call must raise TranspileError:
never another exception, never a number. Zero-derivative primitives must give exactly 0.

Cells failing today are listed in ONE table, KNOWN_GAPS, and marked strict xfail: a fixed
gap makes its cell fail until the entry is removed.
"""
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest

import transpile
from transpile import TranspileError
from finite_differences import central, central_wrt
import rule_examples
from rule_examples import EXAMPLES, FORWARD_RULE_PREFIX, NOT_EXERCISED

MODES = ("reverse", "forward", "forward-over-reverse", "reverse-over-forward",
         "reverse-over-reverse")
RTOL, ATOL = 1e-5, 1e-7
EPS = 1e-6


# ----------------------------------------------------------------------------------------
# expected availability (from the registry)
# ----------------------------------------------------------------------------------------
def declared_modes():
    """{name: {mode: None | reason}}, or None where the registry does not say yet."""
    try:
        return transpile.rules.supported(modes=True)
    except TypeError:
        return None


DECLARED = declared_modes()


def unavailable_reason(name, mode):
    """None where `mode` is expected to work for `name`, else the registry's reason."""
    if DECLARED is None:
        return None
    return DECLARED.get(name, {}).get(mode)


# ----------------------------------------------------------------------------------------
# wrapper programs, written as source
# ----------------------------------------------------------------------------------------
NAMESPACE = {"np": np, "math": math, "transpile": transpile, "scipy": rule_examples.scipy}
DEFAULT_WRAP = "np.sin({})"


def _weights_rng(ex):
    return np.random.default_rng(zlib.crc32(ex.id.encode()))


def _outputs(ex):
    """The output values of the example call, one per output the wrapper reduces."""
    value = eval(ex.expr, dict(NAMESPACE), dict(ex.args))
    if isinstance(value, (tuple, list)) and not (ex.wrap is not None and len(ex.wrap) == 1):
        return list(value), True
    return [value], False


class Wrapper:
    """The generated program of one example: f(*params, *weights) -> number."""

    def __init__(self, index, ex):
        self.ex = ex
        self.name = f"f_{index}"
        outs, several = _outputs(ex)
        rng = _weights_rng(ex)
        terms, self.weights = [], []
        for k, out in enumerate(outs):
            wrap = ex.wrap[k] if ex.wrap is not None else DEFAULT_WRAP
            o = f"o{k}"
            if wrap == DEFAULT_WRAP and type(out) in (float, int, bool):
                terms.append(f"math.sin({o}) * w{k}")
                self.weights.append(float(rng.normal()))
                continue
            shape = np.shape(eval(wrap.format(o), dict(NAMESPACE), {o: out}))
            terms.append(f"np.sum({wrap.format(o)} * w{k})")
            self.weights.append(float(rng.normal()) if shape == () else rng.normal(size=shape))
        self.params = list(ex.args)
        self.weight_names = [f"w{k}" for k in range(len(outs))]
        targets = ", ".join(f"o{k}" for k in range(len(outs))) + ("," if several and
                                                                  len(outs) == 1 else "")
        self.body = [f"    {targets} = {ex.expr}", "    return " + " + ".join(terms)]

    def source(self):
        head = f"def {self.name}({', '.join(self.params + self.weight_names)}):"
        lines = [head] + self.body
        for p in self.params:
            if np.ndim(self.ex.args[p]) > 0:
                # the same program on the line p + t v, for grad(grad(.)) in t
                others = [q if q != p else f"{p}_at" for q in self.params]
                signature = ", ".join(["t", "v"] + others + self.weight_names)
                lines += ["", "", f"def {self.name}_line_{p}({signature}):",
                          f"    {p} = {p}_at + t * v"] + self.body
        return "\n".join(lines)

    def args(self):
        return [_copy(self.ex.args[p]) for p in self.params] + [_copy(w) for w in self.weights]


def _copy(v):
    return v.copy() if isinstance(v, np.ndarray) else v


def build_wrappers(directory):
    """Write every example's wrapper into one module in `directory` and import it."""
    wrappers = [Wrapper(i, ex) for i, ex in enumerate(EXAMPLES)]
    header = ["import math", "", "import numpy as np", ""]
    if rule_examples.scipy is not None:
        header += [f"import scipy.{m}" for m in ("integrate", "linalg", "signal", "special",
                                                 "stats")] + [""]
    text = "\n".join(header + ["import transpile", "", ""]
                     + [w.source() + "\n\n" for w in wrappers])
    path = directory / "rule_matrix_wrappers.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("rule_matrix_wrappers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["rule_matrix_wrappers"] = module
    spec.loader.exec_module(module)
    for w in wrappers:
        w.fn = getattr(module, w.name)
        w.line = {p: getattr(module, f"{w.name}_line_{p}") for p in w.params
                  if hasattr(module, f"{w.name}_line_{p}")}
    return {w.ex.id: w for w in wrappers}


# ----------------------------------------------------------------------------------------
# one cell
# ----------------------------------------------------------------------------------------
class Outcome:
    def __init__(self, status, detail=""):
        self.status, self.detail = status, detail      # pass / refused / wrong / crashed

    def __repr__(self):
        return f"{self.status}: {self.detail}"


def _close(got, ref, atol=ATOL):
    """None when got matches ref (shape, finite, close), else what is wrong."""
    if np.ndim(ref) == 0 and not isinstance(got, (float, np.floating, np.ndarray)):
        return f"a {type(got).__name__}, expected a float"
    if np.ndim(ref) > 0 and not isinstance(got, np.ndarray):
        return f"a {type(got).__name__}, expected an array of shape {np.shape(ref)}"
    if np.shape(got) != np.shape(ref):
        return f"shape {np.shape(got)}, expected {np.shape(ref)}"
    g, r = np.asarray(got, float), np.asarray(ref, float)
    scale = max(1.0, float(np.max(np.abs(r)))) if r.size else 1.0
    if not np.all(np.isfinite(g)) or not np.allclose(g, r, rtol=RTOL, atol=atol * scale):
        return f"got {np.array2string(g, precision=8)}, expected {np.array2string(r, precision=8)}"
    return None


def _exactly_zero(got, ref, locally_constant=True):
    """A zero-derivative primitive: exactly 0 (and finite differences agree where the
    function is locally constant, not only declared to pass no derivative)."""
    if np.shape(got) != np.shape(ref):
        return f"shape {np.shape(got)}, expected {np.shape(ref)}"
    if not np.all(np.asarray(got, float) == 0.0):
        return f"got {np.asarray(got)}, expected exactly 0"
    if locally_constant and not np.allclose(ref, 0.0, atol=1e-9):
        return (f"the rule is zero but finite differences give {np.asarray(ref)}: the "
                "function is not locally constant here")
    return None


class Cell:
    def __init__(self, ex, param, mode):
        self.ex, self.param, self.mode = ex, param, mode
        self.id = f"{ex.id}-{mode}-d{param}"


_REFERENCE = {}            # (example id, param) -> (v, H v reference, atol)
_GRADIENTS = {}            # (example id, param) -> value_and_grad


def _position(w, p):
    return w.params.index(p)


def _direction(w, p, salt):
    rng = np.random.default_rng(zlib.crc32(f"{w.ex.id}/{p}/{salt}".encode()))
    x = w.ex.args[p]
    return float(rng.normal()) if np.ndim(x) == 0 else rng.normal(size=np.shape(x))


def _with(args, i, value):
    out = list(args)
    out[i] = value
    return out


def _value_and_grad(w, p):
    key = (w.ex.id, p)
    if key not in _GRADIENTS:
        _GRADIENTS[key] = transpile.value_and_grad(w.fn, wrt=p)
    return _GRADIENTS[key]


def _fd_gradient(w, p):
    return central_wrt(w.fn, w.args(), _position(w, p), eps=EPS)


def _hv_reference(w, p):
    """(v, H v by central differences of a trusted gradient, tolerance)."""
    key = (w.ex.id, p)
    if key in _REFERENCE:
        return _REFERENCE[key]
    i, args, v = _position(w, p), w.args(), _direction(w, p, "v")
    x = args[i]
    gradient, atol = None, ATOL
    try:
        vg = _value_and_grad(w, p)
        if _close(vg(*args)[1], _fd_gradient(w, p)) is None:
            gradient = lambda a: vg(*a)[1]        # noqa: E731
    except Exception:
        pass
    if gradient is None:        # no trusted gradient: differences of differences
        gradient, atol = (lambda a: central_wrt(w.fn, a, i, eps=1e-4)), 1e-5
        h = 1e-4
    else:
        h = EPS
    hv = (np.asarray(gradient(_with(args, i, x + h * v)), float)
          - np.asarray(gradient(_with(args, i, x - h * v)), float)) / (2 * h)
    if np.ndim(x) == 0:
        hv = float(hv)
    _REFERENCE[key] = (v, hv, atol)
    return _REFERENCE[key]


def _compute(cell, w):
    """(derivative from transpile, its reference, tolerance) for one cell."""
    p, mode, i = cell.param, cell.mode, _position(w, cell.param)
    args = w.args()
    if mode == "reverse":
        value, g = _value_and_grad(w, p)(*args)
        bad = _close(value, w.fn(*w.args()))
        if bad:
            raise AssertionError(f"primal value: {bad}")
        return g, _fd_gradient(w, p), ATOL
    if mode == "forward":
        t = _direction(w, p, "t")
        tangents = [None] * len(args)
        tangents[i] = t
        value, tangent = transpile.jvp(w.fn, args, tangents)
        bad = _close(value, w.fn(*w.args()))
        if bad:
            raise AssertionError(f"primal value: {bad}")
        ref = central(lambda h: w.fn(*_with(w.args(), i, args[i] + h * t)), 0.0, eps=EPS)
        return tangent, ref, ATOL
    if mode in ("forward-over-reverse", "reverse-over-forward"):
        v, hv, atol = _hv_reference(w, p)
        return transpile.hvp(w.fn, wrt=p, mode=mode)(*args, v=v), hv, atol
    assert mode == "reverse-over-reverse"
    v, hv, atol = _hv_reference(w, p)
    if np.ndim(args[i]) == 0:
        second = transpile.grad(transpile.grad(w.fn, wrt=p))(*args)
        return second, hv / v, atol
    second = transpile.grad(transpile.grad(w.line[p], wrt=0))(0.0, v, *args)
    return second, float(np.sum(v * hv)), atol


def run_cell(cell, wrappers):
    """The outcome of one cell: pass, refused, wrong or crashed."""
    w = wrappers[cell.ex.id]
    reason = unavailable_reason(cell.ex.name, cell.mode)
    try:
        got, ref, atol = _compute(cell, w)
    except TranspileError as exc:
        if reason is not None:
            return Outcome("pass")
        return Outcome("refused", f"TranspileError: {exc}")
    except AssertionError as exc:
        return Outcome("wrong", str(exc))
    except Exception as exc:          # noqa: BLE001 - any other exception is the finding
        return Outcome("crashed", f"{type(exc).__name__}: {exc}"[:600])
    bad = (_exactly_zero(got, ref, cell.ex.zero is True) if cell.ex.zero
           else _close(got, ref, atol))
    if reason is not None:
        return Outcome("wrong" if bad else "not refused",
                       f"declared unavailable ({reason}) but returned a number"
                       + (f": {bad}" if bad else ""))
    return Outcome("wrong", bad) if bad else Outcome("pass")


CELLS = [Cell(ex, p, mode) for ex in EXAMPLES for p in ex.wrt for mode in MODES]


# ----------------------------------------------------------------------------------------
# the cells failing today: cell id -> what happens (strict xfail: remove when fixed)
# ----------------------------------------------------------------------------------------
KNOWN_GAPS = {
    'numpy.diff[prepend-append]-forward-dy':
        "refused: TranspileError: in f: no derivative flows through the keyword argument 'append' of numpy.diff; keep it constant",
    'numpy.diff[prepend-append]-forward-over-reverse-dy':
        "refused: TranspileError: in f: no derivative flows through the keyword argument 'append' of numpy.diff; keep it constant",
    'numpy.diff[prepend-append]-reverse-dy':
        "refused: TranspileError: in f: no derivative flows through the keyword argument 'append' of numpy.diff; keep it constant",
    'numpy.diff[prepend-append]-reverse-over-forward-dy':
        "refused: TranspileError: in f: no derivative flows through the keyword argument 'append' of numpy.diff; keep it constant",
    'numpy.diff[prepend-append]-reverse-over-reverse-dy':
        "refused: TranspileError: in f: no derivative flows through the keyword argument 'append' of numpy.diff; keep it constant",
    'numpy.pad[constant-value]-forward-dy':
        "refused: TranspileError: in f: no derivative flows through the keyword argument 'constant_values' of numpy.pad; keep it constant",
    'numpy.pad[constant-value]-forward-over-reverse-dy':
        "refused: TranspileError: in f: no derivative flows through the keyword argument 'constant_values' of numpy.pad; keep it constant",
    'numpy.pad[constant-value]-reverse-dy':
        "refused: TranspileError: in f: no derivative flows through the keyword argument 'constant_values' of numpy.pad; keep it constant",
    'numpy.pad[constant-value]-reverse-over-forward-dy':
        "refused: TranspileError: in f: no derivative flows through the keyword argument 'constant_values' of numpy.pad; keep it constant",
    'numpy.pad[constant-value]-reverse-over-reverse-dy':
        "refused: TranspileError: in f: no derivative flows through the keyword argument 'constant_values' of numpy.pad; keep it constant",
    'numpy.prod[1d-one-zero]-forward-over-reverse-dx':
        'refused: TranspileError: second derivatives through numpy.prod are available for nonzero inputs without initial=/where= only',
    'numpy.prod[1d-one-zero]-reverse-over-forward-dx':
        'refused: TranspileError: second derivatives through numpy.prod are available for nonzero inputs without initial=/where= only',
    'numpy.prod[1d-one-zero]-reverse-over-reverse-dx':
        'refused: TranspileError: second derivatives through numpy.prod are available for nonzero inputs without initial=/where= only',
    'numpy.prod[2d-zeros-axis]-forward-over-reverse-dx':
        'refused: TranspileError: second derivatives through numpy.prod are available for nonzero inputs without initial=/where= only',
    'numpy.prod[2d-zeros-axis]-reverse-over-forward-dx':
        'refused: TranspileError: second derivatives through numpy.prod are available for nonzero inputs without initial=/where= only',
    'numpy.prod[2d-zeros-axis]-reverse-over-reverse-dx':
        'refused: TranspileError: second derivatives through numpy.prod are available for nonzero inputs without initial=/where= only',
    'transpile.grad_hook[identity]-forward-over-reverse-dx':
        'refused: TranspileError: in the derivative code grad_f: unsupported construct: a lambda used as a value (assign it to a name or use def)',
    'transpile.grad_hook[identity]-reverse-over-reverse-dx':
        'refused: TranspileError: in the derivative code grad_f: unsupported construct: a lambda used as a value (assign it to a name or use def)',
}


@pytest.fixture(scope="session")
def wrappers(tmp_path_factory):
    return build_wrappers(tmp_path_factory.mktemp("rule_matrix"))


def _param(cell):
    marks = ()
    if cell.id in KNOWN_GAPS:
        marks = pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[cell.id])
    return pytest.param(cell, id=cell.id, marks=marks)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("cell", [_param(c) for c in CELLS])
def test_cell(cell, wrappers):
    outcome = run_cell(cell, wrappers)
    assert outcome.status == "pass", f"{outcome.status}: {outcome.detail}"


# ----------------------------------------------------------------------------------------
# the matrix covers the registry
# ----------------------------------------------------------------------------------------
def _forward_rule_of(name):
    return name[len(FORWARD_RULE_PREFIX):] if name.startswith(FORWARD_RULE_PREFIX) else None


def builtin_names():
    """`supported()` in a fresh interpreter: the rules transpile itself declares (tests
    running in this process register rules of their own)."""
    code = "import json, transpile; print(json.dumps(transpile.rules.supported()))"
    if rule_examples.scipy is not None:       # the rules of SciPy, once it is imported
        code = ("import scipy.integrate, scipy.linalg, scipy.signal, scipy.special, "
                "scipy.stats; " + code)
    env = dict(os.environ,
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return set(json.loads(out.stdout))


@pytest.fixture(scope="module")
def builtin():
    return builtin_names()


def test_every_supported_name_has_an_example_or_a_reason(builtin):
    exercised = {ex.name for ex in EXAMPLES}
    missing = sorted(n for n in builtin - exercised - set(NOT_EXERCISED)
                     if _forward_rule_of(n) not in exercised)
    assert not missing, f"declared rules with no example in tests/rule_examples.py: {missing}"


def test_examples_name_declared_rules(builtin):
    stale = sorted({ex.name for ex in EXAMPLES} - builtin | set(NOT_EXERCISED) - builtin)
    assert not stale, f"examples or reasons for names with no rule: {stale}"


def test_every_example_has_a_float_parameter():
    for ex in EXAMPLES:
        assert ex.wrt and all(p in ex.args for p in ex.wrt), ex
        for p in ex.wrt:
            x = ex.args[p]
            assert isinstance(x, float) or (isinstance(x, np.ndarray) and x.dtype.kind == "f"), ex


def test_cell_ids_are_unique_and_known_gaps_name_cells():
    ids = [c.id for c in CELLS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    stale = sorted(set(KNOWN_GAPS) - set(ids))
    assert not stale, f"KNOWN_GAPS entries that name no cell: {stale}"


def test_declared_modes_cover_the_registry(builtin):
    if DECLARED is None:
        pytest.skip("transpile.rules.supported(modes=True) is not available yet")
    assert builtin <= set(DECLARED)
    for name, modes in DECLARED.items():
        assert set(modes) <= set(MODES), (name, modes)
        for mode, reason in modes.items():
            assert reason is None or (isinstance(reason, str) and reason), (name, mode)


# ----------------------------------------------------------------------------------------
# `python tests/test_rule_matrix.py`: run every cell, print the KNOWN_GAPS table for the
# transpile on the path (to replace the one above when gaps are fixed or appear)
# ----------------------------------------------------------------------------------------
def short(detail):
    """An outcome's message without the temporary module's path and wrapper names."""
    detail = re.sub(r"\S*rule_matrix_wrappers\.py:\d+: ", "", detail)
    detail = re.sub(r"f_\d+(_line_\w+)?", "f", detail)
    detail = " ".join(detail.split())
    return detail if len(detail) <= 140 else detail[:137] + "..."


def gap_table(outcomes):
    """KNOWN_GAPS as source, from {cell: Outcome}."""
    lines = ["KNOWN_GAPS = {"]
    for cell, o in sorted(outcomes.items(), key=lambda co: (co[0].ex.name, co[0].id)):
        if o.status != "pass":
            lines.append(f"    {cell.id!r}:\n        {short(f'{o.status}: {o.detail}')!r},")
    return "\n".join(lines + ["}"])


if __name__ == "__main__":
    import tempfile
    import warnings
    from pathlib import Path
    warnings.simplefilter("ignore")
    built = build_wrappers(Path(tempfile.mkdtemp()))
    print(gap_table({c: run_cell(c, built) for c in CELLS}))
