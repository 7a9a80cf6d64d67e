"""The one exception transpile raises for input it cannot differentiate.

Every error names the construct, the user's function and the user's file:line, so the
message points at the line to change, never at transpile's internals.
"""


class TranspileError(Exception):
    """Raised when a function cannot be differentiated (unsupported construct, no rule...)."""

    def __init__(self, message, filename=None, lineno=None, function=None):
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.function = function
        where = ""
        if filename is not None:
            where = f"{filename}:{lineno}: " if lineno is not None else f"{filename}: "
        inside = f"in {function}: " if function else ""
        super().__init__(f"{where}{inside}{message}")
