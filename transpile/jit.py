"""The optional numba backend: compile generated derivative code with ``numba.njit``.

Used by ``grad(f, jit=True)``, ``value_and_grad(f, jit=True)`` and
``@differentiate(jit=True)``. The generated Python stays what ``.source`` shows; this
module compiles a copy of it:

1. Parse the generated source (or, for a plain Python function it calls, the function's
   own source) and apply the numba pass (`_NumbaPass`): one typed stack per saved
   variable instead of the shared ``_stack`` (numba lists hold one type), typed
   placeholders instead of ``v = None`` for variables saved before their first
   assignment, nested defs that nothing calls any more left out, lifted free variables
   made positional parameters (numba has no keyword-only ones), ``math.log(x, base)``
   spelled out. Everything else is plain scalar Python that numba takes as it is (lists
   as tapes, ``range`` objects, math calls, bound ``append``/``pop`` aliases).
2. Bind every free name as a global of a fresh module dictionary: numba treats globals
   as compile-time constants, so helpers such as ``sin`` (math.sin) cost no lookup. The
   objects come from the function's closure cells and globals, resolved once here.
   Python functions among them (runtime helpers like ``sign``, derivatives of called
   functions, the user's own helpers) are compiled the same way, recursively. What numba
   lacks gets a stand-in (`_helpers`): ``reversed`` of lists and ranges, the scalar cases
   of ``pow_log`` and ``pow_deriv``, ``sign`` and ``abs_partial`` of numbers and arrays,
   ``is_zero`` (the zero adjoint placeholder) of numbers and arrays, and the array
   helpers and NumPy vjp rules of jit_arrays.py (``add_at``, ``take_item``,
   ``unbroadcast``, ``mul_masked``, ``result_seed``; the vjps of sum, mean, max, min,
   dot, matmul and @), each a numba overload chosen by argument types.
   For array code the pass also rewrites what numba lacks or computes differently:
   reductions with axis/keepdims and ``np.full`` of an array to jit_arrays' stand-ins;
   matrix products, transcendental ufuncs of arrays and float sums that are not
   NumPy's pairwise summation compiled run as NumPy's own (numba's object mode), so the
   jitted primal gives the primal's very numbers. Single-use arithmetic temporaries go
   into their one use (numba fuses a statement's array arithmetic into one loop), and
   runs of elementwise statements (``+ - * /``, ``** 2``, comparisons, ``np.where``,
   constant slices) become explicit loops over the elements, one per group of
   statements of one shape, without temporaries for values read only inside the loop
   (jit_fuse.py; chosen by numba's argument types, what it does not cover runs as the
   statements themselves). The forward and backward functions of a call split their
   shared tape stack into one stack per variable where both save the same variables
   (`_pair_tapes`).
3. ``numba.njit`` the result. Numba compiles on the first call for each combination of
   argument types. A variable that holds arrays in a loop but starts as a number (a
   zero adjoint, a placeholder) makes numba fail to unify the two; `Repairing` then
   types the placeholder from numba's message and builds again. What numba still
   cannot compile (other NumPy vjp helpers, lists of arrays, arbitrary Python objects)
   raises one `TranspileError` naming numba's reason and the user's file:line of the
   statement the failing code came from. There is no silent fallback to the
   plain-Python gradient: a user who asked for jit=True learns that it did not apply.

numba is an optional dependency (the ``jit`` extra); without it, asking for jit=True is a
`TranspileError` that says how to install it.
"""
import ast
import builtins
import inspect
import itertools
import linecache
import math
import re
import textwrap
import types
import weakref

from . import in_place, jit_arrays, jit_fuse
from .errors import TranspileError
from .tapes import PUSH, POP, STACK

INSTALL_HINT = "pip install 'transpile[jit]' (or pip install numba)"

_COUNTER = itertools.count(1)
_DISPATCHERS = weakref.WeakKeyDictionary()     # Python function -> numba dispatcher
_JITTED = weakref.WeakKeyDictionary()          # pipeline.Compiled -> JitCompiled


def numba_module():
    """The numba module, or a TranspileError saying how to install it."""
    try:
        import numba
    except ImportError as exc:
        raise TranspileError(f"jit=True needs the optional package numba, which is not "
                             f"installed ({exc}); install it with {INSTALL_HINT}") from None
    return numba


class JitCompiled:
    """The jitted counterpart of one pipeline.Compiled gradient (same `.source`); made
    again when that gradient is rebuilt (something it was built from changed)."""

    def __init__(self, function, source, base=None):
        self._function = function
        self.source = source
        self.base = base
        self.generation = base.generation if base is not None else 0

    @property
    def function(self):
        base = self.base
        if base is not None and not (base._check() and base.generation == self.generation):
            base._fresh()
            if base.generation != self.generation:
                self._function = Repairing(base._function)
                self.source = base._source
                self.generation = base.generation
        return self._function


def compiled_for(compiled):
    """The JitCompiled of a value_and_grad Compiled (built once, then cached): its
    `.function` is the numba dispatcher (numba compiles on the first call per types)."""
    jitted = _JITTED.get(compiled)
    if jitted is None:
        try:
            function = Repairing(compiled.function)
        except TranspileError:
            raise
        except Exception as exc:          # not expected: still one clear error
            unit = compiled.unit
            raise TranspileError(f"jit=True: cannot prepare the derivative code for numba "
                                 f"({type(exc).__name__}: {exc}); use jit=False for this "
                                 f"function", unit.filename, unit.node.lineno,
                                 unit.name) from exc
        jitted = JitCompiled(function, compiled.source, compiled)
        _JITTED[compiled] = jitted
    return jitted


def call_failure(exc, user_fn):
    """For an exception out of a jitted call: the TranspileError to raise instead when it
    is numba failing to compile, None when the compiled code raised it (e.g. 1 / 0)."""
    numba = numba_module()
    if (isinstance(exc, numba.core.errors.NumbaError)
            or type(exc).__module__.startswith(("numba", "llvmlite"))
            or _while_compiling(exc)):
        return compile_error(exc, user_fn)
    return None


def _while_compiling(exc):
    """Raised inside numba's compiler (an internal error), not by the compiled code."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "compile_extra" and "numba" in code.co_filename:
            return True
        tb = tb.tb_next
    return False


# --- the numba pass ------------------------------------------------------------------------

class _NumbaPass(ast.NodeTransformer):
    """Rewrites of generated (or user) Python into the subset numba compiles; `means(name)`
    is the object a free name of the function refers to."""

    def __init__(self, means, tape_stacks=None):
        self.means = means
        self.tape_stacks = tape_stacks

    def run(self, fdef):
        self._drop_unused_defs(fdef)
        self._drop_dead_nones(fdef)
        self._placeholders(fdef)
        self._split_stack(fdef)
        if self.tape_stacks:
            _split_tape_stack(fdef, self.tape_stacks)
        self._inline_temporaries(fdef)
        fdef = self.visit(fdef)
        import numpy
        self.groups = jit_fuse.fuse(fdef, lambda f: self._is(f, numpy.where))
        return fdef

    _PURE_NODES = (ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant, ast.operator,
                   ast.unaryop, ast.expr_context, ast.Compare, ast.cmpop, ast.Attribute)

    def _pure_call(self, node):
        """A call of a NumPy ufunc or a math function: computes, changes nothing."""
        if not isinstance(node, ast.Call) or node.keywords or any(
                isinstance(a, ast.Starred) for a in node.args):
            return False
        f = node.func
        if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)):
            return False
        module = self.means(f.value.id)
        obj = getattr(module, f.attr, None)
        import numpy
        return (module is numpy and isinstance(obj, numpy.ufunc)) or (
            module is math and callable(obj))

    def _pure(self, node):
        for n in ast.walk(node):
            if isinstance(n, ast.Call):
                if not self._pure_call(n):
                    return False
            elif isinstance(n, ast.Attribute):
                if not (isinstance(n.value, ast.Name) and n.value.id in (
                        "np", "numpy", "math") and self.means(n.value.id) is not _MISSING):
                    return False
            elif not isinstance(n, self._PURE_NODES):
                return False
        return True

    def _shapes_for_unbroadcast(self, fdef, loads, stores, params):
        """``unbroadcast(g, _t)`` reads only the shape of the temporary _t: where _t is
        elementwise arithmetic of variables assigned once, its shape comes from theirs
        (`_jit_like`), so that _t may be inlined into its other use."""
        from . import runtime
        values = {}
        for n in ast.walk(fdef):
            if (isinstance(n, ast.Assign) and len(n.targets) == 1
                    and isinstance(n.targets[0], ast.Name)):
                values.setdefault(n.targets[0].id, n.value)
        for n in ast.walk(fdef):
            if not (isinstance(n, ast.Call) and self._is(n.func, runtime.unbroadcast)
                    and len(n.args) == 2 and not n.keywords
                    and isinstance(n.args[1], ast.Name)):
                continue
            name = n.args[1].id
            value = values.get(name)
            if (not name.startswith("_t") or stores.get(name) != 1 or value is None
                    or not self._elementwise(value)):
                continue
            operands = [m.id for m in ast.walk(value) if isinstance(m, ast.Name)
                        and isinstance(m.ctx, ast.Load) and m.id not in ("np", "math")]
            if not operands or any(
                    stores.get(o, 0) + (o in params) != 1 for o in operands):
                continue
            like = ast.Name(id=operands[0], ctx=ast.Load())
            for o in operands[1:]:
                like = ast.Call(func=ast.Name(id="_jit_like", ctx=ast.Load()),
                                args=[like, ast.Name(id=o, ctx=ast.Load())], keywords=[])
            if len(operands) == 1:
                like = ast.Call(func=ast.Name(id="_jit_like", ctx=ast.Load()),
                                args=[like, ast.Constant(value=0.0)], keywords=[])
            n.args[1] = ast.copy_location(like, n.args[1])
            loads[name] -= 1
            for o in operands:
                loads[o] = loads.get(o, 0) + 1

    def _elementwise(self, node):
        """Arithmetic and ufuncs of one argument each, with the shape of the broadcast
        of its variables (no comparisons, no reductions)."""
        for n in ast.walk(node):
            if isinstance(n, ast.Call):
                if not self._pure_call(n):
                    return False
            elif isinstance(n, ast.Attribute):
                continue
            elif not isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant,
                                    ast.operator, ast.unaryop, ast.expr_context)):
                return False
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult):
                return False
        return True

    def _inline_temporaries(self, fdef):
        """``_t = <arithmetic>`` read once, by the next statement, goes into that
        statement: numba fuses one statement's array arithmetic into one loop (the same
        operations in the same order, without the intermediate array). Only where nothing
        evaluated in between can change the operands (other calls of the statement that
        run first are ufuncs too)."""
        loads, stores = {}, {}
        for n in ast.walk(fdef):
            if isinstance(n, ast.Name):
                (loads if isinstance(n.ctx, ast.Load) else stores)[n.id] = (
                    (loads if isinstance(n.ctx, ast.Load) else stores).get(n.id, 0) + 1)
        params = {a.arg for a in ast.walk(fdef.args) if isinstance(a, ast.arg)}
        self._shapes_for_unbroadcast(fdef, loads, stores, params)
        for body in list(_bodies(fdef)):
            k = 0
            while k < len(body) - 1:
                stmt = body[k]
                if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0], ast.Name)):
                    k += 1
                    continue
                name = stmt.targets[0].id
                if (not name.startswith("_t") or name in params or stores.get(name) != 1
                        or loads.get(name) != 1 or not self._pure(stmt.value)):
                    k += 1
                    continue
                # the statement reading it: later in this body, past pure assignments
                # of other names than its operands
                operands = {m.id for m in ast.walk(stmt.value) if isinstance(m, ast.Name)}
                nxt = None
                for later in body[k + 1:]:
                    if any(isinstance(m, ast.Name) and m.id == name
                           for m in ast.walk(later)):
                        nxt = later
                        break
                    if not (isinstance(later, ast.Assign) and len(later.targets) == 1
                            and isinstance(later.targets[0], ast.Name)
                            and later.targets[0].id not in operands
                            and self._pure(later.value)):
                        break
                if not isinstance(nxt, ast.Assign):
                    k += 1
                    continue
                path = _path_to_load(nxt.value, name)
                if path is None or not all(
                        self._pure_call(n) for n in ast.walk(nxt.value)
                        if isinstance(n, ast.Call) and n not in path):
                    k += 1
                    continue
                parent, field, index = path[-1]
                if isinstance(parent, ast.Expression):
                    nxt.value = stmt.value
                elif index is None:
                    setattr(parent, field, stmt.value)
                else:
                    getattr(parent, field)[index] = stmt.value
                del body[k]
                k = max(k - 1, 0)

    @staticmethod
    def _drop_unused_defs(fdef):
        """A nested def that nothing calls any more (its calls now go to the lifted
        derivative functions) is left out: numba compiles no closure it cannot type."""
        loaded = {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Load)}
        for body in list(_bodies(fdef)):
            body[:] = [s for s in body if not (isinstance(s, ast.FunctionDef)
                                               and s.name not in loaded)] or [ast.Pass()]

    def _split_stack(self, fdef):
        """One stack per saved variable instead of one shared stack: each gets the type of
        its variable (numba lists hold one type; a shared one would turn conditions and
        loop counters into floats, or not compile with ranges on it). Same order: the
        shared stack is LIFO, so is its restriction to one variable. Done only when every
        push saves a variable and every pop restores one, in this function."""
        setup = {}
        pushed, popped = [], []
        for n in ast.walk(fdef):
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(
                    n.targets[0], ast.Name) and n.targets[0].id in (STACK, PUSH, POP):
                setup[n.targets[0].id] = n
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                if n.func.id == PUSH:
                    if len(n.args) != 1 or not isinstance(n.args[0], ast.Name):
                        return
                    pushed.append(n.args[0].id)
                elif n.func.id == POP:
                    popped.append(n)
        if set(setup) != {STACK, PUSH, POP} or setup[STACK] not in fdef.body:
            return
        restores = {}
        for n in ast.walk(fdef):
            if isinstance(n, ast.Assign) and n.value in popped:
                if len(n.targets) != 1 or not isinstance(n.targets[0], ast.Name):
                    return
                restores[id(n.value)] = n.targets[0].id
        if len(restores) != len(popped) or set(restores.values()) != set(pushed):
            return
        stacks = {v: f"_jit_stack_{v}" for v in sorted(set(pushed))}
        for n in ast.walk(fdef):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                if n.func.id == PUSH:
                    n.func = ast.Attribute(value=ast.Name(id=stacks[n.args[0].id],
                                                          ctx=ast.Load()),
                                           attr="append", ctx=ast.Load())
                elif n.func.id == POP:
                    n.func = ast.Attribute(value=ast.Name(id=stacks[restores[id(n)]],
                                                          ctx=ast.Load()),
                                           attr="pop", ctx=ast.Load())
        k = fdef.body.index(setup[STACK])
        fdef.body[k:k + 1] = [ast.copy_location(ast.parse(f"{s} = []").body[0], setup[STACK])
                              for s in stacks.values()]
        for name in (PUSH, POP):
            for body in _bodies(fdef):
                if setup[name] in body:
                    body.remove(setup[name])

    def _is(self, node, obj):
        if isinstance(node, ast.Name):
            return self.means(node.id) is obj
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return getattr(self.means(node.value.id), node.attr, _MISSING) is obj
        return False

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.MatMult):     # NumPy's own product for float arrays
            return ast.copy_location(ast.Call(
                func=ast.Name(id="_jit_matmul", ctx=ast.Load()),
                args=[node.left, node.right], keywords=[]), node)
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        import numpy
        if (len(node.args) == 2 and not node.keywords and not any(
                isinstance(a, ast.Starred) for a in node.args) and (
                self._is(node.func, numpy.matmul)
                or self._is(node.func, getattr(numpy.linalg, "matmul", numpy.matmul)))):
            # np.matmul(a, b) is a @ b (numba has the operator, not the function)
            return ast.copy_location(ast.Call(
                func=ast.Name(id="_jit_matmul", ctx=ast.Load()), args=node.args,
                keywords=[]), node)
        if self._is(node.func, math.log) and len(node.args) == 2 and not node.keywords:
            node.func = ast.copy_location(ast.Name(id="_jit_log", ctx=ast.Load()), node.func)
        elif (self._is(node.func, builtins.reversed) and len(node.args) == 1
                and isinstance(node.args[0], ast.Subscript)
                and isinstance(node.args[0].slice, ast.Slice)
                and node.args[0].slice.lower is None and node.args[0].slice.step is None
                and node.args[0].slice.upper is not None):
            # reversed(xs[:n]) -> reversed(_jit_prefix(xs, n)): numba slices no range
            sub = node.args[0]
            node.args[0] = ast.copy_location(ast.Call(
                func=ast.Name(id="_jit_prefix", ctx=ast.Load()),
                args=[sub.value, sub.slice.upper], keywords=[]), sub)
        elif (len(node.args) == 1 and not node.keywords
                and not isinstance(node.args[0], ast.Starred)
                and isinstance(node.func, ast.Attribute) and node.func.attr in jit_arrays.UFUNCS
                and self._is(node.func, getattr(numpy, node.func.attr, _MISSING))):
            node.func = ast.copy_location(ast.Name(id=f"_jit_np_{node.func.attr}",
                                                   ctx=ast.Load()), node.func)
        elif any(self._is(node.func, fn) for fn in jit_arrays.REWRITES) and len(
                node.args) == 2 and not node.keywords:
            name = next(n for fn, n in jit_arrays.REWRITES.items() if self._is(node.func, fn))
            node.func = ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node.func)
        elif (1 <= len(node.args) <= 2
                and {k.arg for k in node.keywords} <= {"axis", "keepdims"}
                and not any(isinstance(a, ast.Starred) for a in node.args)):
            # np.sum(a, axis, keepdims=True)...: numba's reductions take no keepdims
            # (and max/min no axis): the stand-ins of jit_arrays take both
            for fn, name in jit_arrays.REDUCTIONS.items():
                if self._is(node.func, fn):
                    node.func = ast.copy_location(ast.Name(id=name, ctx=ast.Load()),
                                                  node.func)
                    break
        return node

    @staticmethod
    def _drop_dead_nones(fdef):
        """``v = None`` that a later top-level assignment overwrites before anything
        mentions v is left out (a None would make v's type optional)."""
        body = fdef.body
        dead = []
        for k, stmt in enumerate(body):
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Constant) and stmt.value.value is None):
                continue
            name = stmt.targets[0].id
            for later in body[k + 1:]:
                mentions = [n for n in ast.walk(later)
                            if isinstance(n, ast.Name) and n.id == name]
                if not mentions:
                    continue
                if (isinstance(later, ast.Assign) and len(later.targets) == 1
                        and isinstance(later.targets[0], ast.Name)
                        and later.targets[0].id == name
                        and not any(isinstance(n, ast.Name) and n.id == name
                                    for n in ast.walk(later.value))):
                    dead.append(stmt)
                break
        body[:] = [s for s in body if s not in dead]

    def _placeholders(self, fdef):
        """``v = None`` (a variable saved before its first assignment) gets a value of the
        variable's type instead: numba types lists and conditions, and a None would make
        them optional. The value is never read (only restored over), so only its type
        matters: False for conditions, 0 for loop variables, 0.0 for numbers; None stays
        where the type is not clear (numba then says what it cannot type)."""
        values, targets = {}, {}
        for n in ast.walk(fdef):
            if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                    if isinstance(t, ast.Name):
                        values.setdefault(t.id, []).append(n.value)
                    else:
                        for m in ast.walk(t):
                            if isinstance(m, ast.Name):
                                targets[m.id] = "tuple"
            elif isinstance(n, (ast.For, ast.comprehension)):
                for m in ast.walk(n.target):
                    if isinstance(m, ast.Name):
                        targets.setdefault(m.id, "loop")
        for stmt in fdef.body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Constant) and stmt.value.value is None):
                continue
            name = stmt.targets[0].id
            others = [v for v in values.get(name, []) if v is not stmt.value]
            if targets.get(name) == "tuple" or any(self._opaque(v) for v in others):
                continue
            if others and all(self._boolean(v) for v in others):
                stmt.value.value = False
            elif others and all(self._is_range(v) for v in others):
                stmt.value = ast.copy_location(ast.parse("range(0)", mode="eval").body,
                                               stmt.value)
            elif targets.get(name) == "loop":
                stmt.value.value = 0
            else:
                stmt.value.value = 0.0

    @staticmethod
    def _boolean(v):
        return (isinstance(v, ast.Compare)
                or isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.Not)
                or isinstance(v, ast.Constant) and isinstance(v.value, bool)
                or isinstance(v, ast.BoolOp) and all(_NumbaPass._boolean(x)
                                                      for x in v.values))

    def _is_range(self, v):
        return isinstance(v, ast.Call) and self._is(v.func, range)

    def _opaque(self, v):
        """A value that is not a number or a condition (a range, tuple, list...)."""
        if isinstance(v, (ast.Tuple, ast.List, ast.ListComp, ast.Dict, ast.Set)):
            return True
        return self._is_range(v)


def tape_stack_variables(fdef):
    """For the forward (or backward) function of a call's pair, which passes the shared
    stack to the other in its tape: the sorted variables it pushes (or pops into), or
    None when the stack is used otherwise (then it is not split)."""
    setup = {}
    saved = set()
    uses = []
    for n in ast.walk(fdef):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(
                n.targets[0], ast.Name) and n.targets[0].id in (STACK, PUSH, POP):
            setup[n.targets[0].id] = n
            if n.targets[0].id != STACK and not (
                    isinstance(n.value, ast.Attribute) and isinstance(n.value.value, ast.Name)
                    and n.value.value.id == STACK):
                return None
    if PUSH in setup and POP not in setup and STACK in setup:
        role = PUSH
    elif POP in setup and PUSH not in setup and STACK not in setup:
        role = POP
    else:
        return None
    pops = set()
    for n in ast.walk(fdef):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in (
                PUSH, POP):
            if n.func.id != role:
                return None
            if role == PUSH:
                if len(n.args) != 1 or not isinstance(n.args[0], ast.Name) or n.keywords:
                    return None
                saved.add(n.args[0].id)
            else:
                pops.add(id(n))
        elif isinstance(n, ast.Name) and n.id == STACK:
            uses.append(n)
    restored = 0
    for n in ast.walk(fdef):
        if isinstance(n, ast.Assign) and id(n.value) in pops:
            if len(n.targets) != 1 or not isinstance(n.targets[0], ast.Name):
                return None
            saved.add(n.targets[0].id)
            restored += 1
    if role == POP and restored != len(pops):
        return None
    # the stack itself: its setup, and one element of the tape tuple
    in_tuples = [n for n in ast.walk(fdef) if isinstance(n, ast.Tuple)
                 and any(isinstance(e, ast.Name) and e.id == STACK for e in n.elts)]
    if len(in_tuples) != 1 or len(uses) != (3 if role == PUSH else 2):
        return None
    return sorted(saved)


def _split_tape_stack(fdef, variables):
    """The shared stack of a forward/backward pair as one stack per variable, in the tape
    as so many elements (in `variables` order, the same on both sides)."""
    stacks = [f"_jit_stack_{v}" for v in variables]
    by_var = dict(zip(variables, stacks))
    removed = set()
    for body in _bodies(fdef):
        for k, stmt in enumerate(list(body)):
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and stmt.targets[0].id in (STACK, PUSH, POP)):
                if stmt.targets[0].id == STACK:
                    new = [ast.copy_location(ast.parse(f"{s} = []").body[0], stmt)
                           for s in stacks]
                else:
                    new = []
                removed.add(id(stmt))
                at = body.index(stmt)
                body[at:at + 1] = new
    for n in ast.walk(fdef):
        if isinstance(n, ast.Tuple) and any(isinstance(e, ast.Name) and e.id == STACK
                                            for e in n.elts):
            elts = []
            for e in n.elts:
                if isinstance(e, ast.Name) and e.id == STACK:
                    elts.extend(ast.Name(id=s, ctx=type(e.ctx)()) for s in stacks)
                else:
                    elts.append(e)
            n.elts = elts
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == PUSH:
            n.func = ast.Attribute(value=ast.Name(id=by_var[n.args[0].id], ctx=ast.Load()),
                                   attr="append", ctx=ast.Load())
        elif isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) and isinstance(
                n.value.func, ast.Name) and n.value.func.id == POP:
            n.value.func = ast.Attribute(
                value=ast.Name(id=by_var[n.targets[0].id], ctx=ast.Load()), attr="pop",
                ctx=ast.Load())


def _path_to_load(root, name):
    """The ancestors of the one load of `name` under the expression `root` (a list
    ending with (parent, field, index) of the load), or None."""
    def walk(node, trail):
        for field, value in ast.iter_fields(node):
            items = value if isinstance(value, list) else [value]
            for i, child in enumerate(items):
                if not isinstance(child, ast.AST):
                    continue
                here = (node, field, i if isinstance(value, list) else None)
                if isinstance(child, ast.Name) and child.id == name and isinstance(
                        child.ctx, ast.Load):
                    return trail + [here]
                found = walk(child, trail + [child])
                if found is not None:
                    return found
        return None
    return walk(ast.Expression(body=root), [])


def _bodies(node):
    for n in ast.walk(node):
        for field in ("body", "orelse"):
            body = getattr(n, field, None)
            if isinstance(body, list):
                yield body


def _free_names(fdef):
    """Names a function reads that it never binds (its globals/closure/builtins)."""
    bound = {a.arg for a in ast.walk(fdef.args) if isinstance(a, ast.arg)}
    loads = set()
    for n in ast.walk(fdef):
        if isinstance(n, ast.Name):
            if isinstance(n.ctx, ast.Load):
                loads.add(n.id)
            else:
                bound.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.Lambda)) and n is not fdef:
            bound.update(a.arg for a in ast.walk(n.args) if isinstance(a, ast.arg))
            if isinstance(n, ast.FunctionDef):
                bound.add(n.name)
    return sorted(loads - bound)


_MISSING = object()


def _lookup(fn, name):
    """What a free name of fn means: its closure cell, its globals, then builtins."""
    code = fn.__code__
    if name in code.co_freevars and fn.__closure__:
        cell = fn.__closure__[code.co_freevars.index(name)]
        try:
            return cell.cell_contents
        except ValueError:
            return _MISSING
    if name in fn.__globals__:
        return fn.__globals__[name]
    return getattr(builtins, name, _MISSING)


def _source_of(fn):
    """(source text, file name for error messages, first line of the source in it)."""
    source = getattr(fn, "__transpile_source__", None)
    if source is not None:
        return source, None, 1
    try:
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        raise TranspileError(f"jit=True: cannot read the source of {fn.__qualname__}, "
                             "which the derivative code calls") from None
    return textwrap.dedent("".join(lines)), fn.__code__.co_filename, start


def dispatcher(fn, entry=True):
    """numba.njit of a copy of fn (generated or plain Python), free names as constants.

    entry=False: only called from other jitted code, so no CPython wrapper (numba cannot
    build one for some argument types that jitted callers pass fine, such as tapes holding
    lists)."""
    found = _DISPATCHERS.get(fn)
    if found is not None:
        return found
    numba = numba_module()
    source, filename, start = _source_of(fn)
    tree = ast.parse(source)
    fdef = tree.body[0]
    if not isinstance(fdef, ast.FunctionDef):
        raise TranspileError(f"jit=True: {fn.__qualname__} is not a def statement "
                             "(lambdas are not compiled)")
    fdef.decorator_list = []
    fdef.args.defaults = []               # the function's own evaluated defaults are set
    fdef.args.kw_defaults = [None] * len(fdef.args.kwonlyargs)     # on the copy below
    if filename is None:
        # generated code: its temporaries written in place and direct reductions
        # (in_place.py) as the whole expressions they are (numba fuses an expression
        # into one loop)
        in_place.unlower(fdef, lambda name: _lookup(fn, name))
    numba_pass = _NumbaPass(lambda name: _lookup(fn, name), _TAPE_STACKS.get(fn))
    numba_pass.run(fdef)
    _typed_placeholders(fdef, _FIXES.get(fn, {}))
    defaults = _positional(fn, fdef)
    ast.fix_missing_locations(tree)
    if filename is None:                 # generated: its own name, registered below
        filename = f"<transpile jit {fn.__name__} #{next(_COUNTER)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        _GENERATED[filename] = _where(fn, None)[0], fn.__transpile_lines__
    else:
        ast.increment_lineno(tree, start - 1)
    last = max((getattr(n, "end_lineno", 0) or 0) for n in ast.walk(fdef))
    _BUILT.append((filename, fdef.lineno, last, weakref.ref(fn)))
    namespace = {"__builtins__": builtins, "__name__": f"transpile_jit_{fn.__name__}",
                 **_helpers(), **numba_pass.groups}
    exec(compile(tree, filename, "exec"), namespace)
    py = namespace[fdef.name]
    py.__defaults__ = defaults
    compiled = numba.njit(py, no_cpython_wrapper=not entry)
    _DISPATCHERS[fn] = compiled           # before the free names: recursion finds it
    _BUILDING.add(fn)
    try:
        _bind_free_names(fn, fdef, namespace)
    except BaseException:
        del _DISPATCHERS[fn]
        raise
    finally:
        _BUILDING.discard(fn)
    return compiled


_BUILDING = weakref.WeakSet()       # functions whose free names are being bound
_FIXES = weakref.WeakKeyDictionary()   # function -> {variable: (ndim, dtype) of its arrays}
_BUILT = []                            # (file, first line, last line, weakref to function)


# --- placeholders typed by numba's own inference -------------------------------------------

class Repairing:
    """The numba dispatcher of a gradient, built again when numba reports a placeholder
    of the wrong type: a variable that holds arrays in a loop but a number (the zero
    adjoint 0.0, or the typed placeholder of a variable saved before its first assignment)
    where the loop starts. The type numba inferred for the variable's arrays is then the
    placeholder's (`_typed_placeholders`): an adjoint's zero becomes zeros shaped like its
    value, a saved-before-assigned placeholder an empty array of that type (never read)."""

    def __init__(self, fn):
        self.fn = fn
        self.dispatcher = dispatcher(fn)

    def __call__(self, *args, **kwargs):
        try:
            return self.dispatcher(*args, **kwargs)
        except Exception as exc:
            if not _repair(exc):
                raise
        self.dispatcher = dispatcher(self.fn)
        return self(*args, **kwargs)


_UNIFY = re.compile(r"Cannot unify (.+?) and (.+?) for '([A-Za-z_][A-Za-z0-9_]*)(?:\.\d+)?', "
                    r"defined at (.+?) \((\d+)\)")
_ARRAY_TYPE = re.compile(r"array\((float64|float32|int64|int32|bool), (\d+)d, [CFA]\)$")


def _repair(exc):
    """Record the placeholder fix a numba unification failure calls for (True), or
    False when it is not one (the error stands)."""
    try:
        numba = numba_module()
    except TranspileError:
        return False
    if not isinstance(exc, numba.core.errors.TypingError):
        return False
    found = _UNIFY.search(_ANSI.sub("", str(exc)))
    if found is None:
        return False
    first, second, name, filename, line = found.groups()
    scalars = ("float64", "int64", "bool", "Literal[int](0)", "Literal[float](0.0)")
    array = next((_ARRAY_TYPE.match(t) for t in (first, second) if _ARRAY_TYPE.match(t)),
                 None)
    other = second if array is not None and _ARRAY_TYPE.match(first) else first
    if array is None or other not in scalars:
        return False
    line = int(line)
    fn = next((ref() for f, lo, hi, ref in reversed(_BUILT)
               if f == filename and lo <= line <= hi and ref() is not None), None)
    if fn is None:
        return False
    fixes = _FIXES.setdefault(fn, {})
    want = (int(array.group(2)), array.group(1))
    if fixes.get(name) == want:
        return False                      # already typed so: numba's error stands
    fixes[name] = want
    _DISPATCHERS.clear()                  # callers hold the old dispatchers: all again
    return True


def _typed_placeholders(fdef, fixes):
    """`NAME = 0.0` (or 0, False) for a NAME in fixes: zeros like NAME's value for an
    adjoint ``dV`` of a variable V of the function, else an empty array of the type."""
    if not fixes:
        return
    bound = {a.arg for a in ast.walk(fdef.args) if isinstance(a, ast.arg)}
    bound |= {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name)
              and isinstance(n.ctx, ast.Store)}
    for node in ast.walk(fdef):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id in fixes
                and isinstance(node.value, ast.Constant)
                and node.value.value in (0, 0.0, False, None)):
            continue
        name = node.targets[0].id
        ndim, dtype = fixes[name]
        if name.startswith("d") and name[1:] in bound:
            text = f"_jit_zeros_like({name[1:]})"
        else:
            dtype = "bool_" if dtype == "bool" else dtype
            shape = "(" + "0, " * ndim + ")"
            text = f"_jit_np.zeros({shape}, _jit_np.{dtype})"
        node.value = ast.copy_location(ast.parse(text, mode="eval").body, node.value)


def _positional(fn, fdef):
    """Keyword-only parameters become positional ones after the others (numba has none);
    callers pass them by name, which binds the same. Returns the defaults of the result
    (the function's own evaluated ones; the copy's default expressions were removed)."""
    args = fdef.args
    defaults = fn.__defaults__ or ()
    if args.kwonlyargs:
        kwdefaults = fn.__kwdefaults__ or {}
        names = [a.arg for a in args.kwonlyargs]
        if all(n in kwdefaults for n in names):
            defaults += tuple(kwdefaults[n] for n in names)
        elif defaults or kwdefaults:
            filename, lineno = _where(fn, fdef.lineno)
            raise TranspileError("jit=True: numba has no keyword-only parameters, and these "
                                 "cannot become positional ones (some have defaults, some "
                                 "not); use jit=False for this function", filename, lineno)
        args.args = args.args + args.kwonlyargs
        args.kwonlyargs, args.kw_defaults = [], []
    return defaults or None


def _pair_tapes(fn, names):
    """A call's forward and backward functions (``g_forward`` and ``g_backward`` among
    the free names) pass their shared stack in the tape: where both save the same
    variables, each gets one stack per variable (`_split_tape_stack`), the same on both
    sides. Otherwise the shared stack stays (and numba types it if it can)."""
    for name in names:
        if not name.endswith("_forward") or name[:-8] + "_backward" not in names:
            continue
        fwd, bwd = _lookup(fn, name), _lookup(fn, name[:-8] + "_backward")
        if not all(isinstance(v, types.FunctionType)
                   and hasattr(v, "__transpile_source__") for v in (fwd, bwd)):
            continue
        sides = []
        for v in (fwd, bwd):
            tree = ast.parse(v.__transpile_source__)
            sides.append(tape_stack_variables(tree.body[0]) if isinstance(
                tree.body[0], ast.FunctionDef) else None)
        if sides[0] is not None and sides[0] == sides[1]:
            _TAPE_STACKS[fwd] = _TAPE_STACKS[bwd] = sides[0]


_TAPE_STACKS = weakref.WeakKeyDictionary()     # forward/backward -> variables of its stacks


def _bind_free_names(fn, fdef, namespace):
    helpers = _helpers()
    _pair_tapes(fn, set(_free_names(fdef)))
    for name in _free_names(fdef):
        value = _lookup(fn, name)
        if value is _MISSING:
            continue                      # numba reports the unknown name, at its line
        if name in helpers and value is _STANDS_FOR.get(name):
            continue                      # the builtin numba lacks: keep the stand-in
        if isinstance(value, types.FunctionType):
            if value in _REPLACED:
                value = helpers[_REPLACED[value]]
            else:
                _check_helper(fn, fdef, name, value)
                _check_recursion(fn, fdef, name, value)
                value = dispatcher(value, entry=False)
        namespace[name] = value


# --- stand-ins for what numba lacks ---------------------------------------------------------

_STANDS_FOR = {"reversed": builtins.reversed}      # helper name -> the builtin it replaces
_REPLACED = {}                                     # runtime helper -> helper name
_HELPERS = {}
_JITTABLE_RUNTIME = ("digamma",)                   # plain scalar code: compiled as it is


def _helpers():
    """Functions bound in every jitted module: numba versions of builtins it lacks
    (`reversed` of lists and ranges) and of the scalar cases of runtime helpers."""
    if _HELPERS:
        return _HELPERS
    numba = numba_module()
    from numba.core import types as nt
    from numba.extending import overload
    from . import jit_arrays, runtime

    def jit_reversed(seq):
        return builtins.reversed(seq)

    @overload(jit_reversed)
    def _reversed(seq):
        if isinstance(seq, nt.RangeType):
            def impl(seq):
                n = len(seq)
                return range(seq.start + (n - 1) * seq.step, seq.start - seq.step,
                             -seq.step)
            return impl
        if isinstance(seq, (nt.List, nt.Array)):
            return lambda seq: seq[::-1]

    def jit_prefix(seq, n):
        return seq[:n]

    @overload(jit_prefix)
    def _prefix(seq, n):
        if isinstance(seq, nt.RangeType):
            def impl(seq, n):
                m = min(len(seq), n) if n >= 0 else max(len(seq) + n, 0)
                return range(seq.start, seq.start + m * seq.step, seq.step)
            return impl
        if isinstance(seq, (nt.List, nt.Array)):
            return lambda seq, n: seq[:n]

    def jit_pow_log(a, b, k):
        return runtime.pow_log(a, b, k)

    @overload(jit_pow_log)
    def _pow_log(a, b, k):
        scalar = (nt.Number, nt.Boolean)
        if isinstance(a, scalar) and isinstance(b, scalar) and isinstance(k, scalar):
            def impl(a, b, k):
                if a > 0 and k >= 0:
                    return a ** b * math.log(a) ** k
                return 0.0
            return impl

    def jit_pow_deriv(a, b, c):
        return runtime.pow_deriv(a, b, c)

    @overload(jit_pow_deriv)
    def _pow_deriv(a, b, c):
        scalar = (nt.Number, nt.Boolean)
        if isinstance(a, scalar) and isinstance(b, scalar) and isinstance(c, scalar):
            def impl(a, b, c):
                if c == 0:
                    return 0.0
                if a == 0 and b < 0:
                    return c * math.inf
                return c * a ** b
            return impl

    def jit_sign(x):
        return runtime.sign(x)

    @overload(jit_sign)
    def _sign(x):
        if isinstance(x, (nt.Number, nt.Boolean)):
            return lambda x: 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)
        if isinstance(x, nt.Array):
            import numpy
            return lambda x: numpy.sign(x)    # builtin abs of an array

    def jit_abs_partial(x):
        return runtime.abs_partial(x)

    @overload(jit_abs_partial)
    def _abs_partial(x):
        if isinstance(x, nt.Complex):
            return lambda x: x.conjugate() / abs(x) if x != 0 else 0j
        if isinstance(x, (nt.Number, nt.Boolean)):
            return lambda x: 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)
        if isinstance(x, nt.Array) and not isinstance(x.dtype, nt.Complex):
            import numpy
            return lambda x: numpy.sign(x)    # builtin abs of an array

    def jit_is_zero(g):
        return runtime.is_zero(g)

    @overload(jit_is_zero)
    def _is_zero(g):
        if isinstance(g, (nt.Number, nt.Boolean)):
            return lambda g: g == 0             # the 0.0 placeholder (or a zero number)
        if isinstance(g, nt.Array):
            # a loop's zero adjoint is typed as zeros here (see Repairing): all zeros is
            # the zero adjoint, skipped as the plain gradient skips the placeholder (a
            # partial that is inf or nan there gives 0, not nan)
            return lambda g: not g.any()

    @numba.njit
    def jit_log(x, base):
        return math.log(x) / math.log(base)    # what math.log(x, base) computes

    _HELPERS.update(reversed=jit_reversed, _jit_prefix=jit_prefix, _jit_log=jit_log,
                    pow_log=jit_pow_log, pow_deriv=jit_pow_deriv, sign=jit_sign,
                    is_zero=jit_is_zero, abs_partial=jit_abs_partial)
    arrays, replaced = jit_arrays.standins()
    _HELPERS.update(arrays)
    _REPLACED.update(replaced)
    _REPLACED[runtime.sign] = "sign"
    _REPLACED[runtime.abs_partial] = "abs_partial"
    _REPLACED[runtime.is_zero] = "is_zero"
    _REPLACED[runtime.pow_log] = "pow_log"
    _REPLACED[runtime.pow_deriv] = "pow_deriv"
    return _HELPERS


def _check_helper(fn, fdef, name, value):
    """transpile's list/array helpers and NumPy rules are Python-object code: a clear
    error up front."""
    from . import runtime
    module = getattr(value, "__module__", None) or ""
    if module == runtime.__name__ and value.__name__ in _JITTABLE_RUNTIME:
        return
    if module.split(".")[0] == __name__.split(".")[0]:
        node = next((n for n in ast.walk(fdef) if isinstance(n, ast.Name) and n.id == name),
                    fdef)
        filename, lineno = _where(fn, getattr(node, "lineno", fdef.lineno))
        what = ("NumPy derivative rule" if module.startswith(__package__ + ".rules")
                else "helper for adjoints of lists, tuples or arrays")
        raise TranspileError(f"jit=True: the derivative code calls transpile's "
                             f"{value.__name__}() ({what}), which numba cannot compile; "
                             f"use jit=False for this function", filename, lineno)


def _check_recursion(fn, fdef, name, value):
    """Derivative code of a recursive function passes tapes that nest without bound, a
    type numba cannot infer (it would try for seconds, then fail): say so at once."""
    if value in _BUILDING and hasattr(value, "__transpile_source__"):
        node = next((n for n in ast.walk(fdef) if isinstance(n, ast.Name) and n.id == name),
                    fdef)
        filename, lineno = _where(fn, getattr(node, "lineno", fdef.lineno))
        raise TranspileError("jit=True: the derivative code of a recursive function "
                             "passes tapes nested without bound, which numba cannot type; "
                             "use jit=False for this function", filename, lineno)


def _where(fn, lineno):
    """The user's (file, line) of line `lineno` of fn's source as compiled here."""
    lines = getattr(fn, "__transpile_lines__", None)
    if lines is None:
        return fn.__code__.co_filename, lineno
    from .emit import SOURCE_MAPS
    entry = SOURCE_MAPS.get(fn.__code__.co_filename)
    user_line = None if lineno is None else lines.get(lineno + 1)    # +1: factory def
    return (entry[0] if entry else None), user_line


_GENERATED = {}          # jit file name -> (user's file, generated line -> user's line)


# --- numba's errors as TranspileError ------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WHERE = re.compile(r'File "([^"]+)", line (\d+)')


def compile_error(exc, user_fn):
    """One TranspileError for a numba compile failure: numba's reason, and the user's
    file:line of the statement (through the generated code's line map)."""
    text = _ANSI.sub("", str(exc))
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    reason = next((l for l in lines if not l.startswith(("Failed in", "During:", "File ",
                                                          "<source", "- ", "Resolution",
                                                          "No implementation"))),
                  lines[0] if lines else type(exc).__name__)
    reason = reason.rstrip(":")
    standin = re.match(r">>> jit_(\w+)\((.*)\)$", reason)
    if standin is not None:            # a stand-in of jit_arrays without those types
        reason = (f"{standin.group(1)}() as jit=True compiles it takes no arguments of "
                  f"types ({standin.group(2)})")
    filename = lineno = None
    code_line = ""
    for gen_file, gen_line in reversed(_WHERE.findall(text)):
        gen_line = int(gen_line)
        generated = _GENERATED.get(gen_file)
        if generated is not None:
            user_file, line_map = generated
            mapped = line_map.get(gen_line + 1)          # +1: the factory's def line
            code_line = linecache.getline(gen_file, gen_line).strip()
            if mapped is not None and user_file is not None:
                filename, lineno = user_file, mapped
                break
        elif not gen_file.startswith("<"):
            filename, lineno = gen_file, gen_line
            code_line = linecache.getline(gen_file, gen_line).strip()
            break
    if filename is None:
        filename = user_fn.__code__.co_filename
        lineno = user_fn.__code__.co_firstlineno
    message = f"jit=True: numba cannot compile the derivative code: {reason}"
    if code_line:
        message += f" (in the generated statement `{code_line}`)"
    message += "; use jit=False for this function"
    return TranspileError(message, filename, lineno, user_fn.__qualname__)
