"""The dialects: ``builtin``/``func`` (module and functions) and ``graph`` (ONNX-level ops).

Importing this package registers every op, so the parser and verifier know them by name.
"""

from cimc.ir.dialects import (
    builtin,  # noqa: F401
    graph,  # noqa: F401
)
