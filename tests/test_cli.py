"""`transpile-ad` as a user runs it: a subprocess on sample files, output imported back."""
import ast
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import transpile

SAMPLES = os.path.join(os.path.dirname(__file__), "cli_samples")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, cwd=None, module="transpile.cli"):
    env = dict(os.environ, PYTHONPATH=ROOT)          # this tree's transpile, not another
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_never_runs_the_file_and_output_gives_api_numbers(tmp_path):
    out = tmp_path / "grads.py"
    proc = run_cli(os.path.join(SAMPLES, "scalar_model.py"), "--function", "loss",
                   "--function", "piecewise", "--wrt", "x", "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "MARKER_SHOULD_NOT_EXIST").exists()
    text = out.read_text()
    assert "# derivative of loss (" in text and "scalar_model.py:" in text
    generated = load(out, "grads_scalar")
    # the user's functions are carried into the output verbatim: compare with the API
    for name, args in (("loss", (0.3, 0.7)), ("piecewise", (1.5,)), ("piecewise", (-2.0,))):
        fn = getattr(generated, name)
        value, grad = getattr(generated, f"grad_{name}")(*args)
        api_value, api_grad = transpile.value_and_grad(fn)(*args)
        assert value == pytest.approx(api_value, rel=1e-14)
        assert grad == pytest.approx(api_grad, rel=1e-12)
        h = 1e-6
        hi, lo = list(args), list(args)
        hi[0] += h
        lo[0] -= h
        assert grad == pytest.approx((fn(*hi) - fn(*lo)) / (2 * h), rel=1e-6)
    assert not (tmp_path / "MARKER_SHOULD_NOT_EXIST").exists()


def test_cli_numpy_file(tmp_path):
    out = tmp_path / "np_grads.py"
    proc = run_cli(os.path.join(SAMPLES, "array_model.py"), "--wrt", "w", "-f", "mse",
                   "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    generated = load(out, "grads_array")
    rng = np.random.default_rng(0)
    w, X, y = rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5)
    value, g = generated.grad_mse(w, X, y)
    np.testing.assert_allclose(g, transpile.grad(generated.mse)(w, X, y), rtol=1e-12)
    proc = run_cli(os.path.join(SAMPLES, "array_model.py"), "-f", "rnn", "--wrt", "W",
                   "-o", str(tmp_path / "rnn_grads.py"))
    assert proc.returncode == 0, proc.stderr
    rnn = load(tmp_path / "rnn_grads.py", "grads_rnn")
    x, W = rng.normal(size=(4, 2)), rng.normal(size=(2, 3)) * 0.5
    np.testing.assert_allclose(rnn.grad_rnn(x, W)[1], transpile.grad(rnn.rnn, wrt=1)(x, W),
                               rtol=1e-12)


def test_cli_reports_bad_function_and_prints_the_others():
    sample = os.path.join(SAMPLES, "scalar_model.py")
    proc = run_cli(sample)
    assert proc.returncode == 1
    with open(sample) as fh:
        bad_line = next(i for i, l in enumerate(fh, 1) if "# BAD" in l)
    assert f"scalar_model.py:{bad_line}: in broken: unsupported construct 'try'" in proc.stderr
    assert "def grad_loss(" in proc.stdout and "def grad_piecewise(" in proc.stdout


def test_cli_usage_errors():
    assert run_cli("/no/such/file.py").returncode == 2
    proc = run_cli(os.path.join(SAMPLES, "array_model.py"), "--function", "nope")
    assert proc.returncode == 2 and "nope" in proc.stderr
    proc = run_cli(os.path.join(SAMPLES, "array_model.py"), "--wrt", "zz")
    assert proc.returncode == 1 and "no parameter named 'zz'" in proc.stderr
    proc = run_cli("--help")
    assert proc.returncode == 0 and "never executed" in proc.stdout.replace("\n", " ") \
        or "not executed" in proc.stdout


def test_optimisation_can_be_switched_off(tmp_path):
    sample = os.path.join(SAMPLES, "scalar_model.py")
    for flag in ("--no-optimize", "--no-simplify"):
        out = tmp_path / f"g{flag.strip('-').replace('-', '_')}.py"
        proc = run_cli(sample, "-f", "loss", "-f", "piecewise", flag, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        generated = load(out, out.stem)
        assert generated.grad_loss(0.3, 0.7)[1] == pytest.approx(
            transpile.grad(generated.loss)(0.3, 0.7), rel=1e-12)
    plain = run_cli(sample, "-f", "loss", "--no-optimize").stdout
    optimized = run_cli(sample, "-f", "loss").stdout
    assert len(plain) > len(optimized)


def test_cli_forward_mode(tmp_path):
    out = tmp_path / "tangents.py"
    proc = run_cli(os.path.join(SAMPLES, "scalar_model.py"), "-f", "loss", "--mode",
                   "forward", "--wrt", "w", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    generated = load(out, "tangents_scalar")
    value, tangent = generated.loss_jvp(0.3, 0.7, tw=1.0)
    assert value == pytest.approx(generated.loss(0.3, 0.7), rel=1e-14)
    assert tangent == pytest.approx(transpile.grad(generated.loss, wrt=1)(0.3, 0.7),
                                    rel=1e-12)
    assert "_push" not in out.read_text()
    help_text = run_cli("--help").stdout
    for option in ("--function", "--wrt", "--mode", "--no-optimize", "--no-simplify", "-o"):
        assert option in help_text


def test_cli_forward_mode_through_a_forward_rule(tmp_path):
    """np.max has a forward rule (defjvp): the printed module names it through lookup."""
    src = tmp_path / "peak.py"
    src.write_text("import numpy as np\n\n\ndef peak(x):\n"
                   "    return np.sum(np.max(x * x, axis=0))\n")
    out = tmp_path / "peak_jvp.py"
    proc = run_cli(str(src), "--mode", "forward", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert ".jvp" in out.read_text()
    generated = load(out, "peak_jvp")
    x, v = np.array([[1.0, 2.0], [3.0, -4.0]]), np.array([[0.5, 1.0], [1.0, 1.0]])
    _, tangent = generated.peak_jvp(x, tx=v)
    g = transpile.grad(generated.peak)(x)
    assert tangent == pytest.approx(float(np.sum(g * v)), rel=1e-12)


EXAMPLES = os.path.join(ROOT, "examples")


def _example(name):
    sys.path.insert(0, EXAMPLES)
    try:
        return load(os.path.join(EXAMPLES, name + ".py"), "example_" + name)
    finally:
        sys.path.remove(EXAMPLES)


def _printed(tmp_path, *args):
    out = tmp_path / "printed.py"
    proc = run_cli(*args, "-o", str(out), cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr
    text = out.read_text()
    # one import block at the top, no `__import__` plumbing, helpers imported by name
    tree = ast.parse(text)
    kinds = [isinstance(node, (ast.Import, ast.ImportFrom)) for node in tree.body]
    assert True in kinds and kinds.index(False) == kinds.count(True), text[:2000]
    assert "__import__(" not in text, text
    # rule functions are imported by name; looked up in the registry only when they have
    # none (a vjp made by a factory, as for np.max)
    for line in text.splitlines():
        if ".vjps[" in line:
            assert line.startswith("max_vjp0 = _transpile_lookup(np.max, None)"), line
    return text, load(out, "printed_%d" % len(os.listdir(tmp_path)))


def test_cli_example_functions_print_a_module_with_the_api_numbers(tmp_path):
    text, printed = _printed(tmp_path, os.path.join("examples", "functions.py"))
    ex = _example("functions")
    rng = np.random.default_rng(0)
    w, X, y = rng.normal(size=3), rng.normal(size=(6, 3)), (rng.random(6) > 0.5) * 1.0
    value, g = printed.grad_softplus_loss(w, X, y)
    assert np.allclose(g, transpile.grad(ex.softplus_loss)(w, X, y), rtol=1e-12)
    assert np.isclose(value, ex.softplus_loss(w, X, y))
    assert np.isclose(printed.grad_f(0.3)[1], transpile.grad(ex.f)(0.3))
    assert np.isclose(printed.grad_recurrence(0.7, 0.2)[1],
                      transpile.grad(ex.recurrence)(0.7, 0.2))


@pytest.mark.parametrize("specialised", [False, True])
def test_cli_digits_model_prints_a_module_with_the_api_numbers(tmp_path, specialised):
    ndims = ["--ndim", "W1=2", "--ndim", "b1=1", "--ndim", "W2=2", "--ndim", "b2=1",
             "--ndim", "X=2", "--ndim", "z=2"] if specialised else []
    args = [os.path.join("examples", "digits_model.py"), "-f", "logits", "-f",
            "log_softmax", "-f", "loss", "--wrt", "W1", "--wrt", "b1"] + ndims
    text, printed = _printed(tmp_path, *args)
    ex = _example("digits_model")
    rng = np.random.default_rng(1)
    W1, b1 = rng.normal(size=(5, 4)), rng.normal(size=4)
    W2, b2 = rng.normal(size=(4, 3)), rng.normal(size=3)
    X, labels = rng.normal(size=(6, 5)), np.array([0, 1, 2, 0, 1, 2])
    value, (gW1, gb1) = printed.grad_loss(W1, b1, W2, b2, X, labels)
    eW1, eb1 = transpile.grad(ex.loss, wrt=("W1", "b1"))(W1, b1, W2, b2, X, labels)
    assert np.isclose(value, ex.loss(W1, b1, W2, b2, X, labels))
    assert np.allclose(gW1, eW1, rtol=1e-12) and np.allclose(gb1, eb1, rtol=1e-12)
    if specialised:
        assert "dh = d_result @ W2.T" in text and "dW1 = X.T @ d_t2" in text, text
        assert "matmul_vjp" not in text.split("def logits_backward")[1].split("def ")[0]
