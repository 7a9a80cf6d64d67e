"""Rules for SciPy, loaded by the registry the first time a rule lookup misses after the
user's code has imported scipy (`registry.LAZY_RULES`): importing transpile never imports
SciPy. One module per SciPy subpackage."""
from . import special, stats, linalg, signal, integrate  # noqa: F401  (register the rules)
