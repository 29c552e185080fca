"""Benchmark: the statistical fidelity level against onnxruntime and against the per-read level, in one run.

Usage: ``python benchmarks/statistical.py [--batch 64] [--per-read-images 4] [--no-aihwkit]``

A CIFAR ResNet-18 (``benchmarks/lowering.py``'s seeded weights, calibrated on 8 seeded images), run on ``--batch``
seeded standard-normal images:

- onnxruntime on the fp32 model (CPU, 2 intra-op threads), the best of 3 runs, measured before and after the
  simulator and the smaller taken;
- the default chip with every PCM effect on (``benchmarks/simulate.py``'s ``noisy_config``) at the statistical level:
  images per second, the ratio to onnxruntime (the issue's target: at most 3) and the share of the run its reads
  take (the rest is the digital ops between them), the row blocks read per read instead, and the time programming
  and preparing the tables took;
- the same chip at the per-read level on the first ``--per-read-images`` images (it is one to two orders slower):
  the logits' error against the exact arithmetic (``--ideal``) at both levels, its mean and spread, and how often
  the two levels' top-1 classes agree with the exact one;
- unless ``--no-aihwkit``: the model compiled for the ``aihwkit`` chip (its range-managed periphery), statistical
  against onnxruntime (the issue's target: at most 2.5).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from import_canonicalize import table
from lowering import resnet18_cifar
from simulate import best, noisy_config, onnxruntime_time

from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.ir.target.chip import load_chip
from cimc.runtime import statistical
from cimc.runtime.analog import AnalogConfig
from cimc.runtime.binary import load_binary
from cimc.runtime.devices import device
from cimc.runtime.session import InferenceSession
from cimc.runtime.simulator import Simulator


def read_share(simulator: Simulator, run: Callable[[], object]) -> float:
    """The share of one ``run`` spent in statistical reads (``statistical.read`` and ``statistical.Layer``)."""
    spent = [0.0]
    originals = [(statistical, "read"), (statistical.Layer, "__call__")]
    saved = [getattr(owner, name) for owner, name in originals]

    def timed(original: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args: object, **kwargs: object) -> object:
            start = time.perf_counter()
            result = original(*args, **kwargs)
            spent[0] += time.perf_counter() - start
            return result

        return wrapper

    for (owner, name), original in zip(originals, saved):
        setattr(owner, name, timed(original))
    try:
        start = time.perf_counter()
        run()
        total = time.perf_counter() - start
    finally:
        for (owner, name), original in zip(originals, saved):
            setattr(owner, name, original)
    return spent[0] / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--per-read-images", type=int, default=4)
    parser.add_argument("--no-aihwkit", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "resnet18_cifar.onnx"
        onnx.save(resnet18_cifar(rng), source)
        calib = {"x": rng.standard_normal((8, 3, 32, 32)).astype(np.float32)}
        x = rng.standard_normal((args.batch, 3, 32, 32)).astype(np.float32)
        binary = Path(scratch) / "resnet18.cimb"
        compile_binary(source, binary, PipelineOptions(calib=calib))
        model = load_binary(binary)

        ort_before = onnxruntime_time(source, x, 3)
        start = time.perf_counter()
        stat = Simulator(model, dataclasses.replace(noisy_config(), fidelity="statistical"))
        prepare_s = time.perf_counter() - start
        stat_s = best(lambda: stat.run([x]), 2)
        share = read_share(stat, lambda: stat.run([x]))
        ort_s = min(ort_before, onnxruntime_time(source, x, 3))
        rows.append(
            [
                "ResNet-18, default chip, PCM every effect",
                f"{args.batch / ort_s:,.1f}",
                f"{args.batch / stat_s:,.1f}",
                f"{stat_s / ort_s:.2f} (<= 3)",
                f"{share:.0%}",
                str(len(stat.fallbacks)),
                f"{prepare_s:.1f}",
            ]
        )

        few = x[: args.per_read_images]
        exact = Simulator(model, AnalogConfig.ideal(device("pcm"))).run([few])["logits"]
        per = Simulator(model, noisy_config()).run([few])["logits"]
        approx = stat.run([few])["logits"]
        agreement = []
        for name, logits in (("per-read", per), ("statistical", approx)):
            error = logits - exact
            top1 = float(np.mean(logits.argmax(1) == exact.argmax(1)))
            agreement.append([name, f"{error.mean():.4f}", f"{error.std():.4f}", f"{top1:.2f}"])

        if not args.no_aihwkit:
            aihwkit = Path(scratch) / "resnet18_aihwkit.cimb"
            compile_binary(source, aihwkit, PipelineOptions(calib=calib, chip=load_chip("aihwkit")))
            ort_before = onnxruntime_time(source, x, 3)
            start = time.perf_counter()
            session = InferenceSession(aihwkit, fidelity="statistical", batch_size=args.batch)
            prepare_s = time.perf_counter() - start
            managed_s = best(lambda: session.run(None, {"x": x}), 2)
            ort_s = min(ort_before, onnxruntime_time(source, x, 3))
            rows.append(
                [
                    "ResNet-18, aihwkit chip",
                    f"{args.batch / ort_s:,.1f}",
                    f"{args.batch / managed_s:,.1f}",
                    f"{managed_s / ort_s:.2f} (<= 2.5)",
                    "-",
                    "-",
                    f"{prepare_s:.1f}",
                ]
            )
    header = ["model", "ORT img/s", "statistical img/s", "statistical / ORT", "reads", "per-read blocks", "prep s"]
    print(table(header, rows))
    print(f"\nlogits error against the exact arithmetic, first {len(few)} images (same seed, same programming):")
    print(table(["level", "mean", "spread", "top-1 = exact's"], agreement))


if __name__ == "__main__":
    main()
