"""`transpile-ad` reads, it never runs: not the file, not its defaults or annotations, not
the modules of the user's project it imports; bad files are one line and exit code 2."""
import math
import os
import sys

import pytest

import transpile
from test_cli import load, run_cli


def cli(*args, cwd, entry="transpile.cli"):
    return run_cli(*args, cwd=cwd, module=entry)


def markers(folder):
    return sorted(p.name for p in folder.rglob("MARK*"))


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


HELPER = '''\
import math
open("MARK_helper_top", "w").write("helper.py was executed")


def scaled_sin(x, k=open("MARK_helper_default", "w").write("default evaluated")):
    return math.sin(x) * x
'''

MAIN = '''\
import helper
from helper import scaled_sin as ss
from pkg.inner import cube
open("MARK_main_top", "w").write("the file was executed")


def f(x: open("MARK_annotation", "w").write("a"),
      k=open("MARK_default", "w").write("d")) -> open("MARK_return", "w").write("r"):
    return helper.scaled_sin(x) + ss(x) * 2.0 + cube(x)
'''

PKG_INIT = 'open("MARK_pkg_init", "w").write("package executed")\n'
PKG_INNER = '''\
from . import tools
open("MARK_pkg_inner", "w").write("inner executed")


def cube(x):
    return tools.square(x) * x
'''
PKG_TOOLS = '''\
open("MARK_pkg_tools", "w").write("tools executed")


def square(x):
    return x * x
'''


@pytest.mark.parametrize("entry", ["transpile.cli", "transpile"])
def test_nothing_of_the_users_project_runs(tmp_path, entry):
    write(tmp_path / "helper.py", HELPER)
    write(tmp_path / "pkg" / "__init__.py", PKG_INIT)
    write(tmp_path / "pkg" / "inner.py", PKG_INNER)
    write(tmp_path / "pkg" / "tools.py", PKG_TOOLS)
    main = write(tmp_path / "main.py", MAIN)
    out = tmp_path / "out" / "grads.py"
    out.parent.mkdir()
    proc = cli(str(main), "-o", str(out), cwd=tmp_path, entry=entry)
    assert proc.returncode == 0, proc.stderr
    assert markers(tmp_path) == []
    assert "derivative of f (" in out.read_text() and "main.py:7)" in out.read_text()
    # the printed module is correct: its gradient matches central differences of f
    for p in tmp_path.glob("MARK*"):
        p.unlink()
    old = os.getcwd()
    os.chdir(tmp_path / "out")              # importing it now is the user's own act
    sys.path.insert(0, str(tmp_path))
    try:
        generated = load(out, f"grads_cli_{entry.replace('.', '_')}")
        x, h = 0.7, 1e-6
        value, g = generated.grad_f(x)
        f = lambda t: math.sin(t) * t * 3.0 + t ** 3            # noqa: E731
        assert value == pytest.approx(f(x), rel=1e-14)
        assert g == pytest.approx((f(x + h) - f(x - h)) / (2 * h), rel=1e-7)
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("helper", "pkg", "pkg.inner", "pkg.tools"):
            sys.modules.pop(name, None)
        os.chdir(old)


def test_defaults_are_kept_as_source_text(tmp_path):
    src = write(tmp_path / "defaults.py", '''\
import math


def f(x, scale=2.0, table=(1, 2), hook=print, fn=math.sin, k=open("MARK_d", "w")):
    return math.sin(x) * scale
''')
    proc = cli(str(src), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert markers(tmp_path) == []
    assert "k=open('MARK_d', 'w')" in proc.stdout or 'k=open("MARK_d", "w")' in proc.stdout


def test_an_installed_library_is_imported_for_its_rules(tmp_path):
    src = write(tmp_path / "npfile.py", '''\
import numpy as np
import math as m


def f(x):
    return np.sum(np.tanh(x) ** 2) + m.pi
''')
    proc = cli(str(src), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "def grad_f(" in proc.stdout


@pytest.mark.parametrize("name, content, expect", [
    ("binary.py", b"\x00\x01\x02ELF", "binary"),
    ("latin1.py", "x = 'caf\u00e9'\n".encode("latin-1"), "encoding"),
    ("syntax.py", b"def f(x):\n    return x +\n", "syntax.py:2: syntax error"),
    ("empty.py", b"", "no function definitions"),
    ("onlydata.py", b"X = 3\n", "no function definitions"),
])
def test_bad_files_are_one_line_and_exit_2(tmp_path, name, content, expect):
    path = tmp_path / name
    path.write_bytes(content)
    proc = cli(str(path), cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_a_directory_and_a_missing_path(tmp_path):
    for target, expect in ((tmp_path, "directory"), (tmp_path / "nope.py", "no such file")):
        proc = cli(str(target), cwd=tmp_path)
        assert proc.returncode == 2 and expect in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_deeply_nested_expressions_that_cpython_compiles(tmp_path):
    terms = 400
    src = write(tmp_path / "deep.py", "def f(x):\n    return " + " + ".join(
        ["x"] * terms) + "\n\n\ndef g(x):\n    return " + "(" * 150 + "x" + ")" * 150
        + " * x\n")
    compile(src.read_text(), str(src), "exec")             # CPython compiles it
    out = tmp_path / "deep_grads.py"
    proc = cli(str(src), "-o", str(out), cwd=tmp_path)
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    generated = load(out, "deep_grads")
    assert generated.grad_f(0.5)[1] == pytest.approx(terms, rel=1e-12)
    assert generated.grad_g(0.5)[1] == pytest.approx(1.0, rel=1e-12)


def test_version_flag(tmp_path):
    for entry in ("transpile.cli", "transpile"):
        proc = cli("--version", cwd=tmp_path, entry=entry)
        assert proc.returncode == 0 and proc.stdout.strip() == f"transpile-ad {transpile.__version__}"
