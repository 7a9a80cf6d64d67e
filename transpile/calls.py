"""Calls whose function is only known at run time: the derivative of ``f(x)`` where ``f``
is a value (a parameter holding a function, an element of a list of layers, ``acts[name]``,
``model.forward`` of an object, a bound method, a ``functools.partial``, an object with
``__call__``).

Generated code calls, in reverse mode, ``y, _tape = call_forward(f, (0,), x)`` in the
forward sweep and ``(_d,) = call_backward(_tape, _g)`` in the adjoint sweep; in forward
mode ``y, ty = call_jvp(f, (0,), (tx,), x)``. The second argument names the arguments that
carry a derivative (positions, keyword names, and ``"self"`` when the callee is a layer
object or bound method whose object carries one: ``for layer in self.layers: x =
layer(x)`` differentiates each layer's weights; its adjoint is the object's). What is called is the same pipeline's
derivative of the function behind ``f`` (`resolve`): ``type(obj).method`` with ``obj`` as
its first argument for methods and callable objects, ``p.func`` with ``p``'s arguments for
a partial, and for a NumPy or math function with a rule a one-line function calling it.
Each is built once per function, wrt set and kind of arguments (`api._type_key`), as for
`transpile.grad`.

Calls whose function is known when the code is generated (globals, closures, nested defs)
do not come here: they are ordinary calls of user functions or rules.
"""
import ast
import builtins
import functools
import inspect
import itertools
import types
import weakref

from .errors import TranspileError

_COUNTER = itertools.count(1)


def _refuse(message, fn=None):
    code = getattr(fn, "__code__", None)
    return TranspileError(message, getattr(code, "co_filename", None),
                          getattr(code, "co_firstlineno", None),
                          getattr(fn, "__qualname__", None))


def resolve(f):
    """(Python function, leading positional arguments, keyword arguments) that calling f
    amounts to; a function with a rule (np.tanh) comes back as a one-line Python function
    calling it."""
    from .rules import has_rule
    prefix, keywords = (), {}
    for _ in range(100):
        if getattr(f, "__transpile_derivative__", False) is True:
            from .frontend import NESTED_MESSAGE
            raise _refuse(NESTED_MESSAGE)
        inner = getattr(f, "__transpile_function__", None)     # a Differentiable
        if inner is not None and inner is not f:
            f = inner
            continue
        if isinstance(f, types.MethodType) and not has_rule(f):   # (a rule's own:
            prefix = (f.__self__,) + prefix                        # scipy.stats.norm.pdf)
            f = f.__func__
            continue
        if isinstance(f, functools.partial):
            prefix = tuple(f.args) + prefix
            keywords = dict(f.keywords, **keywords)
            f = f.func
            continue
        if inspect.isfunction(f):
            return f, prefix, keywords
        if isinstance(f, type):
            raise _refuse(f"a call of the class {f.__qualname__} (an object made from "
                          "differentiated values) through a variable is not supported; "
                          "call the class by its name")
        if has_rule(f):
            return f, prefix, keywords
        call = getattr(type(f), "__call__", None)
        if inspect.isfunction(call):                 # an object with __call__
            prefix = (f,) + prefix
            f = call
            continue
        raise _refuse(f"no derivative rule for {f!r}, called through a variable, and it "
                      "is not a Python function transpile can read; register a rule with "
                      "transpile.defvjp")
    raise _refuse(f"cannot find the function {f!r} calls")


_WRAPPERS = {}          # (callable, nargs, keyword names) -> Unit calling it


def _wrapper_unit(fn, nargs, keywords):
    """A Unit of ``def name(a0, ..., *, k...): return F(a0, ..., k=k...)`` calling the
    rule-backed callable fn (it is transformed like any function)."""
    key = (fn, nargs, keywords)
    try:
        unit = _WRAPPERS.get(key)
    except TypeError:
        raise _refuse(f"cannot differentiate a call of {fn!r} (an unhashable "
                      "callable) through a variable") from None
    if unit is not None:
        return unit
    from .frontend import Unit, register_source
    name = getattr(fn, "__name__", "call")
    name = name if name.isidentifier() else "call"
    params = [f"a{i}" for i in range(nargs)]
    signature = ", ".join(params + (["*"] + list(keywords) if keywords else []))
    arguments = ", ".join(params + [f"{k}={k}" for k in keywords])
    source = f"def {name}({signature}):\n    return F({arguments})\n"
    filename = f"<transpile call of {name} #{next(_COUNTER)}>"
    register_source(filename, source)
    node = ast.parse(source).body[0]
    for n in ast.walk(node):
        if hasattr(n, "lineno"):
            n.lineno, n.end_lineno = 1, 1
    unit = Unit(node, name, filename, 0, {"F": fn, "__builtins__": builtins}, {})
    _WRAPPERS[key] = unit
    return unit


def _target(f, nargs, keyword_names):
    """(what the pipeline transforms, leading arguments, bound keywords, parameter
    names) for calling f with nargs positional arguments and these keywords."""
    fn, prefix, keywords = resolve(f)
    if inspect.isfunction(fn) and not _variadic_rule(fn):
        from .pipeline import unit_of
        unit = unit_of(fn)
        a = unit.node.args
        if a.vararg or a.kwarg:
            params = None                       # bound at each call (inspect.signature)
        else:
            params = [p.arg for p in a.posonlyargs + a.args]
        return fn, prefix, keywords, params
    names = tuple(sorted(set(keywords) | set(keyword_names)))
    unit = _wrapper_unit(fn, len(prefix) + nargs, names)
    return unit, prefix, keywords, [f"a{i}" for i in range(len(prefix) + nargs)]


def _variadic_rule(fn):
    """A Python function with a rule and a `*args` parameter (the runtime helpers of
    derivative code): called through a one-line wrapper so that its rule applies."""
    from .rules import has_rule
    return has_rule(fn) and any(q.kind is q.VAR_POSITIONAL for q in inspect.signature(
        fn).parameters.values())


_CACHE = weakref.WeakKeyDictionary()      # function or Unit -> {key: (Compiled, names)}


def _names(target, params, prefix, active, args, kwargs):
    """The parameters of target the active arguments are bound to."""
    if params is None:                      # a function taking *args or **kwargs
        sig = list(inspect.signature(target).parameters.values())
        named = [q.name for q in sig if q.kind in (q.POSITIONAL_ONLY,
                                                    q.POSITIONAL_OR_KEYWORD)]
        star = next((q.name for q in sig if q.kind is q.VAR_POSITIONAL), None)
        keywords = {q.name for q in sig if q.kind in (q.POSITIONAL_OR_KEYWORD,
                                                       q.KEYWORD_ONLY)}
        names = []
        for i in active:
            if i == "self":
                names.append(named[0])
            elif isinstance(i, int):
                k = len(prefix) + i
                if k < len(named):
                    names.append(named[k])
                elif star is not None:
                    names.append(f"{star}[{k - len(named)}]")
                else:
                    raise _refuse("too many arguments in a call through a variable",
                                  target)
            elif i in keywords:
                names.append(i)
            elif any(q.kind is q.VAR_KEYWORD for q in sig):
                names.append(f"{next(q.name for q in sig if q.kind is q.VAR_KEYWORD)}[{i}]")
            else:
                raise _refuse(f"a differentiated value passed as '{i}=' into **kwargs of "
                              f"{target.__qualname__} is not supported (name the "
                              "parameter)", target)
        return tuple(names)
    out = []
    for i in active:
        if i == "self":
            out.append(params[0])
        elif isinstance(i, int):
            k = len(prefix) + i
            if k >= len(params):
                raise _refuse("too many arguments in a call through a variable", target)
            out.append(params[k])
        else:
            out.append(i)
    return tuple(out)


#: the entry of `active` saying that the caller's code takes the result for a real value
#: (reverse.dynamic_positions); not a keyword name
REAL = "=real"


def _real_checked(value, active, f):
    """value, refused where it is complex and the caller's code took it for real (the
    function was known only when the code ran)."""
    from .analysis import is_complex_value
    if REAL in active and is_complex_value(value):
        raise _refuse(f"{getattr(resolve(f)[0], '__qualname__', f)} returned a complex "
                      "value from real arguments, called through a variable (a list "
                      "element, a local): the derivative code of the caller was written "
                      "for a real one; call the function by its name or pass it as an "
                      "argument, so transpile reads it before it runs", resolve(f)[0])
    return value


def _expanded(active, nargs):
    """`active` with each "*i" (a `*seq` unpacked from argument i on, the last
    positional) replaced by the positions it fills, and the sizes to regroup by (None for
    a single argument); REAL left out."""
    out, groups = [], []
    for a in active:
        if a == REAL:
            continue
        if isinstance(a, str) and a.startswith("*"):
            positions = list(range(int(a[1:]), nargs))
            out += positions
            groups.append(len(positions))
        else:
            out.append(a)
            groups.append(None)
    return tuple(out), groups


def _regrouped(flat, groups):
    out, k = [], 0
    for n in groups:
        if n is None:
            out.append(flat[k])
            k += 1
        else:
            out.append(list(flat[k:k + n]))
            k += n
    return tuple(out)


def _compiled(kind, f, active, args, kwargs):
    """(Compiled, leading arguments, keyword arguments, active parameter names)."""
    from . import pipeline
    from .api import _code_of, _kinds, _type_key
    code = _code_of(f)
    if code is not None:            # a gradient made by transpile: its generated code
        f = code(_kinds(f.fn, args, kwargs))
    target, prefix, bound_kw, params = _target(f, len(args), tuple(sorted(kwargs)))
    if "self" in active and (not prefix or prefix[0] is not _holder(f)):
        raise _refuse(f"the function called through a variable ({f!r}) is made from a "
                      "differentiated value other than as a method of an object or a "
                      "callable object; pass the value as an argument instead")
    all_args = prefix + tuple(args)
    all_kw = dict(bound_kw, **kwargs) if bound_kw else kwargs
    key = (kind, active, _type_key(all_args, all_kw))
    entries = _CACHE.setdefault(target, {})
    hit = entries.get(key)
    if hit is not None and hit[2] == len(prefix):
        return hit[0], all_args, all_kw, hit[1]
    names = _names(target, params, prefix, active, args, all_kw)
    if isinstance(target, types.FunctionType):
        _check_effects(target, names)
        kinds = _kinds(target, all_args, all_kw)
    else:
        kinds = {p: _kind(v) for p, v in zip(params, all_args)}
        kinds.update({k: _kind(v) for k, v in all_kw.items()})
    if kind == "pair":
        compiled = pipeline._pair(target, names, kinds)
    else:                       # tangents of `*xs` elements: one tuple for xs
        compiled = pipeline.jvp_function(target, pipeline._whole(names), kinds)
    entries[key] = (compiled, names, len(prefix))
    return compiled, all_args, all_kw, names


def _holder(f):
    """The object a bound method or callable object f is called on (its first argument)."""
    inner = getattr(f, "__transpile_function__", None)
    if isinstance(f, types.MethodType):
        return f.__self__
    if inner is None and not inspect.isfunction(f) and inspect.isfunction(
            getattr(type(f), "__call__", None)):
        return f
    return None


def _kind(value):
    from .analysis import value_kind
    return value_kind(value)


def _check_effects(fn, names):
    """A function reached through a value that changes its arguments in place: refused
    (the caller cannot see which of its values the call changes)."""
    from .analysis import mutated_params
    from .pipeline import unit_of
    changed = mutated_params(unit_of(fn).node)
    if changed:
        p = sorted(changed)[0]
        raise _refuse(f"{fn.__qualname__} changes its parameter '{p}' in place, and it is "
                      "called through a variable; call it by its name, or return the new "
                      "value instead", fn)


def call_forward(f, active, *args, **kwargs):
    """Forward sweep of ``f(*args, **kwargs)`` (the arguments at `active` carry a
    derivative): (value, tape for `call_backward`)."""
    flat, groups = _expanded(active, len(args))
    compiled, all_args, all_kw, _ = _compiled("pair", f, flat, args, kwargs)
    value, tape = compiled.forward(*all_args, **all_kw)
    _real_checked(value, active, f)
    # the adjoint sweep itself, not its Compiled: a function is a leaf of the tape (the
    # tape may be differentiated again, and read for its kinds, when the caller's
    # derivative code is)
    plain = flat == tuple(a for a in active if a != REAL)
    return value, (compiled.backward, tape, None if plain else groups)


def call_backward(tape, g):
    """Adjoint sweep of a `call_forward`: the adjoints of its active arguments (a tuple
    in the order of `active`)."""
    backward, inner, groups = tape
    grads = backward(inner, g)
    return grads if groups is None else _regrouped(grads, groups)


def call_jvp(f, active, tangents, *args, **kwargs):
    """Forward mode of ``f(*args, **kwargs)`` along `tangents` (one per active argument):
    (value, tangent)."""
    given = active
    active, tangents, _ = _spread(active, tangents, len(args))
    compiled, all_args, all_kw, names = _compiled("jvp", f, active, args, kwargs)
    out = _run_jvp(compiled, all_args, all_kw, names, tangents)
    _real_checked(out[0], given, f)
    return out


def _spread(active, tangents, nargs):
    """(active, tangents, groups) with each "*i" entry (a `*seq` from argument i on) and
    its tangent (a sequence, or 0.0) spread over the positions it fills (`_expanded`)."""
    flat, groups = _expanded(active, nargs)
    if flat == tuple(a for a in active if a != REAL):
        return flat, tangents, None
    spread = []
    for t, n in zip(tangents, groups):
        if n is None:
            spread.append(t)
        else:
            spread += [0.0] * n if not isinstance(t, (list, tuple)) else list(t)
    return flat, spread, groups


def _run_jvp(compiled, all_args, all_kw, names, tangents):
    """compiled's tangent function run at the arguments, one tangent per active name."""
    extra = _tangent_keywords(compiled, all_args, names, tangents)
    return compiled.function(*all_args, **all_kw, **extra)


def _tangent_keywords(compiled, all_args, names, tangents):
    """The tangent keywords of compiled's tangent function for one tangent per name."""
    from .pipeline import _whole, element_of, tangent_names
    tnames = tangent_names(compiled.target, _whole(names))
    extra = {}
    for n, t in zip(names, tangents):
        e = element_of(n)
        if e is None:
            extra[tnames[n]] = t
            continue
        if isinstance(e[1], str):               # a keyword into **kw: a dict of tangents
            extra.setdefault(tnames[e[0]], {})[e[1]] = t
            continue
        count = len(all_args) - [q.kind for q in inspect.signature(
            compiled.target).parameters.values()].index(inspect.Parameter.VAR_POSITIONAL)
        spread = extra.setdefault(tnames[e[0]], [0.0] * count)
        spread[e[1]] = t
    return {k: tuple(v) if isinstance(v, list) else v for k, v in extra.items()}


# --- derivative code calling these, differentiated again (rules/derivative_code.py) ------
#
# Forward over reverse: the tangent of `value, tape = call_forward(f, active, *args)` is
# the tangent of the generated forward sweep of f's pair (a Python function with source,
# differentiated in forward mode here, at run time, like any function called through a
# variable), in every argument that carries a tangent (not only those in `active`: the
# forward sweep is a function of all of them); the tangent of `call_backward(tape, g)` is
# that of the generated adjoint sweep, in the tape (the tangent the forward sweep gave)
# and g.


def _zero(t):
    return t is None or (type(t) in (float, int) and t == 0)


def _holder_refused(tangents, f):
    if not _zero(tangents[0]):
        raise _refuse(
            "a second derivative through a call of a function held in a variable whose "
            "function itself carries a derivative (a method of an object, a closure or "
            "partial of differentiated values) is not supported; pass those values as "
            "arguments instead", resolve(f)[0])


def call_forward_jvp(tangents, f, active, *args, **kwargs):
    """The tangent of `call_forward(f, active, *args, **kwargs)`: (tangent of the value,
    tangent of the tape), `tangents` one per positional argument (f and active first)."""
    _holder_refused(tangents, f)
    flat, _ = _expanded(active, len(args))
    compiled, all_args, all_kw, _ = _compiled("pair", f, flat, args, kwargs)
    lead = len(all_args) - len(args)
    given = [(lead + i, t) for i, t in enumerate(tangents[2:]) if t is not None]
    if not given:
        return 0.0
    _, tangent = call_jvp(compiled.forward, tuple(p for p, _ in given),
                          tuple(t for _, t in given), *all_args, **all_kw)
    if _zero(tangent):
        return 0.0
    t_value, t_inner = tangent
    return t_value, (None, t_inner, None)


def _containers_copied(value):
    """value with its lists, tuples and dicts copied, to any depth (the leaves shared):
    an adjoint sweep pops the stacks of its tape, and the tangent code runs the sweep
    once more (for the tangent) before it runs it for the value."""
    if isinstance(value, list):
        return [_containers_copied(v) for v in value]
    if type(value) is tuple:
        return tuple(_containers_copied(v) for v in value)
    if type(value) is dict:
        return {k: _containers_copied(v) for k, v in value.items()}
    return value


def call_backward_jvp(tangents, tape, g):
    """The tangent of `call_backward(tape, g)` (the adjoints it returns)."""
    backward, inner, groups = tape
    inner = _containers_copied(inner)
    t_tape, t_g = (list(tangents) + [None, None])[:2]
    t_inner = None if _zero(t_tape) else t_tape[1]
    given = [(p, t) for p, t in ((0, t_inner), (1, t_g)) if t is not None]
    if not given:
        return 0.0
    _, tangent = call_jvp(backward, tuple(p for p, _ in given),
                          tuple(t for _, t in given), inner, g)
    if _zero(tangent) or groups is None:
        return tangent
    return _regrouped(tangent, groups)


# Reverse over forward: the adjoint of the tangents and arguments of
# `value, tangent = call_jvp(f, active, tangents, *args)` is the reverse mode of the
# generated tangent function of f (its parameters and tangent keywords), at run time.

def call_jvp_vjp(k):
    """The reverse rule of call_jvp for its positional argument k: 2, the tangents (one
    adjoint per active argument); 3 on, the arguments."""
    def vjp(G, ans, f, active, tangents, *args, **kwargs):
        if _zero(G):
            return 0.0
        from .pipeline import element_of
        active, tangents, groups = _spread(active, tangents, len(args))
        compiled, all_args, all_kw, names = _compiled("jvp", f, active, args, kwargs)
        extra = _tangent_keywords(compiled, all_args, names, tangents)
        lead = len(all_args) - len(args)
        wrt = tuple(extra) if k == 2 else (lead + k - 3,)
        _, tape = call_forward(compiled.function, wrt, *all_args, **all_kw, **extra)
        grads = call_backward(tape, G)
        if k != 2:
            return grads[0]
        from .pipeline import _whole, tangent_names
        tnames = tangent_names(compiled.target, _whole(names))
        by_keyword = dict(zip(wrt, grads))
        out = []
        for n in names:
            e = element_of(n)              # a tangent inside the tuple (dict) for *a (**k)
            adjoint = by_keyword[tnames[n if e is None else e[0]]]
            out.append(adjoint if e is None else 0.0 if _zero(adjoint) else adjoint[e[1]])
        return out if groups is None else [list(a) if isinstance(a, tuple) else a
                                           for a in _regrouped(out, groups)]
    vjp.__name__ = vjp.__qualname__ = f"call_jvp_vjp{k}"
    return vjp


# --- functools.partial objects differentiated directly -----------------------------------

_PARTIALS = weakref.WeakKeyDictionary()     # partial -> the function it amounts to


def partial_function(p):
    """A Python function (with source) doing what the partial p does: its parameters are
    those p leaves (``inspect.signature(p)``: keywords p binds stay parameters with p's
    values as defaults), its body calls p's function with p's arguments. transpile.grad of
    p differentiates it (wrt counts the parameters p leaves)."""
    try:
        made = _PARTIALS.get(p)
    except TypeError:
        made = None
    if made is not None and made[1] == (p.func, p.args, p.keywords):
        return made[0]
    func = getattr(p.func, "__transpile_function__", p.func)
    if isinstance(func, functools.partial):
        func = partial_function(func)
    if not inspect.isfunction(func):
        raise TranspileError(f"{p!r}: the function of this functools.partial is not a "
                             "Python function transpile can read")
    try:
        sig = inspect.signature(p)
    except (TypeError, ValueError):
        raise TranspileError(f"cannot read the parameters of {p!r}") from None
    env = {"__builtins__": builtins, "_function": func}
    params, call, star = [], [], False
    for i, a in enumerate(p.args):
        env[f"_arg{i}"] = a
        call.append(f"_arg{i}")
    for name, q in sig.parameters.items():
        text = name
        if q.kind is q.VAR_POSITIONAL:
            text, star = "*" + name, True
            call.append("*" + name)
        elif q.kind is q.VAR_KEYWORD:
            text = "**" + name
            call.append("**" + name)
        elif q.kind is q.KEYWORD_ONLY:
            if not star:
                params.append("*")
                star = True
            call.append(f"{name}={name}")
        elif q.kind is q.POSITIONAL_ONLY:
            call.append(name)
        else:
            call.append(f"{name}={name}" if star else name)
        if q.default is not q.empty:
            env[f"_default_{name}"] = q.default
            text += f"=_default_{name}"
        params.append(text)
    if any(q.kind is q.POSITIONAL_ONLY for q in sig.parameters.values()):
        last = max(i for i, t in enumerate(params)
                   if sig.parameters.get(t.split("=")[0]) is not None
                   and sig.parameters[t.split("=")[0]].kind is inspect.Parameter.POSITIONAL_ONLY)
        params.insert(last + 1, "/")
    name = func.__name__ if func.__name__.isidentifier() else "partial"
    source = f"def {name}({', '.join(params)}):\n    return _function({', '.join(call)})\n"
    filename = f"<transpile functools.partial of {func.__qualname__} #{next(_COUNTER)}>"
    from .frontend import register_source
    register_source(filename, source)
    exec(compile(source, filename, "exec"), env)
    made = env[name]
    made.__qualname__ = f"partial({func.__qualname__})"
    try:
        _PARTIALS[p] = (made, (p.func, p.args, p.keywords))
    except TypeError:
        pass
    return made
