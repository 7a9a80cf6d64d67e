"""Calls through values: functions passed as arguments or defaults, callables in lists and
dicts, bound methods, methods of user objects and objects with __call__ (calls.py, at run
time); functools.partial (inside a function and differentiated directly); sorted/max/min
with key=; generators consumed in a loop; @differentiate on a method. Every derivative is
checked against central finite differences."""
import functools

import numpy as np
import pytest

import transpile
from transpile import TranspileError

from finite_differences import central, central_wrt, check

X = np.array([0.3, -0.2, 0.5])


# --- functions passed as values ----------------------------------------------------------

def relu(x):
    return np.maximum(x, 0.0)


def softplus(x):
    return np.log1p(np.exp(x))


square = lambda v: v * v      # noqa: E731


def apply_sum(x, nl):
    return np.sum(nl(x) * x)


def apply_default(x, nl=np.tanh):
    return np.sum(nl(x))


@pytest.mark.parametrize("nl", [np.tanh, np.sin, relu, softplus, square],
                         ids=["tanh", "sin", "relu", "softplus", "lambda"])
def test_function_argument_reverse_and_forward(nl):
    x = X.copy()
    expected = central_wrt(apply_sum, (x, nl), 0)
    check(transpile.grad(apply_sum)(x, nl), expected)
    value, pullback = transpile.vjp(apply_sum, x, nl)
    check(value, apply_sum(x, nl))
    check(pullback(1.0), expected)
    for e in np.eye(3):
        v, t = transpile.jvp(apply_sum, (x, nl), (e, None))
        check(v, apply_sum(x, nl))
        check(t, expected @ e)
    check(x, X)                                        # the argument is unchanged


def test_function_default_and_override():
    check(transpile.grad(apply_default)(X), central(apply_default, X))
    check(transpile.grad(apply_default)(X, np.sin),
          central(lambda v: apply_default(v, np.sin), X))


def add_activations(x):
    s = 0.0
    for f in [np.sin, np.cos, softplus]:
        s = s + f(x)
    return s


def test_loop_over_a_list_of_functions():
    for x in (0.3, -1.2):
        check(transpile.grad(add_activations)(x), central(add_activations, x))
        check(transpile.jvp(add_activations, (x,), (1.0,))[1], central(add_activations, x))


ACTS = {"relu": relu, "tanh": np.tanh, "softplus": softplus}


def by_name(x, name):
    return np.sum(ACTS[name](x) ** 2)


@pytest.mark.parametrize("name", sorted(ACTS))
def test_callable_from_a_dict(name):
    x = np.array([0.3, -0.2, 0.5])
    check(transpile.grad(by_name)(x, name), central_wrt(by_name, (x, name), 0))
    check(transpile.jvp(by_name, (x, name), (np.ones(3), None))[1],
          central_wrt(by_name, (x, name), 0).sum())


# --- methods and callable objects ----------------------------------------------------------

class Linear:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def __call__(self, x):
        return self.W @ x + self.b


class ReLU:
    def __call__(self, x):
        return np.maximum(x, 0.0)


class Tanh:
    def __call__(self, x):
        return np.tanh(x)


class Model:
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.layers = [Linear(rng.normal(size=(4, 3)), rng.normal(size=4)), ReLU(),
                       Linear(rng.normal(size=(2, 4)), rng.normal(size=2)), Tanh()]
        self.calls = 0

    def helper(self, y):
        return np.sum(y * y)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.helper(x)


def loss(x, model):
    return model.forward(x) + 0.5 * np.sum(x)


def test_model_forward_over_layers_of_different_classes():
    model = Model()
    x = np.array([0.4, -0.7, 1.1])
    W0 = model.layers[0].W.copy()
    expected = central_wrt(loss, (x, model), 0)
    check(transpile.grad(loss)(x, model), expected)
    value, g = transpile.value_and_grad(loss)(x, model)
    check(value, loss(x, model))
    check(g, expected)
    _, pullback = transpile.vjp(loss, x, model)
    check(pullback(2.0), 2.0 * expected)
    for e in np.eye(3):
        check(transpile.jvp(loss, (x, model), (e, None))[1], expected @ e)
    check(model.layers[0].W, W0)                 # the object's arrays are not changed


def bound_method_alias(x, model):
    f = model.helper
    return f(x) + model.helper(2.0 * x)


def test_bound_method_alias():
    model = Model()
    check(transpile.grad(bound_method_alias)(X, model),
          central_wrt(bound_method_alias, (X, model), 0))


LAYER = Linear(np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([0.1, 0.2]))
HELPER = Model().helper


def call_global_objects(x):
    return np.sum(np.sin(LAYER(x))) + HELPER(x)


def test_global_callable_object_and_bound_method():
    x = np.array([0.3, 0.8])
    check(transpile.grad(call_global_objects)(x), central(call_global_objects, x))
    check(transpile.jvp(call_global_objects, (x,), (np.array([1.0, -1.0]),))[1],
          central(call_global_objects, x) @ np.array([1.0, -1.0]))


# --- functools.partial ---------------------------------------------------------------------

def scaled(x, y, power=2.0):
    return y * x ** power


def with_partial(x, w):
    h = functools.partial(scaled, y=w)
    return h(x) + h(2.0 * x, power=3.0)


def test_partial_inside_a_function():
    for wrt in (0, 1):
        check(transpile.grad(with_partial, wrt=wrt)(1.5, 0.7),
              central_wrt(with_partial, (1.5, 0.7), wrt))
    check(transpile.jvp(with_partial, (1.5, 0.7), (1.0, 1.0))[1],
          central_wrt(with_partial, (1.5, 0.7), 0) + central_wrt(with_partial, (1.5, 0.7), 1))


def test_partial_differentiated_directly():
    p = functools.partial(scaled, y=2.0)
    check(transpile.grad(p)(1.5), central(p, 1.5))
    q = functools.partial(scaled, 1.5)            # x bound: the gradient is wrt y
    check(transpile.grad(q)(0.7), central(q, 0.7))
    check(transpile.grad(p, wrt="power")(1.5, power=3.0),
          central(lambda k: p(1.5, power=k), 3.0))
    assert transpile.grad(transpile.grad(p))(1.5) == pytest.approx(2.0 * 2.0)


# --- key= functions --------------------------------------------------------------------------

def sorted_weights(xs):
    ys = sorted(xs, key=lambda t: abs(t))
    zs = sorted(xs, key=abs, reverse=True)
    return ys[0] * 3.0 + ys[1] * ys[2] + zs[0]


def extremes(xs):
    return max(xs, key=lambda t: t * t) - 2.0 * min(xs, key=abs)


@pytest.mark.parametrize("fn", [sorted_weights, extremes])
def test_key_functions(fn):
    xs = [0.9, -0.2, -1.7]
    g = transpile.grad(fn)(xs)
    for i in range(3):
        def at(v, i=i):
            ys = list(xs)
            ys[i] = v
            return fn(ys)
        check(g[i], central(at, xs[i]))


# --- generators ------------------------------------------------------------------------------

def pairs(params):
    for W, b in params:
        yield W, b


def mlp(x, params):
    for W, b in pairs(params):
        x = np.tanh(W @ x + b)
    return np.sum(x)


def test_generator_consumed_in_a_loop():
    rng = np.random.default_rng(1)
    params = [(rng.normal(size=(3, 3)), rng.normal(size=3)) for _ in range(2)]
    check(transpile.grad(mlp)(X, params), central_wrt(mlp, (X, params), 0))
    check(transpile.jvp(mlp, (X, params), (np.ones(3), None))[1],
          central_wrt(mlp, (X, params), 0).sum())


def yields_a_sent_value(x):
    y = yield x
    yield y


def uses_bad_generator(x):
    s = 0.0
    for v in yields_a_sent_value(x):
        s = s + v
    return s


def test_generator_with_yield_as_an_expression_is_refused():
    with pytest.raises(TranspileError, match="'yield' as an expression"):
        transpile.grad(uses_bad_generator)(1.0)


# --- @differentiate on a method ------------------------------------------------------------

class Scaler:
    def __init__(self, k):
        self.k = k

    @transpile.differentiate
    def energy(self, x):
        return self.k * np.sum(np.sin(x) * x)


def test_differentiate_on_a_method():
    m = Scaler(1.5)
    f = lambda v: m.energy(v)                       # noqa: E731
    assert m.energy(X) == pytest.approx(1.5 * np.sum(np.sin(X) * X))
    check(m.energy.grad(X), central(f, X))
    check(m.energy.value_and_grad(X)[1], central(f, X))
    check(transpile.differentiate(Scaler.energy, wrt=1).grad(m, X), central(f, X))
    g = Scaler.energy.grad(m, X)            # through the class, 0 is self: an object
    k = g["k"] if isinstance(g, dict) else g.k      # (its gradient: by attribute)
    check(k, central(lambda k: Scaler(k).energy(X), 1.5))
    check(transpile.grad(Scaler.energy.__transpile_function__, wrt=1)(m, X), central(f, X))
    check(m.energy.jvp((X,), (np.ones(3),))[1], central(f, X).sum())
    assert "def grad_energy" in m.energy.source


# --- what stays refused -------------------------------------------------------------------------

def sine_times(x, nl=np.sin):
    return nl(x) * x


@pytest.mark.parametrize("nl", [np.tanh, softplus, square], ids=["tanh", "def", "lambda"])
def test_second_order_through_a_function_argument(nl):
    # the variant is specialised on the function passed: `nl(x)` is its rule or its
    # derivative code, so the gradient code can be differentiated again
    x = X.copy()
    H = transpile.hessian(apply_sum)(x, nl)
    for i in range(3):
        check(H[i], central(lambda v: transpile.grad(apply_sum)(v, nl)[i], x))
    d2 = transpile.grad(transpile.grad(sine_times))(0.3)
    check(d2, central(lambda v: transpile.grad(sine_times)(v), 0.3))


def test_function_argument_code_calls_the_rule():
    g = transpile.grad(apply_sum)
    g(X, np.tanh)
    assert "call_forward" not in g.source and "tanh" in g.source
    g(X, Model().helper)                  # a bound method: called through the value
    assert "call_forward(nl" in g.source


def _hessian_by_differences(f, args, i=0):
    """Rows of the Hessian of f in argument i: central differences of transpile.grad."""
    x = np.asarray(args[i], float)
    grad = transpile.grad(f, wrt=i)

    def row(k):
        def at(v):
            a = list(args)
            a[i] = v
            return np.ravel(grad(*a))[k]
        return central(at, x)
    return np.array([row(k) for k in range(x.size)])


def test_second_order_through_a_call_through_a_value():
    """Gradient code calling a function through a variable (call_forward/call_backward)
    differentiated in forward mode: at run time, the tangent of the callee's generated
    forward and adjoint sweeps (calls.call_forward_jvp, call_backward_jvp)."""
    model = Model()
    check(transpile.hessian(loss)(X, model), _hessian_by_differences(loss, (X, model)))
    d2 = transpile.grad(transpile.grad(add_activations))(0.3)
    check(d2, central(lambda v: transpile.grad(add_activations)(v), 0.3))


def looped(x, w):
    y = x
    for _ in range(3):
        y = np.sin(y) * w + 0.5 * y     # the pair's tape: a stack its adjoint sweep pops
    return y


def through_star(*args):                 # `*args`: called through calls.py
    return looped(args[0], *args[1:])


def calls_star(x, w, nl):
    return np.sum(nl(x * w, w) ** 2)


def test_second_order_through_nested_calls_through_values():
    """A callee with a stack on its tape, called through a variable by a function itself
    called through a variable (its tape holds the inner call's tape): hvp, hessian in
    two arguments, and the derivative in w of the gradient in x (the inner call's active
    set is x alone; its forward sweep is differentiated in w too)."""
    x, w = np.array([0.3, -0.4, 0.8]), np.array([1.1, 0.7, -0.5])
    v = np.array([0.2, -1.0, 0.4])
    hv = transpile.hvp(calls_star)(x, w, through_star, v=v)
    check(hv, _hessian_by_differences(calls_star, (x, w, through_star)) @ v)
    H = transpile.hessian(calls_star, wrt=(0, 1))(x, w, through_star)
    grad_x = transpile.grad(calls_star, wrt=0)
    for k in range(3):
        check(H[0][1][k], central(lambda u: grad_x(x, u, through_star)[k], w))
    J = transpile.jacobian(grad_x, wrt=1)(x, w, through_star)
    for k in range(3):
        check(J[k], central(lambda u: grad_x(x, u, through_star)[k], w))


def uses_gradient_of_callee(x, nl):
    g = transpile.grad(calls_star)(x, x, nl)
    return np.sum(g ** 2)


def test_reverse_over_forward_through_calls_through_values():
    """Tangent code calling a function through a variable (call_jvp) differentiated in
    reverse mode: at run time, the reverse mode of the callee's generated tangent function
    in its arguments and tangents (calls.call_jvp_vjp); nested, with *args."""
    x, w = np.array([0.3, -0.4, 0.8]), np.array([1.1, 0.7, -0.5])
    v = np.array([0.2, -1.0, 0.4])
    for wrt in (0, 1):
        hv = transpile.hvp(calls_star, wrt=wrt, mode="reverse-over-forward")(
            x, w, through_star, v=v)
        check(hv, _hessian_by_differences(calls_star, (x, w, through_star), wrt) @ v)
    model = Model()
    check(transpile.hvp(loss, mode="reverse-over-forward")(X, model, v=v),
          _hessian_by_differences(loss, (X, model)) @ v)


def model_loss(model, x):
    return model.forward(x)


def test_second_order_through_a_call_through_a_value_refused_where_it_cannot_go():
    """Reverse over reverse through those calls in arrays, and second derivatives in the
    object whose method is called through a variable (its layers' weights), are one
    TranspileError naming the user's line."""
    x = np.array([0.3, -0.4, 0.8])
    model = Model()
    v = transpile.grad(model_loss)(model, x)
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        with pytest.raises(TranspileError, match="not supported") as info:
            transpile.hvp(model_loss, mode=mode)(model, x, v=v)
        assert "test_calls.py" in str(info.value)
    with pytest.raises(TranspileError, match="through a variable") as info:
        transpile.grad(uses_gradient_of_callee)(x, through_star)
    assert "test_calls.py" in str(info.value)


def closure_of_x(x):
    fs = [functools.partial(scaled, y=x)]
    return fs[0](2.0)


def test_callee_made_from_the_differentiated_value_is_refused():
    with pytest.raises(TranspileError):
        transpile.grad(closure_of_x)(1.0)


def push(xs, v):
    xs.append(v)
    return v * 2.0


def calls_mutating_function(x, f):
    xs = []
    return f(xs, x)


def calls_mutating_function_from_a_list(x):
    xs = []
    fs = [push]
    return fs[0](xs, x)


def test_callee_changing_its_arguments():
    # a function argument is the function itself: the checks of user calls apply
    check(transpile.grad(calls_mutating_function)(1.0, push),
          central(lambda v: calls_mutating_function(v, push), 1.0))
    with pytest.raises(TranspileError, match="in place"):   # through a value: refused
        transpile.grad(calls_mutating_function_from_a_list)(1.0)


def builds_object(x, cls):
    return cls(x)


def test_class_called_through_a_variable_is_refused():
    with pytest.raises(TranspileError, match="class"):
        transpile.grad(builds_object)(1.0, float)


# --- *args and **kwargs ----------------------------------------------------------------------

def product_of(*xs):
    return xs[0] * xs[1] + np.sum(xs[2] ** 2)


def scale_rest(x, *rest):
    s = x * x
    for r in rest:
        s = s * r
    return s


def test_star_args_signature():
    args = (2.0, 3.0, np.array([1.0, -2.0]))
    for wrt in (0, 1, 2):
        check(transpile.grad(product_of, wrt=wrt)(*args), central_wrt(product_of, args, wrt))
    g = transpile.grad(scale_rest, wrt=(0, 1, 2))(2.0, 3.0, 4.0)
    for i in range(3):
        check(g[i], central_wrt(scale_rest, (2.0, 3.0, 4.0), i))
    _, pullback = transpile.vjp(scale_rest, 2.0, 3.0, 4.0, wrt=2)
    check(pullback(1.0), central_wrt(scale_rest, (2.0, 3.0, 4.0), 2))
    check(transpile.jvp(scale_rest, (2.0, 3.0, 4.0), (None, 1.0, 1.0))[1],
          central_wrt(scale_rest, (2.0, 3.0, 4.0), 1) + central_wrt(scale_rest,
                                                                  (2.0, 3.0, 4.0), 2))
    check(transpile.hessian(scale_rest)(2.0, 3.0, 4.0), 2.0 * 12.0)
    assert transpile.grad(transpile.grad(scale_rest))(2.0, 3.0) == pytest.approx(6.0)
    with pytest.raises(TranspileError, match=r"\*args"):
        transpile.hessian(scale_rest, wrt=1)(2.0, 3.0)


def calls_with_extra_arguments(x, y):
    args = (2.0, y)
    return scale_rest(x, y, x) + scale_rest(x, *args)


forward_all = lambda *args: scale_rest(*args)      # noqa: E731


def through_wrapper(x, y):
    return forward_all(x, y, 2.0) + forward_all(y, x)


def offset(x, scale=1.0, shift=0.0):
    return scale * x + shift


def with_keyword_unpacking(x):
    opts = {"scale": 3.0, "shift": 1.0}
    return offset(x, **opts) * x


@pytest.mark.parametrize("fn", [calls_with_extra_arguments, through_wrapper])
def test_calls_into_star_args(fn):
    for wrt in (0, 1):
        check(transpile.grad(fn, wrt=wrt)(1.5, 0.7), central_wrt(fn, (1.5, 0.7), wrt))
    check(transpile.jvp(fn, (1.5, 0.7), (1.0, 0.0))[1], central_wrt(fn, (1.5, 0.7), 0))


def test_keyword_unpacking_into_a_user_function():
    check(transpile.grad(with_keyword_unpacking)(1.2), central(with_keyword_unpacking, 1.2))


def shape_unpacking(x):
    pad = np.zeros((*x.shape, 2))
    y = x.reshape(1, *x.shape)
    noise = 0.0 * np.random.rand(*x.shape)
    return np.sum(y * y) + np.sum(pad) + np.sum(noise * x)


def test_unpacking_shapes():
    x = np.array([1.0, -2.0, 0.5])
    check(transpile.grad(shape_unpacking)(x), central(shape_unpacking, x))


def unpacks_differentiated_values(x):
    kw = {"scale": x}
    return offset(2.0, **kw)


def test_differentiated_values_unpacked_by_keyword_are_refused():
    with pytest.raises(TranspileError, match="differentiated value"):
        transpile.grad(unpacks_differentiated_values)(1.0)


def affine_kw(x, **kw):
    return x * kw["scale"] + np.sum(kw["shift"] * x)


def calls_affine_kw(x, s):
    return affine_kw(x, scale=s, shift=x) + affine_kw(s, scale=2.0, shift=x)


def test_star_star_kwargs_signature():
    shift = np.array([1.0, 2.0])
    f = lambda x, s, sh: affine_kw(x, scale=s, shift=sh)     # noqa: E731
    args = (2.0, 3.0, shift)
    check(transpile.grad(affine_kw)(2.0, scale=3.0, shift=shift), central_wrt(f, args, 0))
    check(transpile.grad(affine_kw, wrt="scale")(2.0, scale=3.0, shift=shift),
          central_wrt(f, args, 1))
    _, pullback = transpile.vjp(affine_kw, 2.0, wrt="shift", scale=3.0, shift=shift)
    check(pullback(1.0), central_wrt(f, args, 2))
    with pytest.raises(TranspileError, match="no keyword argument"):
        transpile.grad(affine_kw, wrt="offset")(2.0, scale=3.0, shift=shift)


def test_calls_into_star_star_kwargs():
    for wrt in (0, 1):
        check(transpile.grad(calls_affine_kw, wrt=wrt)(2.0, 3.0),
              central_wrt(calls_affine_kw, (2.0, 3.0), wrt))
    check(transpile.jvp(calls_affine_kw, (2.0, 3.0), (1.0, -1.0))[1],
          central_wrt(calls_affine_kw, (2.0, 3.0), 0) - central_wrt(calls_affine_kw,
                                                                   (2.0, 3.0), 1))


# --- zip(*rows) ------------------------------------------------------------------------------

def columns_product(rows):
    s = 0.0
    for a, b, c in zip(*rows):
        s = s + a * b - np.sin(c)
    return s


def test_transposing_zip():
    rows = [[1.0, 2.0], [3.0, -4.0], [0.5, 0.25]]
    g = transpile.grad(columns_product)(rows)
    for i in range(3):
        for j in range(2):
            def at(v, i=i, j=j):
                r = [list(row) for row in rows]
                r[i][j] = v
                return columns_product(r)
            check(g[i][j], central(at, rows[i][j]))
    with pytest.raises(AssertionError):              # two rows, three loop variables
        transpile.grad(columns_product)(rows[:2])


# --- a realistic program: a small network of layer objects, trained by plain SGD ----------

class Dense:
    def __init__(self, W, b, act=np.tanh):
        self.W, self.b, self.act = W, b, act

    def __call__(self, x):
        return self.act(self.W @ x + self.b)


class Network:
    def __init__(self, layers):
        self.layers = layers

    def features(self, x):
        for layer in self.layers:
            yield layer(x)
            x = layer(x)

    def predict(self, x):
        out = x
        for layer in self.layers:
            out = layer(out)
        return out

    @transpile.differentiate
    def loss(self, x, target):
        errors = [np.sum((self.predict(x) - target) ** 2)]
        penalty = sum(np.sum(h * h) for h in self.features(x))
        return errors[0] + 0.01 * penalty


def test_network_of_layer_objects():
    rng = np.random.default_rng(3)
    net = Network([Dense(rng.normal(size=(4, 3)), rng.normal(size=4)),
                   Dense(rng.normal(size=(2, 4)), rng.normal(size=2), act=softplus),
                   Dense(np.eye(2), np.zeros(2), act=relu)])
    x, target = np.array([0.2, -0.4, 0.9]), np.array([0.5, -0.1])
    f = lambda v: net.loss(v, target)               # noqa: E731
    check(net.loss.grad(x, target), central(f, x))
    wrt_target = transpile.differentiate(Network.loss, wrt=2)
    check(wrt_target.grad(net, x, target), central(lambda t: net.loss(x, t), target))
    for _ in range(3):                              # a few steps on x change the loss
        x = x - 0.1 * net.loss.grad(x, target)
    assert np.isfinite(f(x))


def test_a_derivative_passed_as_the_function_is_differentiated_through_its_code():
    """nl = transpile.grad(h) passed as a value: the call goes through nl's generated
    code, differentiated like any function called through a variable."""
    nl = transpile.grad(lambda v: np.sum(np.sin(v) * v))
    check(transpile.grad(apply_default)(X, nl),
          central(lambda v: apply_default(v, nl), X))


class _Maker:
    """A callable object handing out gradients (as a wrapper library would)."""

    def __call__(self, f):
        return transpile.grad(f)


make_grad = _Maker()


def _inner(d):
    return np.sum(np.sin(d["a"])) + np.sum(np.cos(d["a"] * d["b"]))


def _uses_made_gradient(d):
    g = make_grad(_inner)(d)
    return np.sum(g["a"] ** 2) + np.sum(np.sin(g["b"]))


def test_a_gradient_made_by_a_callable_object_inside_is_differentiated():
    d = {"a": np.array([0.3, 0.5]), "b": np.array([1.0, -0.2])}
    g = transpile.grad(_uses_made_gradient)(d)
    for k in d:
        def at(v, k=k):
            e = dict(d)
            e[k] = v
            return _uses_made_gradient(e)
        check(g[k], central(at, d[k]))


# --- methods of an argument's class: static calls ---------------------------------------------

class Projection:
    def __init__(self, W):
        self.W = W

    def squash(self, y):
        return np.tanh(y)

    def energy(self, x):
        return np.sum(self.squash(self.W @ x) ** 2)


def projected(x, p):
    return p.energy(x) * 2.0 + p.squash(x[0])


def test_method_of_an_argument_of_a_known_class():
    # the variant is specialised on p's class: p.energy(x) is Projection.energy(p, x), a
    # call of a user function (self an argument like any other), so second order works
    p = Projection(np.array([[1.0, 0.5], [-0.3, 2.0]]))
    x = np.array([0.2, -0.4])
    g = transpile.grad(projected)
    check(g(x, p), central_wrt(projected, (x, p), 0))
    assert "call_forward" not in g.source and "Projection" not in g.source
    H = transpile.hessian(projected)(x, p)
    for i in range(2):
        check(H[i], central(lambda v: transpile.grad(projected)(v, p)[i], x))
    check(transpile.jvp(projected, (x, p), (np.ones(2), None))[1],
          central_wrt(projected, (x, p), 0).sum())


class Shadowed(Projection):
    pass


def test_an_instance_attribute_hiding_a_method_is_what_is_called():
    plain, hidden = Shadowed(np.eye(2)), Shadowed(np.eye(2))
    hidden.squash = np.sin                      # the instance's own attribute wins
    x = np.array([0.2, -0.4])
    g = transpile.grad(projected)
    for p in (plain, hidden, plain):
        check(g(x, p), central_wrt(projected, (x, p), 0))
