"""Golden tests of the passes themselves: what normalize, analysis, reverse, optimize and
forward make of a few small programs, compared as text with stored expected outputs.

    tests/golden/<program>.py           the input: a function ``f`` with ARGS and WRT
                                        (optional: OPTIONS, e.g. checkpoint; MORE_ARGS,
                                        more points the gradient is checked at)
    tests/golden/<program>.<pass>.txt   the expected output of that pass

The texts come from `transpile.pipeline.stages` (normalize: the normalized function,
ast.unparse; analysis: active and overwritten variables and each variable's kind, sorted;
reverse: the gradient source with optimize and simplify off; optimize: the gradient source
that runs; forward: the jvp source; generated sources are followed by those of the user
functions they call). A mismatch fails with a unified diff.

When emitted code changes on purpose, regenerate the expected files and review the diff:

    TRANSPILE_UPDATE_GOLDEN=1 pytest tests/test_passes.py

A golden file records what the passes make, not that it is right: every program's
gradient (optimized and not) and its jvp are checked against central finite differences
here too, and the code checked is the code in the golden files.
"""
import difflib
import functools
import importlib.util
import os
import pathlib

import numpy as np
import pytest

import transpile
from transpile import api, pipeline
from finite_differences import central, central_wrt

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
PROGRAMS = sorted(p.stem for p in GOLDEN.glob("*.py"))
PASSES = ("normalize", "analysis", "reverse", "optimize", "forward")
UPDATE = os.environ.get("TRANSPILE_UPDATE_GOLDEN") == "1"


@functools.lru_cache(maxsize=None)
def program(name):
    spec = importlib.util.spec_from_file_location(f"golden_{name}", GOLDEN / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def options(name):
    return dict(getattr(program(name), "OPTIONS", {}))


def kinds(name, args=None):
    m = program(name)
    return api._kinds(m.f, m.ARGS if args is None else args, {})


@functools.lru_cache(maxsize=None)
def outputs(name):
    m = program(name)
    return pipeline.stages(m.f, m.WRT, kinds(name), options(name))


def points(name):
    m = program(name)
    return [m.ARGS] + list(getattr(m, "MORE_ARGS", []))


def test_every_program_is_found():
    assert len(PROGRAMS) >= 8, PROGRAMS


def test_no_stale_golden_files():
    expected = {f"{p}.{s}.txt" for p in PROGRAMS for s in PASSES}
    stale = sorted(p.name for p in GOLDEN.glob("*.txt") if p.name not in expected)
    if UPDATE:
        for name in stale:
            (GOLDEN / name).unlink()
        return
    assert not stale, f"golden files without a program or pass: {stale}"


@pytest.mark.parametrize("stage", PASSES)
@pytest.mark.parametrize("name", PROGRAMS)
def test_pass_output_matches_golden(name, stage):
    text = outputs(name)[stage]
    path = GOLDEN / f"{name}.{stage}.txt"
    if UPDATE:
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"no golden file {path.name}: run TRANSPILE_UPDATE_GOLDEN=1 pytest "
                    f"tests/test_passes.py and review it")
    expected = path.read_text()
    if text != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True),
            f"{path.name} (expected)", f"{path.name} (now)"))
        pytest.fail(f"{name}: the {stage} pass output changed (if on purpose, regenerate "
                    f"with TRANSPILE_UPDATE_GOLDEN=1):\n{diff}", pytrace=False)


def test_stages_are_repeatable():
    """Building again in the same process prints the same texts (no counter or cache
    state leaks into the output)."""
    for name in PROGRAMS:
        m = program(name)
        assert pipeline.stages(m.f, m.WRT, kinds(name), options(name)) == outputs(name)


def _head(text):
    """The function's own generated source (without its callees' after it)."""
    return text.split("\n\n# called as ")[0]


def _check_gradient(name, args, value, grads):
    m = program(name)
    params = api._param_names(m.f)
    np.testing.assert_allclose(value, m.f(*args), rtol=1e-12, atol=0)
    assert len(grads) == len(m.WRT)
    for w, g in zip(m.WRT, grads):
        expected = central_wrt(m.f, args, params.index(w))
        assert np.shape(g) == np.shape(expected), (w, np.shape(g))
        np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name}: d/d{w} at {args}")


@pytest.mark.parametrize("name", PROGRAMS)
def test_gradient_matches_finite_differences(name):
    """The gradient as it runs (the code of the optimize golden) is right."""
    m = program(name)
    g = transpile.value_and_grad(m.f, wrt=m.WRT, **options(name))
    for args in points(name):
        value, grads = g(*args)
        _check_gradient(name, args, value, grads)
    g(*m.ARGS)
    assert _head(outputs(name)["optimize"]) == g.source


@pytest.mark.parametrize("name", PROGRAMS)
def test_unoptimized_gradient_matches_finite_differences(name):
    """The code of the reverse golden (optimize and simplify off) is right too."""
    m = program(name)
    plain = dict(options(name), optimize=False, simplify=False)
    for args in points(name):
        compiled = pipeline.gradient_function(m.f, m.WRT, kinds(name, args), plain)
        value, grads = compiled.function(*args)
        _check_gradient(name, args, value, grads)
    compiled = pipeline.gradient_function(m.f, m.WRT, kinds(name), plain)
    assert _head(outputs(name)["reverse"]) == compiled.source


@pytest.mark.parametrize("name", PROGRAMS)
def test_jvp_matches_finite_differences(name):
    """The code of the forward golden: its tangent along a direction in the WRT
    parameters is the directional derivative by central differences."""
    m = program(name)
    params = api._param_names(m.f)
    rng = np.random.default_rng(1)
    for args in points(name):
        tangents = [(rng.normal(size=np.shape(a)) if np.ndim(a) else float(rng.normal()))
                    if p in m.WRT else None for p, a in zip(params, args)]

        def along(e):
            return m.f(*[a if t is None else a + e * t for a, t in zip(args, tangents)])

        value, tangent = transpile.jvp(m.f, args, tangents)
        np.testing.assert_allclose(value, m.f(*args), rtol=1e-12, atol=0)
        np.testing.assert_allclose(tangent, central(along, 0.0), rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name}: jvp at {args}")
    assert _head(outputs(name)["forward"]) == api.jvp_source(m.f, m.ARGS, tangents)
