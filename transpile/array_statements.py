"""Array statements: rewrites of normalized code once the value kinds are known.

normalize.py flattens expressions into statements without knowing which names hold
arrays; once analysis.py has found the kinds, `split_array_trees` puts one array operation
per statement (so each array intermediate has a name its adjoint can refer to), decides
whether ``v op= e`` on an array stays in place, makes loops that index other iterables
directly read them, and follows aliases of arrays into the statements that write them.
"""
import ast

from . import astutil as A

def split_array_trees(norm, kind_of):
    """Give every intermediate of a non-scalar expression its own variable.

    Scalar trees stay whole (recomputing a scalar in the adjoint sweep is cheaper than
    saving it); array intermediates are kept, and each operation's adjoint can then sum
    broadcasts back to the exact shape of its operands."""

    def internal(n):
        return isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call)) and not A.get_tag(
            n, "inactive") and not A.get_tag(n, "special")

    def hoist(n, out, like):
        for field in ("left", "right", "operand"):
            child = getattr(n, field, None)
            if child is not None and internal(child):
                setattr(n, field, hoist_child(child, out, like))
        if isinstance(n, ast.Call):
            n.args = [hoist_child(a, out, like) if internal(a) else a for a in n.args]
        return n

    def hoist_child(child, out, like):
        child = hoist(child, out, like)
        name = norm.names.fresh("_t")
        out.append(A.located(A.assign(name, child), like))
        return A.load(name)

    def block(stmts):
        out = []
        for s in stmts:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s.body = block(s.body)
                s.orelse = block(s.orelse)
            elif (isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
                  and internal(s.value) and kind_of(s.value) != "scalar"):
                s.value = hoist(s.value, out, s)
            out.append(s)
        return out

    norm.body = block(norm.body)
    an = getattr(kind_of, "__self__", None)
    if an is not None and not norm.unit.is_generated:
        _augmented_in_place(norm, an)
        _propagate_aliases(norm, an)
        _walk_other_iterables(norm, an)
    norm.kinds_resolved = True
    return norm


def _augmented_in_place(norm, an):
    """`v op= e` on an array writes into v (NumPy): where v may share its memory with
    anything (a parameter, `v = a`, a view), it becomes `_t = v op e; v[...] = _t`, an
    element write the transforms follow; a fresh array keeps the cheaper `v = v op e`."""
    from .analysis import Aliases, ARRAY
    aliases = Aliases(an)

    def block(stmts):
        out = []
        for s in stmts:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s.body = block(s.body)
                s.orelse = block(s.orelse)
            elif (isinstance(s, ast.Assign) and A.get_tag(s, "augassign")
                  and an.kind.get(s.targets[0].id) == ARRAY
                  and aliases.aliased(aliases.before.get(id(s), frozenset()),
                                      s.targets[0].id)):
                v = s.targets[0].id
                t = norm.names.fresh("_t")
                out.append(A.assign(t, s.value, s))
                s = A.assign(ast.Subscript(value=A.load(v), slice=A.const(Ellipsis),
                                           ctx=ast.Store()), A.load(t), s)
            out.append(s)
        return out

    norm.body = block(norm.body)


def _walk_other_iterables(norm, an):
    """`for v in d` over a value that is no list, tuple or array (a dict, a set, a
    generator passed in): walk `list(d)`, as Python's iterator does, instead of d[k]."""
    from .analysis import UNKNOWN, MODULE, MAP

    def block(stmts):
        out = []
        for s in stmts:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s.body = block(s.body)
                s.orelse = block(s.orelse)
            seq = A.get_tag(s, "walks") if isinstance(s, ast.For) else None
            if seq is not None and (an.kind.get(seq) == MAP or an.kind.get(seq) in (
                    UNKNOWN, MODULE) and (seq in an.params or seq not in an.seq)):
                if seq in an.active and an.kind.get(seq) != MAP:    # a dict's keys: none
                    raise norm.unit.error(f"unsupported construct: a loop over '{seq}', "
                                          "which is neither a list, a tuple nor an array, "
                                          "carrying derivatives", s)
                walked = norm.names.fresh("_seq")
                out.append(A.assign(walked, A.tag(ast.Call(
                    func=A.load("list"), args=[A.load(seq)], keywords=[]),
                    special="container", container=list), s))
                k = s.target.id
                for n in A.walk(s):
                    if (isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name)
                            and n.value.id == seq and isinstance(n.slice, ast.Name)
                            and n.slice.id == k) or (
                            isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                            and n.func.id == "len" and n.args and isinstance(
                                n.args[0], ast.Name) and n.args[0].id == seq
                            and n in A.walk(s.iter)):
                        target = n.value if isinstance(n, ast.Subscript) else n.args[0]
                        target.id = walked
            out.append(s)
        return out

    norm.body = block(norm.body)


def _propagate_aliases(norm, an):
    """`b = a` at the top level, b assigned nowhere else, a never rebound afterwards, and
    one of them written in place: every later use of b is a use of a (one object, one
    name), so writes through b are seen as writes into a."""
    from .analysis import MUTABLE, MUTATING_METHODS
    body = norm.body
    i = 0
    while i < len(body):
        s = body[i]
        if not (isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
                and isinstance(s.value, ast.Name) and not A.get_tag(s, "augassign")):
            i += 1
            continue
        b, a = s.targets[0].id, s.value.id
        rest = body[i + 1:]
        later = set()
        for r in rest:
            later |= A.names_stored(r)
        sites = sum(1 for r in A.statements(body) for t in _assigned_names(r) if t == b)
        if (a == b or b in an.params or sites != 1 or a in later
                or an.kind.get(a) not in MUTABLE or a not in an.sites
                or not _written_in_place(rest, {a, b}, MUTATING_METHODS)):
            i += 1
            continue
        for r in rest:
            A.rename(r, {b: a})
        if norm.result == b:
            norm.result = a
        del body[i]


def _assigned_names(s):
    if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
        return [s.targets[0].id]
    if isinstance(s, ast.For) and isinstance(s.target, ast.Name):
        return [s.target.id]
    return []


def _written_in_place(stmts, names, methods):
    for st in stmts:
        for n in A.walk(st):
            if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store) and isinstance(
                    n.value, ast.Name) and n.value.id in names:
                return True
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr in methods and isinstance(n.func.value, ast.Name)
                    and n.func.value.id in names):
                return True
            if isinstance(n, ast.Assign) and A.get_tag(n, "augassign") and \
                    n.targets[0].id in names:
                return True
    return False
