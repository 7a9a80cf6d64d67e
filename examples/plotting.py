"""What the examples share: where figures go and how quick mode is asked for.

Figures go to examples/figures/, or the folder named by the environment variable
TRANSPILE_EXAMPLES_FIGURES (the tests point it at a temporary folder, so running them
leaves the committed pictures alone). Quick mode: `--quick` or TRANSPILE_EXAMPLES_QUICK=1.
"""
import argparse
import os


def figure_path(name):
    folder = os.environ.get("TRANSPILE_EXAMPLES_FIGURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "figures")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name + ".png")


def quick_from_argv(description=""):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small, few-second run")
    args = parser.parse_args()
    return args.quick or os.environ.get("TRANSPILE_EXAMPLES_QUICK", "") not in ("", "0")


def save_figure(fig, path, dpi=100):
    """Lay out, write and close a matplotlib figure."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
