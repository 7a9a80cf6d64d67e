"""Hypothesis-generated programs: transpile's gradient vs the sympy oracle.

A strategy writes the SOURCE TEXT of ``def f(x, y):`` made of straight-line
arithmetic, math calls on safe domains, if/else on comparisons, for loops
(range with start/stop/step, lists), bounded while loops, break/continue,
augmented assignments and variables overwritten in loops.  Values stay
bounded: inside loops every update is squashed (tanh/sin/cos, or a factor of
magnitude <= 1), and a program whose plain value is not finite / huge at the
drawn point is rejected.  Each program is written to its own file and
imported (transpile reads the source with ``inspect.getsource``).

The oracle follows the concrete branches of the real execution, so no point
needs to be excluded near branch boundaries.
"""
import importlib.util
import os
import itertools
import math

import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

import transpile
from oracle import assert_close, sympy_value_and_grad

VARS = ("x", "y", "a", "b", "c")
CONSTS = ("0.5", "1.5", "-0.7", "2.0", "0.25", "3", "-1")

_counter = itertools.count()


# --------------------------------------------------------------------------
# program text
# --------------------------------------------------------------------------

@st.composite
def expressions(draw, names, depth=3):
    """A bounded-ish expression over ``names`` (text)."""
    if depth <= 0 or draw(st.integers(0, 9)) < 3:
        if draw(st.integers(0, 5)) == 0:
            return draw(st.sampled_from(CONSTS))
        return draw(st.sampled_from(names))
    e = lambda: draw(expressions(names, depth - 1))  # noqa: E731
    kind = draw(st.integers(0, 15))
    if kind == 0:
        return "(%s + %s)" % (e(), e())
    if kind == 1:
        return "(%s - %s)" % (e(), e())
    if kind in (2, 3):
        return "(%s * %s)" % (e(), e())
    if kind == 4:
        return "(%s / (1 + %s ** 2))" % (e(), e())
    if kind == 5:
        return "math.sin(%s)" % e()
    if kind == 6:
        return "math.cos(%s)" % e()
    if kind == 7:
        return "math.tanh(%s)" % e()
    if kind == 8:
        return "math.exp(math.tanh(%s))" % e()
    if kind == 9:
        return "math.log(1 + %s ** 2)" % e()
    if kind == 10:
        return "math.sqrt(1 + %s * %s)" % ((lambda t: (t, t))(e()))
    if kind == 11:
        return "(%s * %s)" % ((lambda t: (t, t))(draw(st.sampled_from(names))))
    if kind == 12:
        return "-%s" % e()
    if kind == 13:
        return "%s(%s, %s)" % (draw(st.sampled_from(["max", "min"])), e(), e())
    if kind == 14:
        return "math.atan(%s)" % e()
    return "(%s * %s)" % (draw(st.sampled_from(CONSTS)), e())


class _Gen:
    def __init__(self, draw):
        self.draw = draw
        self.loop_vars = []
        self.loop_kinds = []      # "for" / "while": no `continue` in a while
        self.counter = 0

    def d(self, strategy):
        return self.draw(strategy)

    def names(self):
        return list(VARS)

    def expr(self, depth=3):
        names = self.names()
        e = self.d(expressions(tuple(names), depth))
        if self.loop_vars and self.d(st.integers(0, 3)) == 0:
            e = "(%s + %s * %s)" % (e, self.d(st.sampled_from(self.loop_vars)),
                                    self.d(st.sampled_from(["0.25", "0.1", "-0.3"])))
        return e

    def target(self):
        return self.d(st.sampled_from(("a", "b", "c")))

    def assign(self, ind, in_loop):
        v = self.target()
        e = self.expr()
        if in_loop:
            form = self.d(st.integers(0, 4))
            if form == 0:
                return ["%s%s = math.tanh(%s)" % (ind, v, e)]
            if form == 1:
                return ["%s%s = %s * 0.5 + math.sin(%s)" % (ind, v, v, e)]
            if form == 2:
                return ["%s%s += math.tanh(%s)" % (ind, v, e)]
            if form == 3:
                op = self.d(st.sampled_from(["*=", "-="]))
                return ["%s%s %s math.cos(%s)" % (ind, v, op, e)]
            return ["%s%s /= (1 + %s ** 2)" % (ind, v, e)]
        form = self.d(st.integers(0, 4))
        if form == 0:
            return ["%s%s = %s" % (ind, v, self.expr(2))]
        if form == 1:
            return ["%s%s = math.tanh(%s)" % (ind, v, e)]
        if form == 2:
            op = self.d(st.sampled_from(["+=", "-=", "*="]))
            return ["%s%s %s math.sin(%s)" % (ind, v, op, e)]
        if form == 3:
            w = self.target()
            return ["%s%s, %s = %s, %s" % (ind, v, w, w, self.expr(2))]
        return ["%s%s = %s" % (ind, v, e)]

    def cond(self):
        op = self.d(st.sampled_from(["<", ">", "<=", ">="]))
        if self.d(st.booleans()):
            return "%s %s %s" % (self.expr(2), op, self.expr(2))
        return "%s %s %s" % (self.d(st.sampled_from(VARS)), op,
                             self.d(st.sampled_from(["0.0", "0.5", "-0.3", "1.0"])))

    def block(self, ind, in_loop, depth, n_max=3):
        out = []
        for _ in range(self.d(st.integers(1, n_max))):
            out += self.stmt(ind, in_loop, depth)
        return out

    def stmt(self, ind, in_loop, depth):
        kinds = ["assign", "assign", "assign"]
        if depth < 2:
            kinds += ["if", "for", "for_list", "while"]
        if in_loop:
            kinds += ["break"]
        kind = self.d(st.sampled_from(kinds))
        if kind == "assign":
            return self.assign(ind, in_loop)
        if kind == "if":
            lines = ["%sif %s:" % (ind, self.cond())]
            lines += self.block(ind + "    ", in_loop, depth + 1)
            if self.d(st.booleans()):
                if self.d(st.booleans()):
                    lines.append("%selif %s:" % (ind, self.cond()))
                    lines += self.block(ind + "    ", in_loop, depth + 1)
                lines.append("%selse:" % ind)
                lines += self.block(ind + "    ", in_loop, depth + 1)
            return lines
        if kind == "break":
            words = ["break"] if self.loop_kinds[-1] == "while" else ["break", "continue"]
            word = self.d(st.sampled_from(words))
            return ["%sif %s:" % (ind, self.cond()), "%s    %s" % (ind, word)]
        if kind == "for":
            var = "i%d" % len(self.loop_vars)
            rng = self.d(st.sampled_from([
                "range(%d)" % self.d(st.integers(0, 4)),
                "range(1, %d)" % self.d(st.integers(2, 5)),
                "range(0, 7, %d)" % self.d(st.integers(2, 3)),
                "range(%d, -1, -1)" % self.d(st.integers(0, 3)),
                "range(4, 0, -2)",
            ]))
            lines = ["%sfor %s in %s:" % (ind, var, rng)]
            self.loop_vars.append(var)
            self.loop_kinds.append("for")
            lines += self.block(ind + "    ", True, depth + 1)
            self.loop_kinds.pop()
            self.loop_vars.pop()
            return lines
        if kind == "for_list":
            var = "i%d" % len(self.loop_vars)
            items = self.d(st.lists(st.sampled_from(VARS + ("0.5", "-1.0")), min_size=1,
                                    max_size=3))
            lines = ["%sfor %s in [%s]:" % (ind, var, ", ".join(items))]
            self.loop_vars.append(var)
            self.loop_kinds.append("for")
            lines += self.block(ind + "    ", True, depth + 1)
            self.loop_kinds.pop()
            self.loop_vars.pop()
            return lines
        # while with a guaranteed bound
        n = "n%d" % self.counter
        self.counter += 1
        bound = self.d(st.integers(1, 5))
        lines = ["%s%s = 0" % (ind, n),
                 "%swhile %s < %d and %s:" % (ind, n, bound, self.cond())]
        self.loop_vars.append(n)
        self.loop_kinds.append("while")
        lines += self.block(ind + "    ", True, depth + 1, n_max=2)
        self.loop_kinds.pop()
        self.loop_vars.pop()
        lines.append("%s    %s += 1" % (ind, n))
        return lines


@st.composite
def programs(draw):
    g = _Gen(draw)
    lines = ["import math", "", "", "def f(x, y):"]
    lines.append("    a = %s" % draw(expressions(("x", "y"), 2)))
    lines.append("    b = %s" % draw(expressions(("x", "y"), 2)))
    lines.append("    c = %s" % draw(st.sampled_from(["0.5", "x", "y * 0.5", "1"])))
    for _ in range(draw(st.integers(1, 5))):
        lines += g.stmt("    ", False, 0)
    lines.append("    return %s" % g.expr(2))
    return "\n".join(lines) + "\n"


points = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False, allow_infinity=False)


# --------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def progdir(tmp_path_factory):
    return tmp_path_factory.mktemp("random_programs")


def load(source, directory):
    name = "rprog_%d" % next(_counter)
    path = directory / (name + ".py")
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.f


def _plain_value_ok(f, x, y):
    try:
        v = f(x, y)
    except (OverflowError, ValueError, ZeroDivisionError):
        return False
    return isinstance(v, (int, float)) and math.isfinite(v) and abs(v) < 1e6


def _check(f, source, x, y):
    note(source)
    note("point: x=%r, y=%r" % (x, y))
    assume(_plain_value_ok(f, x, y))
    value, expected = sympy_value_and_grad(f, (x, y), wrt=(0, 1))
    assume(all(math.isfinite(g) and abs(g) < 1e8 for g in expected))
    note("sympy gradient: %r" % (expected,))
    got = transpile.grad(f, wrt=(0, 1))(x, y)
    note("transpile gradient: %r" % (got,))
    scale = 1.0 + max(abs(g) for g in expected)
    assert_close(got, expected, rtol=1e-8, atol=1e-10 * scale)
    return value


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(source=programs(), x=points, y=points)
def test_random_program_gradient(progdir, source, x, y):
    f = load(source, progdir)
    _check(f, source, x, y)


@settings(max_examples=60, deadline=None)
@given(source=programs(), x=points, y=points)
def test_random_program_value_and_vjp(progdir, source, x, y):
    f = load(source, progdir)
    note(source)
    assume(_plain_value_ok(f, x, y))
    value, g = transpile.value_and_grad(f, wrt=("x", "y"))(x, y)
    assert value == f(x, y) or abs(value - f(x, y)) <= 1e-12 * (1 + abs(value))
    v2, pullback = transpile.vjp(f, x, y, wrt=(0, 1))
    assert_close(v2, value, rtol=1e-12)
    assert_close(pullback(2.0), tuple(2.0 * t for t in g), rtol=1e-12, atol=1e-300)


def test_generator_produces_valid_python(progdir):
    # sanity check of the strategy itself, independent of transpile
    @settings(max_examples=50, deadline=None)
    @given(source=programs())
    def inner(source):
        compile(source, "<generated>", "exec")
        f = load(source, progdir)
        assert callable(f)

    inner()


FIXED = [
    # hand-picked regression programs in the generated style
    """import math


def f(x, y):
    a = x * y
    b = math.sin(x)
    c = 0.5
    for i0 in range(3):
        if a > b:
            a = math.tanh(a * b + i0 * 0.25)
        else:
            b += math.tanh(a - y)
        c *= math.cos(a)
    n0 = 0
    while n0 < 4 and c < 1.0:
        c = c * 0.5 + math.sin(c + b)
        n0 += 1
    return a * b + c
""",
    """import math


def f(x, y):
    a = x
    b = y
    c = 1
    for i0 in range(4, 0, -2):
        for i1 in [x, a, 0.5]:
            a = a * 0.5 + math.sin(i1 * b)
            if a > 0.3:
                continue
            b /= (1 + a ** 2)
        if b < -0.2:
            break
    a, b = b, a * c
    return math.log(1 + a ** 2) + math.sqrt(1 + b * b) + max(a, b)
""",
]


@pytest.mark.parametrize("k", range(len(FIXED)))
@pytest.mark.parametrize("x,y", [(0.7, -0.4), (-1.3, 1.1), (0.05, 0.9)])
def test_fixed_generated_style_programs(progdir, k, x, y):
    f = load(FIXED[k], progdir)
    value, expected = sympy_value_and_grad(f, (x, y), wrt=(0, 1))
    assert_close(transpile.grad(f, wrt=(0, 1))(x, y), expected, rtol=1e-9, atol=1e-12)


@settings(max_examples=int(os.environ.get("SECOND_ORDER_EXAMPLES", 25)), deadline=None)
@given(source=programs(), x=points, y=points)
def test_random_program_second_derivatives(progdir, source, x, y):
    """Hessians forward over reverse and grad(grad) reverse over reverse vs sympy."""
    from oracle import sympy_hessian
    f = load(source, progdir)
    note(source)
    assume(_plain_value_ok(f, x, y))
    H = sympy_hessian(f, (x, y), (0, 1))
    assume(all(math.isfinite(h) and abs(h) < 1e8 for row in H for h in row))
    scale = 1.0 + max(abs(h) for row in H for h in row)
    got = transpile.hessian(f, wrt=(0, 1))(x, y)
    note("sympy Hessian: %r, transpile: %r" % (H, got))
    for row_got, row in zip(got, H):
        assert_close(tuple(row_got), tuple(row), rtol=1e-7, atol=1e-9 * scale)
    second = transpile.grad(transpile.grad(f, wrt=0))(x, y)
    assert_close(second, H[0][0], rtol=1e-7, atol=1e-9 * scale)
