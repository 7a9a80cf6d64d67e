"""The rule matrix on complex inputs: every example call of tests/rule_examples.py with its
float arguments made complex, in reverse and forward mode and both Hessian-vector routes.

A rule that declares how it holds for complex values (Rule.complex) must match central
differences in autograd's convention (df/dx - i df/dy per element; see test_complex.py), and
its Hessian-vector products the differences of that gradient (or be refused); a rule that
declares nothing must refuse with one TranspileError. Never a wrong number, never
another exception. Calls NumPy itself refuses for complex values (np.floor(1j)) are left
out, and so are examples whose outputs are tuples or wrapped specially."""
import importlib.util
import sys
import zlib

import numpy as np
import pytest

import transpile
from transpile import TranspileError
from transpile.rules import registry
import rule_examples
from finite_differences import central_complex_wrt
from rule_examples import EXAMPLES

transpile.rules.supported()          # (loads the rules of SciPy, which rule_examples imports)
RULES = {}                 # name -> its rules (one per number of arguments)
for _rule in list(registry._RULES.values()):
    RULES.setdefault(_rule.name, []).append(_rule)


def _declared(name):
    """True where every rule of that name declares how it holds for complex values, False
    where none does, None where they differ (either outcome is then allowed)."""
    flags = {r.complex is not None for r in RULES[name]}
    return flags.pop() if len(flags) == 1 else None


def _complexify(ex):
    rng = np.random.default_rng(zlib.crc32(ex.id.encode()) + 1)
    out = {}
    for k, v in ex.args.items():
        if k in ex.wrt and isinstance(v, (float, np.ndarray)) and np.asarray(v).dtype.kind == "f":
            v = v + 0.2j * (rng.normal(size=np.shape(v)) if np.ndim(v) else float(rng.normal()))
        out[k] = v
    return out


def _cases():
    cases = []
    for ex in EXAMPLES:
        if ex.wrap is not None or ex.name not in RULES or ex.zero or all(
                r.zero for r in RULES[ex.name]):
            continue                     # (a zero rule's example differentiates through
                                         # other rules: `x * (m & k)`)
        args = _complexify(ex)
        if not any(np.iscomplexobj(v) for v in args.values()):
            continue
        try:
            with np.errstate(all="ignore"):
                out = eval(ex.expr, {"np": np, "scipy": rule_examples.scipy,
                                     "math": __import__("math")}, dict(args))
        except Exception:
            continue                     # NumPy itself has no complex version
        if isinstance(out, (tuple, list)) or not np.all(np.isfinite(out)):
            continue
        cases.append((ex, args, np.shape(out)))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def wrappers(tmp_path_factory):
    d = tmp_path_factory.mktemp("complex_matrix")
    lines = ["import math", "import numpy as np", ""]
    if rule_examples.scipy is not None:
        lines += ["import scipy.special", "import scipy.stats", "import scipy.linalg", ""]
    for k, (ex, args, _) in enumerate(CASES):
        params = ", ".join(list(args) + ["w"])
        lines += [f"def f{k}({params}):", f"    o = {ex.expr}",
                  "    return np.real(np.sum(np.sin(o) * w))", ""]
    path = d / "complex_wrappers.py"
    path.write_text("\n".join(lines))
    spec = importlib.util.spec_from_file_location("complex_wrappers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["complex_wrappers"] = module
    spec.loader.exec_module(module)
    return module


def _close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    assert np.allclose(a, b, rtol=1e-5, atol=1e-6 * scale), (a, b)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("mode", ["reverse", "forward", "forward-over-reverse",
                                  "reverse-over-forward"])
@pytest.mark.parametrize("k", range(len(CASES)), ids=[c[0].id for c in CASES])
def test_complex_cell(k, mode, wrappers):
    ex, args, shape = CASES[k]
    f = getattr(wrappers, f"f{k}")
    rng = np.random.default_rng(k)
    w = rng.normal(size=shape) + 1j * rng.normal(size=shape) if shape else 0.7 - 0.4j
    values = list(args.values()) + [w]
    declared = _declared(ex.name)
    for i, name in enumerate(args):
        if name not in ex.wrt or not np.iscomplexobj(values[i]):
            continue
        try:
            if mode == "reverse":
                got = transpile.grad(f, wrt=i)(*values)
                ref = central_complex_wrt(f, values, i)
            elif mode != "forward":
                # the derivative of the gradient (checked by the reverse cell) along v
                v = rng.normal(size=np.shape(values[i])) + 1j * rng.normal(
                    size=np.shape(values[i]))
                if not np.ndim(values[i]):
                    v = complex(v)
                got = transpile.hvp(f, wrt=i, mode=mode)(*values, v=v)
                grad, eps = transpile.grad(f, wrt=i), 1e-5
                a, b = list(values), list(values)
                a[i], b[i] = values[i] + eps * v, values[i] - eps * v
                ref = (grad(*a) - grad(*b)) / (2 * eps)
            else:
                t = rng.normal(size=np.shape(values[i])) + 1j * rng.normal(
                    size=np.shape(values[i]))
                if not np.ndim(values[i]):
                    t = complex(t)
                tangents = [None] * len(values)
                tangents[i] = t
                got = transpile.jvp(f, values, tangents)[1]
                eps = 1e-6
                a, b = list(values), list(values)
                a[i], b[i] = values[i] + eps * t, values[i] - eps * t
                ref = (f(*a) - f(*b)) / (2 * eps)
        except TranspileError as exc:
            # (second order may be refused: a derivative of a rule's derivative code)
            assert declared is not True or "-over-" in mode, \
                f"{ex.name} declares complex values: {exc}"
            continue
        assert declared is not False, f"{ex.name} declares nothing for complex values, " \
            f"yet gave {got}"
        _close(got, ref)
