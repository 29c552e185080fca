"""cimc's runtime: loads a compiled ``.cimb`` and runs it on a simulated chip.

``InferenceSession("model.cimb").run(None, {"x": batch})`` is shaped like onnxruntime's session; the simulator
models the arrays' analog behaviour (``cimc.runtime.analog``, device presets in ``cimc.runtime.devices``), and
``cimc.runtime.performance`` gives latency, throughput and energy from the binary's instruction streams;
``solve(A, b)`` solves linear systems in one analog step on a closed-loop chip (``cimc.runtime.closed_loop``). Names are
imported on first use (PEP 562): loading a binary does not load the simulator or numba.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# Every parallel numba kernel of the runtime (reads, programming, the exact path, the periphery's passes): OpenMP
# threads that spin after a parallel loop take the cores from the BLAS threads of the GEMM that follows (and from
# everything else on a loaded machine: 3-4x slower layers measured on 2 cores); sleeping at once costs a few
# microseconds a loop. Set here, before any kernel module starts numba's OpenMP pool; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_EXPORTS = {
    "InferenceSession": "cimc.runtime.session",
    "AnalogConfig": "cimc.runtime.analog",
    "load_binary": "cimc.runtime.binary",
    "solve": "cimc.runtime.closed_loop",
    "SolveConfig": "cimc.runtime.closed_loop",
    "SolveStats": "cimc.runtime.closed_loop",
    "UnstableMatrixError": "cimc.runtime.closed_loop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cimc.runtime' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
