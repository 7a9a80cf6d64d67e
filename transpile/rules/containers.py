"""Rules for container operations: indexing (of lists, arrays and dicts), list, tuple and
dict displays, ``list()`` and ``tuple()``, builtin ``sum``/``max``/``min`` of a list,
methods and attributes of values (an object's fields: its adjoint is a dict keyed by
attribute name, see `is_field`).

normalize.py tags these expressions ``special=...`` instead of giving them a registry
`Rule`: their adjoints write into list adjoints in place (``add_at``) rather than return a
contribution to be added, and they read the analysis (is this a list or an array?). Each
is still one entry, declared once, with its three faces side by side:

* ``kind(an, e)``: the kind of its value (analysis.py),
* ``adjoint(rt, v, G, ans)``: the adjoint statements for incoming adjoint ``G``
  (reverse.py; ``rt`` the reverse transform),
* ``tangent(ft, v)``: its tangent expression, or None for no tangent (forward.py),
* ``selects(rt, v)``: the names whose values it may leave out of its result, so that
  their adjoints may be exactly 0 there (see reverse.ReverseTransform._masked_adjoints).

The transforms find the entry of a tagged expression with `rule_for`; they hold no chain
of special forms. An operation with no entry is refused with a clear error.
"""
import ast
import copy

from .. import analysis as K
from .. import astutil as A
from ..errors import TranspileError
from ..frontend import LibraryFunction
from .registry import lookup


class ContainerRule:
    """The default: no derivative through this expression (each face says why)."""

    what = "expression"

    def kind(self, an, e):
        return K.UNKNOWN

    def adjoint(self, rt, v, G, ans):
        raise rt.error(f"unsupported expression {ast.unparse(v)}", v)

    def tangent(self, ft, v):
        raise ft.error(f"forward mode: no tangent rule for {ast.unparse(v)}", v)

    def selects(self, rt, v):
        return set()


class Subscript(ContainerRule):
    """``base[index]`` of a list, tuple or array (normalized: base is a name)."""

    def kind(self, an, e):
        base = an.kind_of(e.value)
        if base == K.SEQ and isinstance(e.value, ast.Name):
            return an.elem.get(e.value.id, K.UNKNOWN) if not isinstance(
                e.slice, ast.Slice) else K.SEQ
        if base == K.MAP and isinstance(e.value, ast.Name):     # a dict's value
            return an.elem.get(e.value.id, K.UNKNOWN)
        if base == K.SCALAR:                   # indexing a shape tuple or similar
            return K.SCALAR
        return K.ARRAY if base == K.ARRAY else K.UNKNOWN

    def adjoint(self, rt, v, G, ans):
        base = v.value.id
        if base not in rt.an.active:
            return []
        call = ast.Call(func=A.load(rt.env.helper("add_at")), args=[
            A.load(rt.d(base)), A.load(base), A.index_value(v.slice), G], keywords=[])
        return [A.assign(rt.d(base), call)]

    def tangent(self, ft, v):
        base = v.value.id
        if base not in ft.an.active:
            return None
        if base in ft.real_lists:
            return ast.Subscript(value=A.load(ft.d(base)), slice=copy.deepcopy(v.slice),
                                 ctx=ast.Load())
        return ast.Call(func=A.load(ft.env.helper("item")), args=[
            A.load(ft.d(base)), A.index_value(v.slice)], keywords=[])

    def selects(self, rt, v):
        return K.expr_names(v.value)


class Display(ContainerRule):
    """``[a, b, ...]`` / ``(a, b, ...)`` (normalized: elements are names or constants)."""

    def kind(self, an, e):
        return K.SEQ

    def adjoint(self, rt, v, G, ans):
        out = []
        for k, e in enumerate(v.elts):
            if isinstance(e, ast.Name) and e.id in rt.an.active:
                out += rt.accumulate(e.id, ast.Call(
                    func=A.load(rt.env.helper("item")), args=[copy.deepcopy(G), A.const(k)],
                    keywords=[]))
        return out

    def tangent(self, ft, v):
        elts = [A.load(ft.d(e.id)) if isinstance(e, ast.Name) and e.id in ft.an.active
                else A.const(0.0) for e in v.elts]
        return ast.List(elts=elts, ctx=ast.Load())


class DictDisplay(ContainerRule):
    """``{k: a, ...}`` (normalized: keys and values are names or constants; keys carry no
    derivative). Its adjoint and tangent are dicts with the same keys."""

    def kind(self, an, e):
        return K.MAP

    def adjoint(self, rt, v, G, ans):
        out = []
        for k, e in zip(v.keys, v.values):
            if isinstance(e, ast.Name) and e.id in rt.an.active:
                out += rt.accumulate(e.id, ast.Call(
                    func=A.load(rt.env.helper("item")), args=[copy.deepcopy(G),
                                                              copy.deepcopy(k)],
                    keywords=[]))
        return out

    def tangent(self, ft, v):
        values = [A.load(ft.d(e.id)) if isinstance(e, ast.Name) and e.id in ft.an.active
                  else A.const(0.0) for e in v.values]
        return ast.Dict(keys=[copy.deepcopy(k) for k in v.keys], values=values)


class _Builtin(ContainerRule):
    """A builtin applied to a list: keyword arguments carry no derivative."""

    def adjoint(self, rt, v, G, ans):
        fn = A.get_tag(v, "container")
        for k in v.keywords:
            if rt.active(k.value):
                raise rt.error(f"no derivative flows through the keyword argument "
                               f"'{k.arg}' of {fn.__name__}", v)
        return self.builtin_adjoint(rt, v, G)

    def builtin_adjoint(self, rt, v, G):
        raise rt.error(f"no derivative rule for {ast.unparse(v.func)} with these "
                       "arguments", v)

    def kind(self, an, e):
        if isinstance(e.args[0], ast.Name):
            return an.elem.get(e.args[0].id, K.UNKNOWN)
        return K.UNKNOWN

    @staticmethod
    def tangent_of_argument(ft, v):
        arg = v.args[0]
        if isinstance(arg, ast.Name) and arg.id in ft.an.active:
            return A.load(ft.d(arg.id))
        return None


class ListOrTuple(_Builtin):
    """``list(xs)`` / ``tuple(xs)``: a copy."""

    def kind(self, an, e):
        return K.SEQ

    def builtin_adjoint(self, rt, v, G):
        if len(v.args) != 1:
            return super().builtin_adjoint(rt, v, G)
        arg = v.args[0]
        return rt.accumulate(arg.id, G) if isinstance(arg, ast.Name) else []

    def tangent(self, ft, v):
        targ = self.tangent_of_argument(ft, v)
        if targ is None:
            return None
        return ast.Call(func=A.load(ft.env.helper("copy_tangent")), args=[targ], keywords=[])


class Sum(_Builtin):
    """``sum(xs)`` / ``sum(xs, start)``."""

    def builtin_adjoint(self, rt, v, G):
        args = v.args
        h = rt.env.helper
        out = []
        if isinstance(args[0], ast.Name) and args[0].id in rt.an.active:
            base = args[0].id
            out.append(A.assign(rt.d(base), ast.Call(
                func=A.load(h("add_to_each")), args=[A.load(rt.d(base)), A.load(base), G],
                keywords=[])))
        if len(args) > 1 and isinstance(args[1], ast.Name):
            g = copy.deepcopy(G)
            if not (rt.an.kind_of(v) == K.SCALAR == rt.an.kind_of(args[1])):
                # the start value may have broadcast against the elements
                g = ast.Call(func=A.load(h("unbroadcast")), args=[g, A.load(args[1].id)],
                             keywords=[])
            out += rt.accumulate(args[1].id, g)
        return out

    def tangent(self, ft, v):
        from ..forward import _sum
        terms = []
        targ = self.tangent_of_argument(ft, v)
        if targ is not None:
            terms.append(ast.Call(func=A.load(ft.env.helper("sum_tangent")),
                                  args=[targ, copy.deepcopy(v.args[0])], keywords=[]))
        if len(v.args) > 1:
            t2 = ft.tangent(v.args[1])
            if t2 is not None:
                terms.append(t2)
        return _sum(terms)


class Extremum(_Builtin):
    """``max(xs)`` / ``min(xs)`` of a list: the adjoint goes to the element chosen."""

    def __init__(self, which):
        self.which = which                      # the runtime helper: argmax or argmin

    def builtin_adjoint(self, rt, v, G):
        if len(v.args) != 1 or not isinstance(v.args[0], ast.Name):
            return super().builtin_adjoint(rt, v, G)
        base = v.args[0].id
        idx = ast.Call(func=A.load(rt.env.helper(self.which)), args=[A.load(base)],
                       keywords=[])
        return [A.assign(rt.d(base), ast.Call(func=A.load(rt.env.helper("add_at")), args=[
            A.load(rt.d(base)), A.load(base), idx, G], keywords=[]))]

    def tangent(self, ft, v):
        targ = self.tangent_of_argument(ft, v)
        if targ is None:
            return ContainerRule.tangent(self, ft, v)
        return ast.Call(func=A.load(ft.env.helper("item")), args=[targ, ast.Call(
            func=A.load(ft.env.helper(self.which)), args=[copy.deepcopy(v.args[0])],
            keywords=[])], keywords=[])

    def selects(self, rt, v):
        return K.expr_names(v)


class Method(ContainerRule):
    """``value.method(...)``: ``xs.pop()`` of a stack, ``.copy()``, array methods (the
    NumPy function's rule, see Transform.method_rule)."""

    def kind(self, an, e):
        base = an.kind_of(e.func.value)
        name = A.get_tag(e, "method")
        if base in (K.SEQ, K.MAP):
            return base if name == "copy" else K.UNKNOWN
        if base in (K.ARRAY, K.UNKNOWN):
            from ..transform import method_function
            rule = lookup(method_function(name))
            return K.UNKNOWN if rule is not None and rule.several else K.ARRAY
        return K.UNKNOWN

    def adjoint(self, rt, v, G, ans):
        name = A.get_tag(v, "method")
        base = v.func.value
        h = rt.env.helper
        if name == "pop" and rt.is_stack_pop(v):
            return [A.assign(rt.d(base.id), ast.Call(
                func=A.load(h("push_adjoint")), args=[A.load(rt.d(base.id)), A.load(base.id), G],
                keywords=[]))]
        if name == "copy" and isinstance(base, ast.Name) and rt.an.kind_of(base) in (
                K.SEQ, K.MAP, K.SCALAR):
            return rt.accumulate(base.id, G)
        if rt.an.kind_of(base) not in K.STRUCTURES:
            rule, args = rt.method_rule(v)
            if rule is not None:
                return rt.apply_rule(rule, args, copy.deepcopy(v.keywords), G, ans, v)
        raise rt.error(f"no derivative rule for the method '.{name}()' on a "
                       "differentiated value", v)

    def tangent(self, ft, v):
        if A.get_tag(v, "method") == "copy":
            base = v.func.value
            return ast.Call(func=A.load(ft.env.helper("copy_tangent")),
                            args=[A.load(ft.d(base.id))], keywords=[])
        rule, args = ft.method_rule(v)
        return ft.tangent_by_rule(v, rule.fn if rule is not None else None, args)

    def selects(self, rt, v):
        if rt.an.kind_of(v.func.value) == K.SEQ:
            return set()
        try:
            rule, args = rt.method_rule(v)
        except TranspileError:
            return set()
        return K.expr_names(v) if rule is not None and rule.masks else set()


#: attributes of arrays (and of NumPy numbers) that are no object's fields
ARRAY_ATTRIBUTES = frozenset({"T", "mT", "real", "imag", "flat", "base", "ctypes", "data",
                              "strides", "flags", "shape", "ndim", "size", "dtype",
                              "itemsize", "nbytes"})


def is_field(an, v):
    """Is ``base.attr`` the read of a field: an attribute of an object (a dataclass, a
    class of yours), a NamedTuple's field, or any attribute arrays lack of a value of
    unknown kind (``model.layers[0].W``)? Its adjoint goes into the object's dict adjoint
    under the attribute's name (runtime.add_at; a NamedTuple's by its position)."""
    kind = an.kind_of(v.value)
    if kind in (K.OBJECT, K.SEQ):
        return True
    # (a number has no other attributes: a parameter of a variant made before a call)
    return kind in (K.UNKNOWN, None, K.SCALAR) and v.attr not in ARRAY_ATTRIBUTES


class Attribute(ContainerRule):
    """``obj.field`` (see `is_field`), ``x.T`` (np.transpose's rule) and ``x.real`` (of
    real values: x itself)."""

    def kind(self, an, e):
        base = an.kind_of(e.value)
        if base in (K.OBJECT, K.SEQ) and isinstance(e.value, ast.Name):
            return an.elem.get(e.value.id, K.UNKNOWN)
        return K.ARRAY if base == K.ARRAY else K.UNKNOWN

    def adjoint(self, rt, v, G, ans):
        import numpy as np
        if is_field(rt.an, v):
            base = v.value.id
            if base not in rt.an.active:
                return []
            call = ast.Call(func=A.load(rt.env.helper("add_at")), args=[
                A.load(rt.d(base)), A.load(base), A.const(v.attr), G], keywords=[])
            return [A.assign(rt.d(base), call)]
        if v.attr == "T":
            return rt.apply_rule(lookup(np.transpose, 1), [v.value], [], G, ans, v)
        if v.attr in ("real", "imag"):
            fn = np.real if v.attr == "real" else np.imag
            return rt.apply_rule(lookup(fn, 1), [v.value], [], G, ans, v)
        raise rt.error(f"no derivative rule for the attribute '.{v.attr}' of a "
                       "differentiated value", v)

    def tangent(self, ft, v):
        import numpy as np
        if is_field(ft.an, v):
            base = v.value.id
            if base not in ft.an.active:
                return None
            return ast.Call(func=A.load(ft.env.helper("field")), args=[
                A.load(ft.d(base)), A.load(base), A.const(v.attr)], keywords=[])
        if v.attr == "T":
            return ft.tangent_by_rule(v, np.transpose, [v.value])
        if v.attr in ("real", "imag"):
            return ft.tangent_by_rule(v, np.real if v.attr == "real" else np.imag, [v.value])
        raise ft.error(f"no tangent rule for the attribute '.{v.attr}'", v)

    def selects(self, rt, v):
        return K.expr_names(v.value) if is_field(rt.an, v) else set()


class Opaque(ContainerRule):
    """A call of something transpile cannot read and has no rule for."""

    def tangent(self, ft, v):
        what = A.get_tag(v, "opaque")
        if isinstance(what, LibraryFunction):
            raise ft.error(what.message(), v)
        if isinstance(what, str) and what.endswith("at module level)"):
            raise ft.error(f"forward mode: no tangent rule for '{what}", v)
        return super().tangent(ft, v)

    def adjoint(self, rt, v, G, ans):
        from ..reverse import _callable_name
        what = A.get_tag(v, "opaque")
        if isinstance(what, LibraryFunction):
            raise rt.error(what.message(), v)
        label = what if isinstance(what, str) else _callable_name(what)
        if isinstance(what, str) and what.endswith(("display", "comprehension")):
            raise rt.error(f"unsupported construct: {what} holding a differentiated "
                           "value", v)
        if isinstance(what, str) and what.endswith("at module level)"):
            raise rt.error(f"no derivative rule for '{what}", v)
        raise rt.error(f"no derivative rule for '{label}' and it is not a Python "
                       "function transpile can read; register a rule with "
                       "transpile.defvjp", v)


class Dynamic(ContainerRule):
    """A call through a value (reverse.py / forward.py `dynamic_call`, calls.py)."""


_BY_SPECIAL = {"dynamic": Dynamic(), "subscript": Subscript(), "display": Display(),
               "dict": DictDisplay(), "method": Method(),
               "attr": Attribute(), "opaque": Opaque()}
_BY_BUILTIN = {list: ListOrTuple(), tuple: ListOrTuple(), sum: Sum(),
               max: Extremum("argmax"), min: Extremum("argmin")}
_NONE = ContainerRule()


def rule_for(e):
    """The container rule of a ``special``-tagged expression (the default refuses)."""
    special = A.get_tag(e, "special")
    if special == "container":
        return _BY_BUILTIN.get(A.get_tag(e, "container"), _NONE)
    return _BY_SPECIAL.get(special, _NONE)
