"""Where the examples save their figures: examples/figures/, or the folder named by the
environment variable TRANSPILE_EXAMPLES_FIGURES (the tests point it at a temporary
folder, so running them leaves the committed pictures alone)."""
import os


def figure_path(name):
    folder = os.environ.get("TRANSPILE_EXAMPLES_FIGURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "figures")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name + ".png")
