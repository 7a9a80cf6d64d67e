"""What the reverse and forward transforms share: walking normalized code with its
analysis at hand, and reading off an expression node which rule applies to it."""
import ast

from . import astutil as A
from .analysis import complex_refusal, expr_names, MODULE, SEQ, UNKNOWN
from .rules import lookup


class Transform:
    def __init__(self, norm, analysis, env):
        self.norm = norm
        self.unit = norm.unit
        self.an = analysis
        self.names = norm.names
        self.env = env                  # emit.Namespace: binds helpers, callees
        self.cur = self.unit.node

    def error(self, msg, node=None):
        return self.unit.error(msg, node if node is not None else self.cur)

    def active(self, e):
        return bool(expr_names(e) & self.an.active)

    def d(self, name):
        """The adjoint (reverse mode) or tangent (forward mode) of `name`."""
        return self.names.adjoint(name)

    def rule_of(self, n):
        if isinstance(n, ast.BinOp):
            rule = lookup(type(n.op))
            if rule is None:
                raise self.error(f"no derivative rule for operator "
                                 f"'{type(n.op).__name__}'", n)
            rule, args = rule, [n.left, n.right]
        elif isinstance(n, ast.UnaryOp):
            rule, args = lookup(type(n.op)), [n.operand]
        elif isinstance(n, ast.Call):
            rule, args = A.get_tag(n, "rule"), list(n.args)
        else:
            return None, []
        if rule is not None and self.an.standard_backend:
            self.check_standard(rule, n)
        if rule is not None and self.an.complex:
            self.check_complex(rule, n, args)
        return rule, args

    def check_standard(self, rule, n):
        """In code given arrays NumPy does not compute with (PyTorch, JAX...), a call of a
        NumPy function is refused: its rule computes with NumPy. Operators, `.T` and the
        functions of the arrays' namespace (rules/array_api.py) have rules for them."""
        fn = rule.fn
        module = getattr(fn, "__module__", None) or ""
        if not (module == "numpy" or module.startswith("numpy.")) or fn in _STANDARD_SAFE():
            return
        name = getattr(fn, "__name__", rule.name)
        raise self.error(f"{rule.name} is NumPy's, and this code is given arrays of "
                         f"{self.an.standard_backend}: call the function of their "
                         f"namespace instead (xp = array_namespace(x); xp.{name}(...))", n)

    def check_complex(self, rule, n, args):
        """A rule applied where its arguments or result may be complex holds for complex
        values (it declares how: Rule.complex), or this is one clear error."""
        if rule.complex is not None or not (
                self.an.may_be_complex(n) or any(self.an.may_be_complex(a) for a in args)
                or any(self.an.may_be_complex(k.value) for k in getattr(n, "keywords", ()))):
            return
        raise self.error(complex_refusal(rule), n)

    def check_not_list_arithmetic(self, n, args):
        if isinstance(n, ast.BinOp) and any(self.an.kind_of(a) == SEQ for a in args):
            raise self.error("unsupported construct: `+`/`*` on lists carrying derivatives "
                             "(concatenation, repetition); build the list with append or a "
                             "comprehension", n)

    def check_keywords(self, n, rule):
        """A keyword argument carrying a derivative has no rule: say so, never drop it."""
        for k in getattr(n, "keywords", None) or []:
            if self.active(k.value):
                positional = k.arg in (rule.params or ())
                raise self.error(f"no derivative flows through the keyword argument "
                                 f"'{k.arg}' of {rule.name}; " + (
                                     "pass that value positionally or keep it constant"
                                     if positional else "keep it constant"), n)

    def is_stack_pop(self, v):
        """`xs.pop()` on a list carrying derivatives (a stack in derivative code)."""
        base = v.func.value
        if A.get_tag(v, "method") != "pop" or not isinstance(base, ast.Name) or \
                base.id not in self.an.active or self.an.kind_of(base) not in (SEQ, UNKNOWN,
                                                                               None):
            return False                    # (arrays have no .pop: an unknown kind is a list)
        if v.args or v.keywords:
            raise self.error("only `xs.pop()` (no index) is supported on a list carrying "
                             "derivatives", v)
        return True

    def method_rule(self, v):
        """(rule, args) of a method call on an array: x.sum(axis=0) is np.sum(x, axis=0)."""
        name = A.get_tag(v, "method")
        base = v.func.value
        args = list(v.args)
        kind = self.an.kind_of(base)
        if kind == MODULE or kind in (UNKNOWN, None) and not self.active(base) and any(
                self.active(a) for a in args + [k.value for k in v.keywords]):
            # (an object of unknown kind whose method is given a derivative: `xp.sum(y)`
            # with xp a module got from a call is no array's .sum)
            what = ast.unparse(base)
            raise self.error(f"cannot differentiate the call {what}.{name}(...): '{what}' "
                             "holds a module or object transpile cannot see in the source "
                             "(an argument?); call the function through the module itself "
                             f"(e.g. `import math` and math.{name}(...)) or a closure, or, "
                             f"for an array namespace, assign it once as `{what} = "
                             "array_namespace(x)`", v)
        fn = method_function(name)
        if name == "reshape":
            shape = args[0] if len(args) == 1 else ast.Tuple(elts=args, ctx=ast.Load())
            args = [base, shape]
        elif name == "transpose":
            args = [base] + ([args[0]] if len(args) == 1 else
                             [ast.Tuple(elts=args, ctx=ast.Load())] if args else [])
        elif name == "compress":                  # np.compress(condition, a, ...)
            args = [args[0], base] + args[1:]
        else:                                     # x.flatten(order) is np.ravel(x, order)
            args = [base] + args
        return lookup(fn, len(args) - 1) or lookup(fn, len(args)), args


def _STANDARD_SAFE():
    """NumPy functions whose rules compute with any library's arrays (`x.T`, `@`)."""
    import numpy as np
    return {np.transpose, np.permute_dims, np.matmul, np.ndarray.transpose}


def method_function(name):
    """The NumPy function an array method stands for (x.sum: np.sum, x.flatten:
    np.ravel; methods NumPy has no function for: the ndarray method itself), or None."""
    import numpy as np
    named = {"reshape": np.reshape, "transpose": np.transpose, "flatten": np.ravel,
             "compress": np.compress}
    if name in named:
        return named[name]
    if name in ("astype", "item", "tolist") or not hasattr(np, name):
        return getattr(np.ndarray, name, None)
    return getattr(np, name)
