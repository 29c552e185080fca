"""``remove-identity``: ops that pass their input through unchanged are replaced by that input.

Exporters leave ``Identity`` nodes (renamed outputs, detached parameters) and inference-mode ``Dropout`` in
graphs; neither computes anything, and both would otherwise cost a copy in every later stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from cimc.ir.core import Operation
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.pass_manager import Pass, register_pass
from cimc.ir.rewrite import RewritePattern, Rewriter
from cimc.passes.common import constant_value, replace_op, rewrite_module


class RemoveIdentity(RewritePattern):
    """Forward an Identity's input to its users."""

    # identity(x) -> x
    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        if op.name != "graph.identity":
            return False
        replace_op(rewriter, op, [op.operands[0]])
        return True


class RemoveInferenceDropout(RewritePattern):
    """Forward the input of a Dropout that is not training (so scales nothing and drops nothing) and whose mask
    no one reads."""

    # dropout(x, ratio, training_mode=false) -> x
    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:
        if op.name != "graph.dropout":
            return False
        if len(op.results) > 1 and op.results[1].uses:
            return False
        training = op.operand("training_mode")
        if training is not None:
            value = constant_value(training)
            if value is None or value.any():
                return False  # training, or not known not to be
        replace_op(rewriter, op, [op.operand("data"), *[None] * (len(op.results) - 1)])
        return True


PATTERNS: tuple[RewritePattern, ...] = (RemoveIdentity(), RemoveInferenceDropout())


@register_pass
@dataclass(frozen=True)
class RemoveIdentityPass(Pass):
    """Replace ``graph.identity`` and inference ``graph.dropout`` by their input."""

    name = "remove-identity"

    def run(self, module: ModuleOp) -> None:
        rewrite_module(module, PATTERNS)
