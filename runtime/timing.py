"""Cycle-approximate timing of a compiled model: latency for one input, steady-state throughput, busy cycles per
tile and per link, and the bottleneck, from the per-tile instruction streams (``cimc.runtime.isa``), the chip and
each array group's geometry.

Cycle-approximate means a cost per instruction, not a clock loop (see the design notes, "Timing without simulating
every cycle"). Each tile runs its stream once per input sample. Its array groups and its digital unit work side by
side: the stream issues instructions in order and waits only at a ``recv``, each instruction starting when its
resource is free and its inputs are ready:

- ``mvm``: on its group's arrays, once the input codes are made (the latest activation work issued before it:
  ``digital``, ``dequantize``, ``accumulate``, or a receive): ``mvm_cycles``: every array of the group is read at
  once, each with its own ADCs; per input vector copy and bit plane, one array read (``read_cycles``) then the
  conversions of the columns that share one ADC (``adc_cycles`` each), one after another; the ``adc`` instruction
  that follows is part of it and takes no time; groups on one tile read at the same time;
- ``shift_add``: on the digital unit once its group's read is done; ``accumulate``, ``dequantize``, ``digital``: on
  the digital unit in issue order; each ``digital_cycles`` of its op count (``digital_op_count``);
- ``program``: no time per inference (loading the chip; ``cimc.runtime.energy`` gives its time);
- ``solve``: its group's arrays and the digital unit (its refinement's residuals) for ``d`` (right-hand sides
  per sample) x ``ceil(clock_hz x t)``, ``t`` the time of one right-hand side's closed-loop solve with the matrix
  programmed (settling, conversions, refinement's analog steps and digital residuals), which depends on the
  matrix's values: ``cimc.runtime.closed_loop.solve_cost`` computes it from the ``cim.solve``'s matrix on the
  module's chip (``GroupGeometry.solve``, on the first group of the solve's blocks);
- ``send``: departs once the digital unit has made everything issued before it (codegen sends a value right after
  the op that makes it), at no cost to the sender; ``recv`` holds the stream until its flow arrives.

A transfer follows its XY route (``cimc.ir.target.network.flow_route``, torus aware) and occupies every link of it for
its serialization, ``ceil(8 x bytes / link_bits)`` cycles; it starts when all of them are free, transfers taking
links first come first served in departure order, and arrives ``hops x router_latency`` + its serialization after
its start. The I/O port (``PORT``) sits at tile (0, 0)'s router behind a channel as wide as a link, one each way
(``PORT_IN``, ``PORT_OUT``): a transfer from or to the port occupies its channel too, without a router hop. The
port's stream is the host's: its work takes no time, so it sends the model inputs at time 0.

Latency for one input is when the port has received the last output. In steady state inputs overlap across tiles
and, within a tile, across its groups and its digital unit, so a new input enters every ``interval``: the most busy
cycles per sample of any resource; a tile's busy cycles are those of its busiest resource (its digital unit or one
of its groups), and the tile or link with the most is the bottleneck.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cimc.ir.attributes import DenseArrayAttr
from cimc.ir.core import Operation, OpResult
from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import TILE_ATTRIBUTE, BitPlanesOp, MvmOp, ProgramOp, array_groups
from cimc.ir.dialects.cim_solve import SolveOp
from cimc.ir.interpreter import main_function
from cimc.ir.target.chip import Chip, Network, TileSpec, chip_of
from cimc.ir.target.network import PORT_ROUTER, Link, LinkLoads, Tile, flow_route, link_loads
from cimc.runtime.isa import (
    PORT,
    Accumulate,
    Adc,
    Dequantize,
    Digital,
    Instruction,
    Mvm,
    Recv,
    Send,
    ShiftAdd,
    Solve,
    Streams,
)

if TYPE_CHECKING:  # closed_loop imports the energy model, which imports this module
    from cimc.runtime.closed_loop import SolveCost

#: The channels between the port and its router, as links: into the chip and out of it.
PORT_IN: Link = (PORT, PORT_ROUTER)
PORT_OUT: Link = (PORT_ROUTER, PORT)
#: Digital-unit ops per value of a ``dequantize``: take out the input zero point's share, scale, add the bias.
DEQUANTIZE_OPS = 3


class TimingError(ValueError):
    """Streams that cannot run: a receive whose flow is never sent, or a group the geometry does not have."""


@dataclass(frozen=True)
class GroupGeometry:
    """One array group (a ``cim.program``), as the timing and energy models see it; its index is its group number
    (``cimc.ir.dialects.cim.array_groups``), which the instructions' ``group`` names.

    ``rows`` x ``columns`` is the group's block of the weight matrix (its levels' dims 2 and 3), held in
    ``signs`` x ``slices`` x column blocks of arrays of ``array_rows`` x ``array_cols``, ``replication`` copies;
    ``arrays`` counts them all. ``layer`` is the group's location (its ONNX node), ``weight_bits`` its weights'
    width and ``input_bits`` the width of the input codes its bit planes carry (of a ``cim.solve``'s block: of the
    right-hand side's values). ``solve`` is, on the first group of a ``cim.solve``'s blocks, what one right-hand
    side of the solve costs (``cimc.runtime.closed_loop.SolveCost``), None on the others. ``passes`` is the reads
    one input vector takes on average (more than 1 where a range-managed periphery reads saturated inputs again,
    as measured by the simulator), which every read's time and energy count.
    """

    tile: Tile
    layer: str
    arrays: int
    replication: int
    rows: int
    columns: int
    signs: int
    slices: int
    array_rows: int
    array_cols: int
    weight_bits: int
    input_bits: int
    solve: SolveCost | None = None
    passes: float = 1.0

    @property
    def columns_per_array(self) -> int:
        """Columns of the widest of the group's arrays."""
        return min(self.columns, self.array_cols)

    @property
    def arrays_per_copy(self) -> int:
        """Arrays one input vector is read by: signs x slices x column blocks."""
        return self.arrays // self.replication


def group_geometry(module: ModuleOp) -> list[GroupGeometry]:
    """The geometry of every array group of a placed module, by group number, with the closed-loop cost of every
    ``cim.solve`` on its first group."""
    costs = _solve_costs(module)
    groups = []
    for op in array_groups(module):
        tile = op.attributes.get(TILE_ATTRIBUTE)
        if not isinstance(tile, DenseArrayAttr) or len(tile.value) != 2:
            raise TimingError(f"{op.location.name or op.name}: 'cim.program' has no '{TILE_ATTRIBUTE}'; place it first")
        input_bits = _input_bits(op)
        if input_bits is None:
            raise TimingError(
                f"{op.location.name or op.name}: 'cim.program' is read by no 'cim.mvm' of bit planes nor 'cim.solve'"
            )
        groups.append(
            GroupGeometry(
                tile=(tile.value[0], tile.value[1]),
                layer=op.location.name or op.name,
                arrays=op.arrays,
                replication=op.attr("replication"),
                rows=op.rows,
                columns=op.columns,
                signs=op.signs,
                slices=op.slices,
                array_rows=op.attr("array_rows"),
                array_cols=op.attr("array_cols"),
                weight_bits=op.attr("weight_bits"),
                input_bits=input_bits,
                solve=costs.get(op),
            )
        )
    return groups


def _solve_costs(module: ModuleOp) -> dict[Operation, SolveCost]:
    """What one right-hand side of each ``cim.solve`` of ``main`` costs on the module's chip, by its first
    ``cim.program`` (the defaults of ``cimc.runtime.closed_loop.SolveConfig``: the chip's device, seed 0, the op's
    matrix bits, tolerance and iterations)."""
    solves = [op for op in main_function(module).body.ops if isinstance(op, SolveOp)]
    if not solves:
        return {}
    from cimc.runtime.closed_loop import solve_cost  # here, and only for a model that solves: see the imports

    chip = chip_of(module)
    if chip is None:
        raise TimingError(f"{solves[0].location.name or solves[0].name}: a 'cim.solve' needs the module's chip")
    costs = {}
    for op in solves:
        first = op.operands[1]
        if not isinstance(first, OpResult):
            raise TimingError(f"{op.location.name or op.name}: 'cim.solve' arrays must be 'cim.program' results")
        costs[first.op] = solve_cost(
            op.tensor_attr("matrix"),
            chip,
            matrix_bits=op.matrix_bits,
            tol=op.attr("tol"),
            max_iterations=op.attr("max_iterations"),
        )
    return costs


def _input_bits(program: ProgramOp) -> int | None:
    """The width of what drives the group's rows: its bit planes' codes, or a solve's right-hand side values; None
    when nothing reads the group."""
    for use in program.result.uses:
        if isinstance(use.op, SolveOp):
            rhs = use.op.operands[0].type
            return 8 * rhs.element.dtype.itemsize  # type: ignore[attr-defined]
        planes = getattr(use.op.operands[0], "op", None) if isinstance(use.op, MvmOp) else None
        if isinstance(planes, BitPlanesOp):
            return planes.attr("input_bits")
    return None


def adcs_per_array(tile_spec: TileSpec) -> int:
    """ADCs one array has: one per ``adc_columns`` columns."""
    return -(-tile_spec.array_cols // tile_spec.adc_columns)


def mvm_cycles(planes: int, vectors: int, geometry: GroupGeometry, tile_spec: TileSpec) -> int:
    """Cycles of one sample's reads of a group: the replicas share the input vectors, and each copy's read of
    one plane is an array read and then the conversions of the columns one ADC serves (column ``c`` on ADC
    ``c mod adcs``): ``ceil(vectors / replication) x planes x (read_cycles + ceil(columns / adcs) x adc_cycles)``.
    """
    conversions = -(-geometry.columns_per_array // adcs_per_array(tile_spec))
    rounds = -(-vectors // geometry.replication)
    cycles = rounds * planes * (tile_spec.read_cycles + conversions * tile_spec.adc_cycles)
    return cycles if geometry.passes == 1.0 else math.ceil(cycles * geometry.passes)


def digital_cycles(ops: int, tile_spec: TileSpec) -> int:
    """Cycles of ``ops`` digital-unit operations: ``ceil(ops / digital_ops_per_cycle)``."""
    return -(-ops // tile_spec.digital_ops_per_cycle)


def transfer_cycles(size: int, hops: int, network: Network) -> int:
    """Cycles from departure to arrival of ``size`` bytes over ``hops`` free links: ``hops x router_latency +
    ceil(8 x bytes / link_bits)``."""
    return hops * network.router_latency + serialization_cycles(size, network)


def serialization_cycles(size: int, network: Network) -> int:
    """Cycles ``size`` bytes occupy a link: ``ceil(8 x bytes / link_bits)``."""
    return -(-8 * size // network.link_bits)


def digital_op_count(instruction: Instruction) -> int:
    """Digital-unit operations per sample of an instruction: a ``ShiftAdd`` one shift-and-add per reading
    (``readings x values``), an ``Accumulate`` of ``partials`` partial sums ``(partials - 1) x values`` adds, a
    ``Dequantize`` ``DEQUANTIZE_OPS`` per value, a ``Digital`` its ``ops`` (``cimc.compiler.codegen.digital_ops``);
    0 for the others."""
    if isinstance(instruction, ShiftAdd):
        return instruction.readings * instruction.values
    if isinstance(instruction, Accumulate):
        return max(instruction.partials - 1, 0) * instruction.values
    if isinstance(instruction, Dequantize):
        return DEQUANTIZE_OPS * instruction.values
    if isinstance(instruction, Digital):
        return instruction.ops
    return 0


def transfer_links(chip: Chip, src: Tile, dst: Tile) -> tuple[list[Link], int]:
    """The links a transfer from ``src`` to ``dst`` occupies (the port's channel included) and its router hops, on
    the flow's route (``cimc.ir.target.network.flow_route``)."""
    links = flow_route(chip.mesh, None if src == PORT else src, None if dst == PORT else dst)
    hops = len(links)
    return ([PORT_IN] if src == PORT else []) + links + ([PORT_OUT] if dst == PORT else []), hops


def instruction_layer(instruction: Instruction, strings: tuple[str, ...], groups: list[GroupGeometry]) -> str | None:
    """The layer (location name) an instruction works for; None for transfers and programming."""
    if isinstance(instruction, (Mvm, Adc, ShiftAdd, Solve)):
        return groups[instruction.group].layer
    if isinstance(instruction, (Accumulate, Dequantize, Digital)):
        return strings[instruction.layer]
    return None


def flow_layers(streams: Streams, groups: list[GroupGeometry]) -> dict[int, str]:
    """The layer each flow carries the work of: that of the last instruction before its ``Send`` on the sending
    stream (code generation sends a value right after the op that makes it); ``input`` when there is none."""
    layers = {}
    for stream in streams.tiles.values():
        last = "input"
        for instruction in stream:
            last = instruction_layer(instruction, streams.strings, groups) or last
            if isinstance(instruction, Send):
                layers[instruction.flow] = last
    return layers


@dataclass(frozen=True)
class Bottleneck:
    """What sets the steady-state interval: a ``tile`` or a ``link`` (``where``), its busy cycles per sample, and
    the layer with the most of them there."""

    kind: str
    where: Tile | Link
    cycles: int
    layer: str


@dataclass(frozen=True)
class Timing:
    """The timing of one compiled model on its chip, in cycles of ``clock_hz``: latency for one input, the
    steady-state interval between inputs, busy cycles per sample of every used tile (its busiest resource: the
    digital unit or one array group), link and layer (a layer's cycles are all its work on tiles), and the
    bottleneck; the bytes per sample on every mesh link (``cimc.ir.target.network.link_loads`` of the sends: what
    the placement report gives of the same flows), and ``order``: every instruction as ``(tile, position in its
    stream)`` in the order the walk issued it, which the executor (``cimc.runtime.program``) runs them in."""

    latency_cycles: int
    interval_cycles: int
    clock_hz: float
    tile_cycles: dict[Tile, int]
    link_cycles: dict[Link, int]
    layer_cycles: dict[str, int]
    bottleneck: Bottleneck | None
    link_loads: LinkLoads
    order: tuple[tuple[Tile, int], ...]

    @property
    def latency_s(self) -> float:
        return self.latency_cycles / self.clock_hz

    @property
    def throughput_per_s(self) -> float:
        """Inputs per second in steady state."""
        return self.clock_hz / self.interval_cycles if self.interval_cycles else math.inf

    @property
    def utilization(self) -> dict[Tile, float]:
        """Each used tile's busy share of the steady-state interval."""
        return {
            tile: busy / self.interval_cycles if self.interval_cycles else 0.0
            for tile, busy in self.tile_cycles.items()
        }


def solve_cycles(right_hand_sides: int, geometry: GroupGeometry, clock_hz: float) -> int:
    """Cycles of a sample's closed-loop solve: ``right_hand_sides x ceil(clock_hz x t)``, ``t`` one right-hand side's
    time (``geometry.solve``)."""
    if geometry.solve is None:
        raise TimingError(f"{geometry.layer}: group is no closed-loop solve's first group")
    return right_hand_sides * math.ceil(geometry.solve.time_s * clock_hz)


def instruction_cycles(instruction: Instruction, chip: Chip, groups: list[GroupGeometry]) -> int:
    """Cycles a tile spends on one instruction per sample (receives: see ``simulate``; sends cost nothing)."""
    if isinstance(instruction, (Mvm, Solve)) and instruction.group >= len(groups):
        raise TimingError(f"'{instruction}' reads group {instruction.group}, but the model has {len(groups)} groups")
    if isinstance(instruction, Mvm):
        return mvm_cycles(instruction.planes, instruction.vectors, groups[instruction.group], chip.tile)
    if isinstance(instruction, Solve):
        return solve_cycles(instruction.rhs, groups[instruction.group], chip.network.clock_hz)
    return digital_cycles(digital_op_count(instruction), chip.tile)


def _busiest(cycles: dict[str, int]) -> str:
    return min(cycles, key=lambda layer: (-cycles[layer], layer))


def simulate(streams: Streams, chip: Chip, groups: list[GroupGeometry]) -> Timing:
    """Run one input through the streams as a discrete-event simulation (see the module docstring)."""
    network = chip.network
    cost: dict[Tile, list[int]] = {}
    layer_cycles: dict[str, int] = defaultdict(int)
    # busy cycles per sample of each resource of a tile ("digital" or a group index), by layer
    busy: dict[Tile, dict[str | int, dict[str, int]]] = {}
    for tile, stream in streams.tiles.items():
        costs = [0 if tile == PORT else instruction_cycles(i, chip, groups) for i in stream]
        cost[tile] = costs
        if tile == PORT:
            continue
        resources: dict[str | int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for instruction, cycles in zip(stream, costs, strict=True):
            layer = instruction_layer(instruction, streams.strings, groups)
            if layer is None or not cycles:
                continue
            layer_cycles[layer] += cycles
            if isinstance(instruction, (Mvm, Solve)):
                resources[instruction.group][layer] += cycles
            if not isinstance(instruction, Mvm):
                resources["digital"][layer] += cycles
        busy[tile] = resources
    tile_cycles: dict[Tile, int] = {}
    tile_layers: dict[Tile, dict[str, int]] = {}
    for tile, res in busy.items():  # a tile is as busy as its busiest resource
        busiest: dict[str, int] = max(res.values(), key=lambda r: sum(r.values()), default={})
        tile_cycles[tile], tile_layers[tile] = sum(busiest.values()), dict(busiest)

    flow_layer = flow_layers(streams, groups)
    link_cycles: dict[Link, int] = defaultdict(int)
    link_layers: dict[Link, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    link_free: dict[Link, int] = defaultdict(int)
    arrivals: dict[int, int] = {}
    transfers: list[tuple[Tile, Tile, int]] = []  # every send's ends and bytes, for the link loads
    waiting: dict[int, Tile] = {}  # flow -> the tile blocked on its receive
    position = dict.fromkeys(streams.tiles, 0)
    digital_free = dict.fromkeys(streams.tiles, 0)  # when the digital unit has done all it was given
    inputs_ready = dict.fromkeys(streams.tiles, 0)  # when the latest activations issued are made
    read_done: dict[tuple[Tile, int], int] = defaultdict(int)  # when a group's arrays are done
    events: list[tuple[int, int, Tile]] = []
    issued: list[tuple[Tile, int]] = []  # (tile, position) of every instruction, in the order it issues
    sequence = 0

    def resume(tile: Tile, time: int) -> None:
        nonlocal sequence
        heapq.heappush(events, (time, sequence, tile))
        sequence += 1

    for tile in streams.tiles:
        resume(tile, 0)
    finish: dict[Tile, int] = {}
    while events:
        time, _, tile = heapq.heappop(events)
        stream = streams.tiles[tile]
        if position[tile] == len(stream):
            done = [t for (where, _), t in read_done.items() if where == tile]
            finish[tile] = max([time, digital_free[tile], *done])
            continue
        instruction = stream[position[tile]]
        cycles = cost[tile][position[tile]]
        if isinstance(instruction, Recv):
            if instruction.flow not in arrivals:
                waiting[instruction.flow] = tile
                continue
            time = max(time, arrivals[instruction.flow])
            inputs_ready[tile] = max(inputs_ready[tile], time)
        elif isinstance(instruction, Mvm):
            group = (tile, instruction.group)
            read_done[group] = max(inputs_ready[tile], read_done[group]) + cycles
        elif isinstance(instruction, Solve):  # the loop and the residuals: arrays and digital unit together
            group = (tile, instruction.group)
            start = max(inputs_ready[tile], read_done[group], digital_free[tile])
            read_done[group] = digital_free[tile] = inputs_ready[tile] = start + cycles
        elif isinstance(instruction, ShiftAdd):
            digital_free[tile] = max(digital_free[tile], read_done[(tile, instruction.group)]) + cycles
        elif isinstance(instruction, (Accumulate, Dequantize, Digital)):
            digital_free[tile] = inputs_ready[tile] = max(digital_free[tile], time) + cycles
        elif isinstance(instruction, Send):
            links, hops = transfer_links(chip, tile, instruction.peer)
            occupancy = serialization_cycles(instruction.bytes, network)
            start = max([time, digital_free[tile], *(link_free[link] for link in links)])
            for link in links:
                link_free[link] = start + occupancy
                link_cycles[link] += occupancy
                link_layers[link][flow_layer[instruction.flow]] += occupancy
            transfers.append((tile, instruction.peer, instruction.bytes))
            arrival = arrivals[instruction.flow] = start + hops * network.router_latency + occupancy
            if instruction.flow in waiting:
                resume(waiting.pop(instruction.flow), arrival)
        issued.append((tile, position[tile]))
        position[tile] += 1
        resume(tile, time)
    if waiting:
        flow, tile = next(iter(waiting.items()))
        raise TimingError(f"tile {tile} waits for flow {flow}, which no stream sends")
    mesh = chip.mesh

    return Timing(
        latency_cycles=finish[PORT] if PORT in finish else max(finish.values(), default=0),
        interval_cycles=max([1, *tile_cycles.values(), *link_cycles.values()]),
        clock_hz=network.clock_hz,
        tile_cycles=tile_cycles,
        link_cycles=dict(link_cycles),
        layer_cycles=dict(layer_cycles),
        bottleneck=_bottleneck(tile_cycles, tile_layers, link_cycles, link_layers),
        link_loads=link_loads(mesh, ((_end(src), _end(dst), size) for src, dst, size in transfers)),
        order=tuple(issued),
    )


def _end(tile: Tile) -> Tile | None:
    """A transfer's end as ``flow_route`` takes it: None for the port."""
    return None if tile == PORT else tile


def _bottleneck(
    tile_cycles: dict[Tile, int],
    tile_layers: dict[Tile, dict[str, int]],
    link_cycles: dict[Link, int],
    link_layers: dict[Link, dict[str, int]],
) -> Bottleneck | None:
    """The busiest tile or link (a tile on a tie, then the first in order), with its busiest layer."""
    candidates: Iterable[tuple[int, int, Tile | Link, str, dict[str, int]]] = [
        *((-busy, 0, tile, "tile", tile_layers[tile]) for tile, busy in tile_cycles.items() if busy),
        *((-busy, 1, link, "link", link_layers[link]) for link, busy in link_cycles.items() if busy),
    ]
    best = min(candidates, default=None, key=lambda c: c[:3])
    if best is None:
        return None
    busy, _, where, kind, layers = best
    return Bottleneck(kind, where, -busy, _busiest(layers))
