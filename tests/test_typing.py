"""The public API is typed: mypy (configured in pyproject.toml) passes on the public
modules, code using the API as documented type-checks, and code misusing it (a float
`wrt`, an unknown mode or checkpoint, `.source` taken for a number) is flagged by mypy.
Every public function annotates all its parameters and its result."""
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap

import pytest

import transpile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLIC_MODULES = ["transpile/__init__.py", "transpile/api.py", "transpile/higher.py",
                  "transpile/hooks.py", "transpile/check.py", "transpile/errors.py"]

# code a user writes; a line ending in "# error" must be reported by mypy, no other line
USER_CODE = '''
import math

import numpy as np

import transpile


def f(x: float, w: float) -> float:
    return math.sin(x) * w


@transpile.differentiate(wrt=("x", "w"), checkpoint="sqrt")
def g(x, w):
    return x * w


d: transpile.Differentiable = transpile.differentiate(f, wrt=0)
decorated: transpile.Differentiable = g
gradient = transpile.grad(f, wrt=(0, "w"), checkpoint=10)
text: str = gradient.source
vg: transpile.GradientFunction = transpile.value_and_grad(f, wrt=["x", 1])
value, pullback = transpile.vjp(f, 0.3, 0.7, wrt=1)
cotangent_result = pullback(1.0)
primal, tangent = transpile.jvp(f, (0.3, 0.7), (1.0, None))
pair = d.value_and_grad(0.3, 0.7)
h: transpile.Derivative = transpile.hessian(f, wrt=(0, 1))
hv = transpile.hvp(f, mode="reverse-over-forward")(0.3, 0.7, v=1.0)
both: str = transpile.hvp(f).source + transpile.grad(transpile.grad(f)).source
jac = transpile.jacobian(f, mode="forward")(0.3, 0.7)
transpile.check_grads(f, 0.3, 0.7, modes=("rev",), order=1, rtol=1e-4)
clipped: np.ndarray = transpile.grad_hook(np.ones(3), lambda adjoint: np.clip(adjoint, -1, 1))
held: float = transpile.stop_gradient(2.0)
rule = transpile.defvjp(math.tanh, "1 - math.tanh(x) ** 2")
transpile.defjvp(math.tanh, lambda tangents, x: tangents[0] * (1 - math.tanh(x) ** 2))
names: list = transpile.rules.supported()
err = transpile.TranspileError("unsupported construct 'try'", "model.py", 12, "loss")
where: int | None = err.lineno

transpile.grad(f, wrt=1.5)  # error
transpile.grad(f, checkpoint="every")  # error
transpile.value_and_grad(f, jit="yes")  # error
transpile.hvp(f, mode="backwards")  # error
transpile.jacobian(f, mode="sideways")  # error
transpile.differentiate(f, mode="both")  # error
number: float = transpile.grad(f).source  # error
transpile.jvp(f, 0.3, 1.0)  # error
transpile.check_grads(f, 0.3, eps="small")  # error
transpile.TranspileError(12)  # error
'''


def test_public_api_is_fully_annotated():
    """Every parameter and every result of the public functions and methods has a type."""
    missing = []

    def check(name, fn):
        fn = inspect.unwrap(fn)
        sig = inspect.signature(fn)
        for p in sig.parameters.values():
            if p.name != "self" and p.annotation is inspect.Parameter.empty:
                missing.append(f"{name}({p.name})")
        if sig.return_annotation is inspect.Signature.empty:
            missing.append(f"{name} -> ?")

    for name in transpile.__all__:
        obj = getattr(transpile, name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr == "__init__" or not attr.startswith("_"):
                    if inspect.isfunction(member) and \
                            member.__qualname__.startswith(obj.__qualname__ + "."):
                        check(f"{name}.{attr}", member)
                    elif isinstance(member, property):
                        check(f"{name}.{attr}", member.fget)
        elif callable(obj) and not inspect.ismodule(obj):
            check(name, obj)
    for name in ("defvjp", "defjvp", "supported", "lookup"):
        check(f"rules.{name}", getattr(transpile.rules, name))
    assert not missing, missing


def _mypy(args, cwd):
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it is in the [test] extra: "
                    "pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_mypy_passes_on_the_public_modules_and_flags_misuse(tmp_path):
    """One mypy run (pyproject.toml's configuration): the public modules are clean, the
    user code type-checks except on its lines marked `# error`, each of which is
    flagged."""
    user = tmp_path / "user_code.py"
    user.write_text(textwrap.dedent(USER_CODE), encoding="utf-8")
    result = _mypy(["--config-file", os.path.join(ROOT, "pyproject.toml"),
                    "--cache-dir", str(tmp_path / "cache"), "--no-pretty",
                    "--show-error-codes", *PUBLIC_MODULES, str(user)], ROOT)
    output = result.stdout + result.stderr
    errors = {}
    for line in output.splitlines():
        m = re.match(r"(.+?):(\d+): error: (.*)", line)
        if m:
            errors.setdefault((os.path.basename(m.group(1)), int(m.group(2))),
                              []).append(m.group(3))
    assert not [e for e in errors if e[0] != "user_code.py"], output
    lines = user.read_text(encoding="utf-8").splitlines()
    marked = {k for k, text in enumerate(lines, 1) if text.endswith("# error")}
    flagged = {k for name, k in errors}
    assert flagged - marked == set(), "\n".join(
        f"unexpected: {lines[k - 1]}: {errors[('user_code.py', k)]}"
        for k in sorted(flagged - marked))
    assert marked - flagged == set(), "\n".join(
        f"not flagged: {lines[k - 1]}" for k in sorted(marked - flagged))
    assert len(marked) == 10
