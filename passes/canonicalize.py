"""``canonicalize``: the graph as its computation, without what exporters add around it.

Identity and inference Dropout go, constants and known shapes are folded, batch norms are folded into the
layers before them, and dead ops are erased; this repeats until nothing changes (erasing a dead user can leave
a Conv with the batch norm as its only user, which lets it fold), and the functions' types are refreshed.
"""

from __future__ import annotations

from dataclasses import dataclass

from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.pass_manager import Pass, register_pass
from cimc.passes import fold_batch_norm, fold_constants, remove_identity
from cimc.passes.common import rewrite_module
from cimc.passes.dce import eliminate_dead_code

#: The local rewrites, in the order they are tried on each op.
PATTERNS = (*remove_identity.PATTERNS, *fold_constants.patterns(), *fold_batch_norm.PATTERNS)


@register_pass
@dataclass(frozen=True)
class CanonicalizePass(Pass):
    """remove-identity, fold-constants and fold-batch-norm to a fixed point, then dce, until nothing changes."""

    name = "canonicalize"

    def run(self, module: ModuleOp) -> None:
        rewrite_module(module, PATTERNS)
        while eliminate_dead_code(module):
            rewrite_module(module, PATTERNS)
