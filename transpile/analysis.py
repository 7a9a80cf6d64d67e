"""Analyses over normalized code: activity, value kinds, assignment sites.

* activity: which variables carry a derivative (depend on an active input through
  differentiable operations). Flow-insensitive fixpoint: conservative, never misses one.
  Integers from ``range``/``len``/``//``, booleans and comparisons are never active.
* kinds: which variables hold lists or tuples, dicts or objects (their adjoints are lists
  or dicts, accumulated with ``add``) rather than numbers or arrays (accumulated with
  ``+``); see "value kinds" below.
* sites: where each variable is assigned and whether inside a loop; a variable assigned
  more than once (or in a loop, or a reassigned parameter) is *overwritten*, so the reverse
  sweep must save and restore any value of it that the adjoint code reads.
"""
from __future__ import annotations

import ast
import inspect
import types
from typing import Literal

from . import astutil as A
from .namespaces import is_foreign, is_namespace_getter
from .errors import TranspileError
from .runtime import LIST_RESULTS
from .rules import containers

def _creates_complex(fn, depth=0):
    """May the Python function fn make complex values from real ones: a complex literal or
    global, a call of a rule whose result is complex (np.fft.fft, complex(a, b)), a complex
    ``dtype=`` or ``astype``, or a call of a function of the user's that may (a few levels
    down)? Read from its source; a function transpile cannot read is taken to may."""
    from .rules import lookup
    try:
        from .pipeline import unit_of
        unit = unit_of(fn)
    except Exception:
        return True
    for n in A.nodes(unit.node):
        if isinstance(n, ast.Constant) and isinstance(n.value, complex):
            return True
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and \
                is_complex_value(unit.lookup(n.id), deep=False):
            return True
        if not isinstance(n, ast.Call):
            continue
        for k in n.keywords:
            if k.arg == "dtype" and _complex_dtype(unit.resolve(k.value)
                                                   if not isinstance(k.value, ast.Constant)
                                                   else k.value.value):
                return True
        if isinstance(n.func, ast.Attribute) and n.func.attr == "astype" and n.args and (
                _complex_dtype(n.args[0].value) if isinstance(n.args[0], ast.Constant)
                else _complex_dtype(unit.resolve(n.args[0]))):
            return True
        obj = unit.resolve(n.func)
        if obj is None or is_namespace_getter(obj):
            continue
        try:
            rule = lookup(obj, len(n.args))
        except TypeError:
            rule = None
        if getattr(rule, "result", None) == "complex":
            return True
        if inspect.isfunction(obj) and obj is not fn and depth < 3 and \
                _creates_complex(obj, depth + 1):
            return True
    return False


def walk_body(stmts, depth=0):
    """Yield (stmt, loop_depth) for every statement, recursively."""
    for s in stmts:
        yield s, depth
        if isinstance(s, ast.If):
            yield from walk_body(s.body, depth)
            yield from walk_body(s.orelse, depth)
        elif isinstance(s, (ast.For, ast.While)):
            yield from walk_body(s.body, depth + 1)
        elif isinstance(s, ast.Try):
            for part in [s.body] + [h.body for h in s.handlers] + [s.orelse, s.finalbody]:
                yield from walk_body(part, depth)


def expr_names(e):
    """Names whose values flow (differentiably) into expression e."""
    if e is None or A.get_tag(e, "inactive"):
        return set()
    if isinstance(e, ast.Name):
        return {e.id}
    if isinstance(e, ast.Constant):
        return set()
    if isinstance(e, ast.BinOp):
        if isinstance(e.op, ast.FloorDiv):
            return set()
        return expr_names(e.left) | expr_names(e.right)
    if isinstance(e, ast.UnaryOp):
        return expr_names(e.operand)
    if isinstance(e, ast.Call):
        out = set()
        for a in e.args:
            out |= expr_names(a)
        for k in e.keywords:
            out |= expr_names(k.value)
        if isinstance(e.func, ast.Attribute) and A.get_tag(e, "special") == "method":
            out |= expr_names(e.func.value)
        if A.get_tag(e, "special") in ("opaque", "dynamic"):
            out |= A.names_loaded(e.func)   # a local callable (one may close over x)
        return out
    if isinstance(e, ast.Subscript):
        return expr_names(e.value)
    if isinstance(e, ast.Attribute):
        return expr_names(e.value)
    if isinstance(e, (ast.List, ast.Tuple)):
        out = set()
        for x in e.elts:
            out |= expr_names(x)
        return out
    return A.names_loaded(e)


# --- value kinds ------------------------------------------------------------------------
# What a variable holds, as generated code is specialised on it: a number, an array, a
# list or tuple (NamedTuples included), a dict, an object whose attributes are its values
# (a dataclass, an instance of a class of yours: tree.py's plain objects), a module passed
# as an argument (its functions are not visible), or unknown. One lattice: None (nothing
# known yet, the bottom of the fixpoint) < SCALAR < ARRAY (a number meeting an array may
# become one) < UNKNOWN; SEQ, MAP, OBJECT and MODULE join only with themselves. Kinds are
# plain strings so that they can key caches (`pipeline`, `cache`); `Kind` is their type.
#
# SEQ, MAP and OBJECT are *structures*: their adjoints and tangents are containers
# (runtime.zeros_like: lists for SEQ, dicts keyed by key or attribute name for MAP and
# OBJECT), accumulated with runtime.add. Beside a structure's kind a kinds mapping keeps
# the join of the kinds of what it holds under `elements_key(name)` ("xs[]": a list's
# elements, a dict's values, an object's attributes), as `api._kinds` passes them for
# parameters and the fixpoint finds them for local names (displays, element and attribute
# stores). A dict's keys carry no derivative: `list(d)`, `sorted(d)`, `d.keys()` of a MAP
# are inactive (see `keys_of_map`).
Kind = Literal["scalar", "array", "seq", "map", "object", "module", "unknown"]
SCALAR: Kind = "scalar"
ARRAY: Kind = "array"
SEQ: Kind = "seq"
MAP: Kind = "map"
OBJECT: Kind = "object"
UNKNOWN: Kind = "unknown"
MODULE: Kind = "module"
STRUCTURES = (SEQ, MAP, OBJECT)


def elements_key(name):
    """The key of a structure parameter's element kind in a kinds mapping
    (``{"xs": SEQ, elements_key("xs"): ARRAY}``; a dict's values, an object's attributes),
    as `api` and callers pass them."""
    return name + "[]"
SHAPE_ATTRS = {"shape", "ndim", "size", "dtype", "itemsize", "nbytes"}

# --- complex values -----------------------------------------------------------------------
# Which variables may hold complex numbers (`Analysis.complex`): the parameters whose
# arguments are or hold complex values (kinds entry `complex_key(name)`, api._kinds), and by
# a fixpoint every variable assigned from an expression that may be complex (`may_be_complex`:
# a complex literal or global, an operand that may be, a rule whose result is complex, a
# call with a complex `dtype=`). The transforms refuse a rule that does not declare how it
# holds for complex values (Rule.complex) where its arguments or result may be complex, and
# take the real part of an adjoint contribution that goes to a variable that is surely real
# (autograd's convention: registry.COMPLEX).
COMPLEX_SUFFIX = ".complex"
#: the run-time helpers of calls through a variable (calls.py): their results are complex
#: where the function called (their first argument) makes complex values
CALL_HELPERS = ("transpile.runtime.call_forward", "transpile.runtime.call_jvp")


def complex_key(name):
    """The kinds entry saying that parameter `name`'s argument is or holds complex
    values (api._kinds; the transforms pass it on to the functions they call)."""
    return name + COMPLEX_SUFFIX


def is_complex_value(value, deep=True):
    """Is value a complex number or array, or a list, tuple or dict holding one (with
    `deep`, any structure tree.py sees into: dataclasses, objects)?"""
    import numpy
    if isinstance(value, (complex, numpy.complexfloating)):
        return True
    if isinstance(value, numpy.ndarray):
        return value.dtype.kind == "c"
    from .namespaces import dtype_kind, is_foreign
    if is_foreign(value):
        return dtype_kind(value) == "c"
    if isinstance(value, (list, tuple, dict)) or (
            deep and getattr(value, "__dict__", None) is not None):
        from . import tree
        if isinstance(value, (list, tuple, dict)) or tree.is_node(value):
            try:
                return any(is_complex_value(leaf) for leaf in tree.leaves(value)
                           if leaf is not value)
            except Exception:            # a structure transpile does not see into
                return False
    return False


# --- lazy values --------------------------------------------------------------------------
# Which variables may hold values computed from a lazy array (`Analysis.lazy`): the
# parameters whose arguments are or hold Dask arrays (kinds entry `lazy_key(name)`, the
# backend's name, api._kinds), and by a fixpoint every variable assigned from an
# expression that reads one other than through its shape (`x.shape`, `len(x)`). Control
# flow on such a value (an `if` or `while` test, `range(n)`, `float(v)`, `v.item()`) would
# compute the array where the branch is taken: refused at its line, naming the backend
# (`Analysis._check_lazy_control_flow`), never a silent computation of the whole array.
LAZY_SUFFIX = ".lazy"
#: the namespaces whose arrays NumPy's own functions and rules compute with
NUMPY_DISPATCHED = {"numpy", "array_api_compat.numpy", "array_api_compat.dask.array",
                    "array_api_compat.cupy", "cupy"}
#: kinds entry naming the backend of a parameter's arrays that cannot be written in place
IMMUTABLE_SUFFIX = ".immutable"
#: calls that turn a value into a Python number or bool (computing a lazy array)
_CONCRETE_CALLS = {"float", "int", "bool", "complex", "range"}
_CONCRETE_METHODS = {"item", "tolist", "__bool__", "__float__", "__index__"}


def lazy_key(name):
    """The kinds entry naming the lazy backend ("Dask") of parameter `name`'s argument,
    where it is or holds a lazy array (api._kinds; the transforms pass it on)."""
    return name + LAZY_SUFFIX


def lazy_backend(value):
    """The backend of a lazy array value is or holds ("Dask"), or None."""
    from .namespaces import backend, is_lazy
    if is_lazy(value):
        return backend(value)
    if isinstance(value, (list, tuple, dict)) or getattr(value, "__dict__", None) is not None:
        from . import tree
        try:
            leaves = [leaf for leaf in tree.leaves(value) if leaf is not value] if (
                isinstance(value, (list, tuple, dict)) or tree.is_node(value)) else []
        except Exception:                # a structure transpile does not see into
            return None
        return next((backend(leaf) for leaf in leaves if is_lazy(leaf)), None)
    return None


#: builtins that read no element of an array they are given
_NO_VALUES = {"len", "hasattr", "isinstance", "type", "callable", "id"}


def value_names(e):
    """The names whose values (not only shapes) expression e reads: `x` in `x + 1` and
    `x[0]`, not in `x.shape[0]`, `x.ndim`, `len(x)` or `isinstance(x, ...)`."""
    if isinstance(e, ast.Attribute) and e.attr in SHAPE_ATTRS:
        return set()
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id in _NO_VALUES:
        return set()
    if isinstance(e, ast.Name):
        return {e.id}
    out = set()
    for child in ast.iter_child_nodes(e):
        if isinstance(child, ast.expr):
            out |= value_names(child)
    return out


def complex_refusal(rule):
    """Why a rule that declares nothing about complex values is refused for them."""
    from .rules.registry import INTERNAL_PREFIXES
    if rule.name.startswith(INTERNAL_PREFIXES):
        return "second derivatives of functions of complex values are not available yet"
    return (f"{rule.name} has no derivative rule for complex values yet (its rule is "
            "written for real ones); take np.real / np.imag / np.abs first, or register a "
            "complex rule with transpile.defvjp(..., complex='holomorphic' or 'explicit')")


def _target_root(t):
    """The variable an assignment target writes: `x`, or `xs` of `xs[i]`, `o.a`."""
    while isinstance(t, (ast.Subscript, ast.Attribute)):
        t = t.value
    return t.id if isinstance(t, ast.Name) else None


def _complex_dtype(obj):
    """Does obj (a dtype, a type, a dtype string) name a complex type?"""
    import numpy
    if obj is None:
        return False
    try:
        return numpy.dtype(obj).kind == "c"
    except (TypeError, ValueError):
        return False


def value_kind(value):
    """The kind of a run-time value, as the transform specializes on it."""
    if isinstance(value, (bool, int, float, complex)):
        return SCALAR
    try:
        import numpy
        if isinstance(value, numpy.ndarray):
            return ARRAY
        if isinstance(value, numpy.generic):
            return SCALAR if isinstance(value, numpy.floating) else ARRAY
    except ImportError:          # pragma: no cover
        pass
    if isinstance(value, (list, tuple)):
        return SEQ
    if isinstance(value, dict):
        return MAP
    if is_foreign(value):
        return ARRAY                 # a Dask, CuPy, PyTorch, JAX... array: namespaces.py
    if isinstance(value, types.ModuleType):
        return MODULE
    from . import tree
    if value is not None and tree.is_node(value) and not callable(value) and not \
            tree.type_module(value).startswith(("numpy", "scipy")):
        return OBJECT                # a dataclass, an instance of a class of yours
    return UNKNOWN


def element_kind(value):
    """The join of the kinds of what a structure holds (list elements, dict values,
    object attributes), for `elements_key`; None for an empty one."""
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        items = vars(value).values() if hasattr(value, "__dict__") else [
            getattr(value, f.name) for f in __import__("dataclasses").fields(value)]
    out = None
    for v in items:
        out = join(out, value_kind(v))
    return out


def join(a: Kind | None, b: Kind | None) -> Kind | None:
    """The least kind above both (None: not known yet)."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if {a, b} == {SCALAR, ARRAY}:
        return ARRAY
    return UNKNOWN


class Analysis:
    def __init__(self, norm, active_params, param_kinds=None):
        self.norm = norm
        self.params = list(norm.params) + list(norm.unit.extra_params)
        self.active = set(active_params)
        self.inputs = frozenset(active_params)   # the parameters differentiated
        self.wrt = tuple(active_params)   # the parameters differentiated with respect to
        self.sites = {}          # name -> number of assignment sites
        self.in_loop = set()     # names assigned inside a loop
        self.kind = {}           # name -> its Kind
        self.elem = {}           # SEQ name -> the Kind of its elements
        self.seq = set()         # names used as lists (element writes, list methods...):
                                 # a list where the value's kind is not known
        self.param_kinds = dict(param_kinds or {})
        self.closures = {}       # active local function (or alias) -> an active name read
        self._sites()
        self._kinds(param_kinds or {})      # first: a dict's keys carry no derivative
        self.complex = self._complex_values()
        if self.complex:
            self._check_complex_constants()
        self.standard_backend = next(     # PyTorch, JAX...: rules/array_api.py's rules
            (v for k, v in sorted(self.param_kinds.items()) if k.endswith(".xp")
             and v not in NUMPY_DISPATCHED), None)
        self.lazy = self._lazy_values()
        if self.lazy:
            self._check_lazy_control_flow()
        immutable = sorted(v for k, v in self.param_kinds.items()
                           if k.endswith(IMMUTABLE_SUFFIX))
        self.immutable = immutable[0] if immutable else None     # "JAX", or None
        if self.immutable:
            self._check_no_element_writes(self.immutable)
        self._activity()
        self._check_function_arguments()
        check_passthrough(self)
        self._check_index_values()
        if getattr(norm, "kinds_resolved", False):   # after split_array_trees' rewrites
            check_aliasing(self)

    def _check_index_values(self):
        """`obj[i]` with a constant obj and an index carrying a derivative: plain indexing
        of an array, list, tuple, dict or string picks an element (derivative zero, right);
        any other object may compute its result from the index's value (np.s_, np.mgrid,
        a class with __getitem__): refused, never a silent zero."""
        import numpy
        unit = self.norm.unit
        if unit.is_generated:
            return
        local = set(self.sites) | set(self.params)
        for s, _ in walk_body(self.norm.body):
            v = getattr(s, "value", None)
            if not (isinstance(s, ast.Assign) and A.get_tag(v, "special") == "subscript"):
                continue
            carried = sorted(A.names_loaded(v.slice) & self.active)
            if not carried or expr_names(v.value) & self.active:
                continue
            if self.kind_of(v.value) in (ARRAY, SEQ):
                continue
            obj = unit.resolve(v.value, local)
            if isinstance(obj, (numpy.ndarray, list, tuple, dict, str, bytes, range)):
                continue
            raise unit.error(
                f"unsupported construct: the subscript {ast.unparse(v.value)}[...] of an "
                f"object that is not an array, list, tuple or dict, by a value carrying a "
                f"derivative ('{carried[0]}'): its result may be computed from that value "
                "(np.s_, np.mgrid, a class with __getitem__), which transpile cannot "
                "differentiate; use an equivalent NumPy function (np.concatenate, "
                "np.linspace...) instead", s)

    def _fixpoint(self, grow, step):
        """Add step(statement) to the set `grow` until nothing changes."""
        changed = True
        while changed:
            changed = False
            for s, _ in walk_body(self.norm.body):
                new = step(s) - grow
                if new:
                    grow |= new
                    changed = True

    def _closure_reads(self, name):
        """The outer names a local function reads (its lifted free variables, and the
        local functions it calls), or None for a name that is no local function."""
        unit = getattr(self.norm, "local_functions", {}).get(name)
        if unit is None or not isinstance(getattr(unit, "node", None), ast.FunctionDef):
            return None
        a = unit.node.args
        params = {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
        loaded = set()
        for st in unit.node.body:
            loaded |= A.names_loaded(st)
        return set(unit.extra_params) | (loaded - params) & set(self.norm.local_functions)

    def _activity(self):
        def step(s):
            new = set()
            if isinstance(s, ast.FunctionDef):
                # a local function closing over an active value is itself an active value
                # (passed to a callable transpile cannot read, it carries x's derivative)
                reads = self._closure_reads(s.name)
                if reads and reads & self.active:
                    new.add(s.name)
                    funcs = set(self.norm.local_functions)
                    self.closures.setdefault(s.name, min(
                        reads & self.active, key=lambda n: (n in funcs, n)))
            elif isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name) and \
                    isinstance(s.value, ast.Name) and s.value.id in self.closures:
                self.closures.setdefault(s.targets[0].id, self.closures[s.value.id])
            if isinstance(s, ast.Assign):
                t = s.targets[0]
                flows = expr_names(s.value) & self.active
                if self.keys_of_map(s.value):
                    flows = set()
                if isinstance(t, ast.Name) and flows:
                    new.add(t.id)
                elif isinstance(t, (ast.Subscript, ast.Attribute)) and flows:
                    new.add(t.value.id)
            elif isinstance(s, ast.Expr) and A.get_tag(s.value, "special") == "method":
                call = s.value
                args = set()
                for a in call.args:
                    args |= expr_names(a)
                if args & self.active and isinstance(call.func.value, ast.Name):
                    new.add(call.func.value.id)
            return new
        self._fixpoint(self.active, step)

    def keys_of_map(self, e):
        """Is e made of a dict's keys only (``list(d)``, ``sorted(d)``, ``tuple(d)``,
        ``set(d)``, ``iter(d)``, ``d.keys()`` of a MAP d)? Keys carry no derivative."""
        if not isinstance(e, ast.Call) or len(e.args) != (0 if isinstance(
                e.func, ast.Attribute) and A.get_tag(e, "special") == "method" else 1):
            return False
        if A.get_tag(e, "special") == "method":
            base = e.func.value
            return A.get_tag(e, "method") == "keys" and self.kind_of(base) == MAP
        if e.keywords and not all(k.arg in ("key", "reverse") for k in e.keywords):
            return False
        fn = A.get_tag(e, "container") or A.get_tag(e, "opaque")
        return fn in (list, tuple, sorted, set, iter, frozenset, reversed) and \
            self.kind_of(e.args[0]) == MAP

    def _check_function_arguments(self):
        """A function depending on an active value, passed to a call transpile does not
        differentiate through (an object without a rule or readable source, or a Python
        function: its parameter would be called as an opaque value): refused, at the call.
        Calling such a function directly is fine (a local function is transformed)."""
        if not self.closures:
            return
        for s, _ in walk_body(self.norm.body):
            call = s.value if isinstance(s, (ast.Assign, ast.Expr)) else None
            if not isinstance(call, ast.Call):
                continue
            special = A.get_tag(call, "special")
            if special not in ("user", "opaque", "method", "container", "dynamic"):
                continue
            passed = []
            parts = list(call.args) + [k.value for k in call.keywords]
            if special == "opaque" and not isinstance(call.func, ast.Name):
                parts.append(call.func)            # `G(inner)(2.0)`: G is called too
            for a in parts:
                for n in A.walk(a):
                    if isinstance(n, ast.Name) and n.id in self.closures and \
                            n.id in self.active:
                        passed.append(n.id)
            if not passed:
                continue
            fn = passed[0]
            inner = next((n for part in parts for n in A.walk(part) if isinstance(
                n, ast.Call) and any(isinstance(m, ast.Name) and m.id == fn for a in list(
                    n.args) + [k.value for k in n.keywords] for m in A.walk(a))), call)
            if inner is not call:
                callee = ast.unparse(inner.func)
            elif special == "user":
                target = A.get_tag(call, "user")
                callee = getattr(target, "__qualname__", None) or getattr(
                    target, "name", None) or ast.unparse(call.func)
            else:
                callee = ast.unparse(call.func)
            raise self.norm.unit.error(
                f"unsupported construct: this call passes a function that depends on "
                f"'{self.closures[fn]}' ('{fn}') to {callee}, which transpile cannot "
                "differentiate through (it would treat the function's result as a "
                "constant); call the function here and pass its result, or register a "
                "rule with transpile.defvjp", s)

    def _kinds(self, param_kinds):
        """Kinds of all variables: one fixpoint over the statements, joining what each
        assignment, loop, append and element write says about its target's kind, its
        elements' kind and its use as a list, until nothing changes."""
        defaults = self._default_values()
        for p in self.params:
            self.kind[p] = param_kinds.get(p, value_kind(defaults[p]) if p in defaults
                                           else UNKNOWN)
            if self.kind[p] in STRUCTURES:
                self.elem[p] = param_kinds.get(elements_key(p), UNKNOWN)
        changed = True
        while changed:
            changed = False
            for s, _ in walk_body(self.norm.body):
                new_seq = self._used_as_list(s) - self.seq
                if new_seq:
                    self.seq |= new_seq
                    changed = True
                kinds, elements = self._kind_updates(s)
                for table, updates in ((self.kind, kinds), (self.elem, elements)):
                    for name, k in updates:
                        new = join(table.get(name), k)
                        if k is not None and new != table.get(name):
                            table[name] = new
                            changed = True
        for name in self.sites:
            self.kind.setdefault(name, UNKNOWN)

    def _complex_values(self):
        """The variables that may hold complex values (see "complex values" above)."""
        found = {p for p in self.params if self.param_kinds.get(complex_key(p))}

        def step(s):
            if isinstance(s, ast.Assign) and self.may_be_complex(s.value, found):
                t = s.targets[0]
                return {_target_root(t)} - {None}
            if isinstance(s, ast.For) and isinstance(s.target, ast.Name) and \
                    self.may_be_complex(s.iter, found):
                return {s.target.id}
            if isinstance(s, ast.Expr) and A.get_tag(s.value, "special") == "method" and \
                    isinstance(s.value.func.value, ast.Name) and any(
                        self.may_be_complex(a, found) for a in s.value.args):
                return {s.value.func.value.id}         # xs.append(z)
            return set()
        self._fixpoint(found, step)
        return found

    def _lazy_values(self):
        """The variables that may hold values computed from a lazy array ("lazy values"
        above): name -> the backend's name."""
        found = {p: self.param_kinds[lazy_key(p)] for p in self.params
                 if self.param_kinds.get(lazy_key(p))}
        if not found:
            return found

        def step(s):
            reads = set()
            if isinstance(s, ast.Assign):
                reads, written = value_names(s.value), {_target_root(s.targets[0])}
            elif isinstance(s, ast.For) and isinstance(s.target, ast.Name):
                reads, written = value_names(s.iter), {s.target.id}
            elif isinstance(s, ast.Expr) and A.get_tag(s.value, "special") == "method" \
                    and isinstance(s.value.func.value, ast.Name):
                reads, written = value_names(s.value), {s.value.func.value.id}
            hit = next((found[n] for n in sorted(reads) if n in found), None)
            if hit is None:
                return set()
            new = (written - {None}) - set(found)
            for n in new:
                found[n] = hit
            return new
        self._fixpoint(set(found), step)
        return found

    def _check_lazy_control_flow(self):
        """Refuse control flow on lazy values ("lazy values" above), at its line."""
        def lazy_in(e):
            return sorted(value_names(e) & set(self.lazy))

        for s, _ in walk_body(self.norm.body):
            tests = []
            if isinstance(s, (ast.If, ast.While)):
                tests.append((s.test, "a branch (if/while) on"))
            for e in A.nodes(s) if not isinstance(s, (ast.If, ast.While, ast.For,
                                                     ast.Try, ast.FunctionDef)) else ():
                if isinstance(e, ast.IfExp):
                    tests.append((e.test, "a branch (if/else) on"))
                elif isinstance(e, ast.Call) and (
                        isinstance(e.func, ast.Name) and e.func.id in _CONCRETE_CALLS or
                        isinstance(e.func, ast.Attribute) and
                        e.func.attr in _CONCRETE_METHODS):
                    tests.append((e, f"{ast.unparse(e.func)}() of"))
            for e in A.nodes(s) if isinstance(s, (ast.Assign, ast.AugAssign)) else ():
                if isinstance(e, ast.Subscript) and not isinstance(e.value, ast.Name) or \
                        isinstance(e, ast.Subscript) and e.value.id in self.lazy:
                    tests.append((e.slice, "indexing by"))   # x[x > 0]: sizes unknown
            if isinstance(s, ast.For):
                tests.extend((e, f"{e.func.id}() of") for e in A.nodes(s.iter)
                             if isinstance(e, ast.Call) and isinstance(e.func, ast.Name)
                             and e.func.id in _CONCRETE_CALLS)
            for e, how in tests:
                names = lazy_in(e)
                if names:
                    backend = self.lazy[names[0]]
                    named = [n for n in names if not n.startswith("_")]
                    what = f" ('{named[0]}')" if named else ""
                    why = ("the sizes of what it selects are known only once it is "
                           "computed" if how == "indexing by" else
                           "this would compute the whole array while the derivative code "
                           "runs")
                    raise self.norm.unit.error(
                        f"unsupported construct: {how} the values of a {backend} "
                        f"array{what}. {backend} arrays are lazy: {why}. Compute the value "
                        "first and pass it in (.compute()), or select elementwise with "
                        "np.where", s)

    def _check_no_element_writes(self, backend):
        """Arrays of `backend` (JAX) cannot be written in place: an element or slice
        write into an array (not a list or dict) is refused at its line."""
        for s, _ in walk_body(self.norm.body):
            if isinstance(s, (ast.Assign, ast.AugAssign)):
                targets = s.targets if isinstance(s, ast.Assign) else [s.target]
                for t in targets:
                    root = _target_root(t)
                    if isinstance(t, ast.Subscript) and root is not None and \
                            self.kind.get(root) not in (SEQ, MAP, OBJECT):
                        raise self.norm.unit.error(
                            f"unsupported construct: {backend} arrays cannot be written in "
                            f"place ('{root}[...] = ...'); build the array with "
                            "xp.concat / xp.stack / xp.where instead", s)

    def lazy_kinds(self, bound):
        """Kinds entries for a call's parameters (name -> argument expression) whose
        arguments may be lazy values, for the callee's analysis (and, in code given JAX
        arrays, that its arrays cannot be written in place)."""
        out = {p + IMMUTABLE_SUFFIX: self.immutable for p in bound} if self.immutable else {}
        if not self.lazy:
            return out
        for p, arg in bound.items():
            names = sorted(value_names(arg) & set(self.lazy))
            if names:
                out[lazy_key(p)] = self.lazy[names[0]]
        return out

    def _check_complex_constants(self):
        """A call with a zero derivative kept verbatim (np.sign(z): normalize tags it
        inactive) of complex values: its rule declares that zero holds for them too, or
        this is one clear error (the sign of a complex z is z / |z|, not constant)."""
        from .rules import lookup
        local = set(self.sites) | set(self.params)
        for s, _ in walk_body(self.norm.body):
            if not isinstance(s, (ast.Assign, ast.Expr)):
                continue
            for n in A.walk(s.value):
                if not (isinstance(n, ast.Call) and A.get_tag(n, "inactive")):
                    continue
                rule = lookup(self.norm.unit.resolve(n.func, local), len(n.args))
                if rule is not None and rule.complex is None and any(
                        self.may_be_complex(a) for a in n.args):
                    raise self.norm.unit.error(complex_refusal(rule), n)

    def may_be_complex(self, e, names=None):
        """May the value of the normalized expression e be complex (see above)?"""
        names = self.complex if names is None else names
        if isinstance(e, ast.Name):
            if e.id in names:
                return True
            if e.id in self.sites or e.id in self.params:
                return False
            return is_complex_value(self.norm.unit.lookup(e.id), deep=False)
        if isinstance(e, ast.Constant):
            return isinstance(e.value, complex)
        if isinstance(e, ast.Attribute):
            if e.attr in ("real", "imag") or e.attr in SHAPE_ATTRS:
                return False
            obj = self.norm.unit.resolve(e, set(self.sites) | set(self.params))
            if obj is not None:
                return is_complex_value(obj, deep=False)
            return self.may_be_complex(e.value, names)
        if isinstance(e, ast.Call):
            rule = A.get_tag(e, "rule")
            if rule is None and A.get_tag(e, "inactive"):    # a zero rule kept verbatim
                from .rules import lookup
                rule = lookup(self.norm.unit.resolve(e.func, set(self.sites) | set(
                    self.params)), len(e.args))
            result = getattr(rule, "result", None)
            if result is not None:
                return result == "complex"
            if A.get_tag(e, "special") == "dynamic" and self._creates_complex(
                    e.func, e.args):
                return True
            if getattr(rule, "name", None) in CALL_HELPERS and e.args and \
                    self._creates_complex(e.args[0]):   # derivative code of such a call
                return True
            if A.get_tag(e, "special") is None and rule is None:
                return False     # (a zero rule's result may be complex: np.sign, -1j)
            for k in e.keywords:
                if k.arg == "dtype":
                    return self._complex_dtype_expr(k.value, names)
            if A.get_tag(e, "method") == "astype" and e.args:
                return self._complex_dtype_expr(e.args[0], names)
            if A.get_tag(e, "special") == "user" and _creates_complex(A.get_tag(e, "user")):
                return True
            parts = list(e.args) + [k.value for k in e.keywords]
            if isinstance(e.func, ast.Attribute) and A.get_tag(e, "special") == "method":
                parts.append(e.func.value)
            if A.get_tag(e, "special") == "dynamic":    # an object or closure holding one
                parts.append(e.func)
            return any(self.may_be_complex(a, names) for a in parts)
        return any(self.may_be_complex(c, names) for c in ast.iter_child_nodes(e)
                   if isinstance(c, ast.expr))

    def _creates_complex(self, func, args=()):
        """May the function `func` names, called through a variable (`f(*args)`, a
        closure's or a parameter's function: calls.py), make complex values from real ones?
        Read from the function where it is known now; one known only when the code runs is
        checked then (calls.py refuses a complex result the caller's code took for real)."""
        from .rules import lookup
        obj = self.norm.unit.resolve(func, set(self.sites) | set(self.params))
        if obj is None and isinstance(func, ast.Name):
            what, obj = (getattr(self.norm, "statics", None) or {}).get(func.id,
                                                                      (None, None))
        if obj is None:
            return False
        try:
            rule = lookup(obj)
        except TypeError:
            rule = None
        if getattr(rule, "name", None) in CALL_HELPERS and args:   # call_forward(f, ...)
            return not isinstance(args[0], ast.Starred) and self._creates_complex(args[0])
        if rule is not None:
            return getattr(rule, "result", None) == "complex"
        return inspect.isfunction(obj) and _creates_complex(obj)

    def _complex_dtype_expr(self, e, names):
        if isinstance(e, ast.Attribute) and e.attr == "dtype":
            return self.may_be_complex(e.value, names)
        if isinstance(e, ast.Constant):
            return _complex_dtype(e.value)
        obj = self.norm.unit.resolve(e, set(self.sites) | set(self.params))
        return obj is not None and _complex_dtype(obj)

    def complex_kinds(self, bound):
        """Kinds entries for a call's parameters (name -> argument expression) whose
        arguments may be complex, for the callee's analysis."""
        if not self.complex:
            return {}
        return {complex_key(p): True for p, arg in bound.items()
                if self.may_be_complex(arg)}

    def complex_statement(self, s):
        """Does statement s handle values that may be complex (its target or operands)?"""
        if not self.complex:
            return False
        if isinstance(s, ast.Assign):
            t = s.targets[0]
            return _target_root(t) in self.complex or self.involves_complex(s.value)
        if isinstance(s, ast.Expr):
            return self.involves_complex(s.value)
        if isinstance(s, ast.For):
            return self.involves_complex(s.iter)
        return False

    def involves_complex(self, e):
        """May e or any of its subexpressions be complex (`np.abs(z * x)`: z * x)?"""
        return any(self.may_be_complex(n) for n in A.nodes(e) if isinstance(n, ast.expr))

    def _used_as_list(self, s):
        """Names statement s uses as lists or tuples (whatever their values' kinds)."""
        new = set()
        if isinstance(s, ast.Assign):
            t, v = s.targets[0], s.value
            if isinstance(t, ast.Subscript):
                new.add(t.value.id)
            elif isinstance(t, ast.Name):
                special = A.get_tag(v, "special")
                if special == "display" or (special == "container" and A.get_tag(
                        v, "container") in (list, tuple)):
                    new.add(t.id)
                if isinstance(v, ast.Name) and (v.id in self.seq or t.id in self.seq):
                    new |= {v.id, t.id}
                if special == "container" or special == "subscript":
                    base = v.args[0] if isinstance(v, ast.Call) else v.value
                    if isinstance(base, ast.Name):
                        new.add(base.id)
                if special is None and isinstance(v, ast.Call) and getattr(A.get_tag(
                        v, "rule"), "fn", None) in LIST_RESULTS:
                    new.add(t.id)       # an adjoint list in derivative code
                if special == "method" and isinstance(v.func.value, ast.Name):
                    new.add(v.func.value.id)
                    if v.func.attr in ("copy", "tolist"):
                        new.add(t.id)   # tolist: its adjoint may start as 0.0 in a loop
        elif isinstance(s, ast.Expr) and A.get_tag(s.value, "special") == "method":
            if isinstance(s.value.func.value, ast.Name):
                new.add(s.value.func.value.id)
        return new

    def _kind_updates(self, s):
        """(kinds, element kinds) statement s gives names: lists of (name, kind)."""
        kinds, elements = [], []
        if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
            t, v = s.targets[0].id, s.value
            special = A.get_tag(v, "special")
            kinds.append((t, self.kind_of(v)))
            if special in ("display", "dict"):
                elem = None
                for x in (v.elts if special == "display" else v.values):
                    elem = join(elem, self.kind_of(x))
                elements.append((t, elem))
            elif isinstance(v, ast.Name) and v.id in self.elem:
                elements.append((t, self.elem[v.id]))
            elif special in ("container", "method") and self.kind_of(v) == SEQ:
                base = v.args[0] if special == "container" else v.func.value
                if isinstance(base, ast.Name) and base.id in self.elem:
                    elements.append((t, self.elem[base.id]))
            elif special == "subscript" and isinstance(v.slice, ast.Slice) and isinstance(
                    v.value, ast.Name) and v.value.id in self.elem:
                elements.append((t, self.elem[v.value.id]))
        elif isinstance(s, ast.For):
            kinds.append((s.target.id, SCALAR))
        elif isinstance(s, ast.Expr) and A.get_tag(s.value, "method") == "append":
            base = s.value.func.value
            if isinstance(base, ast.Name) and s.value.args:
                elements.append((base.id, self.kind_of(s.value.args[0])))
        elif isinstance(s, ast.Assign) and isinstance(s.targets[0], (ast.Subscript,
                                                                     ast.Attribute)):
            base = s.targets[0].value       # an element, a dict entry or an attribute
            if isinstance(base, ast.Name) and self.kind.get(base.id) in STRUCTURES:
                elements.append((base.id, self.kind_of(s.value)))
        return kinds, elements

    def kind_of(self, e):
        """Kind of the value of a normalized expression."""
        if isinstance(e, ast.Name):
            if e.id in self.kind:
                return self.kind[e.id]
            if e.id in self.sites or e.id in self.params:
                return None                       # not known yet (fixpoint)
            obj = self.norm.unit.lookup(e.id)
            return value_kind(obj)
        if isinstance(e, ast.Constant):
            return SCALAR if isinstance(e.value, (int, float, bool)) else UNKNOWN
        special = A.get_tag(e, "special")
        if A.get_tag(e, "inactive"):
            return self._inactive_kind(e)
        if isinstance(e, ast.BinOp):
            return join(self.kind_of(e.left), self.kind_of(e.right))
        if isinstance(e, ast.UnaryOp):
            return self.kind_of(e.operand)
        if isinstance(e, ast.Call) and special is None:          # rule-backed primitive
            rule = A.get_tag(e, "rule")
            module = getattr(getattr(rule, "fn", None), "__module__", "") or ""
            if module == "math":
                return SCALAR
            if module.startswith("numpy"):
                return UNKNOWN if rule.several else ARRAY    # several: a tuple or list
            out = None
            for a in e.args:
                out = join(out, self.kind_of(a))
            return out if module == "builtins" else UNKNOWN
        if special is not None:
            return containers.rule_for(e).kind(self, e)
        return UNKNOWN

    def _inactive_kind(self, e):
        if isinstance(e, ast.Name):
            return self.kind_of(ast.Name(id=e.id, ctx=ast.Load()))
        if isinstance(e, ast.Constant):
            return SCALAR
        if isinstance(e, ast.Attribute) and e.attr in SHAPE_ATTRS:
            return SCALAR
        if isinstance(e, ast.Subscript) and isinstance(e.value, ast.Attribute) \
                and e.value.attr == "shape":
            return SCALAR
        if isinstance(e, ast.Call):
            fn = self.norm.unit.resolve(e.func, set(self.sites) | set(self.params))
            if fn in (len, int, round, bool, float, range, isinstance):
                return SCALAR
            if (getattr(fn, "__module__", "") or "").startswith("numpy"):
                return ARRAY
            return UNKNOWN
        if isinstance(e, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp)):
            out = None
            for n in A.walk(e):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                    k = self.kind_of(ast.Name(id=n.id, ctx=ast.Load()))
                    if k is not None:
                        out = join(out, k if k != SEQ else SCALAR)
                elif isinstance(n, ast.Call):
                    return UNKNOWN
            return out or SCALAR
        return UNKNOWN

    def _default_values(self):
        """Parameter -> default value (for parameters a call site leaves out)."""
        unit = self.norm.unit
        a = unit.node.args
        out = {}
        positional = [p.arg for p in a.posonlyargs + a.args]
        if unit.defaults:
            out.update(zip(positional[len(positional) - len(unit.defaults):], unit.defaults))
        out.update(unit.kwdefaults or {})
        return out

    def _sites(self):
        for p in self.params:
            self.sites[p] = 1
        self.first_defs = set()       # ids of top-level first assignments (nothing to save)
        seen = set(self.params)
        for s in self.norm.body:
            if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name) \
                    and s.targets[0].id not in seen:
                self.first_defs.add(id(s))
            for n in A.nodes(s):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    seen.add(n.id)
        self.loads = {}
        for n in A.nodes(ast.Module(body=self.norm.body, type_ignores=[])):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                self.loads[n.id] = self.loads.get(n.id, 0) + 1
        for s, depth in walk_body(self.norm.body):
            targets = []
            if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
                targets = [s.targets[0].id]
            elif isinstance(s, ast.For):
                targets = [s.target.id]
                depth += 1
            for t in targets:
                self.sites[t] = self.sites.get(t, 0) + 1
                if depth > 0:
                    self.in_loop.add(t)

    def overwritten(self, name):
        return self.sites.get(name, 0) > 1 or name in self.in_loop

    def is_seq(self, name):
        return name in self.seq


# --- aliasing: which names may share one list or array -------------------------------------
#
# A flow-sensitive may-alias analysis over normalized code. A pair (a, b) says a and b may
# refer to one object or to overlapping memory (b = a, views such as a[1:], a.T,
# a.reshape(...), np.asarray(a)); "xs[]" stands for the objects held in the list xs, so
# (xs[], v) says v may be one of xs's elements, and (xs[], xs[]) that two elements of xs
# may be one object. "@p" is the caller's object passed as parameter p. A write through one
# name (an element store, an in-place method, `+=` on a list, a callee changing its
# argument) that also changes another name read later is refused by `check_aliasing`:
# the transforms follow each name separately.

MUTATING_METHODS = frozenset({"append", "extend", "insert", "pop", "remove", "clear", "sort",
                              "reverse", "fill", "resize", "put", "itemset", "setfield",
                              "partition", "update", "setdefault", "popitem", "add",
                              "discard"})
LENGTH_METHODS = frozenset({"append", "extend", "insert", "pop", "remove", "clear"})
VIEW_METHODS = frozenset({"reshape", "ravel", "view", "transpose", "swapaxes", "squeeze",
                          "diagonal", "__array__"})
VIEW_ATTRS = frozenset({"T", "mT", "real", "imag", "flat", "base"})
VIEW_FUNCTIONS = frozenset({"reshape", "ravel", "transpose", "asarray", "asanyarray",
                            "squeeze", "expand_dims", "swapaxes", "moveaxis", "rollaxis",
                            "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_to",
                            "diagonal", "real", "imag", "ascontiguousarray",
                            "asfortranarray", "flip", "fliplr", "flipud", "rot90"})
WRITES_FIRST_ARGUMENT = frozenset({"copyto", "put", "place", "putmask", "fill_diagonal",
                                   "shuffle", "put_along_axis"})
MUTABLE = (ARRAY, SEQ, MAP, OBJECT, UNKNOWN, None)


def _cell(name):
    return name + "[]"


def _is_cell(name):
    return name.endswith("[]")


class Aliases:
    """May-alias pairs before every statement of a normalized body (see above)."""

    def __init__(self, an):
        self.an = an
        self.before = {}             # id(stmt) -> frozenset of pairs
        self.origin = {}             # name -> the expression it was last assigned
        state = set()
        for p in an.params:
            if an.kind.get(p) in MUTABLE:
                state |= {(p, "@" + p), (_cell(p), _cell("@" + p))}
        self.flow(an.norm.body, frozenset(state))

    # pairs are unordered: kept as sorted tuples
    @staticmethod
    def pair(a, b):
        return (a, b) if a <= b else (b, a)

    @staticmethod
    def partners(state, name):
        out = set()
        for a, b in state:
            if a == name:
                out.add(b)
            elif b == name:
                out.add(a)
        return out

    def mutable(self, name):
        return self.kind(name) in MUTABLE

    def kind(self, name):
        k = self.an.kind.get(name)
        if k in (UNKNOWN, None) and name in self.an.seq:
            return SEQ                  # a list built here (`xs = []`, a comprehension)
        return k

    def flow(self, stmts, state):
        for s in stmts:
            self.before[id(s)] = self.before.get(id(s), frozenset()) | state
            if isinstance(s, ast.If):
                state = self.flow(s.body, state) | self.flow(s.orelse, state)
            elif isinstance(s, (ast.For, ast.While)):
                head = state
                while True:
                    end = self.flow(s.body, head)
                    if isinstance(s, ast.For):
                        end = self.kill(end, s.target.id)
                    new = head | end
                    if new == head:
                        break
                    head = new
                state = head
            else:
                state = self.step(s, state)
        return state

    def kill(self, state, t):
        return frozenset(p for p in state if t not in p and _cell(t) not in p)

    def step(self, s, state):
        if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
            t, v = s.targets[0].id, s.value
            self.origin.setdefault(t, v)
            same, cells, self_cells = self.sources(t, v, state)
            state = set(self.kill(state, t))
            if not self.mutable(t) or t == "_":
                return frozenset(state)
            for src in same:
                state.add(self.pair(t, src))
                for y in self.partners(state, src) - {t}:
                    state.add(self.pair(t, y))
                for y in self.partners(state, _cell(src)) - {_cell(t)}:
                    state.add(self.pair(_cell(t), y if y != _cell(src) else _cell(t)))
            self.add_elements(state, t, cells, self_cells)
            return frozenset(state)
        if isinstance(s, ast.Assign) and isinstance(s.targets[0], (ast.Subscript,
                                                                     ast.Attribute)):
            base, v = s.targets[0].value, s.value
            if isinstance(base, ast.Name) and isinstance(v, ast.Name) and self.mutable(v.id) \
                    and self.kind(base.id) != ARRAY and not A.get_tag(s, "writeback"):
                state = set(state)
                self.add_elements(state, base.id, {v.id}, False)
                return frozenset(state)
            return state
        if isinstance(s, ast.Expr) and A.get_tag(s.value, "method") in ("append", "insert",
                                                                           "extend"):
            call = s.value
            base = call.func.value
            if isinstance(base, ast.Name) and call.args:
                arg = call.args[-1]
                if isinstance(arg, ast.Name) and self.mutable(arg.id):
                    state = set(state)
                    if A.get_tag(call, "method") == "extend":
                        for y in self.partners(state, _cell(arg.id)) | {_cell(arg.id)}:
                            self.add_elements(state, base.id, {y}, False)
                    else:
                        self.add_elements(state, base.id, {arg.id}, False)
                    return frozenset(state)
        return state

    def add_elements(self, state, container, elements, self_cells):
        """`container` (and every name sharing it) may now hold the objects `elements`."""
        holders = {container} | {y for y in self.partners(state, container)
                                 if not _is_cell(y)}
        for c in holders:
            cell = _cell(c)
            existing = self.partners(state, cell)
            for e in elements:
                if self_cells or e in existing or existing & self.partners(state, e):
                    state.add((cell, cell))
                state.add(self.pair(cell, e))
                for y in self.partners(state, e) - {cell}:
                    state.add(self.pair(cell, y))

    def sources(self, t, v, state):
        """(names t may be, names whose elements t may hold, elements alias each other)."""
        an = self.an
        special = A.get_tag(v, "special")
        names = lambda es: {e.id for e in es if isinstance(e, ast.Name) and self.mutable(e.id)}
        if isinstance(v, ast.Name):
            return names([v]), set(), False
        if special == "subscript" and isinstance(v.value, ast.Name):
            base = v.value.id
            kind = self.kind(base)
            if kind == ARRAY:
                return {base}, set(), False              # a view (or a number)
            if kind == SEQ and isinstance(v.slice, ast.Slice):
                return set(), {_cell(base)}, False       # a new list of the same objects
            if kind in (SEQ, MAP):                       # an element, a dict's value
                return {_cell(base)}, set(), False
            return {base, _cell(base)}, {_cell(base)}, False
        if special in ("display", "dict"):
            parts = v.elts if special == "display" else v.values
            elems = names(parts)
            return set(), elems, len(elems) < len([e for e in parts if isinstance(
                e, ast.Name) and self.mutable(e.id)])
        if special == "container":
            fn = A.get_tag(v, "container")
            arg = v.args[0] if v.args else None
            if not isinstance(arg, ast.Name):
                return set(), set(), False
            if fn in (list, tuple):
                return set(), {_cell(arg.id)}, False
            if fn in (max, min):
                return {_cell(arg.id)}, set(), False
            return set(), set(), False
        if special == "method":
            base = v.func.value
            name = A.get_tag(v, "method")
            if not isinstance(base, ast.Name):
                return set(), set(), False
            if name == "copy":
                return set(), ({_cell(base.id)} if self.kind(base.id) != ARRAY else set()), \
                    False
            if name in VIEW_METHODS and self.kind(base.id) != SEQ:
                return {base.id}, set(), False
            if name == "pop":
                return {_cell(base.id)}, set(), False
            if self.kind(base.id) == ARRAY:
                return set(), set(), False               # other array methods: new arrays
            return {base.id, _cell(base.id)}, {_cell(base.id)}, False
        if special == "attr":
            if isinstance(v.value, ast.Name) and v.attr in VIEW_ATTRS:
                return {v.value.id}, set(), False
            if isinstance(v.value, ast.Name) and containers.is_field(an, v):
                return {_cell(v.value.id)}, set(), False   # one of the object's values
            return set(), set(), False
        if special in ("user", "opaque", "dynamic"):
            args = names(list(getattr(v, "args", [])) + [k.value for k in getattr(
                v, "keywords", [])])
            return args | {_cell(a) for a in args}, {_cell(a) for a in args} | args, False
        if special is None and isinstance(v, ast.Call):
            fn = getattr(A.get_tag(v, "rule"), "fn", None)
            if getattr(fn, "__name__", None) in VIEW_FUNCTIONS and v.args:
                return names(v.args[:1]), set(), False
            return set(), set(), False
        if isinstance(v, ast.BinOp) and an.kind_of(v) == SEQ:
            parts = names([v.left, v.right])
            cells = {_cell(p) for p in parts}
            return set(), cells, isinstance(v.op, ast.Mult) or len(parts) < 2
        return set(), set(), False

    def affected(self, state, name):
        """Names whose value a write into `name` changes: `name`, what shares it, and the
        lists holding any of those (and what shares them)."""
        seen, todo = set(), [name]
        while todo:
            x = todo.pop()
            if x in seen:
                continue
            seen.add(x)
            for y in self.partners(state, x):
                if _is_cell(y):
                    todo.append(y[:-2])
                elif not y.startswith("@"):
                    todo.append(y)
        return seen

    def aliased(self, state, name):
        return any(not _is_cell(y) for y in self.partners(state, name))


def live_after(body, result):
    """id(stmt) -> names read after stmt (before being assigned again)."""
    out = {}

    def uses(s):
        return A.names_loaded(s)

    def defs(s):
        if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
            return {s.targets[0].id}
        return set()

    def block(stmts, live):
        for s in reversed(stmts):
            out[id(s)] = out.get(id(s), set()) | live
            if isinstance(s, ast.If):
                live = block(s.body, live) | block(s.orelse, live) | uses(s.test)
            elif isinstance(s, (ast.For, ast.While)):
                head = set(live)
                while True:
                    inner = block(s.body, head | live)
                    new = head | inner
                    if new == head:
                        break
                    head = new
                extra = uses(s.iter) if isinstance(s, ast.For) else uses(s.test)
                live = head | live | extra
            else:
                live = (live - defs(s)) | uses(s)
        return live

    block(body, {result} if result else set())
    return out


def mutated_params(fn_node):
    """Parameters a function changes in place (directly or through a local alias)."""
    a = fn_node.args
    params = {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
    tracked = {p: p for p in params}
    body = ast.Module(body=fn_node.body, type_ignores=[])

    def root(e):
        while isinstance(e, (ast.Subscript, ast.Attribute)) or (
                isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute)
                and e.func.attr in VIEW_METHODS):
            e = e.func.value if isinstance(e, ast.Call) else e.value
        return e.id if isinstance(e, ast.Name) else None

    changed = True
    while changed:
        changed = False
        for n in A.walk(body):
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(
                    n.targets[0], ast.Name):
                r = root(n.value)
                if r in tracked and n.targets[0].id not in tracked:
                    tracked[n.targets[0].id] = tracked[r]
                    changed = True
    out = {}
    for n in A.walk(body):
        hit = None
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.Delete)):
            for t in (n.targets if isinstance(n, (ast.Assign, ast.Delete)) else [n.target]):
                if isinstance(t, (ast.Subscript, ast.Attribute)) or isinstance(
                        n, ast.AugAssign):
                    hit = root(t)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                and n.func.attr in MUTATING_METHODS:
            hit = root(n.func.value)
        elif isinstance(n, ast.Call):
            for k in n.keywords:
                if k.arg == "out":
                    hit = root(k.value)
        if hit in tracked and tracked[hit] not in out:
            out[tracked[hit]] = n
    return out


def check_aliasing(an):
    """Refuse writes that change, besides their target, another name read later."""
    unit = an.norm.unit
    if unit.is_generated:
        return None
    al = Aliases(an)
    live = live_after(an.norm.body, an.norm.result)
    holder_parent = {}
    for s, _ in walk_body(an.norm.body):
        if A.get_tag(s, "holder") and isinstance(s.value, (ast.Subscript, ast.Attribute)) \
                and isinstance(
                s.value.value, ast.Name):
            holder_parent[s.targets[0].id] = s.value.value.id

    def label(name):
        if name.startswith("_") and name in al.origin:
            text = ast.unparse(al.origin[name])
            return "a list built here" if text == "[]" else f"'{text}'"
        return f"'{name}'"

    def refuse(s, target, other, how):
        raise unit.error(
            f"unsupported aliasing: {how} changes {label(target)} in place, and "
            f"{label(other)}, which shares its memory or elements with it (an alias "
            "`b = a`, a view `a[1:]`/`a.T`/`a.reshape(...)`, or an element of a list), is "
            "used afterwards; transpile follows each name on its own: make a copy "
            "(`.copy()`, `list(...)`) or write into the original directly", s)

    def check(s, target, how, itself=False):
        state = al.before.get(id(s), frozenset())
        hit = al.affected(state, target)
        if not itself:
            hit = hit - {target}
            p = target
            while p in holder_parent:        # X[i][j] = v: X[i] is stored back into X
                p = holder_parent[p]
                if (_cell(p), _cell(p)) not in state:
                    hit.discard(p)
        after = live.get(id(s), set())
        for m in sorted(hit):
            if m in after and not m.startswith("@"):
                refuse(s, target, m, how)

    for s, _ in walk_body(an.norm.body):
        if isinstance(s, ast.Assign) and isinstance(s.targets[0], (ast.Subscript,
                                                                     ast.Attribute)):
            base = s.targets[0].value
            if isinstance(base, ast.Name):
                check(s, base.id, "this element write")
            continue
        call = s.value if isinstance(s, (ast.Assign, ast.Expr)) else None
        if isinstance(s, ast.Assign) and A.get_tag(s, "augassign") and \
                an.kind.get(s.targets[0].id) in (SEQ, UNKNOWN):
            check(s, s.targets[0].id, "this augmented assignment")
        if not isinstance(call, ast.Call):
            continue
        special = A.get_tag(call, "special")
        if special == "method" and A.get_tag(call, "method") in MUTATING_METHODS \
                and isinstance(call.func.value, ast.Name) \
                and an.kind.get(call.func.value.id) != None:
            check(s, call.func.value.id, f"'.{A.get_tag(call, 'method')}()'")
        written = [k.value for k in call.keywords if k.arg == "out"]
        fn = A.get_tag(call, "opaque") if special == "opaque" else getattr(
            A.get_tag(call, "rule"), "fn", None)
        if getattr(fn, "__name__", None) in WRITES_FIRST_ARGUMENT and call.args:
            written.append(call.args[0])
        for w in written:
            if isinstance(w, ast.Name) and (w.id in an.active or any(
                    n in an.active for n in expr_names(call))):
                raise unit.error(f"unsupported construct: a NumPy call writing into "
                                 f"'{w.id}' in place (out= or np.{fn.__name__}) with a "
                                 "differentiated value; assign the result instead", s)
        if special == "user":
            _check_mutating_call(an, s, call, check)
    return None


def check_passthrough(an):
    """Statements copied as they are into the forward sweep (`forward_only`) must carry
    no derivative: refused at their line where one would have to flow through them.

    * an assignment to a global (or nonlocal) name of a value carrying a derivative, or
      inside a loop (a checkpointed loop re-runs), and such a name read by a computation
      carrying a derivative (the adjoint sweep would read, or restore, the global);
    * `obj.m(...)` / `del obj[i]` (tagged `sink`) on an object carrying a
      derivative (kept for arrays and lists read by a method that changes nothing);
    * an object handed a differentiated value that way and read elsewhere in the
      function (other than by such statements and conditions): the value read back
      would carry no derivative;
    * `with ... as v` with v carrying a derivative; a statement inside `try` that carries
      one (`try_statement_active`)."""
    unit = an.norm.unit
    outer = getattr(an.norm, "rebound_outer", set())
    handed = {}                   # object name -> (statement, attribute or None)
    for s, depth in walk_body(an.norm.body):
        if outer and isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
            t = s.targets[0].id
            if t in outer and (t in an.active or depth > 0):
                why = "of a value carrying a derivative" if t in an.active else \
                    "inside a loop"
                raise unit.error(f"unsupported construct: assignment to the global (or "
                                 f"nonlocal) name '{t}' {why}; pass it in and return the "
                                 "new value", s)
            read = A.names_loaded(s.value) & outer
            if t in an.active and read:
                raise unit.error(f"unsupported construct: the global (or nonlocal) name "
                                 f"'{sorted(read)[0]}', which the function assigns, is read "
                                 "by a computation carrying a derivative; read it into a "
                                 "local variable first, or pass it in", s)
        base = A.get_tag(s, "sink")
        if A.get_tag(s, "with_value") and isinstance(s, ast.Assign) and \
                s.targets[0].id in an.active:
            raise unit.error(f"unsupported construct: the 'with ... as' target "
                             f"'{s.targets[0].id}' carries a derivative", s)
        if isinstance(s, ast.Try):
            inner = try_statement_active(an, s)
            if inner is not None:
                raise unit.error("unsupported construct 'try' around this statement, "
                                 "which carries a derivative (an exception would change "
                                 "which statements ran, and the derivative cannot follow "
                                 f"that); move it out of the 'try' at line {s.lineno}", inner)
        if not base:
            continue
        if base in an.active:
            what = f"'{ast.unparse(s.targets[0])}'" if isinstance(
                s, ast.Delete) else f"'{ast.unparse(s.value.func)}(...)'"
            reads_only = isinstance(s, ast.Expr) and an.kind.get(base) in (ARRAY, SEQ)
            if not reads_only:
                raise unit.error(f"unsupported construct: {what} changes or reads "
                                 f"'{base}', which carries a derivative, in a way "
                                 "transpile has no rule for", s)
            continue
        value = getattr(s, "value", None)
        if isinstance(s, ast.Expr):
            flows = A.names_loaded(value) & an.active
            attr, held = None, value.func.value     # `self.logger.info(...)`: the
            while isinstance(held, ast.Attribute):  # record goes to self.logger
                attr, held = held.attr, held.value
        else:
            flows, attr = set(), None
        if flows:
            handed.setdefault(base, []).append((s, attr, sorted(flows)[0]))
    if not handed:
        return
    for s, _ in walk_body(an.norm.body):
        if isinstance(s, (ast.If, ast.For, ast.While, ast.Try)):
            continue
        if A.get_tag(s, "sink") in handed or A.get_tag(s, "with_value"):
            continue
        reads = A.names_loaded(s) & set(handed)
        if isinstance(s, ast.Assign) and A.get_tag(s.value, "inactive") and \
                not A.get_tag(s.value, "special"):
            continue                              # `ax is not None`, len(...), ...
        for name in sorted(reads):
            if isinstance(s, ast.Assign) and A.get_tag(s.value, "special") == "attr" and \
                    isinstance(s.value.value, ast.Name) and s.value.value.id == name:
                attrs = {a for _, a, _ in handed[name]}
                if None not in attrs and s.value.attr not in attrs:
                    continue                      # another attribute of the object
            where, attr, value = handed[name][0]
            into = f"'{name}.{attr}'" if attr else f"'{name}'"
            raise unit.error(f"unsupported construct: {_a_value(value)} is handed to "
                             f"{into} at line {getattr(where, 'lineno', '?')} and '{name}' "
                             "is read here: the derivative cannot follow a value through "
                             "an object; keep such records write-only, or pass the value "
                             "itself", s)
    if an.norm.result in handed:
        s, attr, value = handed[an.norm.result][0]
        raise unit.error(f"unsupported construct: {_a_value(value)} is stored in the "
                         f"returned object '{an.norm.result}'", s)


def _a_value(name):
    if name.startswith("_"):
        return "a value carrying a derivative"
    return f"a value carrying a derivative ('{name}')"


def try_statement_active(an, s):
    """The first statement inside the `try` s that carries a derivative, or None.

    A variable carrying a derivative elsewhere may be set inside to a value that carries
    none (`v = float(text)`, `except ValueError: v = 0.0`) when the try body and every
    handler set it in their own block (not in a branch): whichever ran, it ends with
    that value, and its derivative restarts from zero after the try (`try_kills`)."""
    parts = [s.body] + [h.body for h in s.handlers] + [s.orelse, s.finalbody]
    sure = _set_on_every_path(s)
    for part in parts:
        for st, _ in walk_body(part):
            if A.get_tag(st, "forward_only"):
                continue
            if isinstance(st, ast.Assign):
                t = st.targets[0]
                if isinstance(t, ast.Name) and t.id in an.active and (
                        expr_names(st.value) & an.active or t.id not in sure):
                    return st
                if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and \
                        t.value.id in an.active:
                    return st
            elif isinstance(st, ast.Expr) and A.get_tag(st.value, "special") == "method":
                base = st.value.func.value
                if isinstance(base, ast.Name) and base.id in an.active:
                    return st
            elif isinstance(st, ast.For) and st.target.id in an.active:
                return st
    return None


def _set_on_every_path(s):
    """Names the try statement s sets, whichever of its blocks run: set in the top level
    of its body and of each handler (a handler ending in `raise` leaves the function)."""
    def top(block):
        return {st.targets[0].id for st in block if isinstance(st, ast.Assign)
                and isinstance(st.targets[0], ast.Name)}
    out = top(s.body)
    for h in s.handlers:
        if not (h.body and isinstance(h.body[-1], ast.Raise)):
            out &= top(h.body)
    return out | top(s.finalbody)


def try_kills(an, s):
    """Variables carrying a derivative elsewhere that the try statement s sets to values
    carrying none (see `try_statement_active`): their adjoints or tangents restart from
    zero there."""
    out = set()
    for st, _ in walk_body([s]):
        if st is not s and isinstance(st, ast.Assign) and isinstance(
                st.targets[0], ast.Name) and st.targets[0].id in an.active:
            out.add(st.targets[0].id)
    return sorted(out)


def _check_mutating_call(an, s, call, check):
    target = A.get_tag(call, "user")
    from .pipeline import unit_of, bind_call
    try:
        callee = unit_of(target)
    except Exception:
        return
    if callee.is_generated:
        return
    changed = mutated_params(callee.node)
    if not changed:
        return
    params, bound = bind_call(target, call, an.norm.unit, s)
    if not any(n in an.active for n in expr_names(call)):
        return
    for p, where in changed.items():
        arg = bound.get(p)
        if isinstance(arg, ast.Name) and an.kind.get(arg.id) in MUTABLE:
            line = getattr(where, "lineno", "?")
            try:
                check(s, arg.id, f"the call of {callee.name} (which changes its parameter "
                                 f"'{p}' in place at {callee.filename}:{line})", itself=True)
            except TranspileError:
                raise an.norm.unit.error(
                    f"unsupported construct: {callee.name} changes its argument "
                    f"'{arg.id}' in place (its parameter '{p}', at {callee.filename}:"
                    f"{line}) and '{arg.id}' is used afterwards; return the new value "
                    "instead", s) from None


def written_by_call(an, s, call):
    """Names this call of a user function passes to a parameter the function changes in
    place (an entry stored into a dict the caller passed, CS231n's ``bn_param``), also
    through the functions it calls in turn."""
    from .pipeline import unit_of, bind_call
    target = A.get_tag(call, "user")
    try:
        callee = unit_of(target)
        changed = mutated_deep(callee)
        if not changed:
            return set()
        _, bound = bind_call(target, call, an.norm.unit, s)
    except Exception:
        return set()
    return {arg.id for p, arg in bound.items() if p in changed and isinstance(arg, ast.Name)}


def mutated_deep(unit, seen=None):
    """Parameters of unit's function changed in place by it or by the Python functions
    it calls with them (by name, position or keyword)."""
    seen = set() if seen is None else seen
    if unit.is_generated or id(unit.node) in seen:
        return set()
    seen.add(id(unit.node))
    out = set(mutated_params(unit.node))
    a = unit.node.args
    params = {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
    for n in A.walk(unit.node):
        if not isinstance(n, ast.Call) or not any(
                isinstance(e, ast.Name) and e.id in params - out
                for e in list(n.args) + [k.value for k in n.keywords]):
            continue
        try:
            import inspect
            from .pipeline import unit_of
            fn = unit.resolve(n.func, set())
            if not inspect.isfunction(fn):
                continue
            inner = mutated_deep(unit_of(fn), seen)
            if not inner:
                continue
            names = list(inspect.signature(fn).parameters)
        except Exception:
            continue
        for i, e in enumerate(n.args):
            if isinstance(e, ast.Name) and i < len(names) and names[i] in inner:
                out.add(e.id)
        for k in n.keywords:
            if isinstance(k.value, ast.Name) and k.arg in inner:
                out.add(k.value.id)
    return out & params
