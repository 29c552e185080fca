"""Placement of array groups on the tiles of a chip: the instance, the baselines, the solver and the bounds.

The solver is pure (no IR; ``ChipGrid.from_module`` only reads the chip attribute): an ``Instance`` in, a
``Placement`` out. Group ``g`` holds ``sizes[g]`` arrays and goes to one usable tile (not faulty) of a
``rows x cols`` mesh or torus; a tile holds at most ``capacity`` arrays. The objective is the traffic of one
inference times the hops it travels: ``sum bytes x hops(tile(a), tile(b))`` over the flows between groups, plus
``sum bytes x hops(tile(g), p)`` over the flows between a group and a fixed tile ``p`` (the chip's I/O port). Hops
are Manhattan distances, with the wrap-around on a torus.

How it is solved (``solve``):

- *naive*: groups in module order, each on the first tile in row-major order with room (largest first where
  module order leaves a group without a tile): the baseline reported;
- *warm start*: the usable tiles in snake order (row 0 left to right, row 1 right to left, ...), layer after layer,
  each layer's groups largest first, each on the first tile with room from where the previous layer ended
  (first-fit-decreasing within layer order); where that leaves a group without a tile, every group largest first
  from the first tile (plain first-fit-decreasing packs what layer order cannot);
- *exact*, for instances of at most ``EXACT_MAX_GROUPS`` (64) groups and ``EXACT_MAX_BOOLEANS`` (4096)
  group-tile pairs: the warm start polished by the local search below, then one CP-SAT model with it as hint: a
  boolean per group and tile, exactly one tile per group, capacity per tile; hops written as cuts (the Manhattan
  distance of two tiles is the number of row and column cuts between them, on a torus the number of half-rings,
  so each flow pays its bytes on every cut it crosses: linear and exact); groups that could trade places (same
  size and flows) take their tiles in order; and every star of flows bounded below by ``StarBounds``. Those
  redundant bounds carry what capacity implies: the LP relaxation of an assignment spreads each group over every
  tile and bounds nothing. Reports OPTIMAL when CP-SAT proves it within its budget, else FEASIBLE with its best
  bound;
- *hierarchical*, for bigger instances: layers onto contiguous regions of tiles (the warm start's layer-order
  packing, or the same along a generalized Hilbert curve, whose runs of consecutive tiles are compact blocks rather
  than strips, whichever costs less); then the local search;
- *local search* (``local_search``; numba kernels in ``cimc.passes.local_search``, every step costed from the
  flows it changes): each layer rebuilt around the best tile for its reduction point (its groups nearest first),
  then each two consecutive layers together (the second's groups around its own reduction point),
  a descent over moves and swaps, then rounds of simulated annealing (moves and swaps to tiles within
  ``NEAR_HOPS`` of a flow partner or of the group, seeded), rebuilds and descent from the best placement so far,
  until rounds stop improving it.

Budgets are work, not seconds: ``effort`` is CP-SAT's deterministic time (its own measure of the work done, in
units close to seconds on a 2020s core) and, in proportion, the local search's proposals and rounds (see
``local_search``); no step reads the clock. CP-SAT runs with ``random_seed`` and ``num_workers`` as given (several
workers interleave their search in fixed batches), the local search from a seeded generator. So the same instance,
effort, seed and worker count give the same placement on an idle or a busy machine, fast or slow: only the wall
time differs. OR-Tools is imported only for an instance small enough for CP-SAT.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cimc.ir.dialects.builtin import ModuleOp
from cimc.ir.dialects.cim import CHIP_ATTRIBUTE
from cimc.ir.pass_manager import PipelineError
from cimc.ir.target.chip import ChipError, Mesh, chip_of
from cimc.ir.target.network import Tile, hops

#: The whole instance goes to one CP-SAT model up to this many groups ...
EXACT_MAX_GROUPS = 64
#: ... and this many group-tile booleans.
EXACT_MAX_BOOLEANS = 4096
#: Annealing proposals per group in a round of the local search ...
ANNEAL_ITERATIONS_PER_GROUP = 300
#: ... and at most this many per unit of effort: a fixed rate, so the count does not depend on the machine (the
#: numba loop runs a few million a second on a 2020s core, so a unit of effort buys far less wall time of it than
#: of CP-SAT's deterministic time).
ANNEAL_RATE = 100_000
#: The layer rebuilds take one layer at a time, then two consecutive layers together, which lets a layer make room
#: for the next (with them, 300 proposals a group instead of 600 place CIFAR ResNet-18 within 1.1092-1.1104 x the
#: lower bound over seeds 0-5 instead of 1.1069-1.1149, in less work; onnx's ResNet-50 at 1.151 instead of 1.159).
REBUILD_SPANS = (1, 2)
#: The local search stops after this many rounds in a row that improve nothing ...
STALLED_ROUNDS = 3
#: ... or after this many rounds per unit of effort.
ROUNDS_PER_EFFORT = 2
#: The annealing proposes tiles within this many hops of a flow partner or of the group.
NEAR_HOPS = 2
#: The share of the effort the local search takes before the whole instance's CP-SAT model (which has the rest).
POLISH_SHARE = 0.4


class PlacementError(PipelineError):
    """The groups cannot be placed: no chip attached, a group larger than a tile, or too few usable arrays."""


@dataclass(frozen=True)
class ChipGrid:
    """The part of a chip that placement needs: the tile grid, its wrap-around, the arrays a tile holds and the
    faulty tiles (never used)."""

    rows: int
    cols: int
    torus: bool
    capacity: int
    faulty: frozenset[Tile] = frozenset()

    def __post_init__(self) -> None:
        if self.rows < 1 or self.cols < 1 or self.capacity < 1:
            raise PlacementError(
                f"chip: mesh_rows, mesh_cols and arrays_per_tile must be positive, got {self.rows}, {self.cols} "
                f"and {self.capacity}"
            )
        outside = sorted(t for t in self.faulty if not (0 <= t[0] < self.rows and 0 <= t[1] < self.cols))
        if outside:
            raise PlacementError(f"chip: faulty tile {outside[0]} is outside the {self.rows}x{self.cols} grid")

    @staticmethod
    def from_module(module: ModuleOp) -> ChipGrid:
        """The grid of the chip attached to ``module`` (its ``cim.chip``, decoded by ``chip_of``)."""
        try:
            chip = chip_of(module)
        except ChipError as exc:
            raise PlacementError(str(exc)) from None
        if chip is None:
            raise PlacementError(
                f"the module has no '{CHIP_ATTRIBUTE}' attribute: attach a chip first: the pipeline does it, or "
                "print a preset's with cimc.ir.target.chip.load_chip(name).to_attribute()"
            )
        mesh = chip.mesh
        return ChipGrid(mesh.rows, mesh.cols, mesh.torus, chip.tile.arrays, frozenset(chip.faulty_tiles))

    @functools.cached_property
    def mesh(self) -> Mesh:
        """The grid as the chip's ``Mesh``."""
        return Mesh(self.rows, self.cols, self.torus)

    @functools.cached_property
    def hops(self) -> Callable[[Tile, Tile], int]:
        """``hops(a, b)``: links between tiles ``a`` and ``b`` on their XY route (``cimc.ir.target.network.hops`` on
        this grid's mesh, bound once: placement asks it hundreds of thousands of times)."""
        return functools.partial(hops, self.mesh)

    @functools.cached_property
    def hop_matrix(self) -> np.ndarray:
        """``hops`` between every two usable tiles (``usable`` order), int64 [tiles, tiles]."""
        tiles = np.array(self.usable, dtype=np.int64).reshape(-1, 2)
        total = np.zeros((len(tiles), len(tiles)), dtype=np.int64)
        for axis, size in enumerate((self.rows, self.cols)):
            apart = np.abs(tiles[:, None, axis] - tiles[None, :, axis])
            total += np.minimum(apart, size - apart) if self.torus else apart
        return total

    @property
    def usable(self) -> list[Tile]:
        """The tiles that are not faulty, in row-major order."""
        return [(r, c) for r in range(self.rows) for c in range(self.cols) if (r, c) not in self.faulty]

    def snake(self) -> list[Tile]:
        """The usable tiles row by row, every other row right to left: consecutive tiles are neighbours."""
        order = [(r, c if r % 2 == 0 else self.cols - 1 - c) for r in range(self.rows) for c in range(self.cols)]
        return [t for t in order if t not in self.faulty]

    def curve(self) -> list[Tile]:
        """The usable tiles along a generalized Hilbert curve (any rectangle): consecutive tiles are neighbours
        (but for one diagonal step where one side is odd and the other even), and every run of consecutive tiles
        is a compact block, not a strip."""
        return [t for t in _gilbert(self.rows, self.cols) if t not in self.faulty]


def _gilbert(rows: int, cols: int) -> Iterator[Tile]:
    """Every tile of a ``rows x cols`` grid once, along Červený's generalized Hilbert curve ("gilbert", 2018, public
    domain): split the longer side in two halves, or the rectangle in three (up, across, down), recursively."""

    def sign(v: int) -> int:
        return (v > 0) - (v < 0)

    def walk(x: int, y: int, ax: int, ay: int, bx: int, by: int) -> Iterator[Tile]:
        # (x, y) = (col, row); a = the major axis, b = the minor one
        w, h = abs(ax + ay), abs(bx + by)
        dax, day, dbx, dby = sign(ax), sign(ay), sign(bx), sign(by)
        if h == 1 or w == 1:
            step_x, step_y, n = (dax, day, w) if h == 1 else (dbx, dby, h)
            for _ in range(n):
                yield (y, x)
                x, y = x + step_x, y + step_y
            return
        ax2, ay2, bx2, by2 = ax // 2, ay // 2, bx // 2, by // 2
        w2, h2 = abs(ax2 + ay2), abs(bx2 + by2)
        if 2 * w > 3 * h:
            if w2 % 2 and w > 2:
                ax2, ay2 = ax2 + dax, ay2 + day
            yield from walk(x, y, ax2, ay2, bx, by)
            yield from walk(x + ax2, y + ay2, ax - ax2, ay - ay2, bx, by)
        else:
            if h2 % 2 and h > 2:
                bx2, by2 = bx2 + dbx, by2 + dby
            yield from walk(x, y, bx2, by2, ax2, ay2)
            yield from walk(x + bx2, y + by2, ax, ay, bx - bx2, by - by2)
            yield from walk(
                x + (ax - dax) + (bx2 - dbx), y + (ay - day) + (by2 - dby), -bx2, -by2, -(ax - ax2), -(ay - ay2)
            )

    yield from walk(0, 0, cols, 0, 0, rows) if cols >= rows else walk(0, 0, 0, rows, cols, 0)


@dataclass(frozen=True)
class Instance:
    """What placement optimizes: groups of arrays, their layers, and the traffic between them.

    ``layers[g]`` numbers group ``g``'s layer; a layer's first group (lowest index) is where its partial sums are
    reduced. ``flows`` are ``(group a, group b, bytes)``: bytes per inference that cross ``hops(a, b)`` links;
    ``anchors`` are ``(group, tile, bytes)`` with a fixed tile (the I/O port).
    """

    grid: ChipGrid
    sizes: tuple[int, ...]
    layers: tuple[int, ...]
    flows: tuple[tuple[int, int, int], ...] = ()
    anchors: tuple[tuple[int, Tile, int], ...] = ()

    def __post_init__(self) -> None:
        assert len(self.sizes) == len(self.layers)
        assert all(0 <= a < len(self.sizes) and 0 <= b < len(self.sizes) for a, b, _ in self.flows)

    def objective(self, tiles: Sequence[Tile]) -> int:
        """Bytes x hops of a placement (``tiles[g]`` the tile of group ``g``)."""
        hops = self.grid.hops
        return sum(n * hops(tiles[a], tiles[b]) for a, b, n in self.flows) + sum(
            n * hops(tiles[g], p) for g, p, n in self.anchors
        )

    def check(self, tiles: Sequence[Tile]) -> None:
        """Assert that a placement gives every group a usable tile and overfills none."""
        assert len(tiles) == len(self.sizes)
        load: dict[Tile, int] = {}
        for g, t in enumerate(tiles):
            assert t not in self.grid.faulty, f"group {g} on faulty tile {t}"
            assert 0 <= t[0] < self.grid.rows and 0 <= t[1] < self.grid.cols, f"group {g} off the grid at {t}"
            load[t] = load.get(t, 0) + self.sizes[g]
        over = [t for t, n in load.items() if n > self.grid.capacity]
        assert not over, f"tile {over[0]} holds {load[over[0]]} arrays, more than {self.grid.capacity}"


@dataclass(frozen=True)
class Placement:
    """A solved placement and how good it is.

    ``status``: ``OPTIMAL`` or ``FEASIBLE`` (CP-SAT on the whole instance), else the heuristic that made it
    (``hierarchical``, or ``local-search`` when CP-SAT found nothing within its budget); ``solver`` says what ran.
    ``bound``: CP-SAT's best bound on the whole instance (0 when it did not run on it); ``lower_bound``: the stars'
    bound (``star_lower_bound``); ``naive_objective``: the naive placement's (-1 where it finds no room);
    ``seconds``: wall time (reported, never read by the solver: the placement does not depend on it).
    """

    tiles: tuple[Tile, ...]
    status: str
    solver: str
    objective: int
    bound: int
    lower_bound: int
    naive_objective: int
    seconds: float


# --- packing -------------------------------------------------------------------------------------------------


def check_capacity(instance: Instance) -> None:
    """Clear errors for what no placement can fix: a group larger than a tile, more arrays than usable tiles."""
    grid = instance.grid
    if not instance.sizes:
        return
    largest = max(instance.sizes)
    if largest > grid.capacity:
        g = instance.sizes.index(largest)
        raise PlacementError(
            f"group {g} holds {largest} arrays, more than a tile's {grid.capacity}: run 'split-groups' first"
        )
    needed, usable = sum(instance.sizes), len(grid.usable)
    if needed > usable * grid.capacity:
        raise PlacementError(
            f"the model needs {needed} arrays but the chip has {usable * grid.capacity} usable ({usable} usable "
            f"tiles of {grid.rows * grid.cols}, {len(grid.faulty)} faulty, x {grid.capacity} arrays per tile)"
        )


def first_fit(instance: Instance, order: Sequence[Tile], groups: Sequence[int], *, resume: bool) -> list[Tile] | None:
    """Each group of ``groups`` in turn on the first tile of ``order`` with room (with ``resume``: the first from
    where the previous layer's groups ended, wrapping round); None when a group finds no tile."""
    room = [instance.grid.capacity] * len(order)
    tiles: list[Tile | None] = [None] * len(instance.sizes)
    start, layer, last = 0, None, 0
    for g in groups:
        if resume and instance.layers[g] != layer:
            layer, start = instance.layers[g], last
        size = instance.sizes[g]
        for step in range(len(order)):
            i = (start + step) % len(order)
            if room[i] >= size:
                room[i] -= size
                tiles[g], last = order[i], i
                break
        else:
            return None
    return tiles  # type: ignore[return-value]


def naive_placement(instance: Instance) -> list[Tile] | None:
    """The baseline: groups in module order, each on the first tile in row-major order with room; largest first
    where module order leaves a group without a tile (None when that fails too)."""
    n = len(instance.sizes)
    order = instance.grid.usable
    return first_fit(instance, order, range(n), resume=False) or first_fit(
        instance, order, sorted(range(n), key=lambda g: (-instance.sizes[g], g)), resume=False
    )


def layer_packing(instance: Instance, order: Sequence[Tile]) -> list[Tile]:
    """First-fit-decreasing within layer order along ``order``; plain first-fit-decreasing where that fails."""
    n = len(instance.sizes)
    rank = _layer_rank(instance)
    layered = sorted(range(n), key=lambda g: (rank[instance.layers[g]], -instance.sizes[g], g))
    tiles = first_fit(instance, order, layered, resume=True)
    if tiles is None:
        tiles = first_fit(instance, order, sorted(range(n), key=lambda g: (-instance.sizes[g], g)), resume=False)
    if tiles is None:
        raise PlacementError(
            f"first-fit-decreasing could not pack {sum(instance.sizes)} arrays in groups of "
            f"{sorted(set(instance.sizes))} onto {len(order)} tiles of {instance.grid.capacity}: "
            "use a chip with more tiles or more arrays per tile"
        )
    return tiles


def _layer_rank(instance: Instance) -> dict[int, int]:
    """Each layer's position in module order (the order of its first group)."""
    rank: dict[int, int] = {}
    for layer in instance.layers:
        rank.setdefault(layer, len(rank))
    return rank


# --- lower bound ---------------------------------------------------------------------------------------------


def flow_centers(instance: Instance) -> list[int]:
    """For each flow, the end it is counted from in the stars the flows are cut into (see ``flow_stars``): the
    end that is its layer's reduction point, or the lower-numbered one where both or neither is."""
    firsts: dict[int, int] = {}
    for g, layer in enumerate(instance.layers):
        firsts.setdefault(layer, g)
    reduction = set(firsts.values())
    centers = []
    for a, b, _ in instance.flows:
        low, high = min(a, b), max(a, b)
        centers.append(high if high in reduction and low not in reduction else low)
    return centers


def flow_stars(instance: Instance) -> dict[int, dict[int, int]]:
    """The flows between groups cut into stars, each flow in one: ``{center: {other end: bytes}}``."""
    stars: dict[int, dict[int, int]] = {}
    for (a, b, n), center in zip(instance.flows, flow_centers(instance)):
        if a != b:
            star = stars.setdefault(center, {})
            other = b if a == center else a
            star[other] = star.get(other, 0) + n
    return stars


class StarBounds:
    """Lower bounds on the cost of a star of flows (one group and the groups it exchanges bytes with) placed
    alone: the star's other groups may split across tiles, but a tile takes no more of their arrays than a subset
    of them fills (and the center's tile, no more than is left beside the center); from each possible tile of the
    center, they fill the tiles around it nearest first, the most bytes per array first. That is the optimum of
    the relaxation, so no placement of the star costs less."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        hops = instance.grid.hop_matrix
        self.levels = np.arange(hops.max(initial=0) + 1)
        # usable tiles at each distance from each usable tile: [tile, distance]
        self.per_level = (hops[:, :, None] == self.levels[None, None, :]).sum(axis=1)

    def bound(self, center: int, star: dict[int, int]) -> float:
        """The least bytes x hops of the flows between ``center`` and the groups of ``star`` (bytes by group)."""
        sizes = self.instance.sizes
        capacity = self.instance.grid.capacity
        groups = sorted(star, key=lambda g: -star[g] / sizes[g])
        arrays = np.cumsum([0] + [sizes[g] for g in groups], dtype=np.float64)
        weight = np.cumsum([0] + [star[g] for g in groups], dtype=np.float64)
        spoke_sizes = [sizes[g] for g in groups]
        room = self.per_level * most_arrays(spoke_sizes, capacity)
        room[:, 0] = most_arrays(spoke_sizes, capacity - sizes[center])
        reach = np.cumsum(room, axis=1)  # arrays within each distance, per center tile
        filled = np.interp(np.minimum(reach, arrays[-1]), arrays, weight)  # bytes placed within each distance
        placed = np.diff(filled, axis=1, prepend=0.0)
        return float((placed * self.levels[None, :]).sum(axis=1).min())


def star_lower_bound(instance: Instance) -> int:
    """A lower bound on the objective: the sum of the bounds of the stars the flows are cut into (``flow_stars``;
    each layer's partial sums are one star, the activations a layer sends join its star), each placed alone
    (``StarBounds``): what the layers' competition for the same tiles adds is left out. Flows to the port count
    0."""
    bounds = StarBounds(instance)
    total = sum(bounds.bound(center, star) for center, star in flow_stars(instance).items())
    return whole_bound(total)


def whole_bound(value: float) -> int:
    """A bound computed in floating point as an integer one: rounded up (objectives are integers), after a
    relative allowance for rounding errors."""
    return max(0, math.ceil(value - 1e-9 * max(1.0, value)))


def most_arrays(sizes: Sequence[int], limit: int) -> int:
    """The most arrays a subset of groups of ``sizes`` holds within ``limit`` (a subset sum, by bit set)."""
    reachable, mask = 1, (1 << (limit + 1)) - 1
    for size in sizes:
        reachable |= (reachable << size) & mask
    return reachable.bit_length() - 1


# --- CP-SAT --------------------------------------------------------------------------------------------------


def axis_cuts(size: int, torus: bool) -> tuple[list[frozenset[int]], int]:
    """Cuts of one axis and their scale: for any two positions, the cuts that separate them number ``scale`` x
    their hops. A line has a cut after each position; an even cycle the halves starting at each of its first
    ``size / 2`` positions; an odd cycle every run of ``(size - 1) / 2`` positions, each hop counted twice."""
    if not torus or size <= 2:
        return [frozenset(range(k + 1)) for k in range(size - 1)], 1
    if size % 2 == 0:
        return [frozenset((k + i) % size for i in range(size // 2)) for k in range(size // 2)], 1
    return [frozenset((k + i) % size for i in range(size // 2)) for k in range(size)], 2


@dataclass
class _Subproblem:
    """Free groups over candidate tiles, the rest of the placement fixed: CP-SAT's part of a placement."""

    free: list[int]
    candidates: dict[int, list[Tile]]
    room: dict[Tile, int]
    pairs: list[tuple[int, int, int]]  # flows between free groups
    linear: dict[int, dict[Tile, int]]  # per free group and tile: bytes x hops to fixed ends
    hint: dict[int, Tile] = field(default_factory=dict)
    #: lower bounds on sums of flows' costs: (indices into ``pairs``, bytes x hops)
    floors: list[tuple[list[int], int]] = field(default_factory=list)

    def interchangeable(self, sizes: Sequence[int]) -> list[list[int]]:
        """Classes of free groups that can trade places without changing cost or feasibility: same size,
        candidates, fixed costs and flows."""
        partners: dict[int, list[tuple[int, int]]] = {g: [] for g in self.free}
        for a, b, n in self.pairs:
            partners[a].append((b, n))
            partners[b].append((a, n))
        classes: dict[object, list[int]] = {}
        for g in self.free:
            key = (
                sizes[g],
                tuple(self.candidates[g]),
                tuple(sorted(self.linear.get(g, {}).items())),
                tuple(sorted(partners[g])),
            )
            classes.setdefault(key, []).append(g)
        return [members for members in classes.values() if len(members) > 1]


def _cp_sat(
    instance: Instance, sub: _Subproblem, effort: float, seed: int, workers: int
) -> tuple[dict[int, Tile] | None, str, int, int]:
    """Solve ``sub`` with CP-SAT within ``effort`` deterministic seconds (no wall-clock limit: the result must
    not depend on the machine's load): the assignment (None if none was found), the status name, the
    subproblem's objective and best bound (in bytes x hops)."""
    from ortools.sat.python import cp_model

    grid = instance.grid
    model = cp_model.CpModel()
    x = {(g, t): model.new_bool_var(f"x{g}_{t[0]}_{t[1]}") for g in sub.free for t in sub.candidates[g]}
    for g in sub.free:
        model.add_exactly_one(x[g, t] for t in sub.candidates[g])
    on_tile: dict[Tile, list[int]] = {}
    for g, t in x:
        on_tile.setdefault(t, []).append(g)
    for t, groups in on_tile.items():
        if sum(instance.sizes[g] for g in groups) > sub.room[t]:
            model.add(sum(instance.sizes[g] * x[g, t] for g in groups) <= sub.room[t])
    row_cuts, row_scale = axis_cuts(grid.rows, grid.torus)
    col_cuts, col_scale = axis_cuts(grid.cols, grid.torus)
    scale = max(row_scale, col_scale)
    cuts = [(cut, 0, scale // row_scale) for cut in row_cuts] + [(cut, 1, scale // col_scale) for cut in col_cuts]
    fixed_ends = []
    for g in sub.free:
        row = sub.linear.get(g, {})
        fixed_ends += [scale * row[t] * x[g, t] for t in sub.candidates[g] if row.get(t)]
    pair_costs = []  # per pair: its bytes x the cuts it crosses
    for a, b, n in sub.pairs:
        crossings: list[Any] = []  # cut weights (constants) and weighted crossing booleans
        for index, (cut, axis, weight) in enumerate(cuts):
            inside_a = [t for t in sub.candidates[a] if t[axis] in cut]
            inside_b = [t for t in sub.candidates[b] if t[axis] in cut]
            if len(inside_a) in (0, len(sub.candidates[a])) and len(inside_b) in (0, len(sub.candidates[b])):
                # both ends on known sides of this cut: a constant
                if (len(inside_a) == 0) != (len(inside_b) == 0):
                    crossings.append(weight)
                continue
            side_a = sum(x[a, t] for t in inside_a)
            side_b = sum(x[b, t] for t in inside_b)
            crossed = model.new_bool_var(f"cut{a}_{b}_{index}")
            model.add(crossed >= side_a - side_b)
            model.add(crossed >= side_b - side_a)
            crossings.append(weight * crossed)
        pair_costs.append(n * sum(crossings))
    model.minimize(sum(fixed_ends) + sum(pair_costs))
    for indices, floor in sub.floors:
        model.add(sum(pair_costs[i] for i in indices) >= scale * floor)
    hint = dict(sub.hint)
    for members in sub.interchangeable(instance.sizes):
        # interchangeable groups take their tiles in candidate order (the hint too, reordered to match)
        order = {t: i for i, t in enumerate(sub.candidates[members[0]])}
        position = [sum(i * x[g, t] for t, i in order.items()) for g in members]
        for before, after in zip(position, position[1:]):
            model.add(before <= after)
        if all(g in hint for g in members):
            for g, t in zip(members, sorted((hint[g] for g in members), key=order.__getitem__)):
                hint[g] = t
    for g, t in hint.items():
        for u in sub.candidates[g]:
            model.add_hint(x[g, u], u == t)
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = effort
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = workers
    # several workers share solutions as they find them, which depends on the threads' timing; interleaved, they
    # run their strategies in fixed batches and the search repeats (OR-Tools' sat_parameters.proto)
    solver.parameters.interleave_search = workers > 1
    status = solver.solve(model)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, name, 0, 0
    tiles = {g: t for (g, t), var in x.items() if solver.boolean_value(var)}
    objective = round(solver.objective_value) // scale
    bound = -(-math.ceil(solver.best_objective_bound - 1e-6) // scale)
    return tiles, name, objective, bound


# --- local search --------------------------------------------------------------------------------------------


def local_search(instance: Instance, start: Sequence[Tile], effort: float, seed: int) -> list[Tile]:
    """``start`` improved by the local search of ``cimc.passes.local_search`` (numba): every layer rebuilt around
    its best reduction point, then every two consecutive layers (``REBUILD_SPANS``), then a descent; then rounds
    of annealing (``ANNEAL_ITERATIONS_PER_GROUP`` proposals a group, at most ``ANNEAL_RATE`` per unit of
    ``effort``), rebuilds and descent, each round from the best placement so far, until ``STALLED_ROUNDS`` rounds
    in a row improve nothing or ``ROUNDS_PER_EFFORT`` x ``effort`` rounds have run. Every budget is a count: the
    result depends on the instance, effort and seed only."""
    from cimc.passes import local_search as kernels

    n = len(instance.sizes)
    if n < 2:
        return list(start)
    arrays = _SearchArrays(instance)
    at = arrays.index(start)
    hops, sizes, capacity, links = arrays.hops, arrays.sizes, instance.grid.capacity, arrays.links

    def settle(placement: np.ndarray) -> tuple[np.ndarray, int]:
        gained = 0
        for span in REBUILD_SPANS:
            placement, gain = kernels.rebuild_layers(
                placement,
                sizes,
                capacity,
                hops,
                arrays.nearest,
                *links,
                arrays.layer_start,
                arrays.layer_groups,
                n,
                span,
            )
            gained += gain
        settled, descended = kernels.descend(placement, sizes, capacity, hops, *links, n)
        return settled, gained + descended

    best, _ = settle(at)
    iterations = min(ANNEAL_ITERATIONS_PER_GROUP * n, int(ANNEAL_RATE * effort))
    stalled, rounds = 0, max(1, int(ROUNDS_PER_EFFORT * effort))
    offsets, partner, weight, anchored, fixed = links
    for round_ in range(rounds if iterations > 0 else 0):
        annealed, annealing = kernels.anneal(
            best, sizes, capacity, hops, offsets, partner, weight, arrays.cumulative, anchored, fixed,
            arrays.near_start, arrays.near, iterations, seed * rounds + round_,
        )  # fmt: skip
        settled, settling = settle(annealed)
        if annealing + settling < 0:
            best, stalled = settled, 0
        else:
            stalled += 1
            if stalled == STALLED_ROUNDS:
                break
    return arrays.tiles(best)


class _SearchArrays:
    """An instance as the arrays the numba local search reads (see ``cimc.passes.local_search``): tiles as indices
    into the usable tiles, their hops, each tile's others by hops, the tiles within ``NEAR_HOPS`` of each (CSR),
    the flows between groups as a symmetric adjacency (CSR) with running sums of bytes, the flows to fixed tiles as
    a cost per group and tile, and the layers' groups (CSR, each layer's reduction point first)."""

    def __init__(self, instance: Instance) -> None:
        grid, n = instance.grid, len(instance.sizes)
        self.usable = grid.usable
        self.hops = grid.hop_matrix
        self.sizes = np.array(instance.sizes, dtype=np.int64)
        self.nearest = np.argsort(self.hops, axis=1, kind="stable")
        near = self.hops <= NEAR_HOPS
        self.near_start = np.concatenate([[0], np.cumsum(near.sum(axis=1))]).astype(np.int64)
        self.near = np.nonzero(near)[1].astype(np.int64)
        merged: list[dict[int, int]] = [{} for _ in range(n)]
        for a, b, size in instance.flows:
            if a != b:
                merged[a][b] = merged[a].get(b, 0) + size
                merged[b][a] = merged[b].get(a, 0) + size
        start = np.concatenate([[0], np.cumsum([len(d) for d in merged])]).astype(np.int64)
        partner = np.array([h for d in merged for h in d], dtype=np.int64)
        weight = np.array([size for d in merged for size in d.values()], dtype=np.int64)
        # each group's running sum of its flows' bytes, to draw a partner by bytes
        self.cumulative = np.concatenate(
            [np.cumsum(weight[start[g] : start[g + 1]], dtype=np.float64) for g in range(n)]
        )
        anchored = np.full(n, -1, dtype=np.int64)
        rows: list[np.ndarray] = []
        for g, port, size in instance.anchors:
            if anchored[g] < 0:
                anchored[g] = len(rows)
                rows.append(np.zeros(len(self.usable), dtype=np.int64))
            rows[anchored[g]] += size * np.array([grid.hops(t, port) for t in self.usable], dtype=np.int64)
        fixed = np.array(rows, dtype=np.int64) if rows else np.zeros((0, len(self.usable)), dtype=np.int64)
        self.links = (start, partner, weight, anchored, fixed)
        members: dict[int, list[int]] = {}
        for g, layer in enumerate(instance.layers):
            members.setdefault(layer, []).append(g)
        self.layer_groups = np.array([g for groups in members.values() for g in groups], dtype=np.int64)
        self.layer_start = np.concatenate([[0], np.cumsum([len(m) for m in members.values()])]).astype(np.int64)

    def index(self, tiles: Sequence[Tile]) -> np.ndarray:
        """A placement as tile indices."""
        index = {t: i for i, t in enumerate(self.usable)}
        return np.array([index[t] for t in tiles], dtype=np.int64)

    def tiles(self, at: np.ndarray) -> list[Tile]:
        """Tile indices as a placement."""
        return [self.usable[i] for i in at.tolist()]


# --- the solver ----------------------------------------------------------------------------------------------


def solve(instance: Instance, effort: float = 10.0, seed: int = 0, workers: int = 1) -> Placement:
    """Place ``instance``'s groups with ``effort`` units of work (CP-SAT deterministic seconds; see the module
    docstring); a ``PlacementError`` when they cannot fit."""
    started = time.perf_counter()
    check_capacity(instance)
    naive = naive_placement(instance)
    warm = layer_packing(instance, instance.grid.snake())
    lower = star_lower_bound(instance)
    n = len(instance.sizes)
    if instance.objective(warm) == lower:  # the warm start meets the lower bound: optimal, nothing to search
        tiles, status, solver, bound = warm, "OPTIMAL", "snake first-fit-decreasing (meets the lower bound)", lower
    elif n <= EXACT_MAX_GROUPS and n * len(instance.grid.usable) <= EXACT_MAX_BOOLEANS:
        start = local_search(instance, warm, POLISH_SHARE * effort, seed)
        found, status, bound = exact(instance, start, (1 - POLISH_SHARE) * effort, seed, workers)
        if found is None or (status != "OPTIMAL" and instance.objective(start) < instance.objective(found)):
            found = start
        tiles, solver = found, "cp-sat"
        if status not in ("OPTIMAL", "FEASIBLE"):
            status, solver, bound = "local-search", "snake first-fit-decreasing + local search", 0
    else:
        tiles = hierarchical(instance, warm, effort, seed)
        status, solver, bound = "hierarchical", "layer rebuilds + annealing", 0
    instance.check(tiles)
    objective = instance.objective(tiles)
    assert lower <= objective and bound <= objective, f"bounds {lower} and {bound} above the objective {objective}"
    return Placement(
        tiles=tuple(tiles),
        status=status,
        solver=solver,
        objective=objective,
        bound=bound,
        lower_bound=lower,
        naive_objective=instance.objective(naive) if naive is not None else -1,
        seconds=time.perf_counter() - started,
    )


def exact(
    instance: Instance, hint: Sequence[Tile], effort: float, seed: int, workers: int
) -> tuple[list[Tile] | None, str, int]:
    """The whole instance as one CP-SAT model within ``effort`` deterministic seconds, ``hint`` its first
    solution, each star of flows bounded below by
    ``StarBounds`` (redundant constraints that give CP-SAT the bound capacity implies): the placement (None if
    none was found), CP-SAT's status name and its best bound."""
    grid, n = instance.grid, len(instance.sizes)
    usable = grid.usable
    kept = [i for i, (a, b, _) in enumerate(instance.flows) if a != b]
    centers = flow_centers(instance)
    bounds = StarBounds(instance)
    floors = [
        ([j for j, i in enumerate(kept) if centers[i] == center], whole_bound(bounds.bound(center, star)))
        for center, star in flow_stars(instance).items()
    ]
    sub = _Subproblem(
        free=list(range(n)),
        candidates={g: list(usable) for g in range(n)},
        room=dict.fromkeys(usable, grid.capacity),
        pairs=[instance.flows[i] for i in kept],
        linear=_anchor_costs(instance, usable),
        hint=dict(enumerate(hint)),
        floors=floors,
    )
    found, status, _, bound = _cp_sat(instance, sub, effort, seed, workers)
    return (None if found is None else [found[g] for g in range(n)]), status, bound


def _anchor_costs(instance: Instance, usable: Sequence[Tile]) -> dict[int, dict[Tile, int]]:
    """Per group with flows to a fixed tile, and per usable tile: their bytes x hops from there."""
    costs: dict[int, dict[Tile, int]] = {}
    for g, p, n in instance.anchors:
        row = costs.setdefault(g, dict.fromkeys(usable, 0))
        for t in usable:
            row[t] += n * instance.grid.hops(t, p)
    return costs


def hierarchical(instance: Instance, warm: list[Tile], effort: float, seed: int) -> list[Tile]:
    """Layers onto contiguous regions (layer-order packing along the snake or the curve, the cheaper), then the
    local search: layers rebuilt around their reduction points, groups annealed."""
    curved = layer_packing(instance, instance.grid.curve())
    return local_search(instance, min((warm, curved), key=instance.objective), effort, seed)
