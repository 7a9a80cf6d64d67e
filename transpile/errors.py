"""The one exception transpile raises for input it cannot differentiate (and its
subclass for a result of the wrong type, which is also a TypeError).

Every error names the construct, the user's function and the user's file:line, so the
message points at the line to change, never at transpile's internals.
"""
from __future__ import annotations


class TranspileError(Exception):
    """A function cannot be differentiated: an unsupported construct, a call with no
    derivative rule, an argument that cannot be differentiated with respect to...

    The message starts with the user's ``file:line: in function:`` where they are known,
    so it points at the line to change. Errors leave the public API with transpile's
    internal frames and exception chain dropped: the traceback shows the user's code.

    Parameters
    ----------
    message : str
        What cannot be differentiated, and what to do instead where there is an
        alternative.
    filename : str, optional
        The user's file holding the construct.
    lineno : int, optional
        Its line in that file.
    function : str, optional
        The qualified name of the user's function being differentiated.

    Attributes
    ----------
    message, filename, lineno, function
        The parameters, as given.

    Examples
    --------
    >>> err = TranspileError("unsupported construct 'try'", "model.py", 12, "loss")
    >>> str(err)
    "model.py:12: in loss: unsupported construct 'try'"
    >>> err.lineno
    12
    """

    #: set on errors of a reverse rule without a reverse rule of its own (internal: lets
    #: grad(grad(f)) fall back to forward over reverse)
    no_reverse_rule: bool = False

    def __init__(self, message: str, filename: str | None = None,
                 lineno: int | None = None, function: str | None = None) -> None:
        self.message = message
        super().__init__(message)
        self.place(filename, lineno, function)

    def place(self, filename: str | None, lineno: int | None = None,
              function: str | None = None) -> None:
        """Set where the error is (the message starts with it)."""
        self.filename = filename
        self.lineno = lineno
        self.function = function
        where = ""
        if filename is not None:
            where = f"{filename}:{lineno}: " if lineno is not None else f"{filename}: "
        inside = f"in {function}: " if function else ""
        self.args = (f"{where}{inside}{self.message}",)


class TranspileTypeError(TranspileError, TypeError):
    """A TranspileError about the type of what a function returned: `transpile.grad` (and
    everything built on it: hvp, hessian, the gradient differentiated again) needs one real
    floating-point number, and the call returned a complex number, a bool, an integer or an
    array of several elements. It is also a TypeError, which NumPy, autograd and JAX raise
    for these."""
