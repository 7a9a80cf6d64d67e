"""Transform time per source line: how long transpile takes to make a gradient, by size.

    python scripts/transform_time.py [--sizes 10 50 100 200 500] [--repeats 3] [--quick]

Generates functions of exactly 10, 50, 100, 200 and 500 lines (the def and the return
included) in four families: scalar code (a `math` call and arithmetic per statement),
straight-line and in `for` loops of three statements, and NumPy code (a matrix-vector
product, an elementwise function or a reduction per statement on 4-vectors), likewise.
Each is written to a file and imported (transpile reads source), then its gradient is
built with the caches cleared: parse, every pass, print, compile; not run. The time is the
CPU time of this process (on a loaded machine wall time moved by up to 2x), median of
several builds. Printed: a table of the time and the time per line, and for each family
the fitted exponent k of time ~ lines^k (over all sizes, and from 50 lines up).

`python scripts/bench.py` prints the same table at its end (`--scaling`: only that).
Not a test: numbers depend on the machine.
"""
import argparse
import importlib.util
import math
import os
import statistics
import sys
import tempfile
import time

import numpy

import transpile
from transpile import pipeline


def forget(fn):
    """Drop transpile's in-memory cache entries for fn (the next grad transforms again)."""
    pipeline._CACHE.pop(fn, None)
    pipeline._UNITS.pop(fn, None)


def transform_time(fn, args, wrt, repeats=5, clock=time.perf_counter):
    """Source to compiled gradient: parse, all passes, print, compile (cache cleared);
    median of several builds."""
    times = []
    for _ in range(repeats):
        forget(fn)
        t0 = clock()
        transpile.grad(fn, wrt=wrt).variants.get(args, {})
        times.append(clock() - t0)
    return statistics.median(times)


# --- generated functions -----------------------------------------------------------------

class Family:
    """Functions `def f(<params>)` of a given number of lines: `start` lines, then one of
    `stmts` per line (with one of `funcs`), then `return <result>`. The statements keep
    the values bounded, so every size computes finite values and gradients."""

    def __init__(self, name, params, start, stmts, funcs, result, args):
        self.name, self.params, self.start = name, params, start
        self.stmts, self.funcs, self.result, self.args = stmts, funcs, result, args

    def statement(self, k):
        return self.stmts[k % len(self.stmts)].format(f=self.funcs[k % len(self.funcs)])

    def straight_line(self, lines):
        out = [f"def f({self.params}):"] + ["    " + s for s in self.start]
        for k in range(lines - len(out) - 1):
            out.append("    " + self.statement(k))
        out.append(f"    return {self.result}")
        return out

    def loops(self, lines):
        """The same statements in `for` loops of three statements (three iterations)."""
        out = [f"def f({self.params}):"] + ["    " + s for s in self.start]
        left, k = lines - len(out) - 1, 0
        while left > 0:
            if left == 1:
                out.append("    " + self.statement(k))
                break
            out.append(f"    for i{k} in range(3):")
            body = min(3, left - 1)
            for j in range(body):
                out.append("        " + self.statement(k + j))
            left -= body + 1
            k += 1
        out.append(f"    return {self.result}")
        return out


SCALAR = Family(
    "scalar", "x, w", ["a = x", "b = w", "c = 0.0"],
    ["a = 0.6 * a + 0.3 * {f}(b * x)",
     "b = 0.6 * b + 0.3 * {f}(a * w)",
     "c = c + 0.1 * {f}(a - b)"],
    ["math.sin", "math.cos", "math.tanh", "math.atan", "math.erf"],
    "a + b + c", (0.3, 0.7))

_RNG = numpy.random.default_rng(0)
NUMPY = Family(
    "numpy", "x, W", ["h = x", "g = 0.5 * x", "c = 0.0"],
    ["h = 0.6 * h + 0.3 * {f}(W @ g)",
     "g = 0.6 * g + 0.3 * {f}(h * x)",
     "c = c + 0.1 * np.sum({f}(h - g))"],
    ["np.sin", "np.cos", "np.tanh", "np.arctan"],
    "c + np.sum(h * g)", (_RNG.normal(size=4), _RNG.normal(size=(4, 4)) / 2))

#: (label, family, how its functions are laid out)
KINDS = [("scalar straight-line", SCALAR, Family.straight_line),
         ("scalar loops", SCALAR, Family.loops),
         ("NumPy straight-line", NUMPY, Family.straight_line),
         ("NumPy loops", NUMPY, Family.loops)]


def generated_function(lines, tag, folder):
    """Write the function to a .py file (transpile reads source) and import it."""
    path = os.path.join(folder, f"generated_{tag}.py")
    with open(path, "w") as fh:
        fh.write("import math\n\nimport numpy as np\n\n\n" + "\n".join(lines) + "\n")
    spec = importlib.util.spec_from_file_location(f"generated_{tag}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.f


def slope(xs, ys):
    """Least-squares slope of log y against log x."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return (sum((a - mx) * (b - my) for a, b in zip(lx, ly))
            / sum((a - mx) ** 2 for a in lx))


def scaling(sizes, repeats, kinds=KINDS):
    """Print the table and the fitted exponents; returns {label: [seconds per size]}."""
    warm_up()
    print("\n## Transform time against function size (cache cleared; CPU time of this "
          f"process, which other load barely moves; median of {repeats} builds)")
    print("| lines | " + " | ".join(f"{label} | per line" for label, _, _ in kinds) + " |")
    print("| --- " * (2 * len(kinds) + 1) + "|")
    results = {label: [] for label, _, _ in kinds}
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            row = []
            for label, family, layout in kinds:
                src = layout(family, n)
                assert len(src) == n, (label, n, len(src))
                f = generated_function(src, f"{label.replace(' ', '_')}{n}", folder)
                t = transform_time(f, family.args, (0, 1), repeats, time.process_time)
                value, grads = transpile.value_and_grad(f, wrt=(0, 1))(*family.args)
                assert numpy.isfinite(value) and all(numpy.all(numpy.isfinite(g))
                                                     for g in grads), (label, n)
                results[label].append(t)
                row += [f"{t * 1e3:.0f} ms", f"{t * 1e3 / n:.2f} ms"]
            print(f"| {n} | " + " | ".join(row) + " |", flush=True)
    for label, ts in results.items():
        big = [(n, t) for n, t in zip(sizes, ts) if n >= 50]
        tail = (f"; {slope(*zip(*big)):.2f} from 50 lines up" if len(big) >= 2 else "")
        print(f"{label}: time ~ lines^{slope(sizes, ts):.2f} over {sizes[0]}-{sizes[-1]} "
              f"lines{tail}; {1e3 * sum(ts) / sum(sizes):.2f} ms per line overall")
    return results


def warm_up():
    """One-time costs (imports, sympy's first use) paid before anything is measured."""
    with tempfile.TemporaryDirectory() as folder:
        for label, family, layout in KINDS:
            f = generated_function(layout(family, 10), "warm_" + label.replace(" ", "_"),
                                   folder)
            transpile.grad(f, wrt=(0, 1))(*family.args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100, 200, 500])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10-100 lines, one build each")
    opts = ap.parse_args()
    sizes, repeats = ([10, 50, 100], 1) if opts.quick else (opts.sizes, opts.repeats)
    print(f"# Python {sys.version.split()[0]}, NumPy {numpy.__version__}")
    scaling(sizes, repeats)


if __name__ == "__main__":
    main()
