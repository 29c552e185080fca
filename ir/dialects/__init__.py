"""The dialects: ``builtin``/``func`` (module and functions) ``graph`` (ONNX-level ops) and ``cim``
(crossbar arrays, DACs, ADCs and digital units; ``cim_solve``: its closed-loop linear solve).

Importing this package registers every op, so the parser and verifier know them by name.
"""

from cimc.ir.dialects import (
    builtin,  # noqa: F401
    cim,  # noqa: F401
    cim_solve,  # noqa: F401
    graph,  # noqa: F401
)
