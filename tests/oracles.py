"""The oracles models are checked against, shared by the chain tests, the zoo tests and the chain fuzzer:

- onnxruntime on the graph as written (``onnxruntime_outputs``), which the float interpreter must match within
  ``RELATIVE_TOLERANCE`` (``assert_outputs_match``);
- the integer quantized reference (the ``quantized`` stage run by the interpreter), which the exact ``cim``
  executor must equal bit for bit (``assert_chain``);
- the exact executor again, which the simulator's ``--ideal`` reads, on the fast path and on the simulated read
  path, must equal bit for bit (``assert_ideal_equals``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import onnx
import onnxruntime as ort

from cimc.compiler import CrossbarOptions, PipelineOptions, compile_onnx
from cimc.ir import run_module, verify
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.target.chip import Chip
from cimc.runtime.analog import AnalogConfig
from cimc.runtime.binary import CompiledModel
from cimc.runtime.devices import device
from cimc.runtime.session import InferenceSession
from cimc.runtime.simulator import Simulator

#: Largest error allowed, relative to the largest magnitude of the reference output.
RELATIVE_TOLERANCE = 1e-4

#: Every analog effect off: the simulator's reads are the exact crossbar arithmetic.
IDEAL = AnalogConfig.ideal(device("pcm"))

Source = str | os.PathLike | onnx.ModelProto


def onnxruntime_outputs(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What onnxruntime computes for the graph as written (optimizations off: its fusions would change the
    rounding), keyed by output name."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(inputs))))


def assert_outputs_match(actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> None:
    """Same names, shapes and dtypes; integer outputs equal, float outputs within ``RELATIVE_TOLERANCE``."""
    assert sorted(actual) == sorted(expected)
    for name, want in expected.items():
        got = np.asarray(actual[name])
        assert (got.shape, got.dtype) == (want.shape, want.dtype), f"output '{name}'"
        if np.issubdtype(want.dtype, np.integer) or want.dtype == np.bool_:
            np.testing.assert_array_equal(got, want, err_msg=f"output '{name}'")
            continue
        scale = float(np.max(np.abs(want), initial=0.0)) or 1.0  # an all-zero output: absolute error
        error = float(np.max(np.abs(got.astype(np.float64) - want))) / scale
        assert error <= RELATIVE_TOLERANCE, f"output '{name}': max error {error:.3g} of max |value| {scale:.3g}"


def lower(
    source: Source,
    stage: str,
    crossbar: CrossbarOptions | None = None,
    calib: Mapping[str, np.ndarray] | None = None,
    chip: str | Chip = "default",
) -> ModuleOp:
    """``source`` compiled to ``stage`` on ``chip`` with ``crossbar`` (default ``CrossbarOptions()``), verified."""
    options = PipelineOptions(emit=stage, chip=chip, crossbar=crossbar or CrossbarOptions(), calib=calib)
    module, _ = compile_onnx(source, options)
    verify(module)
    return module


def assert_chain(
    source: Source,
    inputs: Mapping[str, np.ndarray],
    crossbar: CrossbarOptions,
    calib: Mapping[str, np.ndarray] | None = None,
    chip: str | Chip = "default",
) -> dict[str, np.ndarray]:
    """The exact ``cim`` executor equals the integer quantized reference bit for bit on ``inputs``; returns the
    reference's outputs."""
    reference = run_module(lower(source, "quantized", crossbar, calib, chip), inputs)
    crossbars = run_module(lower(source, "cim", crossbar, calib, chip), inputs)
    assert reference.keys() == crossbars.keys()
    for name in reference:
        np.testing.assert_array_equal(crossbars[name], reference[name], err_msg=name)
    return reference


def assert_ideal_equals(
    compiled: CompiledModel, inputs: Mapping[str, np.ndarray] | list[np.ndarray], expected: Mapping[str, np.ndarray]
) -> None:
    """The simulator with every analog effect off gives ``expected`` bit for bit (same dtype), on the exact fast
    path and on the simulated read path (planes, GEMM, ADC kernel)."""
    for fast in (True, False):
        out = Simulator(compiled, IDEAL, exact_fast_path=fast).run(inputs)
        assert out.keys() == expected.keys()
        for name, want in expected.items():
            assert out[name].dtype == want.dtype, (name, fast)
            np.testing.assert_array_equal(out[name], want, err_msg=f"{name}, exact fast path {fast}")


def ideal_session_outputs(compiled: CompiledModel, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What ``cimc run --ideal`` computes: the session with every analog effect off, in small batches (so inputs
    stream through the simulator as they do from the command)."""
    session = InferenceSession(compiled, ideal=True, batch_size=2)
    names = session.simulator.output_names
    return dict(zip(names, session.run(names, inputs)))
