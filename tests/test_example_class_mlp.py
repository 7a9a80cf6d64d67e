"""examples/class_mlp.py: a model written as classes (layers in a list, __call__),
trained by value_and_grad and Adam over the model object (transpile.tree.map)."""
import os
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples")
sys.path.insert(0, EXAMPLES)
import class_mlp  # noqa: E402


def test_gradient_is_a_model_and_matches_differences_and_training_learns():
    r = class_mlp.main(quick=True)
    assert r["gradient_type"] == "MLP"
    assert r["fd_max_error"] < 1e-7
    assert r["final_loss"] < 0.5 * r["first_loss"]
    assert r["accuracy"] > 0.8


def test_script_runs_from_repo_root():
    out = subprocess.run([sys.executable, os.path.join("examples", "class_mlp.py"),
                          "--quick"], cwd=os.path.dirname(EXAMPLES), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "the gradient is a MLP" in out.stdout
