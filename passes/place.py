"""``place``: every array group (``cim.program``) on a tile of the chip, so that one inference's traffic travels
the fewest bytes x hops.

The chip comes from the module's ``cim.chip`` attribute (see ``ChipGrid.from_module``). Groups are the
``cim.program`` ops of ``main`` in module order; a layer is the groups sharing a Location (one ONNX node).

Where work runs (``op_tiles``), which decides the traffic:

- a group's reads (``cim.mvm``, ``cim.adc``, ``cim.shift_add``) run on its own tile;
- a layer's partial sums are reduced on the tile of its first group, its *reduction point*: ``cim.accumulate``
  and ``cim.dequantize`` run there (``layer_tile``);
- a ``cim.solve`` runs on the tile of its first group (its first block), which gathers the solution;
- any other op (``cim.digital``, ``cim.quantize``, ``cim.im2col``, ``cim.bit_planes``) runs where its first
  operand that lives on a tile lives: the digital ops after a layer on the layer's reduction point, a residual add
  where its first operand (the layer it ends) is; work on the model inputs alone runs at the I/O port, which sits
  at tile (0, 0)'s router (so inputs and outputs travel from and to that position); ops without operands
  (constants) live everywhere.

The traffic (``traffic_flows``), bytes per inference and sample (a value's bytes: its dims after the first, the
batch, dynamic ones counting 1, times its element size):

- *activations*: every group receives the codes of its rows for every input vector, from where its bit planes
  are made (the producing layer's reduction point, or the port): ``vectors x rows x input_bits / 8`` bytes, with
  ``vectors`` the product of the planes' dims between the batch and the contraction axes (a shift-add's codes,
  for offset encoding, are among them);
- *partials*: every group sends its partial sums (int32) to its layer's reduction point;
- *solves*: every group of a ``cim.solve`` receives the right-hand side's entries of its block's rows (as
  *activations*, from where the right-hand side is made) and sends the solution's entries of its block's columns
  to the solve's tile (as *partials*), both in the right-hand side's element type, for each right-hand side;
- *operands*: an op's operand that lives on another tile travels there (a residual add's shortcut);
- *outputs*: the function's results travel to the port.

An offset-encoded shift-add also reads its layer's input codes: they travel inside its group's *activations* (the
bit planes carry them), so they are a flow of 0 bytes from where the codes are made.

The solver (``cimc.passes.placement.solve``) minimizes the sum of bytes x hops. Every ``cim.program`` then has
its group number (``cim.group``, ``cimc.ir.dialects.cim.array_groups`` reads it) and its tile
(``cim.tile = array<i64: row, col>``), and the module ``cim.placement``: ``status``, ``solver``, ``objective``,
``bound``, ``lower_bound``, ``naive_objective`` (wall time is left out of the IR, which must not depend on it;
the pass manager's timing reports it), and ``cim.traffic``: the flows, computed once here and read by code
generation and the reports (``traffic_flows``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cimc.ir.attributes import Attribute, DenseArrayAttr, DictAttr, IntAttr, StringAttr
from cimc.ir.core import Location, Operation, OpResult, Value
from cimc.ir.dialects.builtin import ModuleOp, ReturnOp
from cimc.ir.dialects.cim import (
    TILE_ATTRIBUTE,
    AccumulateOp,
    AdcOp,
    BitPlanesOp,
    DequantizeOp,
    MvmOp,
    ProgramOp,
    ShiftAddOp,
    array_groups,
    number_groups,
    ssa_values,
    value_numbers,
)
from cimc.ir.dialects.cim_solve import SolveOp
from cimc.ir.interpreter import main_function
from cimc.ir.pass_manager import Pass, PipelineError, register_pass
from cimc.ir.target.network import PORT_ROUTER
from cimc.ir.types import ElementType, TensorType
from cimc.passes.placement import ChipGrid, Instance, Placement, PlacementError, Tile, solve

#: The module attribute reporting the placement.
PLACEMENT_ATTRIBUTE = "cim.placement"
#: The module attribute recording the traffic: ``array<i64: src, dst, bytes, kind, value, ...>``, five numbers per
#: flow in ``traffic_flows`` order (``src``/``dst`` a group number, -1 the I/O port; ``kind`` an index of
#: ``FLOW_KINDS``; ``value`` an index of ``cimc.ir.dialects.cim.ssa_values``).
TRAFFIC_ATTRIBUTE = "cim.traffic"
#: The kinds of flow (see the module docstring).
FLOW_KINDS = ("activations", "partials", "operands", "outputs")

_I64 = ElementType("i64")
# homes of values that are on no group's tile
_AT_PORT, _CONSTANT = -1, -2


@dataclass(frozen=True)
class Flow:
    """Bytes of one value per inference and sample, sent from group ``src``'s tile to group ``dst``'s (group
    numbers, ``cimc.ir.dialects.cim.array_groups``; None is the I/O port). ``kind``: ``activations``,
    ``partials``, ``operands`` or ``outputs`` (see the module docstring); ``value`` is what travels (the bit planes
    for activations)."""

    src: int | None
    dst: int | None
    bytes: int
    kind: str
    value: Value


def value_bytes(value: Value) -> int:
    """A value's bytes per sample: its dims after the first (the batch; all of them for rank < 2), dynamic ones
    counting 1, times the element size."""
    ttype = value.type
    assert isinstance(ttype, TensorType)
    dims = ttype.shape[1:] if ttype.rank >= 2 else ttype.shape
    return math.prod(d or 1 for d in dims) * ttype.element.dtype.itemsize


class Traffic:
    """Where each op of a numbered module's ``main`` runs (a group index, or ``_AT_PORT`` / ``_CONSTANT``) and the
    flows it implies, computed from the IR: ``place`` does it once and records the flows (``traffic_flows`` reads
    them); ``op_tiles`` reads the homes alone (``flows=False``: no flow is made again)."""

    def __init__(self, module: ModuleOp, flows: bool = True) -> None:
        self.recording = flows
        self.groups = array_groups(module)
        index = {id(p): g for g, p in enumerate(self.groups)}
        first: dict[Location, int] = {}
        for g, program in enumerate(self.groups):
            first.setdefault(program.location, g)
        self.reduction = [first[p.location] for p in self.groups]
        self.home: dict[int, int] = {}  # id(op) -> home
        self.flows: list[Flow] = []
        func = main_function(module)
        for arg in func.arguments:
            self.home[id(arg)] = _AT_PORT
        for op in func.body.ops:
            if isinstance(op, ProgramOp):
                home = index[id(op)]
            elif isinstance(op, (MvmOp, AdcOp, ShiftAddOp)):
                home = self.of(op.operands[1] if isinstance(op, MvmOp) else op.operands[0])
                if isinstance(op, MvmOp):
                    self.add_activations(op, home)
                if isinstance(op, ShiftAddOp) and len(op.operands) > 1:  # offset codes: inside the activations
                    source = self.of(op.operands[1])
                    if source not in (home, _CONSTANT):
                        self.add(Flow(_port(source), home, 0, "activations", op.operands[1]))
            elif isinstance(op, (AccumulateOp, DequantizeOp)):
                source = self.of(op.operands[0])
                home = self.reduction[source] if source >= 0 else source
                self.add_operand_flows(op, home, "partials")
            elif isinstance(op, ReturnOp):
                self.add_operand_flows(op, _AT_PORT, "outputs")
                continue
            elif isinstance(op, SolveOp):
                home = self.add_solve(op)
            else:
                homes = [self.of(v) for v in op.operands]
                home = next((h for h in homes if h >= 0), _AT_PORT if _AT_PORT in homes else _CONSTANT)
                self.add_operand_flows(op, home, "operands")
            self.home[id(op)] = home
            for result in op.results:
                self.home[id(result)] = home

    def add(self, flow: Flow) -> None:
        """Record ``flow`` (when this walk records flows)."""
        if self.recording:
            self.flows.append(flow)

    def of(self, value: Value) -> int:
        """Where ``value`` lives."""
        return self.home[id(value)]

    def add_activations(self, mvm: MvmOp, group: int) -> None:
        """The codes of the group's rows for every input vector, from where its bit planes are made."""
        planes = mvm.operands[0]
        producer = planes.op if isinstance(planes, OpResult) else None
        if not isinstance(producer, BitPlanesOp):
            raise mvm.error("placement expects its bit planes from a 'cim.bit_planes' op")
        source = self.of(planes)
        if source in (group, _CONSTANT):
            return
        size = -(-mvm.vectors * self.groups[group].rows * producer.attr("input_bits") // 8)
        self.add(Flow(_port(source), group, size, "activations", planes))

    def add_solve(self, op: SolveOp) -> int:
        """The right-hand side's rows to each group of a solve and the solution's columns back to the first group,
        whose tile the solve runs on (returned)."""
        rhs = op.operands[0]
        assert isinstance(rhs.type, TensorType)
        per_entry = op.rhs_per_sample * rhs.type.element.dtype.itemsize
        sizes = op.attr("block")
        groups = [self.of(v) for v in op.operands[1:]]
        source, home = self.of(rhs), groups[0]
        for index, group in enumerate(groups):
            rows, columns = divmod(index, len(sizes))
            if source not in (group, _CONSTANT):
                self.add(Flow(_port(source), group, sizes[rows] * per_entry, "activations", rhs))
            if group != home:
                self.add(Flow(group, home, sizes[columns] * per_entry, "partials", op.result))
        return home

    def add_operand_flows(self, op: Operation, home: int, kind: str) -> None:
        """The operands of ``op`` that live elsewhere, sent to its tile."""
        for value in op.operands:
            source = self.of(value)
            if source != _CONSTANT and source != home:
                self.add(Flow(_port(source), _port(home), value_bytes(value), kind, value))


def _port(home: int) -> int | None:
    assert home != _CONSTANT
    return None if home == _AT_PORT else home


def traffic_attribute(flows: Sequence[Flow], module: ModuleOp) -> DenseArrayAttr:
    """``flows`` as the module's ``TRAFFIC_ATTRIBUTE``."""
    numbers = value_numbers(main_function(module))
    record = []
    for flow in flows:
        ends = [-1 if end is None else end for end in (flow.src, flow.dst)]
        record += [*ends, flow.bytes, FLOW_KINDS.index(flow.kind), numbers[flow.value]]
    return DenseArrayAttr(_I64, tuple(record))


def traffic_flows(module: ModuleOp) -> list[Flow]:
    """The traffic of one inference between the tiles of ``module``'s groups, in op order (see the module
    docstring), as ``place`` recorded it (``TRAFFIC_ATTRIBUTE``): what placement minimized, what code generation
    sends and what the reports load on links."""
    attr = module.attributes.get(TRAFFIC_ATTRIBUTE)
    if not isinstance(attr, DenseArrayAttr) or len(attr.value) % 5:
        raise module.error(f"has no '{TRAFFIC_ATTRIBUTE}' of five numbers per flow: run 'place' first")
    values = ssa_values(main_function(module))
    groups = len(array_groups(module))
    flows = []
    for at in range(0, len(attr.value), 5):
        src, dst, size, kind, value = attr.value[at : at + 5]
        if not (-1 <= src < groups and -1 <= dst < groups and size >= 0 and 0 <= kind < len(FLOW_KINDS)) or not (
            0 <= value < len(values)
        ):
            raise module.error(f"'{TRAFFIC_ATTRIBUTE}' flow {at // 5} names a group, kind or value that does not exist")
        ends = [None if end < 0 else end for end in (src, dst)]
        flows.append(Flow(ends[0], ends[1], size, FLOW_KINDS[kind], values[value]))
    return flows


def op_tiles(module: ModuleOp) -> dict[Operation, Tile | None]:
    """The tile each op of a placed ``main`` runs on (see the module docstring); None for work at the I/O port (on
    model inputs alone). Constants (ops on constants alone) and ``func.return`` run nowhere and are left out."""
    traffic = Traffic(module, flows=False)
    tiles = [tile_of(p) for p in traffic.groups]
    return {
        op: tiles[home] if home >= 0 else None
        for op in main_function(module).body.ops
        if (home := traffic.home.get(id(op), _CONSTANT)) != _CONSTANT
    }


def tile_of(program: ProgramOp) -> Tile:
    """The tile ``place`` gave ``program``."""
    attr = program.attributes.get(TILE_ATTRIBUTE)
    if not isinstance(attr, DenseArrayAttr) or len(attr.value) != 2:
        raise program.error(f"has no '{TILE_ATTRIBUTE} = array<i64: row, col>': run 'place' first")
    return (attr.value[0], attr.value[1])


def layer_tile(op: Operation) -> Tile:
    """The reduction point of ``op``'s layer: the tile of the first ``cim.program`` sharing ``op``'s Location, where
    the layer's ``cim.accumulate`` and ``cim.dequantize`` run. (For every op at once, see ``op_tiles``.)"""
    block = op.parent
    first = next(
        (p for p in (block.ops if block is not None else ()) if isinstance(p, ProgramOp) and p.location == op.location),
        None,
    )
    if first is None:
        raise op.error("belongs to no crossbar layer: no 'cim.program' shares its location")
    return tile_of(first)


def placement_instance(traffic: Traffic, grid: ChipGrid) -> Instance:
    """The placement problem of a module's groups on ``grid`` (``traffic``: their flows): flows merged
    per pair, the port's as anchors."""
    layers: dict[Location, int] = {}
    for program in traffic.groups:
        layers.setdefault(program.location, len(layers))
    pairs: dict[tuple[int, int], int] = {}
    anchors: dict[int, int] = {}
    for flow in traffic.flows:
        if not flow.bytes:
            continue
        if flow.src is not None and flow.dst is not None:
            key = (min(flow.src, flow.dst), max(flow.src, flow.dst))
            pairs[key] = pairs.get(key, 0) + flow.bytes
        elif flow.src is not None or flow.dst is not None:
            group = flow.src if flow.src is not None else flow.dst
            assert group is not None
            anchors[group] = anchors.get(group, 0) + flow.bytes
    return Instance(
        grid,
        tuple(p.arrays for p in traffic.groups),
        tuple(layers[p.location] for p in traffic.groups),
        tuple((a, b, n) for (a, b), n in sorted(pairs.items())),
        tuple((g, PORT_ROUTER, n) for g, n in sorted(anchors.items())),
    )


def placement_attribute(result: Placement) -> DictAttr:
    """The module's ``cim.placement`` report (no wall time: the IR must not depend on it)."""
    items: Sequence[tuple[str, Attribute]] = (
        ("status", StringAttr(result.status)),
        ("solver", StringAttr(result.solver)),
        ("objective", IntAttr(result.objective)),
        ("bound", IntAttr(result.bound)),
        ("lower_bound", IntAttr(result.lower_bound)),
        ("naive_objective", IntAttr(result.naive_objective)),
    )
    return DictAttr(tuple(items))


def check_placed(module: ModuleOp, grid: ChipGrid) -> None:
    """What ``place`` makes illegal: a group without a tile, on a faulty tile, or a tile over capacity."""
    load: dict[Tile, int] = {}
    for program in array_groups(module):
        tile = tile_of(program)
        if tile in grid.faulty or not (0 <= tile[0] < grid.rows and 0 <= tile[1] < grid.cols):
            raise program.error(f"placed on tile {tile}, which is faulty or off the {grid.rows}x{grid.cols} grid")
        load[tile] = load.get(tile, 0) + program.arrays
        if load[tile] > grid.capacity:
            raise program.error(f"tile {tile} holds {load[tile]} arrays, more than its {grid.capacity}")


@register_pass
@dataclass(frozen=True)
class PlacePass(Pass):
    """Give every ``cim.program`` a tile of the module's chip, minimizing traffic x hops with ``effort`` units of
    work (CP-SAT deterministic seconds, and local search iterations in proportion: not wall seconds, so the
    placement is the same on an idle or a busy machine); ``seed`` and ``workers`` fix the solver's runs."""

    name = "place"
    effort: float = 10.0
    seed: int = 0
    workers: int = 1

    def __post_init__(self) -> None:
        if not self.effort > 0 or self.seed < 0 or self.workers < 1:
            raise PipelineError(
                f"pass 'place' options: 'effort' must be positive, 'seed' non-negative and 'workers' at least 1, "
                f"got {self.effort}, {self.seed} and {self.workers}"
            )

    def run(self, module: ModuleOp) -> None:
        grid = ChipGrid.from_module(module)
        number_groups(module)
        traffic = Traffic(module)
        instance = placement_instance(traffic, grid)
        try:
            result = solve(instance, self.effort, self.seed, self.workers)
        except PlacementError as exc:
            raise PlacementError(f"pass 'place': {exc}") from None
        for program, tile in zip(traffic.groups, result.tiles):
            program.attributes[TILE_ATTRIBUTE] = DenseArrayAttr(_I64, tile)
        module.attributes[PLACEMENT_ATTRIBUTE] = placement_attribute(result)
        module.attributes[TRAFFIC_ATTRIBUTE] = traffic_attribute(traffic.flows, module)
        check_placed(module, grid)
