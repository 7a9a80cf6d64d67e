"""Checkpointing of long loops (the `checkpoint=` option): a tape of O(sqrt n) for n steps.

Without checkpointing, a loop's forward sweep saves what each iteration overwrites, n
entries for n iterations. With it, the loop runs in segments of k iterations (k given, or
ceil(sqrt(n)) at run time), and only the segments' starting states are kept:

    forward sweep                                  adjoint sweep
    _checkpoints1 = []                             for _start1 in reversed(SEGMENT STARTS):
    for _start1 in SEGMENT STARTS:                     y, h = _checkpoints1.pop()
        _checkpoints1.append((y, keep(h)))             h = restore(h)
        for i in SEGMENT: <body, saving nothing>       for i in SEGMENT: <body, saving>
                                                       for i in reversed(SEGMENT): <adjoint>

Both loop bodies are the ones the reverse transform made for the plain loop: the adjoint
sweep re-runs one segment with its saves (a tape of k iterations), then runs that
segment's adjoint loop over it. Peak memory: n/k snapshots plus k iterations' saves;
extra work: one more forward pass of the loop. A loop whose iteration count is known only
at its end (``while``, ``break``/``return`` inside) keeps its snapshots in a runtime
`Checkpoints` instead, saved when the count reaches the next due iteration; with "sqrt"
and no count in advance it thins them as the loop runs (about sqrt(2n) kept).

Three steps around the `Resolver` (which turns save/restore markers into pushes/pops):
`restructure` (before it) chooses the loops and builds the form above from the marked-up
code, tagging the re-run body `recompute` so the Resolver treats it as forward code and
counts as its reads only what it takes from outside the loop; `finish` (after it) fills in
the snapshots: the variables the re-run body reads before writing them that the loop
changes (an array changed in place is kept with a copy and restored into the same object,
so the caller's arrays end as they would without checkpointing), and gives each segment
its own tape.

Loops at any depth are checkpointed, inner ones first: a loop inside another loop has
its snapshots (and k) saved before each of its runs and restored after its adjoint, like
its range, and an outer checkpointed loop re-runs it in its checkpointed form. Not
checkpointed: loops that save nothing per iteration (nothing to gain) and loops that
change a list in place that lives across iterations (noted in the generated source: a
copy at every checkpoint would cost more than the tape).
"""
import ast
import copy
import numbers

from . import astutil as A
from .analysis import SEQ, UNKNOWN
from .errors import TranspileError
from .tapes import Resolver, loop_tapes, marker, _is_push, _uses_stack


def check_option(value):
    """None, "sqrt" or a positive int: the valid values of `checkpoint=`."""
    if value is None or value == "sqrt":
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise TranspileError(f"checkpoint={value!r}: use None, 'sqrt' or a positive int (a "
                         "checkpoint every that many iterations)")


def restructure(fwd_m, rev_m, plan, every):
    """Marked-up forward and adjoint sweeps with the eligible loops in checkpointed form
    (inner loops first, so an outer loop's copies of its body carry them), and the sweep
    plan (tapes.SweepPlan) extended by what the checkpointed loops keep per run."""
    trial_fwd, trial_rev = Resolver(plan).run(fwd_m, rev_m)
    kept = []                                    # (names, nested) of _kept_per_run
    saving = {A.get_tag(s, "forward_loop") for s in A.statements(trial_fwd)
              if A.get_tag(s, "forward_loop") is not None and _uses_stack(s.body)}
    alive = {A.get_tag(s, "reverse_loop") for s in A.statements(trial_rev)}
    reverse = {}                                 # loop id -> (list holding it, the loop)
    for body in A.bodies(rev_m):
        for s in body:
            if A.get_tag(s, "reverse_loop") is not None:
                reverse[A.get_tag(s, "reverse_loop")] = (body, s)

    def block(stmts, depth):
        out = []
        for s in stmts:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s.body = block(s.body, depth + isinstance(s, (ast.For, ast.While)))
                s.orelse = block(s.orelse, depth)
            L = A.get_tag(s, "forward_loop")
            if L is None or L not in saving or L not in alive or L not in reverse:
                out.append(s)
                continue
            holder, rloop = reverse[L]
            why = _ineligible(s, rloop, plan)
            if why is not None:
                out += [_note(f"checkpoint: this loop keeps a full tape ({why})", s), s]
                continue
            fwd, adjoint = (_segmented if _counter(rloop) is None else _counted)(
                s, rloop, plan, kept, every, depth > 0)
            out += fwd
            i = next(i for i, x in enumerate(holder) if x is rloop)
            holder[i:i + 1] = adjoint
        return out

    fwd_m = block(fwd_m, 0)
    for names, nested in kept:
        plan = plan.keeping(names, nested)
    return fwd_m, rev_m, plan


def _kept_per_run(names, kept, nested):
    """Variables a checkpointed loop sets once per run and its adjoint reads: inside
    another loop they are saved (pushed) before being set and restored after the adjoint,
    like a nested loop's range (recorded in `kept` for the sweep plan)."""
    kept.append((tuple(names), nested))
    before = [marker(save=v) for v in names]
    after = [marker(restore=v) for v in reversed(names)]
    return before, after


def _ineligible(floop, rloop, plan):
    written = {floop.target.id} if isinstance(floop, ast.For) else set()
    exposed, _ = _exposed(floop.body, written)
    for v in sorted(_mutated(floop.body) & exposed):
        kind = plan.analysis.kind.get(v)
        if kind == SEQ or kind in (UNKNOWN, None) and plan.analysis.is_seq(v):
            return f"it changes the list '{v}' in place"
    return None


def _counter(rloop):
    """The iteration counter of a loop that counts its iterations (a while loop, or a
    for loop left through break/return): `_n1` in `range(_n1)` / `reversed(_r[:_n1])`."""
    it = rloop.iter.args[0]
    if isinstance(rloop.iter.func, ast.Name) and rloop.iter.func.id == "range":
        return it.id
    if isinstance(it, ast.Subscript):
        return it.slice.upper.id
    return None


def _segmented(floop, rloop, plan, kept, every, nested):
    """(forward statements, adjoint statements) of a checkpointed `for` loop over a range."""
    names, L, var = plan.names, A.get_tag(floop, "forward_loop"), floop.target.id
    rng = floop.iter.id
    ck, start = names.fresh("_checkpoints"), names.fresh("_start")
    fwd = []
    if every == "sqrt":
        k = names.fresh("_every")
        fwd.append(A.assign(k, _call(plan.env.helper("sqrt_interval"), _call("len", A.load(rng)))))
        size = lambda: A.load(k)             # noqa: E731
    else:
        size = lambda: A.const(every)        # noqa: E731
    before, after = _kept_per_run([k, ck] if every == "sqrt" else [ck], kept, nested)
    starts = lambda: _call("range", A.const(0), _call("len", A.load(rng)), size())  # noqa
    segment = lambda: ast.Subscript(         # noqa: E731  _range1[_start1:_start1 + k]
        value=A.load(rng), slice=ast.Slice(lower=A.load(start), upper=ast.BinOp(
            left=A.load(start), op=ast.Add(), right=size())), ctx=ast.Load())
    save = ast.Expr(value=_save_call(_method(ck, "append"), L))
    plain = _for(var, segment(), _without_saves(A.copy_tree(floop.body)))
    fwd += [A.assign(ck, ast.List(elts=[], ctx=ast.Load())),
            _for(start, starts(), [save, plain])]
    adjoint = _adjoint(floop, rloop, ck, _for(start, _call("reversed", starts()), []),
                       segment(), lambda: _call("reversed", segment()))
    fwd, adjoint = before + fwd, [adjoint] + after
    for n in fwd + adjoint:
        A.located(n, floop)
    return fwd, adjoint


def _counted(floop, rloop, plan, kept, every, nested):
    """The same for a loop whose iteration count is known at its end: snapshots kept by a
    runtime `Checkpoints` (with "sqrt" and no count in advance, it thins them as it goes)."""
    names, L = plan.names, A.get_tag(floop, "forward_loop")
    n = _counter(rloop)
    ck, due = names.fresh("_checkpoints"), names.fresh("_due")
    start, stop = names.fresh("_start"), names.fresh("_stop")
    before, after = _kept_per_run([ck], kept, nested)
    if every != "sqrt":
        size = A.const(every)
    elif isinstance(floop, ast.For):           # at most len(range) iterations
        size = _call(plan.env.helper("sqrt_interval"), _call("len", A.load(floop.iter.id)))
    else:
        size = A.const(None)
    save = A.assign(due, _save_call(_method(ck, "save"), L, A.load(n)))
    check = ast.If(test=ast.Compare(left=A.load(n), ops=[ast.Eq()], comparators=[A.load(due)]),
                   body=[save], orelse=[])
    plain = copy.copy(floop)
    plain.body = [check] + _without_saves(A.copy_tree(floop.body))
    A.tag(plain, forward_loop=None)
    fwd = [A.assign(ck, _call(plan.env.helper("Checkpoints"), size)),
           A.assign(due, A.const(0)), plain]
    if isinstance(floop, ast.For):
        segment = lambda: ast.Subscript(     # noqa: E731  _range1[_start1:_stop1]
            value=A.load(floop.iter.id), slice=ast.Slice(lower=A.load(start),
                                                         upper=A.load(stop)), ctx=ast.Load())
        back = lambda: _call("reversed", segment())     # noqa: E731
        var = floop.target.id
    else:
        segment = back = lambda: _call("range", ast.BinOp(   # noqa: E731
            left=A.load(stop), op=ast.Sub(), right=A.load(start)))
        var = rloop.target.id
    outer = ast.For(target=ast.Tuple(elts=[A.store(start), A.store(stop)], ctx=ast.Store()),
                    iter=_call(_method(ck, "segments"), A.load(n)), body=[], orelse=[],
                    type_comment=None)
    rerun = _for(var, segment(), [st for st in floop.body if A.get_tag(st, "loop") != L])
    adjoint = _adjoint(rerun, rloop, ck, outer, segment(), back)
    fwd, adjoint = before + fwd, [adjoint] + after
    for x in fwd + adjoint:
        A.located(x, floop)
    return fwd, adjoint


def _adjoint(floop, rloop, ck, outer, segment, back):
    """`outer` over the segments, last first: restore the segment's start, re-run the
    segment saving what its adjoint needs, run its adjoint loop."""
    L = A.get_tag(rloop, "reverse_loop")
    restore = ast.Expr(value=_call(_method(ck, "pop")))
    from .control_flow import without_effects
    body = without_effects(A.copy_tree(floop.body))    # printed once, by the first run
    var = floop.target.id
    inside = set()
    for st in body:
        inside |= A.names_stored(st) | _mutated([st])
    reads = set()
    for st in body:
        reads |= A.names_loaded(st)
    rerun = A.tag(_for(var, segment, body), recompute=reads - inside - {var}, forward_loop=L)
    adjoint = copy.copy(rloop)
    adjoint.iter = back()
    outer.body = [restore, rerun, adjoint]
    return A.tag(outer, checkpoint_adjoint=L)


def finish(fwd, rev, plan, optimize):
    """Fill in the snapshots of the checkpointed loops; give each segment its own tape.
    Returns (fwd, rev, the variables snapshots hold)."""
    saves = {}                  # loop id -> its save calls (a loop nested in a
    for s in fwd + rev:         # checkpointed loop has copies in both sweeps)
        for n in A.walk(s):
            if A.get_tag(n, "checkpoint_save") is not None:
                saves.setdefault(A.get_tag(n, "checkpoint_save"), []).append(n)
    held = set()
    copied = plan.mutated | _mutated(plan.norm.body)
    names = plan.names
    for s in list(A.statements(rev)):
        L = A.get_tag(s, "checkpoint_adjoint")
        if L is None:
            continue
        restore, rerun = s.body[0], s.body[1]
        var = rerun.target.id
        exposed, _ = _exposed(rerun.body, {var})
        inside = set()
        for st in rerun.body:
            inside |= A.names_stored(st) | _mutated([st])
        state = sorted((exposed & inside) - {var})
        # a value changed in place is kept with a copy, and restored into the same object
        values = [_call(plan.env.helper("keep"), A.load(v)) if v in copied else A.load(v)
                  for v in state]
        sources = _random_sources(rerun.body, plan)
        if sources:                 # the re-run draws again: the same numbers, please
            generators = ast.Tuple(elts=sources, ctx=ast.Load())
            kept = names.fresh("_rng_state")
            state.append(kept)
            values.append(_call(plan.env.bind("rng_states", rng_states),
                                A.copy_tree(generators)))
            restore_rng = A.located(ast.Expr(value=_call(
                plan.env.bind("set_rng_states", set_rng_states), A.copy_tree(generators),
                A.load(kept))), restore)
            s.body.insert(1, restore_rng)
            _around(rev, s, generators, names, plan, restore)
        held |= set(state)
        if state:
            for save in saves[L]:
                save.args[-1] = A.copy_tree(values[0] if len(values) == 1 else ast.Tuple(
                    elts=values, ctx=ast.Load()))
            target = A.store(state[0]) if len(state) == 1 else ast.Tuple(
                elts=[A.store(v) for v in state], ctx=ast.Store())
            s.body[0] = A.located(A.assign(target, restore.value), restore)
            s.body[1:1] = [A.located(A.assign(v, _call(plan.env.helper("restore"), A.load(v))),
                                     restore) for v in state if v in copied]
            rerun_at = 1 + sum(1 for v in state if v in copied) + bool(sources)
        else:
            rerun_at = 1
        rest = s.body[rerun_at + 1:]
        if optimize and rest:
            seg_fwd, seg_rev, _ = loop_tapes([rerun], list(rest), names)
            s.body[rerun_at:] = seg_fwd + seg_rev
    return fwd, rev, held


# --- random numbers drawn in a re-run segment ------------------------------------------
# A checkpointed loop's adjoint sweep runs each segment again: whatever the segment draws
# from a random generator must be drawn again, the same numbers. Each snapshot keeps the
# state of the generators the loop body uses (the global NumPy and `random` generators,
# Generator / RandomState / Random objects it calls methods of), restored before the
# segment's re-run; around the whole adjoint the generators are put back as the forward
# sweep left them, so the caller sees them advanced exactly as by one call of f.

_GLOBAL_SOURCES = ("numpy.random", "random")


def _generator_classes():
    import random
    import numpy as np
    return (np.random.Generator, np.random.RandomState, np.random.BitGenerator,
            random.Random)


def _state_of(source):
    import random
    import numpy as np
    if source == "numpy.random":
        return np.random.get_state()
    if source == "random":
        return random.getstate()
    if isinstance(source, np.random.Generator):
        return source.bit_generator.state
    if isinstance(source, np.random.RandomState):
        return source.get_state()
    if isinstance(source, np.random.BitGenerator):
        return source.state
    if isinstance(source, random.Random):
        return source.getstate()
    return None                          # not a generator after all: nothing to keep


def rng_states(sources):
    """The states of random generators ("numpy.random" / "random": the global ones)."""
    return tuple(_state_of(s) for s in sources)


def set_rng_states(sources, states):
    import random
    import numpy as np
    for source, state in zip(sources, states):
        if state is None:
            continue
        if source == "numpy.random":
            np.random.set_state(state)
        elif source == "random":
            random.setstate(state)
        elif isinstance(source, np.random.Generator):
            source.bit_generator.state = state
        elif isinstance(source, np.random.BitGenerator):
            source.state = state
        elif isinstance(source, np.random.RandomState):
            source.set_state(state)
        else:
            source.setstate(state)


def _around(rev, stmt, generators, names, plan, like):
    """Keep the generators' states before stmt (in whichever list holds it) and put them
    back after it."""
    after = names.fresh("_rng_after")
    for body in A.bodies(rev):
        for i, x in enumerate(body):
            if x is stmt:
                body[i:i + 1] = [
                    A.located(A.assign(after, _call(plan.env.bind("rng_states", rng_states),
                                                    A.copy_tree(generators))), like),
                    stmt,
                    A.located(ast.Expr(value=_call(
                        plan.env.bind("set_rng_states", set_rng_states),
                        A.copy_tree(generators), A.load(after))), like)]
                return


def _random_sources(body, plan):
    """Expressions for the random generators the loop body draws from (directly or in the
    functions it calls): "numpy.random", "random", or a variable holding a generator.
    A generator created in the loop without a seed cannot draw the same numbers twice:
    refused."""
    import numpy as np
    import random
    unit = plan.norm.unit
    local = set(plan.analysis.sites) | set(plan.analysis.params)
    stored = set()
    for st in body:
        stored |= A.names_stored(st)
    found, names = [], []
    unseeded = (np.random.default_rng, np.random.Generator, np.random.RandomState,
                np.random.SeedSequence, random.Random, np.random.PCG64, np.random.MT19937,
                np.random.Philox, np.random.SFC64, np.random.PCG64DXSM)
    for n in A.walk(ast.Module(body=list(body), type_ignores=[])):
        if not isinstance(n, ast.Call):
            continue
        fn = unit.resolve(n.func, local)
        if any(fn is u for u in unseeded) and not n.args and not n.keywords:
            raise unit.error("checkpoint: this loop creates a random generator without a "
                             "seed; re-running a segment in the adjoint sweep would draw "
                             "other numbers (seed it, create it before the loop, or use "
                             "checkpoint=None)", n)
        for source in _sources_of(fn, set(), 0):
            if not any(source is f for f in found):
                found.append(source)
        if isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name):
            v = n.func.value.id
            if v in stored or v in names:
                continue
            if v in local:
                if plan.analysis.kind.get(v) in (UNKNOWN, None):
                    names.append(v)               # checked at run time
            elif isinstance(unit.resolve(n.func.value, local), _generator_classes()):
                names.append(v)
    return ([A.const(s) if isinstance(s, str) else A.load(plan.env.bind("_generator", s))
             for s in found] + [A.load(v) for v in names])


def _sources_of(fn, seen, depth):
    """The global generators fn draws from: a NumPy / random module function or a method
    of their global generators, or a Python function reading one (a few calls deep)."""
    import random
    import types
    import numpy as np
    owner = getattr(fn, "__self__", None)
    if owner is np.random.mtrand._rand or (
            isinstance(fn, types.ModuleType) and fn.__name__.startswith("numpy.random")) or (
            callable(fn) and (getattr(fn, "__module__", None) or "").startswith(
                "numpy.random") and owner is None):
        return ["numpy.random"]
    if owner is getattr(random, "_inst", None) or fn is random:
        return ["random"]
    if isinstance(fn, types.FunctionType) and depth < 4 and id(fn) not in seen:
        seen.add(id(fn))
        from .dependencies import reads
        closure = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
        out = []
        for _, _, value in reads(fn.__globals__, closure, fn.__code__):
            more = ([value] if isinstance(value, _generator_classes())
                    else _sources_of(value, seen, depth + 1))
            for s in more:
                if not any(s is o for o in out):
                    out.append(s)
        return out
    return []


# --- helpers ---------------------------------------------------------------------------

def _call(func, *args):
    return ast.Call(func=A.load(func) if isinstance(func, str) else func, args=list(args),
                    keywords=[])


def _for(var, iterable, body):
    return ast.For(target=A.store(var), iter=iterable, body=body or [ast.Pass()], orelse=[],
                   type_comment=None)


def _method(obj, name):
    return ast.Attribute(value=A.load(obj), attr=name, ctx=ast.Load())


def _save_call(func, L, *args):
    """`func(*args, <snapshot>)`: `finish` fills in the snapshot."""
    return A.tag(_call(func, *args, A.const(None)), checkpoint_save=L)


def _note(text, like):
    return A.located(ast.Expr(value=A.const(text)), like)


def _without_saves(stmts):
    """The forward body with no saves: markers and pushes dropped (nested ones too)."""
    out = []
    for s in stmts:
        if A.get_tag(s, "marker") or _is_push(s):
            continue
        if isinstance(s, (ast.If, ast.For, ast.While)):
            s.body = _without_saves(s.body) or [ast.Pass()]
            s.orelse = _without_saves(s.orelse)
        out.append(s)
    return out


def _mutated(stmts):
    """Names changed in place: `v[i] = ...` and `v.method(...)` statements."""
    out = set()
    for s in stmts:
        for n in A.walk(s):
            if isinstance(n, ast.Assign):
                for t in n.targets:
                    if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name):
                        out.add(t.value.id)
            elif (isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                  and isinstance(n.value.func, ast.Attribute)
                  and isinstance(n.value.func.value, ast.Name)):
                out.add(n.value.func.value.id)
    return out


def _exposed(stmts, written):
    """(names some path through stmts reads before writing them, names surely written)."""
    out, w = set(), set(written)
    for s in stmts:
        if isinstance(s, ast.If):
            out |= A.names_loaded(s.test) - w
            a, wa = _exposed(s.body, w)
            b, wb = _exposed(s.orelse, w)
            out |= a | b
            w = wa & wb
        elif isinstance(s, (ast.For, ast.While)):
            head = s.iter if isinstance(s, ast.For) else s.test
            out |= A.names_loaded(head) - w
            inner = w | (A.names_stored(s.target) if isinstance(s, ast.For) else set())
            out |= _exposed(s.body, inner)[0]       # may run zero times: writes uncertain
        else:
            out |= A.names_loaded(s) - w
            w |= A.names_stored(s)
    return out, w
