"""Pattern rewriting: local rewrites as patterns, applied greedily until nothing changes.

A pattern's ``match_and_rewrite(op, rewriter)`` returns False early when it does not match; the rewriter is the
only way patterns change the IR, so the driver knows what to revisit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from cimc.ir.core import Operation, Value
from cimc.ir.dialects.builtin import ModuleOp


class Rewriter:
    """The changes a pattern may make: insert ops before the matched one, replace or erase ops."""

    def __init__(self) -> None:
        self.changed = False
        self.created: list[Operation] = []

    def insert_before(self, anchor: Operation, op: Operation) -> Operation:
        """Insert ``op`` right before ``anchor`` and return it."""
        assert anchor.parent is not None
        anchor.parent.insert_before(anchor, op)
        self.created.append(op)
        self.changed = True
        return op

    def replace_op(self, op: Operation, values: Sequence[Value | None]) -> None:
        """Replace every use of ``op``'s results with ``values`` (None for a result without uses) and erase ``op``."""
        if len(values) != len(op.results):
            raise ValueError(f"replacing '{op.name}' needs {len(op.results)} values, got {len(values)}")
        for result, value in zip(op.results, values):
            if value is not None:
                result.replace_all_uses_with(value)
        op.erase()  # raises if a result given None is still used
        self.changed = True

    def erase_op(self, op: Operation) -> None:
        """Erase an op whose results are unused."""
        op.erase()
        self.changed = True


class RewritePattern(ABC):
    """A local rewrite named after the identity it implements."""

    @abstractmethod
    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        """Rewrite ``op`` through ``rewriter`` and return True, or return False when it does not match."""


def apply_patterns(module: ModuleOp, patterns: Sequence[RewritePattern], max_rounds: int = 32) -> bool:
    """Apply patterns to every op until a round changes nothing; returns whether anything changed."""
    changed_any = False
    for _ in range(max_rounds):
        changed = False
        for op in list(module.walk()):
            if op.parent is None and op is not module:
                continue  # erased earlier in this round
            for pattern in patterns:
                rewriter = Rewriter()
                if pattern.match_and_rewrite(op, rewriter) and rewriter.changed:
                    changed = True
                    break
        changed_any |= changed
        if not changed:
            return changed_any
    return changed_any
