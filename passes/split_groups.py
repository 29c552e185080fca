"""``split-groups``: an array group too big for one tile cut into column chunks that fit.

A group (one ``cim.program``: a row block's signs, slices, column blocks of ``array_cols`` columns and replicas)
must sit on one tile, whose arrays the chip bounds (``arrays_per_tile`` of the module's ``cim.chip``). A larger one
becomes one program per chunk of whole column blocks, as many blocks as a tile holds, each with its own reads:
``cim.mvm`` on the same bit planes, ``cim.adc``, ``cim.shift_add`` (with the codes, for offset encoding); the
chunks' partial sums enter the layer's ``cim.accumulate`` at their columns (one is made where the layer had a
single row block). Every column is computed as before, so the result is the same bit for bit. After this pass no
group exceeds a tile (checked); one that does at a single column block (signs x slices x replication arrays)
is an error naming its layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from cimc.ir.attributes import DenseArrayAttr, DenseResourceAttr, IntAttr, tensor_attr
from cimc.ir.core import Operation, OpResult, Value
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import AccumulateOp, AdcOp, MvmOp, ProgramOp, ShiftAddOp
from cimc.ir.interpreter import main_function
from cimc.ir.pass_manager import Pass, register_pass
from cimc.ir.types import ElementType
from cimc.passes.placement import ChipGrid

_I64 = ElementType("i64")


def chunk_columns(program: ProgramOp, capacity: int) -> list[tuple[int, int]]:
    """``[c0, c1)`` of each chunk of whole column blocks that fits a tile of ``capacity`` arrays."""
    per_block = program.arrays // -(-program.columns // program.attr("array_cols"))
    blocks = capacity // per_block
    if blocks == 0:
        copies = program.attr("replication")
        raise program.error(
            f"layer '{program.location.name}': one column block takes {per_block} arrays ({program.signs} signs"
            + ("" if program.attr("parallel_slices") else f" x {program.slices} slices")
            + (f" x {copies} copies" if copies > 1 else "")
            + f"), more than a tile's "
            f"{capacity}: use a chip with more arrays per tile" + (", or fewer copies" if copies > 1 else "")
        )
    width = blocks * program.attr("array_cols")
    return [(c0, min(c0 + width, program.columns)) for c0 in range(0, program.columns, width)]


def _reads(program: ProgramOp) -> list[tuple[MvmOp, AdcOp, ShiftAddOp]]:
    """The read chains of ``program``: each array read, its ADC and its shift-add."""
    chains = []
    for use in program.result.uses:
        mvm = use.op
        adc = _only_user(mvm)
        shift_add = _only_user(adc) if adc is not None else None
        if not (isinstance(mvm, MvmOp) and isinstance(adc, AdcOp) and isinstance(shift_add, ShiftAddOp)):
            raise program.error("split-groups expects its reads as 'cim.mvm' -> 'cim.adc' -> 'cim.shift_add'")
        chains.append((mvm, adc, shift_add))
    return chains


def _only_user(op: Operation) -> Operation | None:
    uses = op.result.uses
    return uses[0].op if len(uses) == 1 else None


def _levels_name(program: ProgramOp, chunk: int) -> str:
    levels = program.attributes["levels"]
    base = levels.blob.name.removesuffix(".levels") if isinstance(levels, DenseResourceAttr) else None
    return f"{base or program.location.name or 'levels'}.c{chunk}.levels"


def split_program(program: ProgramOp, capacity: int) -> None:
    """Replace ``program`` and its reads by one per chunk of columns, their partial sums accumulated."""
    chunks = chunk_columns(program, capacity)
    block = program.parent
    assert block is not None
    levels = program.tensor_attr("levels")
    chains = _reads(program)
    pieces = []
    for index, (c0, c1) in enumerate(chunks):
        attributes = dict(program.attributes)
        attributes["levels"] = tensor_attr(levels[:, :, :, c0:c1].copy(), _levels_name(program, index))
        pieces.append(block.insert_before(program, ProgramOp.build(attributes=attributes, location=program.location)))
    partials: dict[Value, list[tuple[int, Value]]] = {}
    for mvm, adc, shift_add in chains:
        split: list[tuple[int, Value]] = []
        for (c0, _), piece in zip(chunks, pieces):
            currents = block.insert_before(
                mvm, MvmOp.build(mvm.operands[0], piece.result, attributes=dict(mvm.attributes), location=mvm.location)
            ).result
            readings = block.insert_before(
                adc, AdcOp.build(currents, attributes=dict(adc.attributes), location=adc.location)
            ).result
            codes = shift_add.operand("codes")
            partial = block.insert_before(
                shift_add,
                ShiftAddOp.build(readings, codes, attributes=dict(shift_add.attributes), location=shift_add.location),
            ).result
            split.append((c0, partial))
        partials[shift_add.result] = split
    accumulates = []
    for value, split in partials.items():
        for use in tuple(value.uses):
            if isinstance(use.op, AccumulateOp):
                if use.op not in accumulates:
                    accumulates.append(use.op)
            else:
                anchor = value.op if isinstance(value, OpResult) else None
                assert anchor is not None
                use.op.set_operand(use.index, _accumulate(anchor, split, program.columns))
    for accumulate in accumulates:
        _expand(accumulate, partials)
    for mvm, adc, shift_add in chains:
        for op in (shift_add, adc, mvm):
            op.erase()
    program.erase()


def _accumulate(anchor: Operation, split: list[tuple[int, Value]], columns: int) -> Value:
    """A new ``cim.accumulate`` of ``split`` (offset, partial) before ``anchor``, at its location."""
    block = anchor.parent
    assert block is not None
    attributes = {"col_offsets": DenseArrayAttr(_I64, tuple(c0 for c0, _ in split)), "columns": IntAttr(columns)}
    return block.insert_before(
        anchor, AccumulateOp.build([v for _, v in split], attributes=attributes, location=anchor.location)
    ).result


def _expand(accumulate: AccumulateOp, partials: dict[Value, list[tuple[int, Value]]]) -> None:
    """Rebuild ``accumulate`` with each split partial sum replaced by its chunks, at their columns."""
    operands, offsets = [], []
    for value, offset in zip(accumulate.operands, accumulate.attr("col_offsets")):
        for c0, part in partials.get(value, [(0, value)]):
            operands.append(part)
            offsets.append(offset + c0)
    attributes = dict(accumulate.attributes) | {"col_offsets": DenseArrayAttr(_I64, tuple(offsets))}
    block = accumulate.parent
    assert block is not None
    new = block.insert_before(
        accumulate, AccumulateOp.build(operands, attributes=attributes, location=accumulate.location)
    )
    accumulate.result.replace_all_uses_with(new.result)
    accumulate.erase()


def _programs(module: ModuleOp) -> list[ProgramOp]:
    """The ``cim.program`` ops of ``main`` (not numbered yet: ``place`` numbers the final groups)."""
    return [op for op in main_function(module).body.ops if isinstance(op, ProgramOp)]


@register_pass
@dataclass(frozen=True)
class SplitGroupsPass(Pass):
    """Cut every ``cim.program`` with more arrays than a tile of the module's chip holds into column chunks."""

    name = "split-groups"

    def run(self, module: ModuleOp) -> None:
        capacity = ChipGrid.from_module(module).capacity
        for program in _programs(module):
            if program.arrays > capacity:
                split_program(program, capacity)
        for program in _programs(module):
            if program.arrays > capacity:
                raise program.error(f"holds {program.arrays} arrays after split-groups, more than a tile's {capacity}")
