"""The program a ``.cimb`` holds, checked at load and executed: the per-tile instruction streams are what runs.

At load (``load_program``, called by ``cimc.runtime.binary.load_binary``) the streams are checked against the chip
and the IR (``check_program``): every stream's tile on the mesh and not faulty (the I/O port aside); every group
programmed once, on one tile, the tile's arrays within its capacity, on the tile the IR's ``cim.tile`` gives it;
every op, group, value, string and flow named exists; every flow sent once and received once, with the same bytes
and value, by peers that name each other; every instruction of the kind of the op it names (an ``Mvm`` a
``cim.mvm`` of its group, on its group's tile, ...). Then the streams are walked once, by the same discrete-event
walk that gives the cycles (``cimc.runtime.timing.simulate``): its order is the order the instructions execute in,
and following it once with the values each tile holds makes the plan (``Plan``): each instruction's operands as
found in its tile's buffer, and when each value leaves a buffer (after its last use there, so memory follows the
live set). An instruction whose operand is not in its tile's buffer (a dropped read, a missing send, a reordered
stream) is refused there, in one line naming the tile, the instruction and the value.

Executing (``Plan.run``): the model inputs are in the I/O port's buffer (``PORT``); a compute instruction evaluates
its op (``evaluate``: the simulator's per-op machinery, or the exact executor's) on operands taken from its tile's
buffer, constants and programmed arrays, and puts the results in that buffer; a ``Send`` puts a value in flight,
its ``Recv`` moves it into the receiving tile's buffer; the outputs are what the port holds at the end. Constants
(ops no instruction names whose operands are all constants) are evaluated once, here; so are ``Program``
instructions, at load (the simulator programs its arrays when it is made): their results are the levels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from cimc.ir.core import Operation, OpResult, Value, VerifyError
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import (
    CODE_OPS,
    TILE_ATTRIBUTE,
    AccumulateOp,
    AdcOp,
    DequantizeOp,
    DigitalOp,
    MvmOp,
    ProgramOp,
    ShiftAddOp,
    array_groups,
    ssa_values,
)
from cimc.ir.dialects.cim_solve import SolveOp
from cimc.ir.interpreter import InterpreterError, evaluate_op, main_function
from cimc.ir.target.chip import Chip
from cimc.ir.target.network import Tile
from cimc.runtime.isa import (
    NO_VALUE,
    PORT,
    Accumulate,
    Adc,
    Compute,
    Dequantize,
    Instruction,
    IsaError,
    Mvm,
    Program,
    Recv,
    Send,
    ShiftAdd,
    Solve,
    Streams,
)
from cimc.runtime.timing import GroupGeometry, Timing, TimingError, group_geometry, simulate

#: The op class each compute instruction kind executes (``Digital``: any other op but a ``cim.program``).
OP_KINDS: dict[type, tuple[type[Operation], ...]] = {
    Program: (ProgramOp,),
    Mvm: (MvmOp,),
    Adc: (AdcOp,),
    ShiftAdd: (ShiftAddOp,),
    Accumulate: (AccumulateOp,),
    Dequantize: (DequantizeOp,),
    Solve: (SolveOp,),
}

_COMPUTE, _SEND, _RECV = 0, 1, 2


class ProgramError(ValueError):
    """A program that cannot run on its chip or does not match its IR; one line naming the tile, the instruction
    and what is wrong (``load_binary`` adds the file)."""


def _refusal(tile: Tile, position: int, instruction: Instruction, what: str) -> ProgramError:
    """The error refusing instruction ``position`` of ``tile``'s stream (formatted only when it is raised)."""
    return ProgramError(f"{_where(tile, position, instruction)}: {what}")


def _at_end(where: str, what: str) -> ProgramError:
    return ProgramError(f"{where}: {what}")


def _tile_name(tile: Tile) -> str:
    return "the I/O port" if tile == PORT else f"tile ({tile[0]}, {tile[1]})"


def _where(tile: Tile, position: int, instruction: Instruction) -> str:
    return f"{_tile_name(tile)} instruction {position} '{instruction}'"


def _describe(value: Value) -> str:
    """A value as a message names it: its defining op and location, or the function argument."""
    if isinstance(value, OpResult):
        return f"the result of '{value.op.name}' at {value.op.location.name or '?'}"
    return "a model input"


def _group_of(op: Operation) -> ProgramOp | None:
    """The group (its ``cim.program``) an array op works on: an ``Mvm``'s arrays, an ``Adc``'s read, a
    ``ShiftAdd``'s conversions' read, a ``Solve``'s first block."""
    value: Value | None = None
    if isinstance(op, (MvmOp, SolveOp)):
        value = op.operands[1]
    elif isinstance(op, AdcOp):
        value = _operand_of(op.operands[0], MvmOp, 1)
    elif isinstance(op, ShiftAddOp):
        mvm = _operand_of(op.operands[0], AdcOp, 0)
        value = None if mvm is None else _operand_of(mvm, MvmOp, 1)
    producer = getattr(value, "op", None)
    return producer if isinstance(producer, ProgramOp) else None


def _operand_of(value: Value, kind: type[Operation], index: int) -> Value | None:
    producer = getattr(value, "op", None)
    return producer.operands[index] if isinstance(producer, kind) and len(producer.operands) > index else None


def check_program(module: ModuleOp, chip: Chip, streams: Streams) -> None:
    """Check ``streams`` against ``chip`` and ``module`` (see the module docstring); ``ProgramError`` on the first
    thing wrong."""
    func = main_function(module)
    ops = list(func.body.ops)
    values = ssa_values(func)
    try:
        groups = array_groups(module)
    except VerifyError as exc:
        raise ProgramError(f"the IR's array groups: {exc}") from None
    number = {program: g for g, program in enumerate(groups)}
    faulty = set(chip.faulty_tiles)
    programmed: dict[int, Tile] = {}
    load: dict[Tile, int] = {}
    sends: dict[int, tuple[Tile, int, Send]] = {}
    recvs: dict[int, tuple[Tile, int, Recv]] = {}
    for tile, stream in streams.tiles.items():
        on_mesh = 0 <= tile[0] < chip.mesh.rows and 0 <= tile[1] < chip.mesh.cols
        if tile != PORT and (not on_mesh or tile in faulty):
            what = "faulty" if on_mesh else f"off the {chip.mesh.rows}x{chip.mesh.cols} mesh"
            raise ProgramError(f"{_tile_name(tile)} has a stream of {len(stream)} instructions but is {what}")
        for position, instruction in enumerate(stream):
            fail = functools.partial(_refusal, tile, position, instruction)
            if isinstance(instruction, (Send, Recv)):
                table = sends if isinstance(instruction, Send) else recvs
                if instruction.flow in table:
                    raise fail(f"flow {instruction.flow} has a second '{instruction.mnemonic}'")
                if instruction.value != NO_VALUE and instruction.value >= len(values):
                    raise fail(f"value {instruction.value} does not exist (main has {len(values)})")
                table[instruction.flow] = (tile, position, instruction)  # type: ignore[assignment]
                continue
            _check_compute(instruction, tile, ops, number, len(streams.strings), fail)
            if isinstance(instruction, Program):
                if instruction.group in programmed:
                    raise fail(f"group {instruction.group} is programmed twice")
                programmed[instruction.group] = tile
                load[tile] = load.get(tile, 0) + instruction.arrays
                if load[tile] > chip.capacity:
                    raise fail(f"the tile holds {load[tile]} arrays, more than its {chip.capacity}")
    missing = [g for g in range(len(groups)) if g not in programmed]
    if missing:
        raise ProgramError(f"group {missing[0]} ({groups[missing[0]].location.name}) is never programmed")
    for flow, (tile, position, send) in sorted(sends.items()):
        if flow not in recvs:
            raise ProgramError(f"{_where(tile, position, send)}: flow {flow} is never received")
        peer, peer_position, recv = recvs[flow]
        if send.peer != peer or recv.peer != tile or send.bytes != recv.bytes or send.value != recv.value:
            raise ProgramError(
                f"{_where(peer, peer_position, recv)}: does not match its send, {_where(tile, position, send)}"
            )
    for flow, (tile, position, recv) in sorted(recvs.items()):
        if flow not in sends:
            raise ProgramError(f"{_where(tile, position, recv)}: flow {flow} is never sent")


def _check_compute(
    instruction: Compute,
    tile: Tile,
    ops: list[Operation],
    number: dict[ProgramOp, int],
    strings: int,
    fail: Callable[[str], ProgramError],
) -> None:
    """One compute instruction against the op it names and the stream's tile."""
    if instruction.op >= len(ops):
        raise fail(f"names op {instruction.op}, but main has {len(ops)}")
    op = ops[instruction.op]
    kinds = OP_KINDS.get(type(instruction))
    if kinds is not None and not isinstance(op, kinds) or kinds is None and not _digital(op):
        raise fail(f"names op {instruction.op}, a '{op.name}', which a '{instruction.mnemonic}' does not run")
    names = [getattr(instruction, f) for f in ("image", "layer", "name") if hasattr(instruction, f)]
    if any(n >= strings for n in names):
        raise fail(f"names string {max(names)}, but the string table has {strings}")
    for field, value in _declared(op).items():
        if getattr(instruction, field, value) != value:
            raise fail(f"{field} is {getattr(instruction, field)}, but op {instruction.op} ('{op.name}') has {value}")
    group = getattr(instruction, "group", None)
    if group is None:
        return
    program = op if isinstance(op, ProgramOp) else _group_of(op)
    if program is None or number.get(program) != group:
        raise fail(f"names group {group}, but op {instruction.op} works on group {number.get(program)}")  # type: ignore[arg-type]
    placed = program.attributes.get(TILE_ATTRIBUTE)
    if placed is None or tuple(placed.value) != tile:  # type: ignore[attr-defined]
        raise fail(f"group {group} is on tile {getattr(placed, 'value', None)} in the IR, not here")


def _declared(op: Operation) -> dict[str, int]:
    """The fields of an instruction that its op fixes (the timing and energy models charge them): a group's arrays
    (``Program``, ``Mvm``), an ``Mvm``'s bit planes and input vectors, an ``Adc``'s bits, an ``Accumulate``'s
    partial sums, a ``Solve``'s groups, unknowns and right-hand sides. Counts of values per sample follow from the
    types as the compiler counts them, and are not checked here."""
    if isinstance(op, ProgramOp):
        return {"arrays": op.arrays}
    if isinstance(op, MvmOp):
        program = _group_of(op)
        planes = op.operands[0].type.shape[0]  # type: ignore[attr-defined]
        return {"planes": planes, "vectors": op.vectors, **({"arrays": program.arrays} if program else {})}
    if isinstance(op, AdcOp):
        return {"bits": op.attr("bits")}
    if isinstance(op, AccumulateOp):
        return {"partials": len(op.operands)}
    if isinstance(op, SolveOp):
        return {"groups": len(op.operands) - 1, "unknowns": op.size, "rhs": op.rhs_per_sample}
    return {}


def _digital(op: Operation) -> bool:
    return isinstance(op, DigitalOp) or op.name in CODE_OPS


class Step(NamedTuple):
    """One executed instruction of a plan: what it does (``kind``: compute, send or receive), on which tile's buffer
    (an index of ``Plan.tiles``), the op it evaluates (compute), the values it reads (``(index, constant)``: the
    constant, or None for the buffer's value ``index``), the values it writes, its flow (transfers) and the values
    that leave the buffer after it."""

    kind: int
    tile: int
    op: Operation | None
    operands: tuple[tuple[int, np.ndarray | None], ...]
    results: tuple[int, ...]
    flow: int
    frees: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    """A checked program ready to run: the streams, the array groups' geometry and the walk that ordered them (its
    ``Timing``), and per executed instruction its tile's buffer, what it reads and writes there and what leaves the
    buffer after it."""

    streams: Streams
    groups: tuple[GroupGeometry, ...]
    timing: Timing
    tiles: tuple[Tile, ...]
    steps: tuple[Step, ...]
    arguments: tuple[int, ...]
    outputs: tuple[tuple[int, np.ndarray | None], ...]

    def run(
        self, args: Sequence[np.ndarray], evaluate: Callable[[Operation, list[np.ndarray]], list[np.ndarray]]
    ) -> list[np.ndarray]:
        """The outputs of one batch: the model inputs ``args`` at the port, every instruction in plan order,
        ``evaluate(op, operands)`` computing each compute instruction's op."""
        buffers: list[dict[int, np.ndarray]] = [{} for _ in self.tiles]
        port = buffers[self.tiles.index(PORT)]
        for index, array in zip(self.arguments, args):
            port[index] = array
        flight: dict[int, np.ndarray] = {}
        for kind, tile, op, operands, results, flow, frees in self.steps:
            buffer = buffers[tile]
            if kind == _COMPUTE:
                assert op is not None
                made = evaluate(op, [buffer[j] if c is None else c for j, c in operands])
                for j, array in zip(results, made):
                    buffer[j] = array
            elif kind == _SEND:
                flight[flow] = buffer[operands[0][0]]
            else:
                buffer[results[0]] = flight.pop(flow)
            for j in frees:
                del buffer[j]
        return [port[j] if c is None else c for j, c in self.outputs]


def load_program(module: ModuleOp, chip: Chip, payload: bytes) -> Plan:
    """The ``program`` section decoded, checked (``check_program``) and planned; ``ProgramError`` (``IsaError``'s
    message when it does not decode) names what is wrong."""
    try:
        streams = Streams.decode(payload)
    except IsaError as exc:
        raise ProgramError(str(exc)) from None
    check_program(module, chip, streams)
    try:
        groups = tuple(group_geometry(module))
        timing = simulate(streams, chip, list(groups))
    except TimingError as exc:
        raise ProgramError(str(exc)) from None
    return plan(module, streams, groups, timing)


def plan(module: ModuleOp, streams: Streams, groups: tuple[GroupGeometry, ...], timing: Timing) -> Plan:
    """Follow ``timing.order`` once with the values each tile holds (see the module docstring)."""
    func = main_function(module)
    ops = list(func.body.ops)
    values = ssa_values(func)
    number = {value: j for j, value in enumerate(values)}
    named = {ops[i.op] for stream in streams.tiles.values() for i in stream if not isinstance(i, (Send, Recv))}
    constants = _constants(ops[:-1], named, number)
    tiles = tuple(sorted(set(streams.tiles) | {PORT}))
    slot = {tile: k for k, tile in enumerate(tiles)}
    present: list[set[int]] = [set() for _ in tiles]
    last: dict[tuple[int, int], int] = {}
    arguments = tuple(number[arg] for arg in func.body.args)
    present[slot[PORT]].update(arguments)
    steps: list[Step] = []

    def read(t: int, j: int, fail: Callable[[str], ProgramError]) -> tuple[int, np.ndarray | None]:
        if j in constants:
            return j, constants[j]
        if j not in present[t]:
            raise fail(f"needs value {j} ({_describe(values[j])}), which is not in its buffer")
        last[(t, j)] = len(steps)
        return j, None

    def write(t: int, j: int) -> None:
        present[t].add(j)
        last[(t, j)] = len(steps)

    for tile, position in timing.order:
        instruction = streams.tiles[tile][position]
        t = slot[tile]
        fail = functools.partial(_refusal, tile, position, instruction)
        if isinstance(instruction, Program):
            continue  # at load
        if isinstance(instruction, (Send, Recv)):
            if instruction.value == NO_VALUE:
                continue  # inside a solve: no value to move
            if isinstance(instruction, Send):
                sent = read(t, instruction.value, fail)
                steps.append(Step(_SEND, t, None, (sent,), (), instruction.flow, ()))
            else:
                write(t, instruction.value)
                steps.append(Step(_RECV, t, None, (), (instruction.value,), instruction.flow, ()))
            continue
        op = ops[instruction.op]
        operands = tuple(read(t, number[v], fail) for v in op.operands)
        results = tuple(number[r] for r in op.results)
        for j in results:
            write(t, j)
        steps.append(Step(_COMPUTE, t, op, operands, results, -1, ()))
    port = slot[PORT]
    at_end = functools.partial(_at_end, "the I/O port at the end")
    outputs = tuple(read(port, number[v], at_end) for v in ops[-1].operands)
    kept = {(port, j) for j, c in outputs if c is None}
    frees: dict[int, list[int]] = {}
    for (t, j), at in last.items():
        if (t, j) not in kept:
            frees.setdefault(at, []).append(j)
    freed = tuple(step._replace(frees=tuple(frees.get(at, ()))) for at, step in enumerate(steps))
    return Plan(streams, groups, timing, tiles, freed, arguments, outputs)


def _constants(ops: list[Operation], named: set[Operation], number: dict[Value, int]) -> dict[int, np.ndarray]:
    """The values the plan holds for the whole run: the programmed levels (``Program`` runs at load, and the check
    put each group's reads on its tile) and the results of ops no instruction names whose operands are all
    constants, each evaluated once."""
    constants: dict[int, np.ndarray] = {}
    for op in ops:
        if isinstance(op, ProgramOp) or op not in named and all(number[v] in constants for v in op.operands):
            try:
                made = evaluate_op(op, [constants[number[v]] for v in op.operands])
            except InterpreterError as exc:
                raise ProgramError(f"constant {exc}") from None
            constants.update((number[r], array) for r, array in zip(op.results, made))
    return constants
