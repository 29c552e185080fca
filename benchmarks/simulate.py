"""Benchmark: the simulator's speed against onnxruntime, measured in the same run.

Usage: ``python benchmarks/simulate.py [--repeat 3] [--digits-images 450] [--resnet-images 32] [--noisy-images 4]``

Two models, each compiled for the ``default`` chip (8-bit weights over 2-bit cells in differential pairs, 1-bit
DACs, 8-bit ADCs, 64x64 arrays): the bundled digits CNN on its test split, and a CIFAR ResNet-18 (seeded weights,
``benchmarks/lowering.py``'s) on seeded standard-normal images. Per model it prints images per second for

- onnxruntime on the fp32 model (CPU, 2 intra-op threads, one batch of all the images);
- the simulator in ideal mode (``--ideal``: the exact crossbar arithmetic), the same images in one call;
- the simulator with every effect on: the PCM device preset, programming error, read noise, drift to one hour
  with compensation, 0.1% stuck cells each way, a 0.2 LSB ADC offset spread, IR drop;

and the ratios the issue sets targets for: ideal time / onnxruntime time (target: at most 5), and noisy time /
(bit planes x slices x onnxruntime time) (target: at most 2), where bit planes x slices (8 x 4 = 32) is the
arithmetic the hardware itself does per MAC, before the x2 of differential pairs. Times are the best of
``--repeat`` runs after one warm-up (numba compiles, or loads its cache, there); programming the arrays is timed
apart, as it happens once per session.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from import_canonicalize import MODELS_DIR, table
from lowering import resnet18_cifar

from cimc.compiler.pipeline import PipelineOptions, compile_binary
from cimc.runtime.analog import AnalogConfig
from cimc.runtime.binary import load_binary
from cimc.runtime.devices import device
from cimc.runtime.simulator import Simulator

#: The hardware's arithmetic per MAC on the default chip: 8 input bit planes x 4 weight slices.
PLANES_X_SLICES = 8 * 4


def best(action: Callable[[], object], repeat: int) -> float:
    """The least wall time of ``repeat`` runs of ``action`` after one warm-up run."""
    action()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def onnxruntime_time(path: Path, x: np.ndarray, repeat: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return best(lambda: session.run(None, {name: x}), repeat)


def noisy_config() -> AnalogConfig:
    return AnalogConfig(
        device=device("pcm"),
        drift_time_s=3600.0,
        stuck_on_rate=0.001,
        stuck_off_rate=0.001,
        adc_offset_lsb=0.2,
    )


def measure(name: str, path: Path, calib: dict | None, x: np.ndarray, noisy_images: int, repeat: int) -> list[str]:
    """One model's row: images/s of onnxruntime, ideal and noisy simulation, and the two ratios."""
    with tempfile.TemporaryDirectory() as scratch:
        binary = Path(scratch) / f"{name}.cimb"
        compile_binary(path, binary, PipelineOptions(calib=calib))
        model = load_binary(binary)
    ort_s = onnxruntime_time(path, x, repeat)
    ideal = Simulator(model, AnalogConfig.ideal(device("pcm")))
    ideal_s = best(lambda: ideal.run([x]), repeat)
    start = time.perf_counter()
    noisy = Simulator(model, noisy_config())
    program_s = time.perf_counter() - start
    few = x[:noisy_images]
    noisy_s = best(lambda: noisy.run([few]), max(1, repeat - 1)) * len(x) / len(few)
    ort_per = ort_s / len(x)
    return [
        name,
        f"{len(x) / ort_s:,.1f}",
        f"{len(x) / ideal_s:,.1f}",
        f"{len(x) / noisy_s:,.2f}",
        f"{ideal_s / ort_s:.2f}",
        f"{noisy_s / len(x) / (PLANES_X_SLICES * ort_per):.2f}",
        f"{program_s:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--digits-images", type=int, default=450)
    parser.add_argument("--resnet-images", type=int, default=32)
    parser.add_argument("--noisy-images", type=int, default=4, help="ResNet-18 images simulated with noise")
    args = parser.parse_args()

    digits = np.load(MODELS_DIR / "digits_test.npz")["x"][: args.digits_images]
    rows = [measure("digits CNN", MODELS_DIR / "digits_cnn.onnx", None, digits, len(digits), args.repeat)]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as scratch:
        resnet = Path(scratch) / "resnet18_cifar.onnx"
        onnx.save(resnet18_cifar(rng), resnet)
        calib = {"x": rng.standard_normal((8, 3, 32, 32)).astype(np.float32)}
        x = rng.standard_normal((args.resnet_images, 3, 32, 32)).astype(np.float32)
        rows.append(measure("ResNet-18 (CIFAR)", resnet, calib, x, args.noisy_images, args.repeat))
    header = [
        "model",
        "ORT fp32 img/s",
        "ideal img/s",
        "all effects img/s",
        "ideal / ORT (<= 5)",
        "effects / (32 x ORT) (<= 2)",
        "programming s",
    ]
    print(table(header, rows))


if __name__ == "__main__":
    main()
