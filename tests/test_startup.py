"""Start-up: importing transpile imports next to nothing, a scalar gradient never imports
sympy, the built-in rules register lazily (registry.TIERS) with the same results, and the
partial derivatives shipped in rules/scalar_derived.py are sympy's (each check that needs a
fresh registry runs a real Python process)."""
import json
import os
import subprocess
import sys
import textwrap

from finite_differences import central

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(tmp_path, program):
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(program))
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TRANSPILE_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_and_a_scalar_gradient_do_not_import_sympy(tmp_path):
    out = run(tmp_path, '''
        import json, math, sys
        import transpile
        after_import = sorted(m for m in sys.modules if m.startswith("transpile"))
        sympy_at_import = "sympy" in sys.modules

        def f(x, w):
            y = x
            for i in range(20):
                y = math.sin(y) * w + 0.5 * y + math.exp(-x * x) / (1.0 + y * y)
            return math.atan2(y, w) + math.sqrt(w) * math.tanh(x)

        g = transpile.grad(f, wrt=(0, 1))(0.3, 0.7)
        h = 1e-6
        fd = [(f(0.3 + h, 0.7) - f(0.3 - h, 0.7)) / (2 * h),
              (f(0.3, 0.7 + h) - f(0.3, 0.7 - h)) / (2 * h)]
        print(json.dumps({"after_import": after_import, "sympy_at_import": sympy_at_import,
                          "sympy": "sympy" in sys.modules, "g": g, "fd": fd}))
    ''')
    assert out["after_import"] == ["transpile", "transpile.errors"]
    assert not out["sympy_at_import"]
    assert not out["sympy"]
    for a, b in zip(out["g"], out["fd"]):
        assert abs(a - b) <= 1e-6 * (1 + abs(b))


def test_the_numpy_tier_registers_only_what_its_lookups_load_it_for(tmp_path):
    """A lookup of a callable the numpy tier does not load for finds the same rule before
    and after it is loaded; the python tier's rules are not replaced."""
    out = run(tmp_path, '''
        import json
        from transpile.rules import registry
        registry._load_tier("python")
        before = dict(registry._RULES)
        version = registry.VERSION[0]
        registry.load_builtin()
        added = [k for k in registry._RULES if k not in before]
        print(json.dumps({
            "replaced": [r.name for k, r in before.items() if registry._RULES[k] is not r],
            "not_numpy_side": [registry._RULES[k].name for k in added
                               if not registry._numpy_side(k[0])],
            "added": len(added), "version_kept": registry.VERSION[0] == version,
            "all_builtin": all(r.builtin for r in registry._RULES.values()),
            "hooks": "transpile.grad_hook" in registry.supported()}))
    ''')
    assert out["added"] > 100
    assert out["replaced"] == [] and out["not_numpy_side"] == []
    assert out["version_kept"] and out["all_builtin"] and out["hooks"]


def test_lazy_rules_give_the_gradients_of_eager_ones(tmp_path):
    """NumPy rules loaded by the first NumPy lookup, after a scalar gradient; SciPy rules by
    the first SciPy lookup (scipy imported by the user's code); a user rule after them."""
    out = run(tmp_path, '''
        import json, math
        import numpy as np
        import scipy.special
        import transpile

        def f(x):
            return math.sin(x) * x

        def g(x):
            return np.sum(np.tanh(x) ** 2)

        def s(x):
            return scipy.special.erf(x) * x

        def cube(x):
            return x * x * x

        def u(x):
            return cube(x) + x

        out = {"f": transpile.grad(f)(0.4), "g": transpile.grad(g)(np.array([0.1, 0.5])).tolist(),
               "s": float(transpile.grad(s)(0.4))}
        transpile.defvjp(cube, "3 * x * x")
        out["u"] = transpile.grad(u)(0.4)
        print(json.dumps(out))
    ''')
    import math
    import numpy as np
    import scipy.special
    assert abs(out["f"] - central(lambda x: math.sin(x) * x, 0.4)) < 1e-6
    expected = central(lambda x: np.sum(np.tanh(x) ** 2), np.array([0.1, 0.5]))
    assert np.allclose(out["g"], expected, atol=1e-6)
    assert abs(out["s"] - central(lambda x: scipy.special.erf(x) * x, 0.4)) < 1e-6
    assert abs(out["u"] - central(lambda x: x ** 3 + x, 0.4)) < 1e-6


def test_shipped_partials_are_sympys():
    """rules/scalar_derived.py is what scripts/derive_scalar_rules.py writes today (this
    test imports sympy: it re-derives every partial derivative)."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        import derive_scalar_rules
    finally:
        sys.path.pop(0)
    with open(derive_scalar_rules.TARGET) as fh:
        assert fh.read() == derive_scalar_rules.text()
    from transpile.rules import scalar, scalar_derived
    shipped = {n for n, twin in scalar.SYMPY_TWINS.items() if twin is not None}
    assert set(scalar_derived.PARTIALS) == shipped


def test_scipy_imported_by_someone_else_loads_its_rules_only_for_scipy_callables(tmp_path):
    """A library (JAX, scikit-learn...) that imports scipy does not make a gradient of
    code calling only math and NumPy load transpile's SciPy rules (they import
    scipy.stats, signal, integrate: a second at the first gradient); a SciPy function,
    ufunc or not, still finds its rule."""
    out = run(tmp_path, '''
        import json, math, sys
        import numpy as np
        import scipy
        import transpile
        from scipy.special import erf

        def f(x, w):
            y = x
            for i in range(5):
                y = math.sin(y) * w + 0.5 * y
            return y

        def g(x):
            return np.sum(np.tanh(x) ** 2)

        out = {"g": transpile.grad(g)(np.array([0.1, 0.5])).tolist(),
               "f": transpile.grad(f)(0.3, 0.7)}
        out["loaded"] = "transpile.rules.scipy_" in sys.modules
        out["erf"] = float(transpile.grad(lambda x: erf(x) * x)(0.4))
        out["loaded_after"] = "transpile.rules.scipy_" in sys.modules
        print(json.dumps(out))
    ''')
    import math
    import numpy as np
    import scipy.special

    def f(x):
        y = x
        for i in range(5):
            y = math.sin(y) * 0.7 + 0.5 * y
        return y
    assert not out["loaded"] and out["loaded_after"]
    assert abs(out["f"] - central(f, 0.3)) < 1e-6
    expected = central(lambda x: np.sum(np.tanh(x) ** 2), np.array([0.1, 0.5]))
    assert np.allclose(out["g"], expected, atol=1e-6)
    assert abs(out["erf"] - central(lambda x: scipy.special.erf(x) * x, 0.4)) < 1e-6


def test_second_order_rules_are_derived_when_derivative_code_is_differentiated(tmp_path):
    """The rules of the vjp and jvp functions of NumPy's rules (for grad of grad, hvp) are
    derived when first looked up, not when NumPy's rules load: a first-order gradient
    derives none, a Hessian then derives what it calls and is right."""
    out = run(tmp_path, '''
        import json
        import numpy as np
        import transpile
        from transpile.rules import registry

        def f(x):
            return np.sum(np.cumsum(np.tanh(x)) ** 2 * np.sin(x))

        def derived():
            return sum(r.name.startswith("the reverse rule of") for r in
                       registry._RULES.values())

        x = np.array([0.3, -0.7])
        out = {"g": transpile.grad(f)(x).tolist(), "after_grad": derived()}
        out["H"] = transpile.hessian(f)(x).tolist()
        out["after_hessian"] = derived()
        out["pending"] = len(registry._PENDING)
        print(json.dumps(out))
    ''')
    import numpy as np

    def f(x):
        return np.sum(np.cumsum(np.tanh(x)) ** 2 * np.sin(x))
    x = np.array([0.3, -0.7])
    assert out["after_grad"] == 0 and out["pending"] > 100
    assert 0 < out["after_hessian"] < 50
    assert np.allclose(out["g"], central(f, x), atol=1e-6)
    H = np.array([central(lambda y: central(f, y)[i], x) for i in range(2)])
    assert np.allclose(out["H"], H, atol=1e-4)
