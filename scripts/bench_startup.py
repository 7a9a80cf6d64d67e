"""What starting a process costs: importing transpile and taking one gradient, beside NumPy.

    python scripts/bench_startup.py [--runs 11] [--no-bytecode]

Each case is a fresh Python process (wall time, process start to exit), the cases taken
in turn so that the machine's load falls on all of them alike; medians are printed.

* ``import numpy``: ``python -c "import numpy"``;
* ``numpy + call``: import numpy and call the 200-step scalar recurrence
  (scripts/workloads.py) once;
* ``import transpile``;
* ``grad, cold``: import transpile and take one gradient of the recurrence, the disk cache
  (transpile/cache.py) on but empty: the transform runs (and stores its entry);
* ``grad, warm``: the same with the entry there: a second process reads the generated code
  back;
* ``numpy: call`` and ``numpy: grad, cold``: the same for the vectorised Rosenbrock on
  10^4 elements (scripts/workloads.py), the first gradient of NumPy code (NumPy's rules
  load on first use);
* ``jax.jit grad`` (when JAX is installed, the [bench] extra): import JAX and take one
  gradient of the same recurrence (written against jax.numpy) with
  ``jax.jit(jax.grad(f, argnums=(0, 1)))``: JAX's import, trace, compile and first call,
  in float64 on one thread, as scripts/bench.py runs it; ``jax grad`` the same without
  ``jax.jit`` (eager).

By default the processes may cache bytecode (in a temporary folder,
PYTHONPYCACHEPREFIX), as an installed package does; ``--no-bytecode`` compiles every
module in every process instead (PYTHONDONTWRITEBYTECODE).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PROLOGUE = f"import sys, math; sys.path.insert(0, {HERE!r}); " \
           "from workloads import scalar_programs; recurrence = scalar_programs(math)[0]; "
CASES = [
    ("import numpy", "import numpy", None),
    ("numpy + call", "import numpy; " + PROLOGUE + "recurrence(0.3, 0.7)", None),
    ("import transpile", "import transpile", None),
    ("grad, cold", "import transpile; " + PROLOGUE +
     "transpile.grad(recurrence, wrt=(0, 1))(0.3, 0.7)", "cold"),
    ("grad, warm", "import transpile; " + PROLOGUE +
     "transpile.grad(recurrence, wrt=(0, 1))(0.3, 0.7)", "warm"),
]
NP_PROLOGUE = (f"import sys; sys.path.insert(0, {HERE!r}); import numpy; "
               "from workloads import numpy_programs; rosenbrock = numpy_programs(numpy)[0]; "
               "x = numpy.linspace(-1.0, 1.0, 10_000); ")
CASES += [
    ("numpy: call", NP_PROLOGUE + "rosenbrock(x)", None),
    ("numpy: grad, cold", "import transpile; " + NP_PROLOGUE + "transpile.grad(rosenbrock)(x)",
     "cold"),
]
JAX_PROLOGUE = ("import os; os.environ['XLA_FLAGS'] = '--xla_cpu_multi_thread_eigen=false "
                "intra_op_parallelism_threads=1'; import sys; sys.path.insert(0, "
                f"{HERE!r}); import jax; jax.config.update('jax_enable_x64', True); "
                "import jax.numpy as jnp; from workloads import scalar_programs; "
                "recurrence = scalar_programs(jnp)[0]; ")
JAX_CASES = [
    ("jax.jit grad", JAX_PROLOGUE + "jax.block_until_ready("
     "jax.jit(jax.grad(recurrence, argnums=(0, 1)))(0.3, 0.7))", None),
    ("jax grad", JAX_PROLOGUE + "jax.block_until_ready("
     "jax.grad(recurrence, argnums=(0, 1))(0.3, 0.7))", None),
]


def have_jax():
    import importlib.util
    return importlib.util.find_spec("jax") is not None


def run(code, env):
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--no-bytecode", action="store_true")
    opts = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="bench_startup")
    try:
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("TRANSPILE_CACHE_DIR", None)
        if opts.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = os.path.join(scratch, "pycache")
        warm_dir = os.path.join(scratch, "warm")
        cold_dir = os.path.join(scratch, "cold")

        def env_for(cache):
            if cache is None:
                return env
            if cache == "cold":
                shutil.rmtree(cold_dir, ignore_errors=True)
            return dict(env, TRANSPILE_CACHE_DIR=warm_dir if cache == "warm" else cold_dir)

        cases = CASES + (JAX_CASES if have_jax() else [])
        for _, code, cache in cases:          # compile the bytecode, fill the warm cache
            run(code, env_for(cache))
        times = {name: [] for name, _, _ in cases}
        for _ in range(opts.runs):
            for name, code, cache in cases:
                e = env_for(cache)
                times[name].append(run(code, e))
        med = {name: statistics.median(t) for name, t in times.items()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    numpy_, call = med["import numpy"], med["numpy + call"]
    print(f"fresh processes, median of {opts.runs} runs each "
          f"({'no bytecode cache' if opts.no_bytecode else 'bytecode cached'}), "
          f"Python {sys.version.split()[0]}")
    print(f"{'case':<18} {'median':>9} {'vs import numpy':>16} {'vs numpy + call':>16}")
    if not have_jax():
        print("(JAX not installed: no jax.jit case; pip install \".[bench]\")")
    for name in med:
        m = med[name]
        print(f"{name:<18} {m * 1e3:>7.1f}ms {(m - numpy_) * 1e3:>+14.1f}ms "
              f"{m / call:>15.2f}x")
    if "jax.jit grad" in med:
        print(f"first gradient in a fresh process: jax.jit / transpile (cold) "
              f"{med['jax.jit grad'] / med['grad, cold']:.1f}x")


if __name__ == "__main__":
    main()
