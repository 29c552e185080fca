"""``dce``: dead code elimination.

Erases every op whose results are all unused (see ``is_dead``): constants nothing reads any more, the remains of
folded shape arithmetic, branches of a model whose outputs were never returned. Function signatures are kept:
an unused input stays an input.
"""

from __future__ import annotations

from dataclasses import dataclass

from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.pass_manager import Pass, register_pass
from cimc.passes.common import is_dead


def eliminate_dead_code(module: ModuleOp) -> bool:
    """Erase dead ops until none is left; returns whether any was erased.

    One sweep in reverse order erases a whole dead chain, since an op's users come after it; the loop only
    confirms that nothing is left.
    """
    changed = False
    while True:
        erased = False
        for op in reversed(list(module.walk())):
            if op.parent is not None and is_dead(op):
                op.erase()
                erased = True
        if not erased:
            return changed
        changed = True


@register_pass
@dataclass(frozen=True)
class DcePass(Pass):
    """Erase ops whose results are unused."""

    name = "dce"

    def run(self, module: ModuleOp) -> None:
        eliminate_dead_code(module)
