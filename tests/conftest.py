"""Shared test configuration.

* The repository root and tests/ are put on sys.path so that ``import
  transpile`` and ``from oracle import ...`` work however pytest is invoked.
* Hypothesis runs deterministically and writes no example database, so CI
  is reproducible and no ``.hypothesis`` folder appears in odd places.
* Examples run by the tests save their figures in a temporary folder, not over the
  committed pictures in examples/figures.
"""
import os
import sys
import tempfile

os.environ.setdefault("TRANSPILE_EXAMPLES_FIGURES",
                      tempfile.mkdtemp(prefix="transpile-example-figures-"))

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

# pin hypothesis' storage (constants cache, failure patches) to the repository
# root, whatever directory pytest is started from; it is git-ignored
set_hypothesis_home_dir(os.path.join(ROOT, ".hypothesis"))

settings.register_profile(
    "transpile-ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "transpile-ci"))
