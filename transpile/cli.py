"""`transpile-ad FILE.py`: print the generated derivative code of a file's functions.

The file is read statically (see static.py): nothing in it runs. The output is a Python
module with the imports it needs; saving and importing it gives the same numbers as the
API. Exit codes: 0 success, 1 some function could not be transformed (the others are
still printed), 2 usage errors.
"""
import argparse
import io
import os
import re
import sys
import threading
import tokenize

from .errors import TranspileError

DESCRIPTION = """\
Print the generated derivative code of the functions in FILE.

The file is parsed, never executed: nothing written in it, or in a module of your own
project that it imports, runs (such modules are parsed the same way; installed libraries
are imported so that their derivative rules can be looked up). For each function the
output holds `grad_<name>(...)`, which returns (value, gradient) (with --mode forward
`<name>_jvp(..., *, t<param>=tangent)` returning (value, tangent)), plus the derivatives
of the functions it calls; the output is a module you can save (-o) and import.
"""

EPILOG = """\
examples:
  transpile-ad model.py                      every function, w.r.t. its first parameter
  transpile-ad model.py --function loss --wrt W --wrt b -o loss_grad.py
  transpile-ad model.py --no-optimize        the code before the optimisation passes
  transpile-ad model.py --ndim W=2 --ndim b=1  code for a 2-D W and a 1-D b (inlined
                                             NumPy: `dW = X.T @ g` rather than a vjp call)

exit codes: 0 success, 1 a function could not be transformed, 2 usage error
"""


def parser():
    p = argparse.ArgumentParser(prog="transpile-ad", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__
    p.add_argument("--version", action="version", version=f"transpile-ad {__version__}")
    p.add_argument("file", help="a Python source file (it is not executed)")
    p.add_argument("--function", "-f", action="append", metavar="NAME",
                   help="transform only this function (repeatable; default: all)")
    p.add_argument("--wrt", action="append", metavar="PARAM",
                   help="differentiate with respect to this parameter (repeatable; "
                        "default: the first parameter)")
    p.add_argument("--mode", choices=("reverse", "forward"), default="reverse",
                   help="reverse: grad_<name>(...) -> (value, gradient); forward: "
                        "<name>_jvp(..., *, t<param>=tangent) -> (value, tangent)")
    p.add_argument("--no-optimize", action="store_true",
                   help="skip the optimisation passes (dead code, first-write, inlining, "
                        "constant propagation, per-loop tapes, hoisting)")
    p.add_argument("--no-simplify", action="store_true",
                   help="skip the sympy simplification of straight-line scalar code")
    p.add_argument("--ndim", action="append", metavar="PARAM=N", default=[],
                   help="specialise the code on parameter PARAM (of any function) being a "
                        "float64 NumPy array of N dimensions, none of size 1 (repeatable); "
                        "the printed code is then only for such arguments")
    p.add_argument("-o", "--output", metavar="OUT.py", help="write the module to a file")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    # deeply nested expressions that CPython compiles need a deep stack in the passes:
    # run the work in a thread with a large stack and a high recursion limit
    result = []
    stack = threading.stack_size()
    try:
        threading.stack_size(512 * 1024 * 1024)
    except (ValueError, RuntimeError):          # a platform that cannot: the usual stack
        pass
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 60000))
    try:
        worker = threading.Thread(target=lambda: result.append(_run(args)))
        worker.start()
        worker.join()
    finally:
        threading.stack_size(stack)
        sys.setrecursionlimit(limit)
    return result[0] if result else 1


def _run(args):
    from . import pipeline
    from .static import StaticModule
    try:
        module = StaticModule(args.file)
    except TranspileError as exc:
        print(f"transpile-ad: error: {exc}", file=sys.stderr)
        return 2
    if not module.definitions:
        print(f"transpile-ad: error: {args.file}: no function definitions to differentiate",
              file=sys.stderr)
        return 2
    names = args.function or list(module.definitions)
    unknown = [n for n in names if n not in module.definitions]
    if unknown:
        print(f"transpile-ad: error: {args.file} has no function {unknown[0]!r}",
              file=sys.stderr)
        return 2
    options = {"optimize": not args.no_optimize, "simplify": not args.no_simplify}
    arrays = {}
    for item in args.ndim:
        name, _, n = item.partition("=")
        if not name.isidentifier() or not n.isdigit():
            print(f"transpile-ad: error: --ndim {item!r}: expected PARAM=N (e.g. X=2)",
                  file=sys.stderr)
            return 2
        arrays[name] = int(n)
    entries, failed = [], False
    for name in names:
        fn = module.functions.get(name)
        if fn is None:
            print(f"transpile-ad: {module.problems[name]}", file=sys.stderr)
            failed = True
            continue
        params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount
                                              + fn.__code__.co_kwonlyargcount])
        wrt = tuple(args.wrt) if args.wrt else params[:1]
        missing = [w for w in wrt if w not in params]
        if missing:
            print(f"transpile-ad: {args.file}:{fn.__code__.co_firstlineno}: in {name}: "
                  f"no parameter named {missing[0]!r}", file=sys.stderr)
            failed = True
            continue
        kind = "unknown" if module.uses_module(fn, "numpy") else "scalar"
        kinds = {p: kind for p in params}
        for p in params:
            if p in arrays:
                kinds[p] = "array" if arrays[p] else "scalar"
                kinds[p + ".shape"] = "n" * arrays[p]
        try:
            if args.mode == "forward":
                compiled = pipeline.jvp_function(fn, wrt, kinds, options)
            else:
                compiled = pipeline.gradient_function(fn, wrt, kinds, options)
        except TranspileError as exc:
            print(f"transpile-ad: {exc}", file=sys.stderr)
            failed = True
            continue
        except (RecursionError, MemoryError):
            print(f"transpile-ad: {args.file}:{fn.__code__.co_firstlineno}: in {name}: "
                  "nested too deeply to transform", file=sys.stderr)
            failed = True
            continue
        entries.append((name, fn, wrt, compiled))
    text = render(module, entries, arrays)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        out = sys.stdout
        out.write(highlight(text) if out.isatty() else text)
    return 1 if failed else 0


def render(module, entries, arrays=None):
    from .emit import module_text
    preamble = [f"# Generated by transpile-ad from {module.filename}.",
                "# grad_<name>(...) returns (value, gradient), a tuple of gradients when",
                "# several parameters were asked for; <name>_jvp(..., *, t<param>=t)",
                "# returns (value, directional derivative)."]
    if arrays:
        preamble += ["# Specialised on parameters that are float64 arrays with no axis of",
                     "# size 1: " + ", ".join(f"{p} {n}-D" for p, n in arrays.items()) + "."]
    preamble += [""]
    imports = preamble + module.imports
    preamble = module.constants + [""]
    for name, src in module.definitions.items():
        preamble += [src, ""]
    head, text = module_text([c for _, _, _, c in entries], preamble, imports, split=True)
    for name, fn, wrt, compiled in entries:
        header = (f"# derivative of {name} ({module.filename}:{fn.__code__.co_firstlineno}) "
                  f"with respect to {', '.join(wrt)}")
        first = compiled.sources[0].splitlines()[0]
        name = first[len("def "):first.index("(")]
        # the def may have been renamed (a user function of the file has its name)
        pattern = re.escape(first).replace(re.escape(name), re.escape(name) + r"(_v\d*)?", 1)
        text = re.sub("\n(" + pattern + ")\n", lambda m: "\n" + header + "\n" + m.group(1)
                      + "\n", text, count=1)
    return head + text


_COLORS = {tokenize.NAME: "", tokenize.STRING: "\033[32m", tokenize.NUMBER: "\033[36m",
           tokenize.COMMENT: "\033[90m"}
_KEYWORDS = {"def", "return", "for", "in", "if", "else", "elif", "while", "break",
             "import", "from", "as", "not", "and", "or", "None", "True", "False", "pass",
             "continue", "lambda"}


def highlight(text):
    """Minimal ANSI syntax highlighting (only used when writing to a terminal)."""
    out, last = [], (1, 0)
    lines = text.splitlines(True)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError):
        return text
    for tok in tokens:
        (sr, sc), (er, ec) = tok.start, tok.end
        if (sr, sc) > last:
            out.append(_slice(lines, last, (sr, sc)))
        piece = tok.string
        color = _COLORS.get(tok.type, "")
        if tok.type == tokenize.NAME and piece in _KEYWORDS:
            color = "\033[35m"
        out.append(f"{color}{piece}\033[0m" if color and piece else piece)
        last = (er, ec)
    return "".join(out)


def _slice(lines, start, end):
    (sr, sc), (er, ec) = start, end
    if sr == er:
        return lines[sr - 1][sc:ec] if sr - 1 < len(lines) else ""
    parts = [lines[sr - 1][sc:]] + lines[sr:er - 1] + [lines[er - 1][:ec] if er - 1 < len(
        lines) else ""]
    return "".join(parts)


if __name__ == "__main__":
    sys.exit(main())
