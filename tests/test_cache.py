"""The on-disk cache: a new process reuses earlier transforms, and never stale or tampered
entries (each check runs real Python processes)."""
import glob
import json
import os
import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent('''
    import math, json, sys
    import numpy as np
    import transpile
    from transpile import pipeline

    def helper(a, b=2.0):
        return a * b + math.exp(a)      # HELPER

    def f(x, w):
        y = x
        for i in range(20):
            y = math.sin(y) * w + 0.5 * y
        return y + helper(w, b=x)

    def g(W, X):
        return np.sum(np.tanh(X @ W) ** 2) + W.sum()

    gf = transpile.grad(f, wrt=(0, 1))(0.3, 0.7)
    W = np.arange(6.0).reshape(3, 2) / 10
    X = np.arange(12.0).reshape(4, 3) / 10
    gg = transpile.grad(g)(W, X)
    h = 1e-6
    fd = [(f(0.3 + h, 0.7) - f(0.3 - h, 0.7)) / (2 * h), (f(0.3, 0.7 + h) - f(0.3, 0.7 - h)) / (2 * h)]
    flags = sorted(c.from_cache for d in pipeline._CACHE.values() for c in d.values())
    print(json.dumps({"gf": gf, "fd": fd, "gg": gg.tolist(), "cached": flags}))
''')


def run(tmp_path, program=PROGRAM):
    path = tmp_path / "prog.py"
    path.write_text(program)
    env = dict(os.environ, TRANSPILE_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def close(a, b, tol=1e-6):
    return all(abs(x - y) <= tol * (1 + abs(y)) for x, y in zip(a, b))


def test_second_process_reuses_the_transforms(tmp_path):
    first = run(tmp_path)
    assert not any(first["cached"])
    assert close(first["gf"], first["fd"])
    second = run(tmp_path)
    assert second["cached"] and all(second["cached"])
    assert second["gf"] == first["gf"] and second["gg"] == first["gg"]


def test_tampered_entry_is_ignored(tmp_path):
    first = run(tmp_path)
    files = glob.glob(str(tmp_path / "cache" / "*" / "*.json"))
    assert files
    for path in files:
        with open(path) as fh:
            record = json.load(fh)
        for fn in record["payload"]["functions"]:
            fn["source"] = fn["source"].replace("0.5", "0.25") + "\n"   # a wrong derivative
        with open(path, "w") as fh:
            json.dump(record, fh)
    again = run(tmp_path)
    assert not any(again["cached"])               # the hash check rejected every entry
    assert again["gf"] == first["gf"]


def test_changed_callee_is_not_reused(tmp_path):
    run(tmp_path)
    changed = PROGRAM.replace("a * b + math.exp(a)      # HELPER", "a * b * b + math.exp(a)")
    result = run(tmp_path, changed)
    assert close(result["gf"], result["fd"])      # the new helper's derivative is used


# --- the key covers what the function reads, the rules and the versions ---------------

ENV_PROGRAM = textwrap.dedent('''
    import json, math
    import numpy as np
    import transpile
    from transpile import pipeline
    import lib_a as m                     # MODULE

    act = math.sin                        # ACT

    def cube(x):
        return x * x * x

    transpile.defvjp(cube, "3.0 * x * x")   # RULE

    def helper(x):
        return act(x) * 2.0

    def f(x):
        return helper(x) + m.sin(x) + cube(x)

    # NUMPY

    g = transpile.grad(f)(0.4)
    h = 1e-6
    fd = (f(0.4 + h) - f(0.4 - h)) / (2 * h)
    flags = {c.unit.name: c.from_cache for d in pipeline._CACHE.values() for c in d.values()}
    print(json.dumps({"gf": [g], "fd": [fd], "cached": flags}))
''')

LIB_A = "from math import sin\n"
LIB_B = "from math import cos as sin\n"


def run_env(tmp_path, **changes):
    (tmp_path / "lib_a.py").write_text(LIB_A)
    (tmp_path / "lib_b.py").write_text(LIB_B)
    program = ENV_PROGRAM
    for marker, line in changes.items():
        program = "\n".join(line if l.strip().endswith("# " + marker) or
                            l.strip() == "# " + marker else l for l in program.split("\n"))
    return run(tmp_path, program)


@pytest.mark.parametrize("marker, line", [
    ("ACT", "act = math.cos"),                               # a global a callee reads
    ("MODULE", "import lib_b as m"),                         # which module `m` is
    ("RULE", 'transpile.defvjp(cube, "2.0 * x * x")'),      # a user rule (wrong on purpose)
    ("NUMPY", "np.__version__ = '0.0.1'"),                   # the NumPy version
])
def test_what_the_function_reads_is_in_the_key(tmp_path, marker, line):
    first = run_env(tmp_path)
    assert sorted(first["cached"]) == ["f", "helper"] and not any(first["cached"].values())
    again = run_env(tmp_path)
    assert all(again["cached"].values()) and again["gf"] == first["gf"]
    changed = run_env(tmp_path, **{marker: line})
    assert not changed["cached"]["f"]               # not built from the old state
    # helper reads act (and f reads helper), not m; every entry covers all the rules
    assert changed["cached"]["helper"] == (marker == "MODULE")
    assert close(first["gf"], first["fd"])
    if marker == "RULE":                   # the new rule is used: d cube = 2x^2, not 3x^2
        assert close(changed["gf"], [changed["fd"][0] - 0.4 ** 2])
    else:
        assert close(changed["gf"], changed["fd"])
