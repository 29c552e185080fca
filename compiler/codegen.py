"""Code generation: a placed ``cim`` module -> one instruction stream per tile (``cimc.runtime.isa``).

Streams follow the module's op order, which is a valid static schedule: every op runs on the tile ``place``
gave it (``cimc.passes.place.op_tiles``) as one instruction naming it (its index in ``main``'s body), and every
flow ``place`` recorded (``traffic_flows``) between two tiles becomes a ``Send`` on its source tile and a ``Recv``
on its destination, naming the value it carries, right after the op that makes the value (before every op for a
model input sent as it is, such as a solve's right-hand side). Arrays are programmed first (``Program``, once at
load). Work on the model inputs alone and the model outputs belong to the I/O port, whose stream is keyed
``PORT``; constants (ops on constants alone) get no instruction: the runtime evaluates them once, at load.

Every digital instruction carries its work in digital-unit operations per sample (``digital_ops``), which the
runtime's timing and energy models charge to the tile's digital unit.
"""

from __future__ import annotations

import math
from collections import defaultdict

from cimc.ir.attributes import DenseResourceAttr
from cimc.ir.core import Operation, OpResult, Value
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import (
    AccumulateOp,
    AdcOp,
    BitPlanesOp,
    DequantizeOp,
    DigitalOp,
    Im2ColOp,
    MvmOp,
    ProgramOp,
    ShiftAddOp,
    array_groups,
    value_numbers,
)
from cimc.ir.dialects.cim_solve import SolveOp
from cimc.ir.interpreter import main_function
from cimc.ir.target.network import Tile
from cimc.ir.types import TensorType
from cimc.passes.place import op_tiles, tile_of, traffic_flows, value_bytes
from cimc.runtime.isa import (
    NO_VALUE,
    PORT,
    Accumulate,
    Adc,
    Dequantize,
    Digital,
    Instruction,
    Mvm,
    Program,
    Recv,
    Send,
    ShiftAdd,
    Solve,
    Streams,
)


class _Strings:
    """The string table: each name once, in order of first use."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}

    def __getitem__(self, name: str) -> int:
        return self.names.setdefault(name, len(self.names))


def _elements(value: Value) -> int:
    """Elements per sample of a value: its bytes per sample over its element size, times its bit planes for the
    values whose first axis is the planes and second the batch (``cim.bit_planes``, ``cim.mvm``, ``cim.adc``)."""
    assert isinstance(value.type, TensorType)
    elements = value_bytes(value) // value.type.element.dtype.itemsize
    if isinstance(value, OpResult) and isinstance(value.op, (BitPlanesOp, MvmOp, AdcOp)):
        planes = value.type.shape[0] or 1
        batch = value.type.shape[1] if value.type.rank > 1 else 1
        return elements * planes // (batch or 1)  # value_bytes took the planes for the batch and counted the batch
    return elements


#: Digital-unit ops per output element of the graph ops that take more than one (elementwise ops take one):
#: softmax (running max, subtract, exp, sum, divide), normalizations over a group (mean: add; variance: subtract,
#: square, add; normalize: subtract, multiply by the reciprocal deviation, scale, shift), and an inference batch
#: norm (scale, shift).
OPS_PER_ELEMENT = {
    "Softmax": 5,
    "LogSoftmax": 5,
    "LayerNormalization": 8,
    "InstanceNormalization": 8,
    "GroupNormalization": 8,
    "RMSNormalization": 6,
    "BatchNormalization": 2,
}

#: Graph ops that only move data (layout changes, copies, gathers): buffer addressing, no arithmetic.
LAYOUT_OPS = frozenset(
    {
        "Transpose",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Concat",
        "Split",
        "Slice",
        "Gather",
        "Pad",
        "Identity",
        "Expand",
        "Tile",
        "DepthToSpace",
        "SpaceToDepth",
        "Shape",
        "Size",
    }
)


def _static(dims: tuple[int | None, ...]) -> int:
    return math.prod(d or 1 for d in dims)


def digital_ops(op: Operation) -> int:
    """Digital-unit operations per sample of an op run on a tile's digital unit, as the ``digital`` instruction
    carries them: ``cim.quantize`` and ``cim.bit_planes`` one per output element, ``cim.im2col`` none (addressing
    of the input buffer); for ``cim.digital``, from the graph op it wraps: MatMul, Gemm, Conv and ConvTranspose
    two per multiply-accumulate, Inverse ``2 n`` per output element (Gauss-Jordan: ``2 n^3`` for ``n x n``),
    pooling one per window element and output, global pooling and reductions one per input element,
    ``OPS_PER_ELEMENT`` per output element for softmax and normalizations, none for ``LAYOUT_OPS``, and one per
    output element for every other (elementwise) op."""
    outputs = sum(map(_elements, op.results))
    if isinstance(op, Im2ColOp):
        return 0
    if not isinstance(op, DigitalOp):
        return outputs
    work = op.work
    kind = getattr(work, "onnx_type", "")
    shapes = [v.type.shape if isinstance(v.type, TensorType) else () for v in work.operands]
    inputs = _elements(work.operands[0]) if work.operands else 0
    if kind == "MatMul":
        return 2 * outputs * (shapes[0][-1] or 1)
    if kind == "Inverse":
        return 2 * outputs * (shapes[0][-1] or 1)
    if kind == "Gemm":
        return 2 * outputs * (shapes[0][0 if work.attr("transA") else 1] or 1)
    if kind == "Conv":
        return 2 * outputs * _static(shapes[1][1:])
    if kind == "ConvTranspose":
        return 2 * inputs * _static(shapes[1][1:])
    if kind in ("MaxPool", "AveragePool", "LpPool"):
        return outputs * math.prod(work.attr("kernel_shape"))
    if kind.startswith(("Global", "Reduce")):
        return inputs
    if kind in LAYOUT_OPS:
        return 0
    return outputs * OPS_PER_ELEMENT.get(kind, 1)


def _defining(value: Value) -> Operation:
    assert isinstance(value, OpResult)
    return value.op


def generate(module: ModuleOp) -> Streams:
    """The instruction streams of a placed module."""
    func = main_function(module)
    index = {op: i for i, op in enumerate(func.body.ops)}
    numbers = value_numbers(func)
    tiles = op_tiles(module)
    strings = _Strings()
    streams: dict[Tile, list[Instruction]] = defaultdict(list)
    groups = array_groups(module)
    number = {program: g for g, program in enumerate(groups)}
    for g, program in enumerate(groups):
        levels = program.attributes["levels"]
        image = levels.blob.name if isinstance(levels, DenseResourceAttr) else f"{program.location.name}.levels"
        streams[tile_of(program)].append(Program(index[program], g, program.arrays, strings[image]))
    # the op that makes each flow's value -> the flows it starts; a model input's flows start before any op (None)
    sends: dict[Operation | None, list[tuple[int, Tile, Tile, int, int]]] = defaultdict(list)
    for f, flow in enumerate(traffic_flows(module)):
        src = PORT if flow.src is None else tile_of(groups[flow.src])
        dst = PORT if flow.dst is None else tile_of(groups[flow.dst])
        if src == dst:
            continue
        producer = flow.value.op if isinstance(flow.value, OpResult) else None
        # a solve's block results travel inside the solve: they are no value its group's tile holds
        value = numbers[flow.value] if producer is None or (tiles[producer] or PORT) == src else NO_VALUE
        sends[producer].append((f, src, dst, flow.bytes, value))

    def transfer(producer: Operation | None) -> None:
        for f, src, dst, size, value in sends.get(producer, ()):
            streams[src].append(Send(dst, size, f, value))
            streams[dst].append(Recv(src, size, f, value))

    transfer(None)
    for op in func.body.ops:
        if op in tiles:
            instruction = _instruction(op, index[op], number, strings)
            if instruction is not None:
                streams[tiles[op] or PORT].append(instruction)
        transfer(op)
    return Streams({tile: tuple(stream) for tile, stream in sorted(streams.items())}, tuple(strings.names))


def _instruction(op: Operation, at: int, number: dict[ProgramOp, int], strings: _Strings) -> Instruction | None:
    """The instruction op ``at`` of ``main`` runs as (None for programming, done first, and the return);
    ``number``: each group's number."""
    layer = op.location.name or op.name

    def _group(levels: Value) -> int:
        program = _defining(levels)
        assert isinstance(program, ProgramOp)
        return number[program]

    if isinstance(op, MvmOp):
        program = _defining(op.operands[1])
        assert isinstance(program, ProgramOp)
        planes = op.operands[0].type.shape[0]  # type: ignore[attr-defined]
        return Mvm(at, _group(op.operands[1]), planes, op.vectors, program.arrays)
    if isinstance(op, AdcOp):
        mvm = _defining(op.operands[0])
        return Adc(at, _group(mvm.operands[1]), op.attr("bits"), _elements(op.result))
    if isinstance(op, ShiftAddOp):
        mvm = _defining(_defining(op.operands[0]).operands[0])
        readings = _elements(op.operands[0]) // max(_elements(op.result), 1)
        return ShiftAdd(at, _group(mvm.operands[1]), readings, _elements(op.result))
    if isinstance(op, AccumulateOp):
        return Accumulate(at, strings[layer], len(op.operands), _elements(op.result))
    if isinstance(op, DequantizeOp):
        return Dequantize(at, strings[layer], _elements(op.result))
    if isinstance(op, SolveOp):
        return Solve(at, _group(op.operands[1]), len(op.operands) - 1, op.size, op.rhs_per_sample)
    if isinstance(op, DigitalOp):
        return Digital(at, strings[op.work.name], strings[layer], sum(map(_elements, op.results)), digital_ops(op))
    if op.name.startswith("cim.") and not isinstance(op, ProgramOp):  # quantize, im2col, bit planes
        return Digital(at, strings[op.name], strings[layer], sum(map(_elements, op.results)), digital_ops(op))
    return None
