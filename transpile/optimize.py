"""Optimize: local clean-ups of generated code that make it read (and run) like hand code.

* first write of an adjoint is an assignment: ``dv = 0.0 ... dv = dv + e`` becomes
  ``dv = e`` when nothing reads dv in between (also across loop iterations for adjoints of
  values that live and die inside one iteration: `fresh_zero` on the adjoint loop);
* consecutive accumulations into one adjoint merge: ``dv = a; dv = dv + b`` -> ``dv = a + b``;
* dead assignments at the end of the function (an adjoint reset nobody reads) go away.

Each rewrite is purely local and keeps the order of floating-point operations.
"""
import ast

from . import astutil as A


IN_PLACE_HELPERS = {"add_at", "take_item", "pop_adjoint"}


def run(stmts, pure=frozenset(), facts=None):
    """All passes; `pure`: names of side-effect-free functions (see `pure_calls`). The
    passes share one `Facts` (`facts`, of these statements as they are, or a new one):
    each statement is walked once, not once per pass."""
    facts = Facts() if facts is None else facts
    stmts = drop_unneeded_inits(stmts, facts)
    stmts = _propagate_constants(stmts, facts)
    stmts = _zero_first_writes(stmts, set(), changed_in_place(stmts, facts), facts)
    stmts = _merge_accumulations(stmts, facts)
    stmts = _dead_tail(stmts, facts)
    stmts = _inline_single_use(stmts, facts)
    stmts = _propagate_copies(stmts, facts)
    stmts = _doubled(stmts, pure)
    stmts = _common_subexpressions(stmts, pure)
    stmts = _dead_tail(stmts, facts)
    return stmts


_BLOCKS = (ast.If, ast.For, ast.While)      # the statements whose bodies passes rewrite

# A pass's recursive `block` closure refers to itself (a reference cycle)
# and holds what it closes over, the pass's facts and every statement they keep, until
# the garbage collector runs; the pass deletes it when done, so all of it goes at once.


class Facts:
    """What each statement reads, writes, may change and changes in place, found in one
    walk of it and shared by the passes of one `run`.

    Entries are by identity and keep their statement alive (an id is never reused while
    the memo lives). That is right because no pass changes a statement in place but for
    the bodies of if, for and while blocks (which passes rewrite, keeping the block): a
    rewritten statement is a new object. So the facts of such a block are those of its
    header and of its body statements, kept with the entries of those statements they
    were made of, and made again when one of those changed (a statement replaced, or a
    nested block's entry made again). Whoever changes a statement in place otherwise
    makes a new Facts after it."""

    __slots__ = ("_memo", "_blocks")

    def __init__(self):
        self._memo = {}         # id -> entry (of a statement other than a block)
        self._blocks = {}       # id -> (block, entries of its statements, its entry)

    def _entry(self, s):
        if s.__class__ not in _BLOCKS:
            entry = self._memo.get(id(s))
            if entry is None:
                entry = self._memo[id(s)] = _scan([s], keep=s)
            return entry
        parts = [self._entry(t) for t in s.body] + [None] + [self._entry(t) for t in s.orelse]
        known = self._blocks.get(id(s))
        if known is not None and len(known[1]) == len(parts) and all(
                a is b for a, b in zip(known[1], parts)):
            return known[2]
        cls = s.__class__
        header = [v for f in A._child_fields(cls) if f not in ("body", "orelse")
                  for v in (getattr(s, f, None),) if v is not None]
        entry = _scan(header)
        for part in parts:
            if part is not None:
                _merge(entry, part)
        self._blocks[id(s)] = (s, parts, entry)
        return entry

    def loaded(self, s):
        """A.names_loaded(s)."""
        return self._entry(s)[1]

    def stored(self, s):
        """A.names_stored(s)."""
        return self._entry(s)[2]

    def named(self, s):
        """The names s reads or writes."""
        entry = self._entry(s)
        return entry[1] | entry[2]

    def loads(self, s):
        """name -> how many Name nodes of s read it."""
        return self._entry(s)[3]

    def stores(self, s):
        """name -> how many Name nodes of s store (or delete) it."""
        return self._entry(s)[4]

    def augmented(self, s):
        """name -> how many `name op= e` s holds."""
        return self._entry(s)[5]

    def in_place(self, s):
        """changed_in_place([s])."""
        return self._entry(s)[6]

    def called(self, s):
        """The names s calls (`name(...)`)."""
        return self._entry(s)[8]

    def changed(self, s):
        """Names whose value s may change: assigned names, the arrays behind element and
        attribute writes (`x[i] = _pop()` restores x in place) and the objects a call may
        update in place (its arguments and, for a method, its receiver)."""
        return self._entry(s)[7]

    def arithmetic(self, s):
        """Of a statement other than a block: is every node inside it but itself a name,
        a constant or an arithmetic operation? (Of `v = e`: is e pure, safe to drop?)"""
        return self._entry(s)[9]

    def inlinable(self, s):
        """As `arithmetic`, calls of the pure helpers (`_pure_call`) allowed too: of
        `v = e`, is e safe to evaluate later?"""
        return self._entry(s)[10]


_ARITHMETIC = frozenset({ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp})


def _scan(roots, keep=None):
    """The facts of the nodes inside roots, in one walk: [keep, loaded, stored, loads,
    stores, augmented, in place, changed, called, arithmetic, inlinable] (see Facts; the
    last two of the nodes other than `keep`)."""
    loaded, stored, in_place, changed, called = set(), set(), set(), set(), set()
    arithmetic = inlinable = True
    loads, stores, augmented = {}, {}, {}
    todo = list(roots)
    pop, push, AST, Name, Load, Call = todo.pop, todo.append, ast.AST, ast.Name, ast.Load, \
        ast.Call
    writes = (ast.Assign, ast.AugAssign, ast.AnnAssign)
    fields_of = A._CHILD_FIELDS
    while todo:
        n = pop()
        cls = n.__class__
        if cls not in _ARITHMETIC and n is not keep:
            arithmetic = False
            if inlinable and not (cls is Call and _pure_call(n)):
                inlinable = False
        if cls is Name:
            name = n.id
            if n.ctx.__class__ is Load:
                loaded.add(name)
                loads[name] = loads.get(name, 0) + 1
            else:
                stored.add(name)
                stores[name] = stores.get(name, 0) + 1
            continue
        if cls in writes:
            if cls is ast.AugAssign and n.target.__class__ is Name:
                name = n.target.id
                loaded.add(name)
                augmented[name] = augmented.get(name, 0) + 1
            roots_ = _written_roots(n)
            if roots_:
                in_place |= roots_
                changed |= roots_
        elif cls is Call:
            f = n.func
            if f.__class__ is Name:
                called.add(f.id)
                if f.id.rstrip("_0123456789") in IN_PLACE_HELPERS and n.args and \
                        n.args[0].__class__ is Name:
                    in_place.add(n.args[0].id)
            if not _pure_call(n):
                args = list(n.args) + [k.value for k in n.keywords]
                if f.__class__ is Name and f.id in IN_PLACE_HELPERS:
                    args = args[:1]                 # they update the adjoint only
                for a in args:
                    if a.__class__ is Name:
                        changed.add(a.id)
                if f.__class__ is ast.Attribute and f.value.__class__ is Name:
                    changed.add(f.value.id)
        fields = fields_of.get(cls)
        for f in (A._child_fields(cls) if fields is None else fields):
            v = getattr(n, f, None)
            if v.__class__ is list:
                for x in v:
                    if isinstance(x, AST):
                        push(x)
            elif isinstance(v, AST):
                push(v)
    changed |= stored
    return [keep, loaded, stored, loads, stores, augmented, in_place, changed, called,
            arithmetic, inlinable]


def _merge(entry, other):
    """Add the facts `other` into `entry` (a block's, being made)."""
    for k in (1, 2, 6, 7, 8):
        entry[k] |= other[k]
    for k in (3, 4, 5):
        counts = entry[k]
        for name, c in other[k].items():
            counts[name] = counts.get(name, 0) + c


def _propagate_constants(stmts, facts=None):
    """Top level: `v = 1.0` followed by reads of v (before any other write of v) reads 1.0.

    Used for the seed of the adjoint sweep; the folded products drop the factor."""
    from .algebra import fold
    facts = Facts() if facts is None else facts
    out = []
    consts = {}
    mutable = None
    for s in stmts:
        if consts:
            loaded, stored = facts.loaded(s), facts.stored(s)
            use = {k: consts[k] for k in loaded if k in consts and k not in stored}
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s = A.substitute(s, use) if use else s
            elif isinstance(s, ast.Assign) and use and len(s.targets) == 1:
                value = A.substitute(s.value, use)
                folded = fold(value)
                target = s.targets[0]
                if isinstance(target, ast.Name) and not isinstance(folded, (
                        ast.BinOp, ast.UnaryOp, ast.Constant)):
                    # `dv = x * 1.0` stays a product where dv or x is changed in place:
                    # the folded `dv = x` would hold the same array
                    if mutable is None:
                        mutable = changed_in_place(stmts, facts)
                    if target.id in mutable or A.names_loaded(folded) & mutable:
                        folded = value
                s = A.assign(target, folded, s)
            for k in stored:
                consts.pop(k, None)
        if (isinstance(s, ast.Assign) and len(s.targets) == 1
                and isinstance(s.targets[0], ast.Name) and isinstance(s.value, ast.Constant)
                and type(s.value.value) is float):
            consts[s.targets[0].id] = s.value
        out.append(s)
    return out


def drop_unneeded_inits(stmts, facts=None):
    """`v = None` before code that surely assigns v before reading it (the next statement
    naming v is, at the top level, `v = e` with e not reading v): nothing reads the None."""
    out = []
    named = None                    # the names each statement reads or writes (once)
    for i, s in enumerate(stmts):
        if (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                s.targets[0], ast.Name) and isinstance(s.value, ast.Constant)
                and s.value.value is None):
            if named is None:
                facts = Facts() if facts is None else facts
                named = [facts.named(t) for t in stmts]
            v = s.targets[0].id
            nxt = next((stmts[j] for j in range(i + 1, len(stmts)) if v in named[j]), None)
            if (isinstance(nxt, ast.Assign) and len(nxt.targets) == 1 and isinstance(
                    nxt.targets[0], ast.Name) and nxt.targets[0].id == v
                    and v not in A.names_loaded(nxt.value)):
                continue
        out.append(s)
    return out


def _accumulation(s, facts=None):
    """(v, e, negate) for `v = v + e` / `v = v - e`, else None."""
    if (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
            and isinstance(s.value, ast.BinOp) and isinstance(s.value.op, (ast.Add, ast.Sub))
            and isinstance(s.value.left, ast.Name) and s.value.left.id == s.targets[0].id):
        v = s.targets[0].id
        e = s.value.right
        # e reads v where s does more than once (the target is stored, the left read)
        if (facts.loads(s).get(v, 0) > 1 if facts is not None
                else v in A.names_loaded(e)):
            return None
        return v, e, isinstance(s.value.op, ast.Sub)
    return None


def _is_zero_assign(s):
    return (isinstance(s, ast.Assign) and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name) and isinstance(s.value, ast.Constant)
            and type(s.value.value) is float and s.value.value == 0.0)


def changed_in_place(stmts, facts=None):
    """Names whose array or object some statement changes in place: adjoints runtime
    helpers update (`dx = add_at(dx, ...)`), and names whose elements or attributes are
    written (`x[i] = e`, `x.a += e`)."""
    facts = Facts() if facts is None else facts
    out = set()
    for s in stmts:
        out |= facts.in_place(s)
    return out


def _written_roots(n):
    """The names behind the element and attribute writes of assignment n (x of
    `x[i] = e`, `x.a[j] += e`)."""
    out = set()
    if n.__class__ is ast.Assign and len(n.targets) == 1 and \
            n.targets[0].__class__ is ast.Name:
        return out                      # (most of them: `v = e`)
    targets = n.targets if isinstance(n, ast.Assign) else \
        [n.target] if isinstance(n, (ast.AugAssign, ast.AnnAssign)) else []
    for t in targets:
        for e in A.nodes(t):
            if isinstance(e, (ast.Subscript, ast.Attribute)):
                root = e.value
                while isinstance(root, (ast.Subscript, ast.Attribute)):
                    root = root.value
                if isinstance(root, ast.Name):
                    out.add(root.id)
    return out


def _fresh_value(v, e, mutable):
    """May `dv = e` replace `dv = 0.0 + e`? Where e is computed afresh (arithmetic), or
    neither dv nor what e reads is changed in place (`mutable`: updated by a helper,
    elements written); else e might be an object another variable also holds (a name,
    a view, a call that may return its argument), which the write would change too."""
    if isinstance(e, (ast.BinOp, ast.UnaryOp)):
        return True
    return v not in mutable and not (A.names_loaded(e) & mutable)


def _zero_first_writes(stmts, fresh_zero, mutable, facts=None):
    facts = Facts() if facts is None else facts
    zero = {v: None for v in fresh_zero}
    converted = set()
    out = []
    dropped = set()
    for s in stmts:
        if isinstance(s, (ast.If, ast.For, ast.While)):
            s.body = _zero_first_writes(s.body, A.get_tag(s, "fresh_zero") or set(), mutable,
                                        facts)
            s.orelse = _zero_first_writes(s.orelse, set(), mutable, facts)
            for name in facts.named(s):                 # untouched: still zero
                zero.pop(name, None)
            out.append(s)
            continue
        acc = _accumulation(s, facts)
        if acc is not None and acc[0] in zero and _fresh_value(acc[0], acc[1], mutable):
            v, e, negate = acc
            if zero[v] is not None:
                dropped.add(zero[v])
            new = A.assign(v, ast.UnaryOp(op=ast.USub(), operand=e) if negate else e, s)
            del zero[v]
            converted.add(v)
            out.append(new)
            continue
        for name in facts.named(s):
            zero.pop(name, None)
        if _is_zero_assign(s):
            v = s.targets[0].id
            if v in fresh_zero and v in converted:
                continue                         # dead: the next write is an assignment
            zero[v] = len(out)
        out.append(s)
    return [s for i, s in enumerate(out) if i not in dropped]


def _merge_accumulations(stmts, facts=None):
    out = []
    for s in stmts:
        if isinstance(s, (ast.If, ast.For, ast.While)):
            s.body = _merge_accumulations(s.body, facts)
            s.orelse = _merge_accumulations(s.orelse, facts)
            out.append(s)
            continue
        acc = _accumulation(s, facts)
        prev = out[-1] if out else None
        if (acc is not None and isinstance(prev, ast.Assign) and len(prev.targets) == 1
                and isinstance(prev.targets[0], ast.Name) and prev.targets[0].id == acc[0]
                and not isinstance(prev.value, ast.Constant)):
            v, e, negate = acc
            op = ast.Sub() if negate else ast.Add()
            out[-1] = A.assign(v, ast.BinOp(left=prev.value, op=op, right=e), prev)
            continue
        out.append(s)
    return out


PURE_CALLS = {"unbroadcast"}
# NumPy functions the inlined rule templates and shape-known unbroadcasts write (shapes.py):
# they never change their arguments (no `out=` is ever passed to them)
PURE_NUMPY = {"sum", "full", "broadcast_to", "expand_dims", "outer", "maximum"}


def _pure_call(n):
    f = n.func
    if isinstance(f, ast.Name):
        return f.id in PURE_CALLS
    return (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
            and f.value.id in ("np", "numpy") and f.attr in PURE_NUMPY
            and not any(k.arg == "out" for k in n.keywords))


def _name_counts(stmts, facts, augmented=False):
    """(loads, stores): name -> how many Name nodes of stmts read it, store it (with
    `augmented`, `v op= e` reads v once more)."""
    loads, stores = {}, {}
    for s in stmts:
        for table, counts in ((loads, facts.loads(s)), (stores, facts.stores(s))) + (
                ((loads, facts.augmented(s)),) if augmented else ()):
            for name, c in counts.items():
                table[name] = table.get(name, 0) + c
    return loads, stores


def _inline_single_use(stmts, facts=None):
    """`_g = e` used once, a few lines later in the same block: substitute e there.

    Fewer temporaries, and constants meet (`d = 100.0 * g; e = 2 * x * d` becomes
    `e = 200.0 * x * g`). Only when nothing in between writes a name e reads."""
    from .algebra import fold
    facts = Facts() if facts is None else facts
    loads, stores = _name_counts(stmts, facts, augmented=True)

    def block(body):
        body = list(body)
        for s in body:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s.body = block(s.body)
                s.orelse = block(s.orelse)
        i = 0
        while i < len(body):
            s = body[i]
            if (isinstance(s, ast.Assign) and len(s.targets) == 1
                    and isinstance(s.targets[0], ast.Name) and facts.inlinable(s)):
                v = s.targets[0].id
                if loads.get(v) == 1 and stores.get(v) == 1:
                    reads = facts.loaded(s) | {v}       # (the target is no read)
                    for j in range(i + 1, len(body)):
                        t = body[j]
                        if isinstance(t, (ast.If, ast.For, ast.While)):
                            break
                        if v in facts.loaded(t):
                            if isinstance(t, ast.Assign) and v not in facts.stored(t):
                                value = fold(A.substitute(t.value, {v: s.value}), fresh=True)
                                body[j] = A.assign(t.targets[0], value, t)
                                del body[i]
                                i -= 1
                            break
                        if facts.changed(t) & reads:
                            break
            i += 1
        return body

    try:
        return block(stmts)
    finally:
        del block           # (a reference cycle: see above Facts)


def _propagate_copies(stmts, facts=None):
    """Copies between names, top level: `_d1, = f_backward(...); dW = _d1` names the
    result `dW` where it is made (a generated `_name` stored and read once); `d_t3 = dz`
    (a generated name stored once) reads `dz` wherever it read `d_t3`, as long as `dz`
    does not change in between. Only names, only renamings: no value changes."""
    facts = Facts() if facts is None else facts
    loads, stores = _name_counts(stmts, facts)
    generated = ("_", "d_")
    out = list(stmts)
    after = {}              # name -> how many statements of out[i + 1:] read it

    def count(t, sign):
        for name in facts.loaded(t):
            after[name] = after.get(name, 0) + sign

    def leave(k):           # out[k] leaves out[i + 1:] (i moves on to k)
        if k < len(out):
            count(out[k], -1)

    for t in out[1:]:
        count(t, 1)
    i = 0
    while i < len(out):
        s = out[i]
        if not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                s.targets[0], ast.Name) and isinstance(s.value, ast.Name)):
            leave(i + 1)
            i += 1
            continue
        a, b = s.targets[0].id, s.value.id
        earlier = out[:i]
        if (b.startswith("_") and stores.get(b) == 1 and loads.get(b) == 1
                and stores.get(a) == 1 and not any(a in facts.loaded(t) or a in facts.stored(t)
                                                    for t in earlier)):
            k = next((j for j in range(i) if b in facts.stored(out[j])), None)
            if k is not None and not isinstance(out[k], (ast.If, ast.For, ast.While)) and \
                    not any(b in facts.loaded(t) for t in out[k + 1:i]):
                out[k] = A.rename(A.copy_tree(out[k]), {b: a})
                del out[i]
                stores[a] = 1
                leave(i)                # (the next statement is at i now)
                continue
        if a.startswith(generated) and stores.get(a) == 1 and a != b:
            later = out[i + 1:]
            last, seen = None, 0            # the last statement reading a
            if after.get(a, 0):
                for j, t in enumerate(later):
                    if a in facts.loaded(t):
                        seen += 1
                        if seen == after[a]:
                            last = j
                            break

            def restores(t):          # `b = a`: b gets back the value it has anyway
                return (isinstance(t, ast.Assign) and len(t.targets) == 1 and isinstance(
                    t.targets[0], ast.Name) and t.targets[0].id == b and isinstance(
                    t.value, ast.Name) and t.value.id == a)
            if last is not None and not any(
                    (b in facts.changed(t) and not restores(t)) or a in facts.changed(t)
                    for t in later[:last]):
                for j in range(last + 1):
                    if a in facts.loaded(later[j]):
                        count(later[j], -1)
                        later[j] = _load_renamed(later[j], a, b)
                        count(later[j], 1)
                kept = []
                for t in later:
                    if (isinstance(t, ast.Assign) and len(t.targets) == 1 and isinstance(
                            t.targets[0], ast.Name) and isinstance(t.value, ast.Name)
                            and t.targets[0].id == t.value.id == b):
                        count(t, -1)
                    else:
                        kept.append(t)
                out[i + 1:] = kept
                del out[i]
                leave(i)
                continue
        leave(i + 1)
        i += 1
    return out


def _doubled(stmts, pure=frozenset()):
    """`v = e + e` (one expression twice, as `np.dot(a, a)` or `x * x` give an adjoint)
    is `v = 2 * e`: the same number (doubling is exact), computed once, instead of the
    `_c1 = e; v = _c1 + _c1` common-subexpression elimination would leave."""
    out = []
    for s in stmts:
        if isinstance(s, (ast.If, ast.For, ast.While)):
            s.body = _doubled(s.body, pure)
            s.orelse = _doubled(s.orelse, pure)
        elif (isinstance(s, ast.Assign) and isinstance(s.value, ast.BinOp)
                and isinstance(s.value.op, ast.Add) and _cse_candidate(s.value.left, pure)
                and ast.dump(s.value.left) == ast.dump(s.value.right)):
            s = A.assign(s.targets[0], ast.BinOp(left=A.const(2), op=ast.Mult(),
                                                 right=s.value.left), s)
        out.append(s)
    return out


def _load_renamed(s, old, new):
    s = A.copy_tree(s)
    for n in A.nodes(s):
        if isinstance(n, ast.Name) and n.id == old and isinstance(n.ctx, ast.Load):
            n.id = new
    return s


PURE_MODULES = ("math", "numpy", "cmath")


def _cse_candidate(e, pure=frozenset()):
    """A side-effect-free expression worth computing once: arithmetic, slices of names and
    calls of math/NumPy functions (`math.sin`, `np.exp`, or a name in `pure` such as a
    hoisted `sin`), at least one operation."""
    if not isinstance(e, (ast.BinOp, ast.UnaryOp, ast.Call, ast.Subscript, ast.Compare)):
        return False
    if isinstance(e, ast.UnaryOp) and isinstance(e.operand, ast.Constant):
        return False                                  # -2: a constant, nothing to share
    for n in A.nodes(e):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                    and f.value.id in ("np", "numpy", "math"):
                continue
            if isinstance(f, ast.Name) and f.id in pure:
                continue
            return False
        if isinstance(n, (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.IfExp,
                          ast.ListComp, ast.Dict, ast.List, ast.Tuple, ast.Set)):
            return False
    return True


def _cse_candidates(root, pure=frozenset(), stored=None):
    """The ids of the nodes n of root (outside lambdas) with `_cse_candidate(n, pure)`,
    found bottom up in one pass; the names root stores (`A.names_stored`) added to
    `stored` on the way."""
    out = set()
    stored = set() if stored is None else stored
    _clean(root, pure, out, stored)
    return out


_SHARED = (ast.BinOp, ast.UnaryOp, ast.Call, ast.Subscript, ast.Compare)
_NEVER = (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.IfExp, ast.ListComp,
          ast.Dict, ast.List, ast.Tuple, ast.Set)


def _clean(n, pure, out, stored):
    """Is every node inside n (n included) allowed in a candidate? (_cse_candidates: the
    candidates found put in `out`, the names stored in `stored`)"""
    if isinstance(n, ast.Lambda):
        stored.update(A.names_stored(n))
        return False
    if isinstance(n, ast.Name):
        if not isinstance(n.ctx, ast.Load):
            stored.add(n.id)
        return True
    fine = not isinstance(n, _NEVER)
    if fine and isinstance(n, ast.Call):
        f = n.func
        fine = (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                and f.value.id in ("np", "numpy", "math")) or (
                    isinstance(f, ast.Name) and f.id in pure)
    for c in A.children(n, leaves=False):
        if not _clean(c, pure, out, stored):
            fine = False
    if fine and isinstance(n, _SHARED) and not (
            isinstance(n, ast.UnaryOp) and isinstance(n.operand, ast.Constant)):
        out.add(id(n))
    return fine


def _walk_outside_lambdas(node):
    """ast.walk (without the context and operator singletons), but not into lambda bodies
    (their names are the lambda's parameters, and the body runs only when the lambda is
    called: a hook's runs in the adjoint sweep)."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        if not isinstance(n, ast.Lambda):
            todo.extend(A.children(n, False))


def _common_subexpressions(stmts, pure=frozenset()):
    """In straight-line stretches, an expression computed twice from unchanged names is
    computed once: `a = sin(x*x+1); b = cos(x*x+1)` -> `_c = x*x+1; a = sin(_c); ...`.
    Any statement other than `name = expr` (a call, an element write, a loop) ends the
    stretch, so in-place changes are never looked past."""
    from .names import Names
    module = ast.Module(body=list(stmts), type_ignores=[])
    names = []

    def fresh():
        # the names in use, found when a first new one is needed: before any rewrite
        # (nothing else changes the statements), so as they were on entry
        if not names:
            names.append(Names(module))
        return names[0].fresh("_c")

    # per statement (kept alive, so ids stay unique): its candidates (ast.dump key and
    # node, in walk order), where each key first occurs among them and how many times,
    # and its stored names; a rewrite replaces statements by new objects, so entries
    # never go stale
    memo = {}

    def facts(s):
        entry = memo.get(id(s))
        if entry is None:
            stored = A.names_stored(s.targets[0])
            candidates, text, found = _cse_candidates(s.value, pure, stored), {}, []
            for n in _walk_outside_lambdas(s.value):
                if id(n) in candidates:
                    if id(n) not in text:        # (outermost first: dumps fills its parts)
                        A.dumps(n, text)
                    found.append((text[id(n)], n))
            first, count = {}, {}
            for i, (key, _) in enumerate(found):
                first.setdefault(key, i)
                count[key] = count.get(key, 0) + 1
            entry = memo[id(s)] = (s, found, stored, first, count)
        return entry

    def stretch(run):
        """Rewrite one run of simple assignments: while some expression occurs twice, the
        longest (the first of those in the run) whose names do not change between its
        first and last use is computed once, into a new name, where it first occurs.

        The occurrences of each expression are kept up to date as statements are
        replaced (not recounted over the run after each rewrite). A rewrite never adds
        an occurrence of an existing expression (it replaces occurrences by a new name
        and adds one copy in place of two or more), so one seen once stays single.
        Whether a repeated one may be shared depends only on the statements holding it
        (those in between keep their targets; inserted ones store new names), so a
        refusal is remembered for the same statements (and a key whose holders did not
        change since it was refused is passed over without forming them again)."""
        total, holders_of = {}, {}       # key -> occurrences; -> {id: statement}
        changes, refused_at = {}, {}     # key -> changes of its holders; -> at refusal

        def count(s, sign):
            entry = facts(s)
            for key, n in entry[4].items():
                total[key] = total.get(key, 0) + sign * n
                changes[key] = changes.get(key, 0) + 1
                if sign > 0:
                    holders_of.setdefault(key, {})[id(s)] = s
                else:
                    del holders_of[key][id(s)]

        for s in run:
            count(s, 1)
        repeated = {key for key, n in total.items() if n >= 2}
        refused = set()
        while repeated:
            where = {id(s): i for i, s in enumerate(run)}

            def order(key):
                i = min(where[h] for h in holders_of[key])
                return -len(key), i, facts(run[i])[3][key]

            for key in sorted(repeated, key=order):
                if refused_at.get(key) == changes[key]:
                    continue                    # (refused, with the same holders)
                idxs = sorted(where[h] for h in holders_of[key])
                holders = (key,) + tuple(id(run[k]) for k in idxs)
                if holders in refused:
                    refused_at[key] = changes[key]
                    continue
                first_stmt = facts(run[idxs[0]])
                expr = first_stmt[1][first_stmt[3][key]][1]
                reads = A.names_loaded(expr)
                first, last = idxs[0], idxs[-1]
                # the names it reads must not change between the first and last use
                if any(facts(run[k])[2] & reads for k in range(first, last)):
                    refused.add(holders)
                    refused_at[key] = changes[key]
                    continue
                name = fresh()
                target = ast.Name(id=name, ctx=ast.Load())
                for k in idxs:
                    count(run[k], -1)
                    run[k] = A.assign(run[k].targets[0], A.replace_equal(run[k].value, key, target),
                                      run[k])
                    count(run[k], 1)
                run.insert(first, A.assign(name, A.copy_tree(expr), run[first]))
                count(run[first], 1)
                repeated = {k for k in repeated if total[k] >= 2} | {
                    k for s in (run[first], *(run[k + 1] for k in idxs))
                    for k in facts(s)[4] if total[k] >= 2}
                break
            else:
                break
        return run

    def block(body):
        out, run = [], []
        for s in body:
            if (isinstance(s, ast.Assign) and len(s.targets) == 1
                    and isinstance(s.targets[0], ast.Name)):
                run.append(s)
                continue
            out += stretch(run)
            run = []
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s.body = block(s.body)
                s.orelse = block(s.orelse)
            out.append(s)
        return out + stretch(run)

    try:
        return block(stmts)
    finally:
        del block           # (a reference cycle: see above Facts)


def _dead_tail(stmts, facts=None):
    """Drop pure assignments to names nothing reads afterwards (top level only; never
    those to a name declared global or nonlocal: that is an effect)."""
    facts = Facts() if facts is None else facts
    live = {n for s in stmts if isinstance(s, (ast.Global, ast.Nonlocal)) for n in s.names}
    keep = []
    for s in reversed(stmts):
        pure = (isinstance(s, ast.Assign) and len(s.targets) == 1
                and isinstance(s.targets[0], ast.Name) and facts.arithmetic(s))
        if pure and s.targets[0].id not in live:
            continue
        if pure:
            live.discard(s.targets[0].id)
        live |= facts.loaded(s)
        keep.append(s)
    return list(reversed(keep))


HOISTED_MODULES = {"math", "cmath"}      # scalar code, where a lookup per call shows


def pure_calls(stmts, namespace, local_names, facts=None):
    """Names called in stmts that refer to functions of the math module (a hoisted `sin`
    in derivative code that is differentiated again): safe to compute once."""
    facts = Facts() if facts is None else facts
    out, seen = set(), set()
    for s in stmts:
        for name in facts.called(s) - seen:
            seen.add(name)
            if name in local_names:
                continue
            obj = namespace.bindings.get(name) if name in namespace.bindings else \
                namespace.unit.lookup(name)
            if getattr(obj, "__module__", None) == "math":
                out.add(name)
    return out


def hoist_module_functions(stmts, namespace, local_names):
    """``math.sin(y)`` -> ``sin(y)`` with `sin` bound once (a closure variable), saving an
    attribute lookup per call. Only module attributes that are called are hoisted."""
    import inspect

    def resolve(node):
        if isinstance(node, ast.Name):
            if node.id in namespace.bindings:
                obj = namespace.bindings[node.id]
                return obj if inspect.ismodule(obj) else None
            if node.id in local_names:
                return None
            obj = namespace.unit.lookup(node.id)
            return obj if inspect.ismodule(obj) else None
        if isinstance(node, ast.Attribute):
            base = resolve(node.value)
            obj = getattr(base, node.attr, None) if base is not None else None
            return obj if inspect.ismodule(obj) else None
        return None

    def hoisted_module(node):
        """The module of `math.sin(...)` (node a call) if it is one hoisted, else None."""
        f = node.func
        if isinstance(f, ast.Attribute):
            mod = resolve(f.value)
            if mod is not None and mod.__name__ in HOISTED_MODULES:
                return mod
        return None

    class Hoist(A.Transformer):
        def visit_Call(self, node):
            self.generic_visit(node)
            mod = hoisted_module(node)
            if mod is not None:
                f = node.func
                obj = getattr(mod, f.attr, None)
                if obj is not None and callable(obj) and not isinstance(obj, type):
                    node.func = A.load(namespace.bind(f.attr, obj))
            return node

    # (statements without such a call are left as they are, without the visit)
    return [Hoist().visit(s) if any(n.__class__ is ast.Call and hoisted_module(n) is not None
                                    for n in A.nodes(s)) else s for s in stmts]


def simplify_scalar(stmts, adjoint_names):
    """sympy pass over scalar code: each assignment's right-hand side is handed to sympy
    (calls become opaque symbols), common factors are pulled out (`2*x*g + 2*g` becomes
    `2*g*(x + 1)`), and the result is kept only when it has fewer operations. sympy is
    imported only for an expression `_shares_a_factor` lets through (code where no sum has
    two terms with a factor in common never imports it)."""
    def simplify(expr):
        import sympy
        from sympy.printing.pycode import pycode
        calls, symbols = {}, {}

        class Opaque(A.Transformer):
            def visit_Call(self, node):
                key = ast.dump(node)
                if key not in calls:
                    calls[key] = (f"_call{len(calls)}", node)
                return ast.Name(id=calls[key][0], ctx=ast.Load())

        masked = Opaque().visit(A.copy_tree(expr))
        for n in A.walk(masked):
            if not isinstance(n, (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Add,
                                  ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd,
                                  ast.Load)):
                return expr
            if isinstance(n, ast.Constant) and type(n.value) not in (int, float):
                return expr
            if isinstance(n, ast.Name):
                symbols[n.id] = sympy.Symbol(n.id, real=True)
        try:
            sym = sympy.sympify(ast.unparse(masked), locals=symbols)
            new = sympy.factor_terms(sym)
        except (sympy.SympifyError, TypeError, ValueError, AttributeError):
            return expr
        if sympy.count_ops(new) >= sympy.count_ops(sym) or new.has(sympy.zoo, sympy.nan):
            return expr
        try:
            out = ast.parse(pycode(new, fully_qualified_modules=False), mode="eval").body
        except SyntaxError:
            return expr
        return A.substitute(out, {name: node for name, node in calls.values()})

    def block(body):
        for s in body:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s.body = block(s.body)
                s.orelse = block(s.orelse)
            elif (isinstance(s, ast.Assign) and len(s.targets) == 1
                  and isinstance(s.targets[0], ast.Name) and isinstance(s.value, ast.BinOp)
                  and (s.targets[0].id in adjoint_names
                       or s.targets[0].id.startswith("_g"))
                  and _shares_a_factor(s.value)):
                s.value = simplify(s.value)        # derivative code only, never the primal
        return body

    return block(stmts)


def _shares_a_factor(expr):
    """Does some sum in expr have two terms with a factor in common (what factoring can
    pull out)? A cheap syntactic test that spares sympy the expressions it cannot help."""
    def terms(n, out):
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            terms(n.left, out)
            terms(n.right, out)
        else:
            out.append(n)
        return out

    def factors(n, out):
        if isinstance(n, ast.UnaryOp):
            return factors(n.operand, out)
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mult, ast.Div)):
            factors(n.left, out)
            return factors(n.right, out)
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            return factors(n.left, out)
        if not isinstance(n, ast.Constant):
            out.add(text[id(n)])
        return out

    def negative(t):
        return isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.USub) or (
            isinstance(t, ast.BinOp) and isinstance(t.op, (ast.Mult, ast.Div))
            and negative(t.left))

    def numeric_factor(t):
        if isinstance(t, ast.UnaryOp):
            return numeric_factor(t.operand)
        return isinstance(t, ast.BinOp) and isinstance(t.op, (ast.Mult, ast.Div)) and (
            isinstance(t.left, ast.Constant) or isinstance(t.right, ast.Constant)
            or numeric_factor(t.left) or numeric_factor(t.right))

    text = A.dumps(expr)                 # ast.dump of each part
    for n in A.nodes(expr):
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            parts = terms(n, [])
            if sum(1 for t in parts if negative(t)) >= 2:      # -a + -b: -(a + b)
                return True
            # a term repeated (`dx - c - c`, common in adjoint code) shares nothing with
            # itself that factoring pulls out: sympy reads it as 2*c already; it adds a
            # coefficient, which a second one (`c + c + 2*b`: 2*(c + b)) could share
            distinct = {}
            for t in parts:
                distinct.setdefault(text[id(t)], [t, 0])[1] += 1
            if len(distinct) < len(parts) and sum(
                    1 for t, count in distinct.values()
                    if count > 1 or numeric_factor(t)) >= 2:
                return True
            seen = set()
            for t, _ in distinct.values():
                fs = factors(t, set())
                if seen & fs:
                    return True
                seen |= fs
    return False
