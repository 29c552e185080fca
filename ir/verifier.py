"""The verifier: structure, use lists, dominance, declared operands/attributes, and each op's own rules.

Run after every pass in tests and under ``--verify-each``; a failure raises ``VerifyError`` naming the op, its
location (the ONNX node) and the rule.
"""

from __future__ import annotations

from cimc.ir.attributes import Attribute
from cimc.ir.core import OPS, REQUIRED, SEGMENTS, Operation, Use


def verify(op: Operation) -> None:
    """Verify ``op`` and everything nested in it; raises ``VerifyError`` on the first broken rule."""
    _verify(op, set())


def _verify(op: Operation, visible: set[int]) -> None:
    if OPS.get(op.name) is not type(op):
        raise op.error("is not a registered op")
    for index, value in enumerate(op.operands):
        if Use(op, index) not in value.uses:
            raise op.error(f"operand {index} is missing from its value's use list")
        if id(value) not in visible:
            raise op.error(f"operand {index} does not dominate this use (defined later, or outside the function)")
    for result in op.results:
        for use in result.uses:
            if use.index >= len(use.op.operands) or use.op.operands[use.index] is not result:
                raise op.error(f"result {result.index} has a stale use in '{use.op.name}'")
    _verify_declaration(op)
    op.verify_()
    for region in op.regions:
        if region.parent is not op:
            raise op.error("region's parent link is wrong")
        for block in region.blocks:
            scope: set[int] = set() if op.isolated else set(visible)
            scope.update(id(a) for a in block.args)
            for inner in block.ops:
                if inner.parent is not block:
                    raise inner.error("parent link is wrong")
                _verify(inner, scope)
                scope.update(id(r) for r in inner.results)


def _verify_declaration(op: Operation) -> None:
    definition = op.definition
    if definition.needs_segments:
        sizes = op.attributes.get(SEGMENTS)
        values = getattr(sizes, "value", None)
        if values is None or len(values) != len(definition.operands) or sum(values) != len(op.operands):
            raise op.error(f"'{SEGMENTS}' must give one size per operand group, summing to the operand count")
        for d, size in zip(definition.operands, values):
            if (d.kind == "single" and size != 1) or (d.kind == "optional" and size > 1):
                raise op.error(f"operand group '{d.name}' ({d.kind}) cannot have {size} operands")
    else:  # without segment sizes an op has at most one optional or variadic group
        singles = sum(d.kind == "single" for d in definition.operands)
        kinds = {d.kind for d in definition.operands}
        most = len(op.operands) if "variadic" in kinds else singles + ("optional" in kinds)
        if not singles <= len(op.operands) <= most:
            names = ", ".join(f"{d.name} ({d.kind})" for d in definition.operands) or "none"
            raise op.error(f"takes operands [{names}], got {len(op.operands)}")
    for key, spec in definition.attributes.items():
        attr = op.attributes.get(key)
        if attr is None:
            if spec.default is REQUIRED:
                raise op.error(f"requires attribute '{key}'")
        elif not isinstance(attr, spec.kind):
            raise op.error(f"attribute '{key}' must be {_kind_name(spec.kind)}, got {attr}")
    for key in op.attributes:
        if key not in definition.attributes and key != SEGMENTS and "." not in key:
            raise op.error(f"has no attribute '{key}' (declared: {', '.join(definition.attributes) or 'none'})")
    results = definition.results
    if results and not any(r.kind == "variadic" for r in results):
        least = sum(r.kind == "single" for r in results)
        if not least <= len(op.results) <= len(results):
            raise op.error(f"has {len(op.results)} results, expected {least} to {len(results)}")


def _kind_name(kind: type[Attribute] | tuple[type[Attribute], ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
