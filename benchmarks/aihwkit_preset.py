"""cimc's ``aihwkit`` chip preset beside aihwkit 1.2.0 itself: top-1 accuracy of the bundled digits models 1 s, 1 hour,
1 day and 1 year after programming, mean and spread over seeds, against aihwkit's figures as
``benchmarks/aihwkit_side_by_side.py`` recorded them (``benchmarks/results/aihwkit-1.2.0.json``, 300 seeds each).

    python benchmarks/aihwkit_preset.py                 # 100 seeds (about 5 minutes on 2 cores)
    python benchmarks/aihwkit_preset.py --seeds 300     # as README.md's table

cimc folds BatchNorm into the convolution before it maps the weights; aihwkit maps the unfolded weights, which
changes its accuracy by 3-12 points on the CNN, so the CNN is compared with aihwkit's run on the folded model
(``--fold-bn``). The difference column is cimc minus aihwkit; "2 s.e." is twice the standard error of that
difference (each mean's spread over its seeds), the band within which two equal means differ 95% of the time.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.runtime.binary import load_binary
from cimc.runtime.evaluate import labels_of, top1
from cimc.runtime.session import InferenceSession

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "aihwkit-1.2.0.json"
#: cimc's model -> the aihwkit run it is compared with (the CNN's with BatchNorm folded, as cimc folds it).
MODELS = {"digits_mlp": "digits_mlp", "digits_cnn": "digits_cnn+fold-bn"}
TIMES = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 d", 31536000.0: "1 y"}


def accuracies(binary: Path, x: np.ndarray, labels: np.ndarray, t_s: float, seeds: int) -> np.ndarray:
    """Top-1 accuracy of each seed, ``t_s`` seconds after programming."""
    model = load_binary(binary)
    out = []
    for seed in range(seeds):
        (logits,) = InferenceSession(model, seed=seed, drift_time=t_s).run(None, {"x": x})
        out.append(float(np.mean(top1(logits) == labels)))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    args = parser.parse_args()
    recorded = json.loads(RESULTS.read_text())["entries"]
    data = np.load(ROOT / "models" / "digits_test.npz")
    x, labels = data["x"], labels_of(data["y"])
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, reference in MODELS.items():
            binary = Path(scratch) / f"{name}.cimb"
            compile_binary(ROOT / "models" / f"{name}.onnx", binary, PipelineOptions(chip="aihwkit"))
            theirs = {r["t_s"]: r for r in recorded[reference]["results"]}
            for t_s, label in TIMES.items():
                start = time.perf_counter()
                ours = accuracies(binary, x, labels, t_s, args.seeds)
                seconds = time.perf_counter() - start
                other = theirs[t_s]
                n_other = recorded[reference]["seeds"]
                se = math.sqrt(ours.var(ddof=1) / len(ours) + other["top1_std"] ** 2 / n_other)
                rows.append(
                    f"| `{name}` | {label} | {100 * other['top1_mean']:.2f} +- {100 * other['top1_std']:.2f} "
                    f"({n_other}) | {100 * ours.mean():.2f} +- {100 * ours.std(ddof=1):.2f} ({len(ours)}) | "
                    f"{100 * (ours.mean() - other['top1_mean']):+.2f} | {200 * se:.2f} | {seconds:.0f} s |"
                )
                print(rows[-1], flush=True)
    print()
    columns = ["model", "after", "aihwkit 1.2.0 top-1 % (seeds)", "cimc `--chip aihwkit` (seeds)", "cimc - aihwkit"]
    print("| " + " | ".join([*columns, "2 s.e.", "cimc time"]) + " |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
