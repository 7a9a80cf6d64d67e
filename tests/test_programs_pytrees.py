"""Programs of the shapes people write, end to end: structured parameters (lists of
tuples, dicts, objects, dataclasses, NamedTuples), writes into a caller's dict through a
called function, a model of layer objects of different classes, statements that carry no
derivative, functions as values, *args, has_aux, transpile.grad inside the function and
third derivatives. Every gradient is checked against central differences over every
leaf of its argument, and its structure against the argument's."""
import dataclasses
import functools
import logging
from typing import NamedTuple

import numpy as np
import pytest

import transpile
from transpile import tree

rng = np.random.default_rng(0)
log = logging.getLogger("train")


def fd_tree(f, args, wrt=0, h=1e-6):
    """Central differences of f(*args) over every float leaf of args[wrt] (None for the
    other leaves), in tree.flatten's order."""
    leaves, d = tree.flatten(args[wrt])
    out = []
    for i, leaf in enumerate(leaves):
        if not (isinstance(leaf, float) or isinstance(leaf, np.ndarray)
                and leaf.dtype.kind == "f"):
            out.append(None)
            continue
        a = np.array(leaf, dtype=float)
        g = np.zeros_like(a)
        for j in np.ndindex(a.shape):
            for s in (1, -1):
                b = a.copy()
                b[j] += s * h
                moved = list(leaves)
                moved[i] = float(b) if isinstance(leaf, float) else b
                A = list(args)
                A[wrt] = tree.unflatten(d, moved)
                g[j] += s * f(*A) / (2 * h)
        out.append(float(g) if isinstance(leaf, float) else g)
    return out, d


def assert_gradient(f, args, wrt=0):
    g = transpile.grad(f, wrt=wrt)(*args)
    ref, d = fd_tree(f, args, wrt)
    got, gd = tree.flatten(g)
    if tree.is_node(args[wrt]):
        assert type(g) is type(args[wrt])
        assert len(got) == len(ref)
    for a, b in zip(got, ref):
        if b is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    return g


def logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(a - m), axis=axis, keepdims=keepdims)) + (m if keepdims else np.squeeze(m, axis=axis))

def neural_net_predict(params, inputs):
    for W, b in params:
        outputs = np.dot(inputs, W) + b
        inputs = np.tanh(outputs)
    return outputs - logsumexp(outputs, axis=1, keepdims=True)

X = rng.normal(size=(5, 3)); T = np.eye(2)[[0, 1, 1, 0, 1]]
def nn_loss(params, inputs, targets):
    return -np.sum(neural_net_predict(params, inputs) * targets)
params_list = [(rng.normal(size=(3, 4)), rng.normal(size=4)), (rng.normal(size=(4, 2)), rng.normal(size=2))]

# 2. dict of weights
def mlp_dict(p, X, T):
    h = np.maximum(0, X @ p["W1"] + p["b1"])
    s = h @ p["W2"] + p["b2"]
    return -np.sum(T * (s - logsumexp(s, axis=1, keepdims=True)))
pd = {"W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "W2": rng.normal(size=(4, 2)), "b2": np.zeros(2)}

# 3. rnn with dict params, loop over time
def rnn_loss(params, inputs):
    hiddens = np.repeat(params["init hiddens"], inputs.shape[1], axis=0)
    loss = 0.0
    for t in range(inputs.shape[0]):
        cat = np.concatenate((inputs[t], hiddens), axis=1)
        hiddens = np.tanh(np.dot(cat, params["change"]))
        loss = loss + np.sum(np.dot(hiddens, params["predict"]) ** 2)
    return loss
pr = {"init hiddens": rng.normal(size=(1, 3)), "change": rng.normal(size=(5, 3)) * 0.5, "predict": rng.normal(size=(3, 1))}

# 4. batchnorm writing into caller's dict
def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    out, cache = None, None
    if mode == "train":
        sample_mean = x.mean(axis=0)
        sample_var = x.var(axis=0)
        x_hat = (x - sample_mean) / np.sqrt(sample_var + eps)
        out = gamma * x_hat + beta
        cache = (x, x_hat, sample_mean, sample_var, gamma, eps)
        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
    elif mode == "test":
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache

def bn_loss(x, gamma, beta, bn_param):
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    return np.sum(out ** 3)
xb = rng.normal(size=(6, 3)); gm = rng.normal(size=3); bt = rng.normal(size=3)

# 5. object model with layers of different classes
class Linear:
    def __init__(self, n_in, n_out):
        self.W = rng.normal(size=(n_in, n_out)) * 0.5
        self.b = np.zeros(n_out)
    def __call__(self, x):
        return x @ self.W + self.b
class Tanh:
    def __call__(self, x):
        return np.tanh(x)
class Sequential:
    def __init__(self, *layers):
        self.layers = list(layers)
    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
def model_loss(model, X, T):
    s = model.forward(X)
    return np.sum((s - T) ** 2)
model = Sequential(Linear(3, 4), Tanh(), Linear(4, 2))

# 6. dataclass / NamedTuple params
@dataclasses.dataclass
class Params:
    w: np.ndarray
    b: float
def dc_loss(p, X):
    return np.sum(np.tanh(X @ p.w + p.b))
class NT(NamedTuple):
    w: np.ndarray
    b: float

# 7. print / logging / assert / with
def noisy(w, X):
    assert w.ndim == 1, "w must be a vector"
    with np.errstate(over="ignore"):
        z = np.exp(X @ w)
    loss = np.sum(np.log1p(z))
    log.info("loss %s", loss)
    return loss

# 8. functions as args / defaults / partial
def act_loss(w, X, act=np.tanh):
    return np.sum(act(X @ w))

# 9. *args
def star(*ws):
    return sum(np.sum(w ** 2) for w in ws)

# 10. has_aux
def aux(w, X):
    s = X @ w
    return np.sum(s ** 2), {"pred": s}

# 11. nested grad, Newton steps inside
def newton_loss(a):
    f = lambda y: (y - a) ** 2 * y
    fp = transpile.grad(f)
    fpp = transpile.grad(fp)
    y = 2.0 + a
    for _ in range(3):
        y = y - fp(y) / fpp(y)
    return y * a

# 12. third order
f3 = lambda x: np.sin(x) * x ** 3

# --- the tests --------------------------------------------------------------------------

def test_neural_net_list_of_tuples():
    g = assert_gradient(nn_loss, (params_list, X, T))
    assert all(type(layer) is tuple for layer in g)


def test_dict_of_weights():
    g = assert_gradient(mlp_dict, (pd, X, T))
    assert list(g) == list(pd)


def test_rnn_with_dict_parameters():
    assert_gradient(rnn_loss, (pr, rng.normal(size=(4, 2, 2))))


@pytest.mark.parametrize("wrt", [0, 1, 2])
def test_batchnorm_called_from_the_loss(wrt):
    assert_gradient(bn_loss, (xb, gm, bt, {"mode": "train"}), wrt=wrt)


def test_batchnorm_running_stats_reach_the_callers_dict_through_a_call():
    """batchnorm_forward writes bn_param; the loss calling it is differentiated: the
    caller's dict ends as after a plain call, in grad, vjp and jvp."""
    plain = {"mode": "train"}
    bn_loss(xb, gm, bt, plain)
    runs = {"grad": lambda d: transpile.grad(bn_loss)(xb, gm, bt, d),
            "vjp": lambda d: transpile.vjp(bn_loss, xb, gm, bt, d)[1](1.0),
            "jvp": lambda d: transpile.jvp(bn_loss, (xb, gm, bt, d),
                                           (np.ones_like(xb), None, None, None))}
    for name, run in runs.items():
        d = {"mode": "train"}
        run(d)
        assert set(d) == set(plain), name
        for k in ("running_mean", "running_var"):
            np.testing.assert_allclose(d[k], plain[k], err_msg=name)


def test_model_of_layer_objects_of_different_classes():
    g = assert_gradient(model_loss, (model, X, T))
    assert type(g) is Sequential and type(g.layers[0]) is Linear
    assert type(g.layers[1]) is Tanh
    assert_gradient(model_loss, (model, X, T), wrt=1)


def test_model_of_layer_objects_in_forward_mode():
    v = tree.map(lambda w: np.ones_like(w) * 0.1, model)
    _, t = transpile.jvp(model_loss, (model, X, T), (v, None, None))
    h = 1e-6
    plus = tree.map(lambda w, d: w + h * d, model, v)
    minus = tree.map(lambda w, d: w - h * d, model, v)
    ref = (model_loss(plus, X, T) - model_loss(minus, X, T)) / (2 * h)
    np.testing.assert_allclose(t, ref, rtol=1e-5)


def test_dataclass_and_namedtuple_parameters():
    g = assert_gradient(dc_loss, (Params(rng.normal(size=3), 0.3), X))
    assert isinstance(g, Params)
    g = assert_gradient(dc_loss, (NT(rng.normal(size=3), 0.3), X))
    assert isinstance(g, NT)


def test_assert_with_and_logging_pass_through():
    assert_gradient(noisy, (rng.normal(size=3), X))


def test_functions_as_defaults_arguments_and_partials():
    w = rng.normal(size=3)
    assert_gradient(act_loss, (w, X))
    assert_gradient(act_loss, (w, X, np.sin))
    assert_gradient(functools.partial(act_loss, X=X), (w,))


def test_star_args():
    assert_gradient(star, (rng.normal(size=3), rng.normal(size=2)), wrt=1)


def test_has_aux_returns_the_aux_as_computed():
    w = rng.normal(size=3)
    g, a = transpile.grad(aux, has_aux=True)(w, X)
    np.testing.assert_allclose(a["pred"], X @ w)
    np.testing.assert_allclose(g, fd_tree(lambda w, X: aux(w, X)[0], (w, X))[0][0],
                               rtol=1e-5)


def test_newton_steps_with_grad_inside_the_loss():
    assert_gradient(newton_loss, (0.7,))


def test_third_derivative():
    x = 0.8
    ref = (-np.cos(x) * x ** 3 - 9 * np.sin(x) * x ** 2 + 18 * np.cos(x) * x
           + 6 * np.sin(x))
    got = transpile.grad(transpile.grad(transpile.grad(f3)))(x)
    np.testing.assert_allclose(got, ref, rtol=1e-10)
