"""The on-disk cache trusts only entries authenticated by the user's own key, refuses
folders and key files other users can touch, binds only what transpile itself writes, and
ignores (then rewrites) any bad entry. Each check runs real Python processes, with the
cache in a temporary folder; another user is simulated by changing modes, replacing the
key file or forging entries."""
import glob
import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

import transpile
from transpile import cache

WORKTREE = os.path.dirname(os.path.dirname(os.path.abspath(transpile.__file__)))
pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")

PROGRAM = textwrap.dedent('''
    import math, json, sys, warnings
    warnings.simplefilter("always")
    import transpile
    from transpile import pipeline

    def helper(a):
        return a * math.exp(a)

    def f(x, w):
        y = x
        for i in range(5):
            y = math.sin(y) * w + 0.5 * y
        return y + helper(w)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gf = transpile.grad(f, wrt=(0, 1))(0.3, 0.7)
    h = 1e-6
    fd = [(f(0.3 + h, 0.7) - f(0.3 - h, 0.7)) / (2 * h),
          (f(0.3, 0.7 + h) - f(0.3, 0.7 - h)) / (2 * h)]
    flags = sorted(c.from_cache for d in pipeline._CACHE.values() for c in d.values())
    print(json.dumps({"gf": list(gf), "fd": fd, "cached": flags,
                      "warnings": [str(w.message) for w in caught]}))
''')


def run(tmp_path, program=PROGRAM):
    path = tmp_path / "prog.py"
    if not path.exists():
        path.write_text(program)
    env = dict(os.environ, TRANSPILE_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=WORKTREE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(abs(a - b) <= 1e-6 * (1 + abs(b)) for a, b in zip(out["gf"], out["fd"]))
    return out


def entries(tmp_path):
    return sorted(glob.glob(str(tmp_path / "cache" / "*" / "*.json")))


def key_of(tmp_path):
    return (tmp_path / "cache" / "key").read_bytes()


def rewrite(tmp_path, change, sign=True):
    """Apply change(record) to every entry; re-sign it with the user's own key."""
    for path in entries(tmp_path):
        with open(path) as fh:
            record = json.load(fh)
        change(record)
        if sign:
            digest = os.path.basename(path)[:-len(".json")]
            record["mac"] = cache._mac(key_of(tmp_path), digest, record["payload"])
        with open(path, "w") as fh:
            json.dump(record, fh)


def test_entries_and_key_are_private(tmp_path):
    first = run(tmp_path)
    assert not any(first["cached"]) and not first["warnings"]
    assert stat.S_IMODE(os.stat(tmp_path / "cache").st_mode) & 0o077 == 0
    st = os.lstat(tmp_path / "cache" / "key")
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 32
    assert entries(tmp_path)
    second = run(tmp_path)
    assert second["cached"] and all(second["cached"]) and second["gf"] == first["gf"]


def test_entry_forged_with_a_plain_checksum_is_rejected(tmp_path):
    first = run(tmp_path)

    def forge(record):
        for fn in record["payload"]["functions"]:
            fn["source"] = fn["source"].replace("0.5", "0.25") + "\n"   # a wrong derivative
        record["sha256"] = hashlib.sha256(
            json.dumps(record["payload"], sort_keys=True).encode()).hexdigest()
    rewrite(tmp_path, forge, sign=False)
    again = run(tmp_path)
    assert not any(again["cached"]) and again["gf"] == first["gf"]
    assert all(run(tmp_path)["cached"])              # rewritten, and good again


def test_entries_written_with_another_key_are_rejected(tmp_path):
    first = run(tmp_path)
    os.unlink(tmp_path / "cache" / "key")            # another user's key (same entries)
    fd = os.open(tmp_path / "cache" / "key", os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    again = run(tmp_path)
    assert not any(again["cached"]) and again["gf"] == first["gf"]
    assert all(run(tmp_path)["cached"])


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_folder_writable_by_others_is_refused(tmp_path, mode):
    run(tmp_path)
    os.chmod(tmp_path / "cache", mode)
    before = {p: os.stat(p).st_mtime_ns for p in entries(tmp_path)}
    again = run(tmp_path)
    assert not any(again["cached"])                  # nothing read...
    assert {p: os.stat(p).st_mtime_ns for p in entries(tmp_path)} == before   # ...or written
    assert len(again["warnings"]) == 1 and "writable by other users" in again["warnings"][0]


def test_new_folder_writable_by_others_is_refused(tmp_path):
    os.mkdir(tmp_path / "cache")
    os.chmod(tmp_path / "cache", 0o777)
    out = run(tmp_path)
    assert len(out["warnings"]) == 1 and not entries(tmp_path)
    assert not (tmp_path / "cache" / "key").exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path, mode):
    run(tmp_path)
    os.chmod(tmp_path / "cache" / "key", mode)
    again = run(tmp_path)
    assert not any(again["cached"])
    assert len(again["warnings"]) == 1 and "key" in again["warnings"][0]


def test_key_file_that_is_a_symlink_is_refused(tmp_path):
    run(tmp_path)
    real = tmp_path / "elsewhere"
    os.rename(tmp_path / "cache" / "key", real)
    os.symlink(real, tmp_path / "cache" / "key")
    again = run(tmp_path)
    assert not any(again["cached"])
    assert len(again["warnings"]) == 1 and "key" in again["warnings"][0]


def test_binding_outside_the_allow_list_is_ignored_and_rewritten(tmp_path):
    first = run(tmp_path)

    def plant(record):
        bindings = record["payload"]["bindings"]
        assert bindings
        bindings[0][1] = ["object", ["os", "system"]]
    rewrite(tmp_path, plant)                        # even signed with the user's own key
    again = run(tmp_path)
    assert not any(again["cached"]) and again["gf"] == first["gf"]
    assert all(run(tmp_path)["cached"])
    for path in entries(tmp_path):
        assert '"os"' not in open(path).read()


def _bad_source(record):
    record["payload"]["functions"][0]["source"] = "def broken(:\n    pass\n"


def _other_function(record):
    fn = record["payload"]["functions"][0]
    fn["source"] = "import os\nos.system('true')\n" + fn["source"]


def _bad_shape(record):
    record["payload"]["functions"] = "nope"


def _bad_lines(record):
    record["payload"]["functions"][0]["lines"] = [["a", None]]


def _bad_version(record):
    record["format"] = cache.FORMAT + 1


def _bad_binding_shape(record):
    record["payload"]["bindings"] = [["x", ["vjp", ["numpy", "sum"], None, 99]]]


@pytest.mark.parametrize("change", [_bad_source, _other_function, _bad_shape, _bad_lines,
                                    _bad_version, _bad_binding_shape])
def test_malformed_signed_entry_is_ignored_and_rewritten(tmp_path, change):
    first = run(tmp_path)
    rewrite(tmp_path, change)
    again = run(tmp_path)
    assert not any(again["cached"]) and again["gf"] == first["gf"]
    assert all(run(tmp_path)["cached"])


def test_corrupt_json_is_ignored_and_rewritten(tmp_path):
    first = run(tmp_path)
    for path in entries(tmp_path):
        with open(path, "w") as fh:
            fh.write('{"format": 1, "mac": ')
    again = run(tmp_path)
    assert not any(again["cached"]) and again["gf"] == first["gf"]
    assert all(run(tmp_path)["cached"])


def test_symlink_at_an_entry_is_not_followed(tmp_path):
    run(tmp_path)
    victim = tmp_path / "victim.txt"
    for path in entries(tmp_path):
        os.rename(path, str(victim) + os.path.basename(path))   # a genuine entry, elsewhere
        victim.write_text("precious\n")
        os.symlink(victim, path)
    again = run(tmp_path)
    assert not any(again["cached"])                  # not read through the link
    assert victim.read_text() == "precious\n"        # not written through it either
    for path in entries(tmp_path):
        assert not os.path.islink(path)              # the link itself was replaced
    assert all(run(tmp_path)["cached"])
    assert not glob.glob(str(tmp_path / "cache" / "*" / ".tmp-*"))


def test_concurrent_processes_keep_entries_consistent(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    env = dict(os.environ, TRANSPILE_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=WORKTREE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    results = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    assert all(r["gf"] == results[0]["gf"] and not r["warnings"] for r in results)
    assert len(key_of(tmp_path)) == 32
    assert not glob.glob(str(tmp_path / "cache" / "*" / ".tmp-*"))
    after = run(tmp_path)
    assert after["cached"] and all(after["cached"]) and after["gf"] == results[0]["gf"]
