"""Statements that carry no derivative pass through into the derivative code as they are:
output (print, logging, warnings, sys.stdout.write), plotting, `assert`/`raise`, `with`,
`try` around derivative-free code, attribute stores on objects that carry no derivative,
imports, `del`, read-only `global`. They run once, in their place in the forward sweep,
with primal values; where a derivative would have to flow through one of them, one
TranspileError names the line. Every derivative is checked against central finite
differences (over every element), and every effect is counted."""
import logging
import math
import sys
import warnings

import numpy as np
import pytest

import transpile
from finite_differences import central, central_wrt, check


# --- helpers of the programs ---------------------------------------------------------

class FakeAx:
    """Records what it is asked to plot (the values, copied)."""

    def __init__(self):
        self.calls = []

    def plot(self, *args, **kwargs):
        self.calls.append(([np.array(a, copy=True) for a in args], dict(kwargs)))


class FakePlt:
    def __init__(self):
        self.calls = []

    def plot(self, *args, **kwargs):
        self.calls.append([np.array(a, copy=True) for a in args])


plt = FakePlt()


class Stats:
    def __init__(self):
        self.loss = None
        self.count = 0


class Recorder:
    """A context manager writing its enters and exits to EVENTS."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        EVENTS.append(("enter", self.name))
        return self

    def __exit__(self, *exc):
        EVENTS.append(("exit", self.name))
        return False


EVENTS = []
SCALE = 1.5
logger = logging.getLogger("transpile.tests.passthrough")


def note(label):
    EVENTS.append(("note", label))


# --- programs ------------------------------------------------------------------------

def training_loss(w, X, y, steps, every, stats):
    """A regularised least-squares loss over a few steps, logged every `every` steps."""
    total = 0.0
    history = []
    for k in range(steps):
        pred = X @ w
        err = pred - y
        l = np.mean(err ** 2) + 0.01 * k * np.sum(w ** 2)
        if k % every == 0:
            print(f"step {k}: loss={l:.6f}")
            logger.info("step %d loss %s", k, l)
            print("step %d (%s)" % (k, l))
        history.append(l)
        stats.loss = float(l)
        stats.count += 1
        w = w * 0.9
        total = total + l
    return total


def affine_forward(x, w, b, mode):
    """CS231n-style layer with a nonlinearity chosen by name."""
    a = x @ w + b
    if mode == "relu":
        out = np.maximum(a, 0.0)
    elif mode == "tanh":
        out = np.tanh(a)
    else:
        raise ValueError('Invalid mode "%s"' % mode)
    assert out.shape == a.shape, "shape mismatch"
    return np.sum(out ** 2)


def log_loss(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(x)
        z = np.sum(y * y)
    return z * 0.5


def recorded(x):
    note("before")
    with Recorder("outer"), Recorder("inner") as r:
        note("body " + r.name)
        y = math.sin(x) * x
        if y > 0:
            y = y * 3.0
    note("after")
    return y * x


def with_in_loop(x, n):
    s = 0.0
    for i in range(n):
        with Recorder("step"):
            s = s + math.cos(x * i)
            print("i", i)
    return s


def segments(x, n, stats):
    y = x
    for i in range(n):
        with np.errstate(over="ignore"):
            y = np.sin(y) * 0.9 + 0.1 * x
        print("iteration", i)
        stats.count += 1
        if i % 3 == 0:
            stats.loss = float(y)
    return y


def plotting(x, w, ax=None):
    y = np.tanh(x * w)
    if ax is not None:
        ax.plot(x, y, label="fit")
    plt.plot(w, y)
    return np.sum(y)


def parse_options(x, items):
    try:
        import numpy.not_a_module          # noqa: F401  (an import fallback)
        fast = True
    except ImportError:
        fast = False
    total = 0.0
    for s in items:
        try:
            v = float(s)
        except ValueError:
            v = 0.0
        else:
            print("parsed", v)
        finally:
            note("item")
        total = total + v * x * x
    if fast:
        total = total * 2.0
    return total


def reset_in_try(x, text):
    v = x * 2.0
    y = v * x
    try:
        v = float(text)
    except ValueError:
        v = 0.5
    return v * x + y


def reset_on_one_path(x, text):
    v = x * 2.0
    try:
        v = float(text)
    except ValueError:
        print("keeping", v)
    return v * x


def reporting(x):
    """Logging, warnings and stdout on a value carrying a derivative."""
    y = x ** 3
    logging.getLogger("transpile.tests.passthrough").warning("y=%s", y)
    lg = logging.getLogger("transpile.tests.passthrough.local")
    lg.warning("y {}".format(y))
    warnings.warn("careful with " + str(y))
    sys.stdout.write(f"written {y:.3f}\n")
    return y * 2.0


CALLS = 0


def counted(x):
    global CALLS
    CALLS += 1
    return math.sin(x) * x


def make_counted():
    n = 0

    def f(x):
        nonlocal n
        n = n + 1
        return x * x

    def count():
        return n
    return f, count


def misc_statements(x):
    """A docstring, pass, global read, import, del of a name."""
    global SCALE
    import math as m                        # noqa: F401
    t = [1, 2, 3]
    del t[0]
    tmp = x * 2
    del tmp
    pass
    return x * SCALE * len(t)


def helper_prints(x):
    print("helper", x)
    return x * x


def calls_helper(x):
    y = helper_prints(x) + 1.0
    print("caller", y)
    return y * x


class Model:
    def __init__(self):
        self.calls = 0
        self.last = None

    def loss(self, w):
        self.calls += 1
        value = np.sum(np.sin(w) ** 2)
        self.last = float(value)
        return value

    def scaled_loss(self, w):
        self.log.plot(w)                     # a record on an attribute of self
        return np.sum(np.sin(w) ** 2) * self.scale


class ScaledModel(Model):
    def __init__(self):
        super().__init__()
        self.log = FakeAx()
        self.scale = 3.0


def break_inside_with(x):
    for i in range(5):
        with Recorder("w"):
            x = x * 1.1
            if i == 2:
                break
            print("after", i)
    return x


def return_inside_with(x):
    with Recorder("r"):
        if x > 0:
            return x * 2
        y = x * 3
    return y


def reads_a_file(x, path):
    with open(path) as fh:
        n = len(fh.read())
    return x * n


def make_closure():
    c = 2.0

    def scaled(x):
        nonlocal c
        if isinstance(x, float) and c > 1:
            return x * c
        return x
    return scaled


# --- derivatives and effects ---------------------------------------------------------

def data():
    rng = np.random.default_rng(3)
    return rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5)


def test_training_loss_logs_every_k_steps_once(capsys, caplog):
    w, X, y = data()
    stats = Stats()
    caplog.set_level(logging.INFO, logger="transpile.tests.passthrough")
    value, g = transpile.value_and_grad(training_loss)(w, X, y, 5, 2, stats)
    out = capsys.readouterr().out
    assert out.count("step 0: loss=") == 1 and out.count("step 2: loss=") == 1 \
        and out.count("step 4: loss=") == 1 and "step 1" not in out and "step 3" not in out
    assert out.count("step 4 (") == 1
    assert len([r for r in caplog.records if "step" in r.getMessage()]) == 3
    assert stats.count == 5                                   # once per step, not twice
    plain = Stats()
    assert value == training_loss(w, X, y, 5, 2, plain)
    assert stats.loss == plain.loss
    capsys.readouterr()
    check(g, central_wrt(lambda *a: training_loss(*a, Stats()), (w, X, y, 5, 2)))
    check(transpile.grad(training_loss, wrt=1)(w, X, y, 5, 2, Stats()),
          central_wrt(lambda *a: training_loss(*a, Stats()), (w, X, y, 5, 2), i=1))


@pytest.mark.parametrize("checkpoint", [None, "sqrt", 2])
def test_training_loss_checkpointed_prints_once(capsys, checkpoint):
    w, X, y = data()
    stats = Stats()
    g = transpile.grad(training_loss, checkpoint=checkpoint)(w, X, y, 6, 1, stats)
    out = capsys.readouterr().out
    for k in range(6):
        assert out.count(f"step {k}: loss=") == 1, out
    assert stats.count == 6
    check(g, central_wrt(lambda *a: training_loss(*a, Stats()), (w, X, y, 6, 1)))


def test_training_loss_vjp_and_jvp(capsys):
    w, X, y = data()
    stats = Stats()
    value, pullback = transpile.vjp(training_loss, w, X, y, 3, 1, stats)
    assert capsys.readouterr().out.count("loss=") == 3 and stats.count == 3
    g1 = pullback(1.0)
    assert capsys.readouterr().out == "" and stats.count == 3   # the pullback prints nothing
    fd = central_wrt(lambda *a: training_loss(*a, Stats()), (w, X, y, 3, 1))
    check(g1, fd)
    capsys.readouterr()
    v = np.array([0.3, -1.0, 0.5])
    value, tangent = transpile.jvp(training_loss, (w, X, y, 3, 1, Stats()),
                                   (v, None, None, None, None, None))
    assert capsys.readouterr().out.count("loss=") == 3
    check(tangent, fd @ v)


@pytest.mark.parametrize("mode", ["relu", "tanh"])
def test_layer_with_raise_in_else_branch(mode):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
    for i in range(3):
        g = transpile.grad(affine_forward, wrt=i)(x, w, b, mode)
        check(g, central_wrt(affine_forward, (x, w, b, mode), i=i))


def test_layer_raise_runs_in_the_derivative_code():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
    with pytest.raises(ValueError, match='Invalid mode "sigmoid"'):
        transpile.grad(affine_forward, wrt=1)(x, w, b, "sigmoid")
    with pytest.raises(ValueError, match='Invalid mode "sigmoid"'):
        transpile.jvp(affine_forward, (x, w, b, "sigmoid"), (None, w, None, None))
    source = transpile.grad(affine_forward, wrt=1).source
    assert "raise ValueError('Invalid mode \"%s\"' % mode)" in source


def test_with_errstate_around_log():
    x = np.array([0.5, 1.5, 2.0, 3.0])
    g = transpile.grad(log_loss)(x)
    check(g, central(log_loss, x))
    src = transpile.grad(log_loss).source
    assert "with np.errstate(divide='ignore', invalid='ignore'):" in src
    assert "__enter__" not in src and "__exit__" not in src
    body = src.split("with np.errstate")[1].split("\n")
    assert body[1].startswith("        y = np.log(x)")          # primal inside the with
    check(transpile.jvp(log_loss, (x,), (np.ones(4),))[1], central(log_loss, x).sum())
    H = transpile.hessian(log_loss)(x)
    for i in range(4):
        e = np.zeros(4)
        e[i] = 1.0
        check(H[:, i], central(lambda t: transpile.grad(log_loss)(t) @ e, x), atol=1e-5)


def test_with_statements_enter_once_around_the_primal_statements():
    x = 0.8
    EVENTS.clear()
    g = transpile.grad(recorded)(x)
    assert EVENTS == [("note", "before"), ("enter", "outer"), ("enter", "inner"),
                      ("note", "body inner"), ("exit", "inner"), ("exit", "outer"),
                      ("note", "after")]
    check(g, central(recorded, x))
    src = transpile.grad(recorded).source
    assert "with Recorder('outer'), Recorder('inner') as r:" in src
    for route in (lambda: transpile.jvp(recorded, (x,), (1.0,)),
                  lambda: transpile.hvp(recorded)(x, v=1.0),
                  lambda: transpile.grad(transpile.grad(recorded))(x)):
        EVENTS.clear()
        route()
        assert [e for e in EVENTS if e[0] == "enter"] == [("enter", "outer"),
                                                           ("enter", "inner")]
    d2 = transpile.grad(transpile.grad(recorded))(x)
    check(d2, central(transpile.grad(recorded), x), atol=1e-5)


def test_with_inside_a_loop(capsys):
    EVENTS.clear()
    g = transpile.grad(with_in_loop)(0.4, 4)
    assert EVENTS == [("enter", "step"), ("exit", "step")] * 4
    assert capsys.readouterr().out == "".join(f"i {i}\n" for i in range(4))
    check(g, central(lambda t: with_in_loop(t, 4), 0.4))
    capsys.readouterr()
    g = transpile.grad(with_in_loop, checkpoint="sqrt")(0.4, 9)
    assert capsys.readouterr().out == "".join(f"i {i}\n" for i in range(9))
    check(g, central(lambda t: with_in_loop(t, 9), 0.4))


@pytest.mark.parametrize("checkpoint", ["sqrt", 1, 3])
def test_checkpointed_loop_runs_effects_once(capsys, checkpoint):
    """The adjoint sweep re-runs each segment of a checkpointed loop: without its prints
    and attribute stores (the first run had them); its `with` statements stay."""
    stats = Stats()
    g = transpile.grad(segments, checkpoint=checkpoint)
    value = g(0.3, 10, stats)
    assert capsys.readouterr().out == "".join(f"iteration {i}\n" for i in range(10))
    assert stats.count == 10
    plain = Stats()
    segments(0.3, 10, plain)
    assert stats.loss == plain.loss
    assert "_checkpoints" in g.source or "Checkpoints" in g.source
    assert g.source.count("print('iteration', i)") == 1
    check(value, central(lambda t: segments(t, 10, Stats()), 0.3))
    capsys.readouterr()


def test_jumps_out_of_with(capsys):
    EVENTS.clear()
    check(transpile.grad(break_inside_with)(0.5), central(break_inside_with, 0.5))
    assert EVENTS[:6] == [("enter", "w"), ("exit", "w")] * 3
    assert capsys.readouterr().out.startswith("after 0\nafter 1\n")
    for x in (0.5, -0.5):
        EVENTS.clear()
        g = transpile.grad(return_inside_with)(x)
        assert EVENTS == [("enter", "r"), ("exit", "r")]
        check(g, central(return_inside_with, x))


def test_with_open_isinstance_nonlocal(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("abcd")
    check(transpile.grad(reads_a_file)(0.5, str(path)), 4.0)
    scaled = make_closure()
    check(transpile.grad(scaled)(0.5), central(scaled, 0.5))


def test_plotting_in_a_branch_gets_primal_values():
    x = np.linspace(-1.0, 1.0, 5)
    ax = FakeAx()
    plt.calls.clear()
    g = transpile.grad(plotting, wrt=(0, 1))(x, 0.7, ax)
    assert len(ax.calls) == 1 and len(plt.calls) == 1
    (px, py), kwargs = ax.calls[0]
    assert kwargs == {"label": "fit"}
    np.testing.assert_array_equal(px, x)
    np.testing.assert_array_equal(py, np.tanh(x * 0.7))
    check(g[0], central_wrt(plotting, (x, 0.7, None), i=0))
    check(g[1], central_wrt(plotting, (x, 0.7, None), i=1))
    assert transpile.grad(plotting)(x, 0.7) is not None        # ax=None: no call
    assert len(ax.calls) == 1
    value, tangent = transpile.jvp(plotting, (x, 0.7, ax), (None, 1.0, None))
    assert len(ax.calls) == 2
    check(tangent, central_wrt(plotting, (x, 0.7, None), i=1))


def test_try_except_import_fallback_and_parsing(capsys):
    items = ["1", "x", "2.5"]
    EVENTS.clear()
    g = transpile.grad(parse_options)(0.5, items)
    assert capsys.readouterr().out == "parsed 1.0\nparsed 2.5\n"
    assert EVENTS == [("note", "item")] * 3
    check(g, central(lambda t: parse_options(t, items), 0.5))
    check(transpile.jvp(parse_options, (0.5, items), (1.0, None))[1],
          central(lambda t: parse_options(t, items), 0.5))
    capsys.readouterr()
    g = transpile.grad(parse_options, checkpoint="sqrt")(0.5, items * 3)
    assert capsys.readouterr().out.count("parsed") == 6
    check(g, central(lambda t: parse_options(t, items * 3), 0.5))
    src = transpile.grad(parse_options).source
    assert "except ImportError:" in src and "finally:" in src


@pytest.mark.parametrize("text", ["3.0", "nope"])
def test_try_resets_a_variable_carrying_a_derivative(text):
    f = reset_in_try
    check(transpile.grad(f)(0.7, text), central(lambda t: f(t, text), 0.7))
    check(transpile.jvp(f, (0.7, text), (1.0, None))[1], central(lambda t: f(t, text), 0.7))
    check(transpile.grad(transpile.grad(f))(0.7, text),
          central(lambda t: transpile.grad(f)(t, text), 0.7), atol=1e-5)
    with pytest.raises(transpile.TranspileError, match="'try' around this") as info:
        transpile.grad(reset_on_one_path)(0.7, text)
    assert f"test_passthrough.py:{line_of(reset_on_one_path, 'v = float')}:" in \
        str(info.value)


def test_second_order_through_try_in_a_loop(capsys):
    items = ["1", "x", "2.5"]
    h = transpile.hessian(parse_options)(0.5, items)
    check(h, central(lambda t: transpile.grad(parse_options)(t, items), 0.5), atol=1e-5)
    d2 = transpile.grad(transpile.grad(parse_options))(0.5, items)
    check(d2, h)
    capsys.readouterr()


@pytest.mark.filterwarnings("ignore:careful with")      # those of the reference values
def test_logging_warnings_and_stdout(capsys, caplog):
    with pytest.warns(UserWarning, match="careful with") as record:
        g = transpile.grad(reporting)(1.5)
    # once (other warnings, such as Python 3.13's DeprecationWarnings of ast, not counted)
    assert len([w for w in record if "careful with" in str(w.message)]) == 1
    assert capsys.readouterr().out == "written 3.375\n"
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("y=3.375") == 1 and messages.count("y 3.375") == 1
    check(g, central(reporting, 1.5))
    with pytest.warns(UserWarning):
        h = transpile.hessian(reporting)(1.5)
    check(h, central(transpile.grad(reporting), 1.5), atol=1e-5)


def test_docstring_pass_global_import_del():
    check(transpile.grad(misc_statements)(0.3), central(misc_statements, 0.3))
    src = transpile.grad(misc_statements).source
    assert "import math as m" in src and "del t[0]" in src


def test_global_and_nonlocal_counters_count_each_call_once():
    global CALLS
    CALLS = 0
    routes = [lambda: transpile.grad(counted)(0.5),
              lambda: transpile.value_and_grad(counted)(0.5),
              lambda: transpile.vjp(counted, 0.5)[1](1.0),
              lambda: transpile.jvp(counted, (0.5,), (1.0,)),
              lambda: transpile.hvp(counted)(0.5, v=1.0),
              lambda: transpile.grad(transpile.grad(counted))(0.5)]
    for k, route in enumerate(routes, 1):
        route()
        assert CALLS == k
    CALLS = 0
    check(transpile.grad(counted)(0.5), central(counted, 0.5))
    assert "global CALLS" in transpile.grad(counted).source
    f, count = make_counted()
    check(transpile.grad(f)(3.0), 6.0)
    assert count() == 1


def test_prints_in_a_called_function_once_per_call(capsys):
    x = 1.3
    routes = {
        "grad": lambda: transpile.grad(calls_helper)(x),
        "vjp": lambda: transpile.vjp(calls_helper, x)[1](1.0),
        "jvp": lambda: transpile.jvp(calls_helper, (x,), (1.0,))[1],
        "hvp": lambda: transpile.hvp(calls_helper)(x, v=1.0),
        "hvp reverse-over-forward": lambda: transpile.hvp(
            calls_helper, mode="reverse-over-forward")(x, v=1.0),
        "grad of grad": lambda: transpile.grad(transpile.grad(calls_helper))(x),
    }
    fd1 = central(calls_helper, x)
    fd2 = central(transpile.grad(calls_helper), x)
    capsys.readouterr()
    for name, route in routes.items():
        value = route()
        out = capsys.readouterr().out
        assert out.count("helper 1.3") == 1 and out.count("caller") == 1, (name, out)
        check(value, fd2 if name.startswith(("hvp", "grad of")) else fd1, atol=1e-5)


def test_attribute_stores_on_an_object_without_derivative():
    w = np.array([0.2, -0.4, 1.1])
    model = Model()
    g = transpile.grad(Model.loss, wrt=1)(model, w)
    assert model.calls == 1 and model.last == float(np.sum(np.sin(w) ** 2))
    check(g, central(lambda v: Model().loss(v), w))
    scaled = ScaledModel()
    g = transpile.grad(Model.scaled_loss, wrt=1)(scaled, w)
    assert len(scaled.log.calls) == 1
    np.testing.assert_array_equal(scaled.log.calls[0][0][0], w)
    check(g, central(lambda v: ScaledModel().scaled_loss(v), w))
    H = transpile.hessian(Model.loss, wrt=1)(model, w)
    assert model.calls == 1 + 3                       # one Hessian-vector product a column
    check(H, np.diag(2 * np.cos(2 * w)), atol=1e-9)
    check(H[0], central(lambda v: transpile.grad(Model.loss, wrt=1)(Model(), v)[0], w),
          atol=1e-5)


def test_generated_code_reads_like_the_source():
    src = transpile.grad(training_loss).source
    assert "print(f'step {k}: loss={l:.6f}')" in src
    assert "logger.info('step %d loss %s', k, l)" in src
    assert "stats.loss = " in src and "setattr" not in src
    assert "stats.count = " in src            # an attribute store the transforms follow
    src = transpile.grad(plotting).source
    assert "ax.plot(x, y, label='fit')" in src and "plt.plot(w, y)" in src


@pytest.mark.parametrize("fn, args", [(calls_helper, (1.3,)), (log_loss, (np.ones(3),)),
                                      (parse_options, (0.5, ["1", "x"]))])
def test_jit_is_right_or_refused_at_the_line(capsys, fn, args):
    pytest.importorskip("numba")
    try:
        g = transpile.grad(fn, jit=True)(*args)
    except transpile.TranspileError as exc:
        assert "test_passthrough.py:" in str(exc) and "numba" in str(exc)
        return
    check(g, central(lambda t: fn(t, *args[1:]), args[0]))


def test_cli_prints_the_passthrough_statements(tmp_path):
    import subprocess
    path = tmp_path / "model.py"
    path.write_text(
        "import numpy as np\n\n"
        "def loss(w):\n"
        "    with np.errstate(divide='ignore'):\n"
        "        y = np.log(w)\n"
        "    print('loss', y)\n"
        "    try:\n"
        "        import json\n"
        "    except ImportError:\n"
        "        json = None\n"
        "    return np.sum(y * y)\n")
    proc = subprocess.run([sys.executable, "-m", "transpile", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "with np.errstate(divide='ignore'):" in proc.stdout
    assert "print('loss', y)" in proc.stdout and "except ImportError:" in proc.stdout


# --- refusals: a derivative would flow through the construct -------------------------

def try_around_active(x):
    try:
        y = x * 2.0
    except ValueError:
        y = x
    return y


def with_as_active(x):
    with Recorder("r") as r:
        r = x * 2.0
    return r


def stored_and_read_back(x, stats):
    stats.loss = x * x
    return stats.loss * x


def handed_and_read(x, ax):
    ax.plot(x)
    n = ax.calls
    return x * 2.0 + len(n)


def stored_in_returned(x):
    s = Stats()
    s.loss = x * 2.0
    return s


def global_carries_a_derivative(x):
    global CALLS
    CALLS = x * 2
    return x


def global_read_by_the_derivative(x):
    global CALLS
    CALLS += 1
    return x * CALLS


def global_in_a_loop(x):
    global CALLS
    for i in range(3):
        CALLS += 1
    return x * 2.0


def deletes_an_active_element(xs):
    ys = [xs[0] * 2.0, xs[1]]
    del ys[0]
    return ys[0] * xs[0]


def local_import_call(x):
    import math as m
    return m.sin(x)


def line_of(fn, text):
    import inspect
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, l in enumerate(lines) if text in l)


@pytest.mark.parametrize("fn, args, wrt, text, message", [
    (try_around_active, (1.0,), 0, "y = x * 2.0", "unsupported construct 'try' around this"),
    (with_as_active, (1.0,), 0, "with Recorder", "'with ... as' target 'r'"),
    (handed_and_read, (1.0, FakeAx()), 0, "n = ax.calls", "handed to 'ax'"),
    (stored_in_returned, (1.0,), 0, "s.loss = ", "stored in the returned object"),
    (global_carries_a_derivative, (1.0,), 0, "CALLS = x * 2", "carrying a derivative"),
    (global_read_by_the_derivative, (1.0,), 0, "return x * CALLS", "which the function "
     "assigns, is read"),
    (global_in_a_loop, (1.0,), 0, "CALLS += 1", "inside a loop"),
    (deletes_an_active_element, ([1.0, 2.0],), 0, "del ys[0]", "'ys[0]' changes or reads"),
    (local_import_call, (1.0,), 0, "m.sin", "imported inside the function"),
])
def test_refused_at_the_line(fn, args, wrt, text, message):
    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(fn, wrt=wrt)(*args)
    assert f"test_passthrough.py:{line_of(fn, text)}:" in str(info.value)
    assert message in str(info.value)


def test_refused_in_forward_mode_too():
    with pytest.raises(transpile.TranspileError, match="'try' around this"):
        transpile.jvp(try_around_active, (1.0,), (1.0,))


def test_primal_effects_of_refused_functions_do_not_happen():
    ax = FakeAx()
    with pytest.raises(transpile.TranspileError):
        transpile.grad(handed_and_read)(1.0, ax)
    assert ax.calls == []


def test_value_stored_in_an_attribute_and_read_back_carries_its_derivative():
    stats = Stats()
    g = transpile.grad(stored_and_read_back)(1.3, stats)
    check(g, central(lambda t: stored_and_read_back(t, Stats()), 1.3))
    assert stats.loss == 1.3 * 1.3
