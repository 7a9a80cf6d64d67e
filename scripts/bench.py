"""Benchmark: transpile's gradients against the primal and against other tools, in one run.

    python scripts/bench.py [--repeats 21] [--quick] [--scaling | --no-scaling]

For each workload (scripts/workloads.py: every tool runs the same program, written once
against a math/NumPy-like module) these are timed alternately in one process, so machine
noise hits all alike, and medians are printed with the ratio to the primal:

* the primal (math / NumPy);
* transpile's gradient;
* transpile's gradient compiled with numba (`jit=True`, the [jit] extra);
* peers, each skipped with a note when not installed (`pip install ".[bench]"`):
  autograd, JAX eager (`jax.grad`), `jax.jit(jax.grad(f))` in steady state, PyTorch eager
  (`backward()`), all in float64;
* central finite differences (2n primal calls for n inputs).

Before timing, every peer's gradient is compared with transpile's (relative difference of
the flattened gradients; 1e-8, finite differences 1e-5) and a warning printed on a
mismatch. Time to first gradient is transpile's transform (its cache cleared) plus the
first call, against jax.jit's trace and compile plus the first call, each the first time
that function is seen in the process (both tools warmed up once on a trivial function).
"transform" is the median of several cache-cleared builds.

At the end (or alone with --scaling): transform time (CPU time of the process) against
function size, for generated scalar and NumPy functions of 10 to 500 lines, straight-line
and with loops, with the fitted exponent of time ~ lines^k (scripts/transform_time.py,
which also runs on its own).

Not a test: numbers depend on the machine; the README quotes one run.
"""
import argparse
import importlib.metadata
import math
import os
import platform
import statistics
import sys
import time
import warnings

# one thread everywhere (BLAS, PyTorch, XLA) unless set otherwise: on a small shared
# machine, thread pools spinning against each other distort the numbers far more than
# they help (set these variables before starting to change it)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy  # noqa: E402

import transpile  # noqa: E402
from transform_time import forget, scaling, transform_time  # noqa: E402
from workloads import array_workloads, scalar_workloads, torch_modules  # noqa: E402

SLOW = 0.1           # seconds per call above which a contender is timed only 3 times


# --- peers ----------------------------------------------------------------------------------
#
# A peer turns (name, program, args, wrt) into a zero-argument callable returning the
# gradient as a tuple of arrays/numbers (inputs converted to the peer's types beforehand,
# outside the timed call).

def _programs(math_module, np_module):
    return {name: (f, args, wrt) for name, f, args, wrt in
            scalar_workloads(math_module) + array_workloads(np_module)}


class Peer:
    name = "?"

    def __init__(self):
        self.setup()

    def setup(self):
        pass

    def gradient(self, name, args, wrt):
        raise NotImplementedError


class Autograd(Peer):
    name = "autograd"

    def setup(self):
        import autograd
        import autograd.numpy as anp
        self.grad, self.programs = autograd.grad, _programs(anp, anp)

    def gradient(self, name, args, wrt):
        f = self.programs[name][0]
        g = self.grad(f, argnum=wrt)            # tuple of argnums -> tuple of gradients
        return lambda: g(*args)


class JaxEager(Peer):
    name = "jax eager"

    def setup(self):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        self.jax, self.jnp = jax, jnp
        self.programs = _programs(jnp, jnp)

    def inputs(self, args):
        return tuple(self.jnp.asarray(a, dtype=self.jnp.float64)
                     if isinstance(a, float) or getattr(a, "dtype", None) == numpy.float64
                     else self.jnp.asarray(a) for a in args)

    def gradient(self, name, args, wrt):
        g = self.jax.grad(self.programs[name][0], argnums=wrt)
        jargs = self.inputs(args)
        block = self.jax.block_until_ready
        return lambda: block(g(*jargs))


class JaxJit(JaxEager):
    name = "jax.jit"

    def jitted(self, name, wrt):
        f = self.programs[name][0]
        # a new function object each time: nothing traced or compiled before is reused
        return self.jax.jit(self.jax.grad(lambda *a: f(*a), argnums=wrt))

    def gradient(self, name, args, wrt):
        g = self.jitted(name, wrt)
        jargs = self.inputs(args)
        block = self.jax.block_until_ready
        return lambda: block(g(*jargs))

    def first_gradient(self, name, args, wrt):
        """Seconds from jax.jit(jax.grad(f)) to the first gradient: trace, compile, run."""
        jargs = self.inputs(args)
        t0 = time.perf_counter()
        self.jax.block_until_ready(self.jitted(name, wrt)(*jargs))
        return time.perf_counter() - t0


class Torch(Peer):
    name = "torch eager"

    def setup(self):
        import torch
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        self.torch = torch
        tmath, tnp = torch_modules()
        self.programs = _programs(tmath, tnp)

    def gradient(self, name, args, wrt):
        torch = self.torch
        f = self.programs[name][0]
        targs = [torch.tensor(a, dtype=torch.float64) if isinstance(a, float)
                 else torch.from_numpy(numpy.ascontiguousarray(a, dtype=numpy.float64))
                 for a in args]
        leaves = [targs[i].requires_grad_(True) for i in wrt]

        def g():
            for leaf in leaves:
                leaf.grad = None
            f(*targs).backward()
            return tuple(leaf.grad for leaf in leaves)

        return g


class FiniteDifferences(Peer):
    name = "central FD"

    def gradient(self, name, args, wrt):
        f = _programs(math, numpy)[name][0]
        return lambda: central_differences(f, args, wrt)


def central_differences(f, args, wrt, rel=6e-6):
    """Gradient by central differences: 2 primal calls per input, step rel * max(1, |x|)."""
    args = list(args)
    out = []
    for i in wrt:
        x = args[i]
        if isinstance(x, float):
            h = rel * max(1.0, abs(x))
            args[i] = x + h
            hi = f(*args)
            args[i] = x - h
            lo = f(*args)
            args[i] = x
            out.append((hi - lo) / (2 * h))
            continue
        x = x.copy()
        args[i] = x
        g = numpy.empty(x.shape)
        flat, gflat = x.reshape(-1), g.reshape(-1)
        for k in range(flat.size):
            v = flat[k]
            h = rel * max(1.0, abs(v))
            flat[k] = v + h
            hi = f(*args)
            flat[k] = v - h
            lo = f(*args)
            flat[k] = v
            gflat[k] = (hi - lo) / (2 * h)
        out.append(g)
    return tuple(out)


class TranspileJit(Peer):
    """transpile's own gradient compiled with numba (`jit=True`, the [jit] extra); a
    workload whose derivative code numba cannot compile is left out with a note."""
    name = "transpile jit"

    def setup(self):
        import numba  # noqa: F401  (skipped with a note when missing)

    def gradient(self, name, args, wrt):
        f = _programs(math, numpy)[name][0]
        g = transpile.grad(f, wrt=wrt, jit=True)
        try:
            g(*args)                    # numba compiles for these argument types
        except transpile.TranspileError as exc:
            print(f"# note: {self.name} refused {name}: {exc}")
            return None
        return lambda: g(*args)


PEERS = [TranspileJit, Autograd, JaxEager, JaxJit, Torch]


def load_peers():
    peers = []
    for cls in PEERS:
        try:
            peers.append(cls())
        except ImportError as exc:
            print(f"# note: {cls.name} skipped (not installed: {exc.name}); "
                  f'pip install ".[bench]"')
    return peers


# --- timing ---------------------------------------------------------------------------------

def per_call(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def calibrate(fn, target=0.02):
    number = 1
    while True:
        t = per_call(fn, number)
        if t * number >= target:
            return number, t
        number *= 2


def time_alternately(calls, repeats):
    """Median seconds per call of each callable, timed in turns (slow ones 3 times)."""
    plan = [calibrate(c) for c in calls]
    times = [[] for _ in calls]
    for r in range(repeats):
        for k, c in enumerate(calls):
            number, first = plan[k]
            if first > SLOW and r >= 3:
                continue
            times[k].append(per_call(c, number))
    return [statistics.median(t) for t in times]


def flat(gradient):
    """A tuple of gradients (numbers, arrays, jax arrays, torch tensors) as one vector."""
    parts = []
    for g in gradient:
        if hasattr(g, "detach"):
            g = g.detach().numpy()
        parts.append(numpy.ravel(numpy.asarray(g, dtype=float)))
    return numpy.concatenate(parts)


def relative_difference(a, b):
    a, b = flat(a), flat(b)
    return float(numpy.linalg.norm(a - b) / max(numpy.linalg.norm(b), 1e-300))


def first_gradient(fn, args, wrt):
    """Seconds from transpile.grad(f) to the first gradient (cache cleared)."""
    forget(fn)
    t0 = time.perf_counter()
    transpile.grad(fn, wrt=wrt)(*args)
    return time.perf_counter() - t0


def fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _small_programs(m):
    def small(x):
        y = x
        for i in range(3):
            y = m.sin(y) * x + 0.5 * y
        return y

    def small_array(x):
        return m.sum(m.tanh(x) * x)

    return small, small_array


def warm_up(jit):
    """One-time costs of each tool in a process (imports, first use of sympy or XLA), paid
    on small functions before anything is measured."""
    small, _ = _small_programs(math)
    _, small_array = _small_programs(numpy)
    transpile.grad(small)(0.5)
    transpile.grad(small_array)(numpy.ones(3))
    if jit is not None:
        jax, jnp = jit.jax, jit.jnp
        small, small_array = _small_programs(jnp)
        jax.block_until_ready(jax.jit(jax.grad(small))(0.5))
        jax.block_until_ready(jax.jit(jax.grad(small_array))(jnp.ones(3)))


def describe_machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for dist in ("autograd", "jax", "jaxlib", "torch"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    threads = os.environ["OMP_NUM_THREADS"]
    print(f"# {cpu}, {os.cpu_count()} cores; {platform.python_implementation()} "
          f"{platform.python_version()}, NumPy {numpy.__version__}"
          + (f"; {', '.join(versions)}" if versions else "")
          + f"; {threads} thread(s) for BLAS, PyTorch and XLA")


# --- the comparison -------------------------------------------------------------------------

def compare(repeats, peers):
    fd = FiniteDifferences()
    jit = next((p for p in peers if isinstance(p, JaxJit)), None)
    warm_up(jit)
    names = ["primal", "transpile"] + [p.name for p in peers] + [fd.name]
    summary = []
    for name, fn, args, wrt in scalar_workloads(math) + array_workloads(numpy):
        n_inputs = sum(1 if isinstance(args[i], float) else args[i].size for i in wrt)
        first = first_gradient(fn, args, wrt)
        first_jit = jit.first_gradient(name, args, wrt) if jit is not None else None
        g = transpile.grad(fn, wrt=wrt)
        calls = [lambda: fn(*args), lambda: g(*args)]
        reference = g(*args)
        absent = set()
        for k, p in enumerate(peers + [fd]):
            call = p.gradient(name, args, wrt)
            if call is None:                       # does not apply to this workload
                absent.add(k + 2)
                call = calls[1]
            diff = relative_difference(call(), reference)
            tol = 1e-5 if p is fd else 1e-8
            if not diff <= tol:
                print(f"# WARNING: {name}: {p.name}'s gradient differs from transpile's by "
                      f"{diff:.1e} (relative)")
            calls.append(call)
        timed = [c for k, c in enumerate(calls) if k not in absent]
        it = iter(time_alternately(timed, repeats))
        med = [math.nan if k in absent else next(it) for k in range(len(calls))]
        tt = transform_time(fn, args, wrt)
        print(f"\n{name} ({n_inputs} inputs); transform {fmt(tt)}; time to first gradient: "
              f"transpile {fmt(first)}" + (f", jax.jit {fmt(first_jit)} "
                                           f"({first_jit / first:.0f}x transpile's)"
                                           if jit is not None else ""))
        print(f"| {'':<12} | {'seconds':>10} | {'/ primal':>9} | {'/ transpile':>11} |")
        for label, t in zip(names, med):
            if math.isnan(t):
                print(f"| {label:<12} | {'n/a':>10} | {'':>9} | {'':>11} |")
                continue
            print(f"| {label:<12} | {fmt(t):>10} | {t / med[0]:>8.2f}x | {t / med[1]:>10.1f}x |")
        summary.append((name, dict(zip(names, med)), tt, first, first_jit))
    print_summary(summary, names)


def _ratio(a, b, digits):
    return "n/a" if math.isnan(a) else f"{a / b:.{digits}f}x"


def print_summary(summary, names):
    print("\n## Summary: gradient / primal")
    print("| workload | " + " | ".join(names[1:]) + " |")
    print("| --- " * len(names) + "|")
    ratios = []
    for name, med, *_ in summary:
        ratios.append(med["transpile"] / med["primal"])
        print(f"| {name} | " + " | ".join(_ratio(med[k], med["primal"], 2)
                                          for k in names[1:]) + " |")
    geo = statistics.geometric_mean(ratios)
    print(f"\ntranspile gradient / primal: geometric mean {geo:.2f}x, "
          f"worst {max(ratios):.2f}x (targets: at most 3x each, 2.5x geometric mean)")
    print("\n## Summary: peer time / transpile time (how many times faster transpile is)")
    peers = names[2:]
    print("| workload | " + " | ".join(peers) + " |")
    print("| --- " * (len(peers) + 1) + "|")
    for name, med, *_ in summary:
        print(f"| {name} | " + " | ".join(_ratio(med[k], med["transpile"], 1) for k in peers)
              + " |")
    print("\n## Time to first gradient (function never seen before in the process)")
    print("| workload | transform (median) | transpile: transform + first call | "
          "jax.jit: trace + compile + first call | jax.jit / transpile |")
    print("| --- | --- | --- | --- | --- |")
    for name, _, tt, first, first_jit in summary:
        jit = (f"{fmt(first_jit)} | {first_jit / first:.0f}x" if first_jit is not None
               else "(not installed) | ")
        print(f"| {name} | {fmt(tt)} | {fmt(first)} | {jit} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--quick", action="store_true", help="few repeats (smoke run)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--scaling", action="store_true",
                       help="only transform time against function size")
    group.add_argument("--no-scaling", action="store_true",
                       help="skip transform time against function size")
    opts = ap.parse_args()
    repeats = 3 if opts.quick else opts.repeats
    warnings.filterwarnings("ignore", message=".*os.fork.*")
    peers = [] if opts.scaling else load_peers()
    describe_machine()
    if not opts.scaling:
        print(f"# medians of {repeats} alternating runs (calls over {SLOW} s: 3 runs)")
        compare(repeats, peers)
    if not opts.no_scaling:
        sizes = [10, 50, 100] if opts.quick else [10, 50, 100, 200, 500]
        scaling(sizes, 1 if opts.quick else 3)


if __name__ == "__main__":
    main()
