"""The rule registry: primitive -> how its derivative is computed.

A rule is data. For a function of scalars, the rule lists one *partial derivative template*
per argument, a Python expression in the argument names (``"math.cos(x)"`` for sin), which
the transform inlines into the generated code, multiplied by the incoming adjoint. Where an
argument has no derivative the entry is None. A rule may instead give *vjp functions*,
called at run time as ``vjp(g, ans, *args)`` and returning that argument's contribution;
this is the door for user functions whose derivative is not a short expression.

A vjp rule *declares* what its backward pass reads besides the incoming adjoint and the
arguments: ``needs_ans`` says whether it reads the result ``ans`` (when it does not, the
result need not be kept for the adjoint sweep, and ``None`` is passed in its place). It is
a declaration, never guessed from the function's code: user rules default to True (always
safe), built-in rules say it where they are written.

A rule also declares the *structure* of its primitive (`Rule.structure`): elementwise
(templates), linear or multilinear in given argument positions, piecewise linear, zero, or
explicit (a jvp and the tangents of its vjps written out). Forward mode, reverse mode and
the second-order routes are derived from it (rules/derivative_code.py), and
`supported(modes=True)` reports, per primitive, which modes that gives.

Built-in rules and user rules go through the same `defvjp`. Keys are the callable itself
(``math.sin``) or an ``ast`` operator class (``ast.Mult``).
"""
from __future__ import annotations

import ast
import inspect
import sys
from typing import Any, Callable, Literal, Sequence, overload


#: what a rule declares about complex values (``defvjp(..., complex=...)``), under
#: autograd's convention: the adjoint of z = x + iy is represented by the complex number
#: dL/dx - i dL/dy, so that a vjp of a holomorphic f is ``g * f'(z)`` (no conjugate), the
#: formula of the real case. None: the rule is written for real values, and a call whose
#: arguments or result may be complex is refused. "holomorphic": the rule's templates,
#: vjps and jvp, as written for real values, hold for complex ones (exp, sin, +, *, dot,
#: solve, fft...). "explicit": the vjps and jvp are written for complex values
#: themselves (abs, real, imag, conj, angle). In both cases the compiler takes the real
#: part of an adjoint contribution that goes to a real-valued argument.
COMPLEX = (None, "holomorphic", "explicit")
#: what a rule declares about its result's type (``defvjp(..., result=...)``): None, complex
#: where an argument is (the compiler's default); "real" whatever the arguments (np.abs,
#: np.real, np.angle, norms: their rules take the real part of the adjoint they get);
#: "complex" also for real arguments (np.fft.fft, complex(a, b)).
RESULTS = (None, "real", "complex")

STRUCTURES = ("elementwise", "linear", "multilinear", "piecewise_linear", "zero", "explicit",
              "reverse_only")


class Rule:
    """How to differentiate one primitive.

    ``structure`` is what the rule declares about the primitive, from which every mode is
    derived (rules/derivative_code.py): "elementwise" (partial-derivative templates),
    "linear" (in the argument positions ``multilinear[0]``, jointly), "multilinear"
    (linear in each group of ``multilinear``), "piecewise_linear" (linear in its tangent
    given a locally constant mask: ``jvp`` and vjps, no second-order term), "zero",
    "explicit" (``jvp`` and vjps written out; ``vjp_tangents`` the tangent of each vjp,
    which gives the second-order routes) and "reverse_only" (vjps only: forward mode by
    J v from the vjps)."""

    def __init__(self, fn, name, params, partials=None, vjps=None, env=None, zero=False,
                 derive=None, multilinear=None, unavailable=None, needs_ans=True,
                 masks=False, structure=None, jvp=None, vjp_tangents=None,
                 constant_keywords=(), template=None, several=False, complex=None,
                 result=None):
        if complex not in COMPLEX:
            raise ValueError(f"complex= must be one of {COMPLEX}, not {complex!r}")
        if result not in RESULTS:
            raise ValueError(f"result= must be one of {RESULTS}, not {result!r}")
        self.fn = fn
        self.name = name
        self.params = tuple(params) if params is not None else None
        self._partials = partials          # list of str | None (templates)
        self.vjps = vjps                   # list of callables | None
        self.env = env or {}               # how free names in templates resolve
        self.zero = zero                   # derivative is zero everywhere it exists
        self._derive = derive              # lazy: () -> list of template strings
        # linear and multilinear primitives: fn is linear in each group of argument
        # positions (jointly within a group) and constant in the others, so its tangent
        # is the sum over groups of fn with that group's arguments replaced by tangents
        self.multilinear = multilinear
        self.jvp = jvp                     # jvp(tangents, *args, **kw): forward mode
        self.vjp_tangents = vjp_tangents   # per vjp: its tangent t(tangents, g, ans, *args)
        self.zero_tangent_ok = True        # fn accepts 0.0 for a zero (multilinear) argument
        self.unavailable = unavailable     # no derivative through fn (why), except
                                           # forward mode by `multilinear` where given
        self.needs_ans = bool(needs_ans)   # vjps read the result `ans` (declared)
        self.masks = bool(masks)           # selects: its adjoint is exactly 0 for values
                                           # that do not reach the result (where, maximum,
                                           # indexing-like functions), see reverse.py
        self.constant_keywords = tuple(constant_keywords)   # keywords whose (constant)
                                           # values are added to the result: zeros in
                                           # tangent calls
        self.several = bool(several)       # the result may be a tuple or list of values
        self.templates = [list(t or ()) for t in template or ()]   # per argument: the
                                           # `@template` functions inlined where they apply
        self.complex = complex             # None | "holomorphic" | "explicit": how the
                                           # rule holds for complex values (COMPLEX)
        self.result = result               # None | "real" | "complex": RESULTS
        self.no_derivative = {}            # argument position -> why its derivative has
                                           # no closed form: refused where it is active
                                           # (a None entry alone means no derivative flows)
        self.defaults = {}                 # parameter -> the literal default of one
                                           # that may be left out (defvjp's params=)
        self.structure = structure or _structure_of(self)
        self.derived = {}                  # mode -> None | reason (second-order routes),
                                           # filled in by rules/derivative_code.py
        self._parsed = None

    @property
    def partials(self):
        """Partial-derivative templates as parsed ASTs (None where not differentiable)."""
        if self._parsed is None:
            if self._partials is None and self._derive is not None:
                self._partials = self._derive()
            if self._partials is None:
                return None
            self._parsed = [None if p is None else ast.parse(p, mode="eval").body
                            for p in self._partials]
        return self._parsed

    def partial_sources(self):
        self.partials
        return self._partials

    def __repr__(self):
        return f"Rule({self.name})"


def _structure_of(rule):
    if rule.zero:
        return "zero"
    if rule.multilinear is not None:
        return "linear" if len(rule.multilinear) == 1 else "multilinear"
    if rule.vjps is None:
        return "elementwise" if (rule._partials is not None or rule._derive is not None) \
            else "reverse_only"
    if rule.jvp is not None or rule.vjp_tangents is not None:
        return "explicit"
    return "reverse_only"


def no_derivative_message(rule, i):
    """The refusal for differentiating ``rule``'s primitive in argument position i, where
    its derivative has no closed form (`Rule.no_derivative`)."""
    what = rule.params[i] if rule.params and i < len(rule.params) else f"argument {i + 1}"
    return (f"{rule.name} has no derivative with respect to {what!r} "
            f"({rule.no_derivative[i]}); pass it a constant")


_RULES = {}
_RULED = set()          # the callables with a rule, for any number of arguments
VERSION = [0]          # bumped by every defvjp / defjvp: cached derivatives compare it


def _key(fn, nargs):
    return (fn, nargs)


def defvjp(fn: Callable[..., Any], *derivatives: str | Callable[..., Any] | None,
           params: str | Sequence[str] | None = None, nargs: int | None = None,
           name: str | None = None, zero: bool = False, env: dict[str, Any] | None = None,
           derive: Callable[[], list[str | None]] | None = None,
           multilinear: Sequence[Sequence[int]] | None = None,
           unavailable: str | None = None, needs_ans: bool = True,
           masks: bool = False, linear: Sequence[int] | None = None,
           piecewise_linear: bool = False, jvp: Callable[..., Any] | None = None,
           vjp_tangents: Sequence[Callable[..., Any] | None] | None = None,
           constant_keywords: Sequence[str] = (),
           template: Sequence[Any] | None = None, several: bool = False,
           complex: Literal["holomorphic", "explicit"] | None = None,
           result: Literal["real", "complex"] | None = None,
           no_derivative: dict[int, str] | None = None) -> Rule:
    """Register the derivative (reverse-mode rule) of ``fn``.

    Calls of ``fn`` inside a function being differentiated then use this rule instead
    of ``fn``'s source (a function without Python source needs one). Built-in rules go
    through the same door. Registering again replaces the earlier rule.

    Parameters
    ----------
    fn : callable
        The function (or an ``ast`` operator class) the rule is for.
    *derivatives : str, callable or None
        One entry per argument of ``fn``, each either

        * a string: the partial derivative as an expression in the parameter names,
          inlined into the generated code and multiplied by the incoming adjoint, e.g.
          ``defvjp(math.atan2, "x / (x*x + y*y)", "-y / (x*x + y*y)", params="y, x")``;
        * a callable ``vjp(g, ans, *args)`` returning that argument's share of the
          gradient (``g``: the adjoint of the result, ``ans``: the result), called at
          run time;
        * None: not differentiable with respect to that argument.

        Strings and callables are not mixed in one rule. Names in string templates
        resolve in the caller's module (``math``, ``np``, helpers).
    params : str or sequence of str, optional
        The parameter names the templates use (``"y, x"``); default: ``fn``'s signature.
        A name may carry a literal default (``"x, loc=0.0, scale=1.0"``) for a function
        whose signature does not show it (``scipy.stats.norm.logpdf(x, *args, **kwds)``):
        a call that leaves it out is differentiated as if it passed the default.
    nargs : int, optional
        Register the rule for calls with this many positional arguments only (e.g.
        2-argument ``math.log``).
    name : str, optional
        The name in messages and in `transpile.rules.supported`; default:
        ``module.qualname`` of ``fn``.
    zero : bool, optional
        ``fn`` is piecewise constant (floor, round): no adjoint flows through it.
        (Structure "zero".)
    env : dict, optional
        The namespace template names resolve in (default: the caller's globals).
    derive : callable, optional
        ``() -> templates``, computed lazily on first use (e.g. by sympy).
    linear : sequence of int, optional
        Structure "linear": ``fn`` is jointly linear in these argument positions
        (``linear=(0,)`` for sum, reshape, take...; ``(1, 2)`` for ``where``) and constant
        in the others, and its vjp functions read nothing of the values of those
        arguments (only shapes). Every mode follows: the tangent is ``fn`` applied to the
        tangents, a vjp's own tangent is itself applied to the tangent of ``g``, and the
        reverse rule of a vjp is ``fn`` applied to the incoming adjoint.
    multilinear : sequence of sequences of int, optional
        Structure "multilinear": groups of argument positions ``fn`` is linear in, each
        group jointly, the groups separately (``[(0,), (1,)]`` for dot, matmul, outer,
        kron...). The tangent is the sum over groups of ``fn`` with that group replaced
        by its tangents; vjp i is linear in ``g`` and in the other groups' operands, and
        its reverse rule is read off the same structure. One group is the same as
        ``linear``.
    piecewise_linear : bool, optional
        Structure "piecewise linear" (max/min reductions, sort, clip, median): ``fn`` is
        linear in its tangent given a mask that is locally constant, so the ``jvp``
        (default: J v from the vjps, one per output element) is linear in the tangents,
        the vjps are linear in ``g`` and nothing else varies: all second-order terms are
        0 almost everywhere. Every second-order route follows from ``jvp`` and the vjps.
    jvp : callable, optional
        The forward-mode derivative, ``jvp(tangents, *args, **kwargs)`` (as for
        `defjvp`). With vjp functions and no other structure: structure "explicit"
        (without it, an explicit rule's forward mode is J v from the vjps).
    vjp_tangents : sequence of callables or None, optional
        Structure "explicit", second order: one entry per vjp function, its tangent
        ``t(tangents, g, ans, *args, **kwargs)`` (``tangents`` has one entry per argument
        of the vjp, ``g`` and ``ans`` first, None where none flows). With ``jvp`` and the
        vjps this gives every second-order route (forward over reverse, reverse over
        forward, reverse over reverse) by the symmetry of second derivatives.
    constant_keywords : sequence of str, optional
        Keywords whose values ``fn`` adds to (or places in) its result (``initial=`` of
        sum, ``constant_values=`` of pad, ``prepend=`` of diff): zeros in tangents.
    unavailable : str, optional
        A message: differentiating through ``fn`` is refused with it (forward mode
        still works where ``multilinear`` is given).
    needs_ans : bool, optional
        Whether the vjp functions read their ``ans`` argument (the result of ``fn``).
        The default True is always safe; False lets the compiler drop the result from
        the adjoint sweep and pass None instead.
    masks : bool, optional
        Declares a selection (np.where, maximum, take...): the adjoint it passes back is
        exactly 0 for the argument values that do not reach its result, and the compiler
        keeps it 0 there even where partial derivatives further back are inf or nan.
    template : sequence, optional
        For vjp rules: per argument, a sequence of functions made by `template`, each a
        Python function ``(g, ans, *params)`` whose body is ``return <expression>`` in
        plain NumPy, valid under the condition it declares. Where the compiler proves a
        condition when it writes the code, it inlines that expression (parameter names
        replaced by the call's arguments) instead of calling the vjp function.

    several : bool, optional
        ``fn`` may return a tuple or list of values (np.split, slogdet, eigh,
        linspace with ``retstep=True``): its result is not taken for an array.
    complex : {None, "holomorphic", "explicit"}, optional
        How the rule holds for complex values (see `COMPLEX`): None (default) refuses
        complex arguments; "holomorphic" says the real-valued formulas hold as written
        (``g * f'(z)``); "explicit" says the vjps and jvp are written for complex values.
    result : {None, "real", "complex"}, optional
        The type of the result whatever the arguments' (see `RESULTS`): "real" for a
        function of complex values that returns real ones (np.abs), "complex" for one that
        returns complex values from real ones (np.fft.fft); None: complex where an
        argument is.
    no_derivative : dict, optional
        Argument position -> why that argument has no derivative (no closed form, an
        integer count): where it carries a derivative, differentiating the call is one
        `TranspileError` saying so (a None entry alone means no derivative flows).
    Returns
    -------
    Rule
        The registered rule.

    Raises
    ------
    ValueError
        When strings and callables are mixed.

    Examples
    --------
    >>> import math, transpile
    >>> def softplus(x):
    ...     return math.log1p(math.exp(x))
    >>> rule = transpile.defvjp(softplus, "1 / (1 + math.exp(-x))")
    >>> def f(x):
    ...     return softplus(x) * 2.0
    >>> transpile.grad(f)(0.0)            # 2 * sigmoid(0)
    1.0
    >>> def clip01(x):
    ...     return min(max(x, 0.0), 1.0)
    >>> rule = transpile.defvjp(clip01, lambda g, ans, x: g if 0 < x < 1 else 0.0)
    >>> transpile.grad(clip01)(0.5), transpile.grad(clip01)(2.0)
    (1.0, 0.0)
    """
    caller = sys._getframe(1).f_globals
    builtin = caller.get("__name__", "").startswith("transpile.")
    if not builtin:
        load_builtin()        # a user rule: after the built-in ones (it may replace one)
    if isinstance(params, str):
        params = [p.strip() for p in params.split(",") if p.strip()]
    defaults = {}
    params = list(params) if params is not None else None
    for i, p in enumerate(params or ()):       # "scale=1.0": a default value
        if "=" in p:
            p, value = (part.strip() for part in p.split("=", 1))
            params[i], defaults[p] = p, ast.literal_eval(value)
    if params is None and not zero:
        try:
            sig = inspect.signature(fn)
            params = [p.name for p in sig.parameters.values()]
        except (TypeError, ValueError):
            params = [f"x{i}" for i in range(len(derivatives))] or ["x"]
    if env is None:
        env = dict(caller)
    strings = [d for d in derivatives if isinstance(d, str)]
    calls = [d for d in derivatives if callable(d)]
    if strings and calls:
        raise ValueError("defvjp: give either template strings or vjp functions, not both")
    if name is None:
        name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
        mod = getattr(fn, "__module__", None)
        if mod and mod not in ("builtins",) and not isinstance(fn, type):
            name = f"{mod}.{name}"
    structure = None
    if linear is not None:
        if multilinear is not None:
            raise ValueError("defvjp: give linear= or multilinear=, not both")
        multilinear = [tuple(linear)]
    if multilinear is not None:
        multilinear = [tuple(group) for group in multilinear]
    if piecewise_linear:
        if not calls:
            raise ValueError("defvjp: piecewise_linear=True goes with vjp functions")
        structure = "piecewise_linear"
    if (jvp is not None or vjp_tangents is not None) and not calls:
        raise ValueError("defvjp: jvp= and vjp_tangents= go with vjp functions")
    rule = Rule(fn, name, params,
                partials=list(derivatives) if (strings or (not calls and derivatives)) else None,
                vjps=list(derivatives) if calls else None,
                env=env, zero=zero, derive=derive, multilinear=multilinear,
                unavailable=unavailable, needs_ans=needs_ans, masks=masks,
                structure=structure, jvp=jvp,
                vjp_tangents=list(vjp_tangents) if vjp_tangents is not None else None,
                constant_keywords=constant_keywords, template=template, several=several,
                complex=complex, result=result)
    rule.defaults = defaults
    rule.no_derivative = dict(no_derivative or {})
    rule.builtin = builtin             # registered by transpile's own modules
    _RULES[_key(fn, nargs)] = rule
    _RULED.add(fn)
    if caller.get("__name__") not in _QUIET:
        VERSION[0] += 1
    _derive_modes(rule)
    return rule


#: called with every new rule (rules/derivative_code.py): the rules of what derivative
#: code calls for it (its vjp and jvp functions), read off its structure
DERIVERS = []


def _derive_modes(rule):
    for derive_rule in DERIVERS:
        derive_rule(rule)


#: the rules of what derivative code calls (a vjp or jvp function of a rule), derived
#: when first looked up rather than with the rule they come from (deriving all of them
#: took most of the time of a first NumPy gradient in a fresh process): function ->
#: (the rule it belongs to, the callable that registers its rules)
_PENDING = {}


def defer(fn, source_rule, register):
    """Register fn's rules (by calling `register()`) when fn is first looked up; a later
    deferral for fn replaces this one, as registering again replaces a rule."""
    _PENDING[fn] = (source_rule, register)


def pending_rule(fn):
    """The rule whose deferred derivation would give fn its rules, or None."""
    entry = _PENDING.get(fn)
    return entry[0] if entry is not None else None


def _derive_pending(fn=None):
    """Carry out the deferred derivation for fn (all of them: None)."""
    for f in [fn] if fn is not None else list(_PENDING):
        entry = _PENDING.pop(f, None)
        if entry is not None:
            entry[1]()


class Template:
    """A vjp written as code to inline: ``fn(g, ans, *params)`` has one statement,
    ``return <expression>``. It applies to a call whose arguments bind to its signature
    (so a keyword it does not name, ``where=``, ``out=``, rules it out) and when

    * ``ndim``: the named parameters are float64 NumPy arrays of these numbers of
      dimensions (an int, or a tuple of the allowed ones);
    * ``values``: the named parameters are literal constants equal to these values
      (a parameter not given has its default from the signature);
    * ``ints``: the named parameters are literal ints (an ``axis=1``);
    * ``exact``: the incoming adjoint ``g`` has exactly the result's shape (default True;
      False: a Python number standing for itself broadcast over the result will do).
    """

    def __init__(self, fn, ndim=None, values=None, ints=(), exact=True):
        import textwrap
        self.fn = fn
        self.ndim = {k: (v,) if isinstance(v, int) else tuple(v)
                     for k, v in (ndim or {}).items()}
        self.values, self.ints, self.exact = dict(values or {}), tuple(ints), exact
        self.signature = inspect.signature(fn)
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        body = tree.body[0].body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]                               # a docstring
        if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
            raise ValueError(f"template {fn.__name__}: the body must be one `return <expr>`")
        self.expr = body[0].value
        free = {n.id for n in ast.walk(self.expr) if isinstance(n, ast.Name)} - set(
            self.signature.parameters)
        self.env = {n: fn.__globals__[n] for n in free if n in fn.__globals__}

    def __repr__(self):
        return f"Template({self.fn.__name__})"


def template(ndim=None, values=None, ints=(), exact=True):
    """Decorator: the function is a `Template` (see there) with this condition."""
    return lambda fn: Template(fn, ndim, values, ints, exact)


def defjvp(fn: Callable[..., Any], jvp: Callable[..., Any], nargs: int | None = None) -> Rule:
    """Register the forward-mode derivative of ``fn``, beside its `defvjp` rule.

    Forward mode (`transpile.jvp`, ``hvp``, ``hessian``, ``jacobian``) then calls
    ``jvp`` instead of deriving the tangent from the reverse rule.

    Parameters
    ----------
    fn : callable
        A function that has a rule already (`defvjp`).
    jvp : callable
        ``jvp(tangents, *args, **kwargs)`` returns the tangent of
        ``fn(*args, **kwargs)``; ``tangents`` has one entry per positional argument,
        None where that argument carries no tangent.
    nargs : int, optional
        The arity the rule was registered for (as given to `defvjp`).

    Returns
    -------
    Rule
        The rule, now with its forward-mode derivative.

    Raises
    ------
    ValueError
        When ``fn`` has no rule yet.

    Examples
    --------
    >>> import math, transpile
    >>> def cube(x):
    ...     return x * x * x
    >>> rule = transpile.defvjp(cube, "3 * x * x")
    >>> rule = transpile.defjvp(cube, lambda tangents, x: 3 * x * x * tangents[0])
    >>> def f(x):
    ...     return cube(x) + x
    >>> transpile.jvp(f, (2.0,), (1.0,))  # forward mode calls the jvp: 3 x^2 + 1
    (10.0, 13.0)
    """
    caller = sys._getframe(1).f_globals.get("__name__", "")
    if not caller.startswith("transpile."):
        load_builtin()
    rule = _RULES.get(_key(fn, nargs))
    if rule is None:
        raise ValueError(f"defjvp: register {fn!r} with defvjp first")
    rule.jvp = jvp
    if rule.structure == "reverse_only":
        rule.structure = "explicit"
    if caller not in _QUIET:
        VERSION[0] += 1
    _derive_modes(rule)
    return rule


def lookup(fn: Any, nargs: int | None = None) -> Rule | None:
    """The rule for ``fn`` called with ``nargs`` positional arguments, or None."""
    _load_for(fn)
    try:
        if fn in _PENDING:
            _derive_pending(fn)
        rule = _RULES.get(_key(fn, nargs))
        if rule is None:
            rule = _RULES.get(_key(fn, None))
    except TypeError:          # unhashable callable
        return None
    if rule is None and _load_lazy(fn):
        return lookup(fn, nargs)
    return rule


def has_rule(fn: Any) -> bool:
    """Has ``fn`` a rule, for some number of positional arguments."""
    _load_for(fn)
    try:
        if fn in _PENDING:
            _derive_pending(fn)
        if fn in _RULED:
            return True
    except TypeError:          # unhashable callable
        return False
    return _load_lazy(fn) and has_rule(fn)


#: the built-in rules, in tiers of modules imported on first need, so that importing
#: transpile registers none: "python" (operators, math, numeric builtins, transpile's
#: grad_hook and stop_gradient) with the first
#: lookup, "numpy" (NumPy, numpy.linalg, numpy.fft and the rules of what derivative code
#: calls, rules/derivative_code.py) with the first lookup of a callable of NumPy, SciPy or
#: transpile itself (`_numpy_side`), or when the whole registry is read (`supported`, a
#: user rule: `load_builtin`). Lookups of other callables find the same rule (or none)
#: whether or not the numpy tier is loaded: it registers only callables `_numpy_side`
#: recognizes (tests/test_startup.py checks it)
TIERS = (("python", ("transpile.rules.scalar", "transpile.hooks")),
         ("numpy", ("transpile.rules.numpy_", "transpile.rules.linalg", "transpile.rules.fft",
                    "transpile.rules.derivative_code")))
_TIERS_LOADED = set()
#: the tiers' modules: their rules change no lookup made before (see above), so they leave
#: `VERSION` alone (however the module comes to be imported) and no derivative built
#: earlier is rebuilt for them; the rules of optional libraries (`LAZY_RULES`) still bump it
_QUIET = {module for _, modules in TIERS for module in modules}
#: module-name prefixes whose callables' rules live in the numpy tier
NUMPY_SIDE = ("numpy", "scipy", "transpile")


def _load_tier(name):
    if name in _TIERS_LOADED:
        return
    _TIERS_LOADED.add(name)        # first: a lookup while its modules load must not recurse
    import importlib
    for tier, modules in TIERS:
        if tier == name:
            for module in modules:
                importlib.import_module(module)
    if name == "numpy":
        READY[0] = True            # optional libraries' rules may load from now on


def load_builtin():
    """Register every built-in rule (the tiers of `TIERS`; optional libraries' rules
    still wait for their library, `LAZY_RULES`)."""
    for tier, _ in TIERS:
        _load_tier(tier)


def _module_of(fn):
    """The name of the module fn comes from (a method's: its class's), or None (a ufunc
    says nothing of where it is defined)."""
    module = getattr(fn, "__module__", None)
    if not isinstance(module, str):
        owner = getattr(fn, "__objclass__", None) or getattr(fn, "__self__", None)
        module = getattr(owner, "__module__", None) if owner is not None else None
        if not isinstance(module, str) and owner is not None:
            module = getattr(type(owner), "__module__", None)
    return module if isinstance(module, str) else None


def _numpy_side(fn):
    """Is fn a callable whose rule (if any) the numpy tier registers: one of NumPy, SciPy or
    transpile (a ufunc, an array method, a runtime helper, a vjp function), or the
    operator @ (numpy.matmul)."""
    if fn is ast.MatMult:
        return True
    module = _module_of(fn)
    return module is not None and module.startswith(NUMPY_SIDE)


def _load_for(fn):
    """Load the tiers a lookup of fn needs (see `TIERS`)."""
    if "python" not in _TIERS_LOADED:
        _load_tier("python")
    if "numpy" not in _TIERS_LOADED:
        try:
            if _numpy_side(fn):
                _load_tier("numpy")
        except Exception:          # an object whose attributes raise: no rule of ours
            pass


#: rule modules for optional libraries: loaded the first time a lookup misses after the
#: library has been imported (by the user's code), so that importing transpile never
#: imports them. library -> the module of transpile's rules for it
LAZY_RULES = {"scipy": "transpile.rules.scipy_"}
_ANY = object()
_LOADED = set()
#: set once the numpy tier (the built-in rules and the machinery that derives their
#: modes (rules/derivative_code.py) are in place: a lookup while they are being registered
#: (the library imported before transpile) must not load the optional rules half-way,
#: where they would miss the derivation of their second-order rules
READY = [False]


def _load_lazy(fn=_ANY):
    """Import the rule modules of the optional libraries imported since the last call
    that fn may come from (a callable of that library, or one that does not say where it
    comes from, as ufuncs; by default any); True when one was imported (a lookup may then
    find what it missed). A user's function looked up for a rule loads none: a library
    such as JAX importing scipy must not cost the first gradient the import of
    scipy.stats, signal and integrate."""
    if not READY[0]:
        return False
    loaded = False
    module = None if fn is _ANY else _module_of(fn)
    for library, rules in LAZY_RULES.items():
        if module is not None and module.partition(".")[0] != library:
            continue
        if library not in _LOADED and library in sys.modules:
            _LOADED.add(library)
            load_builtin()
            import importlib
            importlib.import_module(rules)
            loaded = True
    return loaded


# rules for what generated derivative code calls (rules/derivative_code.py), not listed
INTERNAL_PREFIXES = ("transpile.runtime.", "transpile.rules.", "the reverse rule of ",
                     "the forward rule of ")
#: the modes `supported(modes=True)` reports
MODES = ("reverse", "forward", "forward-over-reverse", "reverse-over-forward",
         "reverse-over-reverse")


@overload
def supported(modes: Literal[False] = False) -> list[str]: ...


@overload
def supported(modes: Literal[True]) -> dict[str, dict[str, str | None]]: ...


def supported(modes: bool = False) -> list[str] | dict[str, dict[str, str | None]]:
    """Names of all callables (and operators) that have derivative rules.

    Parameters
    ----------
    modes : bool, optional
        False (default): the sorted names. True: for each name, which modes of
        differentiation its rule gives: ``{name: {mode: None | reason}}`` for the modes
        ``"reverse"`` (`transpile.grad`), ``"forward"`` (`transpile.jvp`),
        ``"forward-over-reverse"`` and ``"reverse-over-forward"`` (the two routes of
        `transpile.hvp`) and ``"reverse-over-reverse"`` (``grad(grad(f))``); None means
        available, a string is the message a refusal gives. Computed from the registry:
        from what each rule declares and the rules of what its derivative code calls.

    Returns
    -------
    list of str, or dict
        Sorted names (``"math.sin"``, ``"numpy.tanh"``, ...), or the modes by name; the
        rules transpile keeps for its own generated code are left out. Rules for an
        optional library (SciPy) are listed once the library has been imported.

    Examples
    --------
    >>> import transpile
    >>> "math.sin" in transpile.rules.supported()
    True
    >>> transpile.rules.supported(modes=True)["numpy.sort"]["reverse-over-forward"] is None
    True
    """
    load_builtin()
    _load_lazy()                   # the rules of optional libraries the user has imported
    _derive_pending()
    rules = [rule for rule in _RULES.values() if not rule.name.startswith(INTERNAL_PREFIXES)]
    if not modes:
        return sorted({rule.name for rule in rules})
    from .derivative_code import mode_status
    out = {}
    for rule in sorted(rules, key=lambda r: r.name):
        status = mode_status(rule)
        merged = out.setdefault(rule.name, {m: None for m in MODES})
        for m in MODES:                     # several arities: a mode any of them refuses
            if merged[m] is None:
                merged[m] = status[m]
    return out


def key_of(rule):
    """(callable, nargs) under which `rule` is registered."""
    for (fn, nargs), r in _RULES.items():
        if r is rule:
            return fn, nargs
    raise KeyError(rule)
