"""split-groups and place: chunks of columns compute what the whole group did, bit for bit; the traffic model's
flows are the hand-worked ones; CP-SAT's optimum is the brute-force one; faulty tiles stay empty; big instances
beat the naive placement; results repeat for a seed and effort, on an idle machine or a busy one."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cimc.compiler.pipeline import CrossbarOptions, PipelineOptions, compile_onnx
from cimc.ir import (
    DenseArrayAttr,
    DictAttr,
    ElementType,
    FuncOp,
    IntAttr,
    Location,
    ModuleOp,
    PassManager,
    PipelineError,
    ReturnOp,
    TensorType,
    VerifyError,
    new_module,
    run_module,
    tensor_attr,
    verify,
)
from cimc.ir.dialects.cim import (
    AccumulateOp,
    DequantizeOp,
    Im2ColOp,
    LinearOp,
    ProgramOp,
    array_groups,
    code_element,
    number_groups,
)
from cimc.ir.target.chip import Mesh, load_chip
from cimc.ir.target.network import PORT_ROUTER
from cimc.passes.place import (
    PLACEMENT_ATTRIBUTE,
    Flow,
    Traffic,
    layer_tile,
    op_tiles,
    placement_instance,
    tile_of,
    traffic_flows,
)
from cimc.passes.placement import (
    ChipGrid,
    Instance,
    PlacementError,
    Tile,
    _gilbert,
    _SearchArrays,
    axis_cuts,
    layer_packing,
    naive_placement,
    solve,
    star_lower_bound,
)

I64 = ElementType("i64")
REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"


def chip_attribute(rows: int, cols: int, capacity: int, torus: bool = False, faulty: tuple[Tile, ...] = ()) -> DictAttr:
    """The ``cim.chip`` attribute of the default chip with a ``rows x cols`` mesh (a torus if asked) of tiles of
    ``capacity`` arrays and the given faulty tiles."""
    chip = load_chip("default")
    tile = dataclasses.replace(chip.tile, arrays=capacity)
    return dataclasses.replace(chip, mesh=Mesh(rows, cols, torus), tile=tile, faulty_tiles=faulty).to_attribute()


def with_chip(module: ModuleOp, *args: object, **kwargs: object) -> ModuleOp:
    module.attributes["cim.chip"] = chip_attribute(*args, **kwargs)  # type: ignore[arg-type]
    return module


def from_benchmarks(name: str) -> ModuleType:
    """The module ``benchmarks/<name>.py`` (the benchmarks are scripts, not a package)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def run(module: ModuleOp, pipeline: str) -> ModuleOp:
    return PassManager(pipeline, verify_each=True).run(module)


# --- the grid ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("torus", [False, True])
def test_cuts_between_two_positions_count_their_hops(torus: bool) -> None:
    for size in range(1, 9):
        cuts, scale = axis_cuts(size, torus)
        for a, b in itertools.product(range(size), repeat=2):
            hops = ChipGrid(size, 1, torus, 1).hops((a, 0), (b, 0))
            assert sum((a in cut) != (b in cut) for cut in cuts) == scale * hops
    assert ChipGrid(5, 6, True, 1).hops((0, 0), (4, 5)) == 2  # one wrap-around link each way


def test_curve_visits_every_tile_once_from_neighbour_to_neighbour() -> None:
    for rows, cols in itertools.product(range(1, 12), repeat=2):
        path = list(_gilbert(rows, cols))
        assert sorted(path) == [(r, c) for r in range(rows) for c in range(cols)]
        steps = [(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in zip(path, path[1:])]
        diagonal = [s for s in steps if s not in ((0, 1), (1, 0))]
        assert diagonal in ([], [(1, 1)]), (rows, cols)
        assert not diagonal or (rows % 2) != (cols % 2)


def test_chip_attribute_is_required_and_checked() -> None:
    module = new_module([])
    with pytest.raises(PlacementError, match="attach a chip first: the pipeline does it"):
        ChipGrid.from_module(module)
    module.attributes["cim.chip"] = DictAttr((("mesh_rows", IntAttr(2)),))
    with pytest.raises(PlacementError, match=r"missing field name"):
        ChipGrid.from_module(module)
    with pytest.raises(PlacementError, match=r"faulty_tiles: \[2, 0\] is outside the 2x3 mesh"):
        ChipGrid.from_module(with_chip(module, 2, 3, 4, faulty=((2, 0),)))
    grid = ChipGrid.from_module(with_chip(module, 2, 3, 4, torus=True, faulty=((1, 2), (0, 1))))
    assert grid == ChipGrid(2, 3, True, 4, frozenset({(1, 2), (0, 1)}))
    assert grid.usable == [(0, 0), (0, 2), (1, 0), (1, 1)]
    assert grid.snake() == [(0, 0), (0, 2), (1, 1), (1, 0)]


# --- exact solutions -----------------------------------------------------------------------------------------


def brute_force(instance: Instance) -> int:
    """The least objective over every assignment of groups to usable tiles that respects capacity."""
    best = None
    for tiles in itertools.product(instance.grid.usable, repeat=len(instance.sizes)):
        load: dict[Tile, int] = {}
        for g, t in enumerate(tiles):
            load[t] = load.get(t, 0) + instance.sizes[g]
        if max(load.values()) <= instance.grid.capacity:
            cost = instance.objective(tiles)
            best = cost if best is None else min(best, cost)
    assert best is not None
    return best


def random_instance(rng: np.random.Generator, grid: ChipGrid, groups: int) -> Instance:
    """Groups of 1-3 arrays in 2-3 layers, each a star of partial sums fed by the previous layer's first group
    (the first by the port), with random bytes."""
    cut = sorted(rng.choice(np.arange(1, groups), size=int(rng.integers(1, 3)), replace=False).tolist())
    layers = np.searchsorted(cut, np.arange(groups), side="right").tolist()
    firsts = [layers.index(layer) for layer in sorted(set(layers))]
    flows, anchors = [], []
    for g, layer in enumerate(layers):
        if g != firsts[layer]:
            flows.append((firsts[layer], g, int(rng.integers(1, 50))))
        if layer:
            flows.append((firsts[layer - 1], g, int(rng.integers(1, 20))))
        else:
            anchors.append((g, PORT_ROUTER, int(rng.integers(1, 20))))
    sizes = tuple(int(s) for s in rng.integers(1, 4, groups))
    return Instance(grid, sizes, tuple(layers), tuple(flows), tuple(anchors))


@pytest.mark.parametrize(
    "grid",
    [
        ChipGrid(2, 3, False, 4),
        ChipGrid(2, 3, True, 4),
        ChipGrid(2, 3, False, 5, frozenset({(0, 1)})),
        ChipGrid(3, 3, True, 6, frozenset({(1, 1), (2, 0), (0, 2)})),
    ],
    ids=["mesh", "torus", "faulty", "odd-torus"],
)
def test_cp_sat_optimum_is_the_brute_force_optimum(grid: ChipGrid) -> None:
    rng = np.random.default_rng(len(grid.usable) + grid.torus)
    for groups in (4, 5, 6):
        instance = random_instance(rng, grid, groups)
        result = solve(instance, effort=10.0)
        optimum = brute_force(instance)
        assert (result.status, result.objective, result.bound) == ("OPTIMAL", optimum, optimum)
        assert result.objective == instance.objective(result.tiles)
        assert result.lower_bound == star_lower_bound(instance) <= optimum <= result.naive_objective
        assert not set(result.tiles) & grid.faulty


def chain(grid: ChipGrid, layer_groups: list[int], size: int, partials: int, activations: int) -> Instance:
    """Layers of ``size``-array groups in a chain: each layer's groups send ``partials`` bytes to its first one
    and receive ``activations`` bytes from the previous layer's first one (the first layer's from the port)."""
    sizes, layers, flows, anchors = [], [], [], []
    previous = None
    for layer, count in enumerate(layer_groups):
        first = len(sizes)
        for g in range(first, first + count):
            sizes.append(size)
            layers.append(layer)
            if g != first:
                flows.append((first, g, partials))
            if previous is None:
                anchors.append((g, PORT_ROUTER, activations))
            else:
                flows.append((previous, g, activations))
        previous = first
    return Instance(grid, tuple(sizes), tuple(layers), tuple(flows), tuple(anchors))


def test_a_64_array_instance_is_solved_to_optimality() -> None:
    # 16 groups of 4 arrays in 3 layers on 4 x 4 tiles of 8: the groups fill half the chip
    instance = chain(ChipGrid(4, 4, False, 8), [4, 8, 4], 4, 4096, 1024)
    assert sum(instance.sizes) == 64
    result = solve(instance, effort=20.0)
    assert result.status == "OPTIMAL"
    assert result.objective == result.bound == instance.objective(result.tiles)
    assert result.objective < result.naive_objective


# --- the traffic model on a real model -----------------------------------------------------------------------


def digits_mlp(array_rows: int = 32) -> ModuleOp:
    """The bundled digits MLP (64 -> 64 -> 32 -> 10) on crossbars of ``array_rows`` rows."""
    options = PipelineOptions(emit="cim", crossbar=CrossbarOptions(array_rows=array_rows))
    return compile_onnx(MODELS / "digits_mlp.onnx", options)[0]


def test_traffic_flows_of_the_digits_mlp() -> None:
    # on 32-row arrays: fc1 = groups 0, 1 (rows 0-31, 32-63; 64 columns), fc2 = groups 2, 3 (32 columns), fc3 =
    # group 4 (32 rows, 10 columns); one input vector per sample, 8-bit codes, i32 partial sums, f32 logits
    module = digits_mlp()
    number_groups(module)
    traffic = Traffic(module)
    flows = [(f.src, f.dst, f.bytes, f.kind) for f in traffic.flows]
    assert flows == [
        (None, 0, 32 * 1, "activations"),  # the input codes from the port, 32 rows each
        (None, 1, 32 * 1, "activations"),
        (1, 0, 64 * 4, "partials"),  # fc1's second row block to its reduction point
        (0, 2, 32 * 1, "activations"),  # relu1's codes from fc1's reduction point to fc2's row blocks
        (0, 3, 32 * 1, "activations"),
        (3, 2, 32 * 4, "partials"),
        (2, 4, 32 * 1, "activations"),
        (4, None, 10 * 4, "outputs"),  # the logits to the port
    ]
    instance = placement_instance(traffic, ChipGrid(2, 3, False, 16))
    assert instance.sizes == (8,) * 5 and instance.layers == (0, 0, 1, 1, 2)
    assert instance.flows == ((0, 1, 256), (0, 2, 32), (0, 3, 32), (2, 3, 128), (2, 4, 32))
    assert instance.anchors == ((0, PORT_ROUTER, 32), (1, PORT_ROUTER, 32), (4, PORT_ROUTER, 40))


def test_place_annotates_groups_and_module_and_places_the_digital_work() -> None:
    module = with_chip(digits_mlp(), 2, 3, 16, faulty=((0, 1),))
    run(module, "place{effort=10 seed=0 workers=1}")
    groups = array_groups(module)
    tiles = [tile_of(p) for p in groups]
    # fc1 both blocks at the port's tile; fc2 at (1, 0) (its partial sums outweigh fc1's activations); fc3 beside
    # fc2 on (1, 1): the faulty (0, 1) never used
    assert tiles == [(0, 0), (0, 0), (1, 0), (1, 0), (1, 1)]
    report = module.attributes[PLACEMENT_ATTRIBUTE]
    assert isinstance(report, DictAttr)
    values = {key: attr.value for key, attr in report.value}  # type: ignore[attr-defined]
    # 2 x 32 to fc2 over 1 hop, 32 to fc3 over 1 hop, 40 logits back from (1, 1) over 2 hops. The stars' bound:
    # fc1's reduction point with its second block beside it, fc2's two blocks at least a hop away (64); fc2's
    # with its second block beside it, fc3 a hop away (32); the port's flows left out
    assert values == {
        "status": "OPTIMAL",
        "solver": "cp-sat",
        "objective": 64 + 32 + 80,
        "bound": 176,
        "lower_bound": 64 + 32,
        "naive_objective": values["naive_objective"],
    }
    assert values["naive_objective"] > 176
    where = op_tiles(module)
    dequantize = [op for op in where if isinstance(op, DequantizeOp)]
    assert [where[op] for op in dequantize] == [(0, 0), (1, 0), (1, 1)]
    assert [layer_tile(op) for op in dequantize] == [(0, 0), (1, 0), (1, 1)]
    assert where[module.function("main").body.ops[0]] is None  # the flatten of the input, at the port
    with pytest.raises(VerifyError, match="belongs to no crossbar layer"):
        layer_tile(module.function("main").body.ops[0])


def test_place_without_split_groups_names_the_fix() -> None:
    module = with_chip(digits_mlp(), 2, 3, 4)
    with pytest.raises(PlacementError, match="group 0 holds 8 arrays, more than a tile's 4: run 'split-groups'"):
        run(module, "place")


def test_faulty_tiles_are_never_used_and_too_many_are_an_error() -> None:
    faulty = ((0, 0), (0, 2), (1, 1), (2, 0))
    module = with_chip(digits_mlp(), 3, 3, 8, faulty=faulty)
    run(module, "place{effort=5}")
    tiles = [tile_of(p) for p in array_groups(module)]
    assert len(set(tiles)) == 5 and not set(tiles) & set(faulty)
    module = with_chip(digits_mlp(), 3, 3, 8, faulty=(*faulty, (2, 2)))
    with pytest.raises(
        PlacementError,
        match=r"pass 'place': the model needs 40 arrays but the chip has 32 usable \(4 usable tiles of 9, 5 faulty",
    ):
        run(module, "place")


def test_place_options_are_checked() -> None:
    assert str(PassManager("place{effort=2.5 seed=3 workers=2}").passes[0]) == ("place{effort=2.5,seed=3,workers=2}")
    with pytest.raises(PipelineError, match="'effort' must be positive"):
        PassManager("place{effort=0}")


# --- big instances -------------------------------------------------------------------------------------------


def resnet_like(grid: ChipGrid) -> Instance:
    """About 500 groups in 20 chained layers of growing width, ResNet-18-sized: groups of 8 to 64 arrays."""
    layers = [4] * 5 + [9] * 5 + [18] * 5 + [36] * 5
    sizes, layer_of, flows, anchors = [], [], [], []
    previous = None
    for layer, count in enumerate(layers):
        size = 8 << (layer // 5)
        first = len(sizes)
        for g in range(first, first + count):
            sizes.append(size)
            layer_of.append(layer)
            if g != first:
                flows.append((first, g, 1024 * 64 * 4 >> (layer // 5)))
            if previous is None:
                anchors.append((g, PORT_ROUTER, 1024 * 64))
            else:
                flows.append((previous, g, 1024 * 64 >> (layer // 5)))
        previous = first
    return Instance(grid, tuple(sizes), tuple(layer_of), tuple(flows), tuple(anchors))


def test_hierarchical_placement_beats_naive_by_40_percent() -> None:
    instance = resnet_like(ChipGrid(16, 16, False, 128))
    assert len(instance.sizes) == 335
    result = solve(instance, effort=4.0, seed=1)
    assert result.status == "hierarchical"
    naive = naive_placement(instance)
    assert naive is not None and result.naive_objective == instance.objective(naive)
    assert result.lower_bound <= result.objective <= 0.6 * result.naive_objective
    instance.check(result.tiles)


@pytest.mark.parametrize("workers", [1, 2])
def test_placement_repeats_exactly_while_every_core_is_busy(workers: int) -> None:
    # budgets that run out before the search ends (CP-SAT stops FEASIBLE, not OPTIMAL; the local search runs out of
    # rounds): where a wall-clock limit stops each step earlier on a loaded machine than on an idle one
    instances = [
        random_instance(np.random.default_rng(7), ChipGrid(6, 6, False, 6), 40),  # exact: one CP-SAT model
        chain(ChipGrid(8, 8, False, 8), [8, 16, 16, 16, 16], 4, 4096, 1024),  # 72 groups: hierarchical (the
        # local search alone)
    ]
    idle = [solve(instance, effort=0.5, seed=1, workers=workers) for instance in instances]
    with from_benchmarks("deterministic_compile").busy_cores():
        busy = [solve(instance, effort=0.5, seed=1, workers=workers) for instance in instances]
    assert [r.status for r in idle] == ["FEASIBLE", "hierarchical"]
    assert [r.tiles for r in busy] == [r.tiles for r in idle]
    assert [r.objective for r in busy] == [r.objective for r in idle]


def test_hierarchical_placement_avoids_faulty_tiles() -> None:
    faulty = frozenset((r, c) for r in range(16) for c in range(16) if (r * 7 + c * 3) % 11 == 0)
    instance = resnet_like(ChipGrid(16, 16, True, 128, faulty))
    result = solve(instance, effort=3.0)
    assert not set(result.tiles) & faulty
    assert result.objective < result.naive_objective


@pytest.mark.parametrize("torus", [False, True])
def test_local_search_steps_cost_what_the_objective_says(torus: bool) -> None:
    # each kernel returns the cost change it worked out incrementally, from the flows its steps touched: it must be
    # the change of the whole objective, recomputed from scratch
    from cimc.passes import local_search as kernels

    faulty = frozenset({(1, 1), (4, 0)})
    instance = random_instance(np.random.default_rng(3), ChipGrid(5, 6, torus, 6, faulty), 60)
    arrays = _SearchArrays(instance)
    start = layer_packing(instance, instance.grid.snake())
    at = arrays.index(start)
    offsets, partner, weight, anchored, fixed = arrays.links
    sizes, hops, capacity = arrays.sizes, arrays.hops, instance.grid.capacity
    annealed, annealing = kernels.anneal(
        at, sizes, capacity, hops, offsets, partner, weight, arrays.cumulative, anchored, fixed,
        arrays.near_start, arrays.near, 20_000, 5,
    )  # fmt: skip
    rebuilt, rebuilding = kernels.rebuild_layers(
        at, sizes, capacity, hops, arrays.nearest, *arrays.links, arrays.layer_start, arrays.layer_groups, 10, 1
    )
    paired, pairing = kernels.rebuild_layers(
        rebuilt, sizes, capacity, hops, arrays.nearest, *arrays.links, arrays.layer_start, arrays.layer_groups, 10, 2
    )
    descended, descending = kernels.descend(annealed, sizes, capacity, hops, *arrays.links, 10)
    for placement, origin, change in (
        (annealed, at, annealing),
        (rebuilt, at, rebuilding),
        (paired, rebuilt, pairing),
        (descended, annealed, descending),
    ):
        tiles = arrays.tiles(placement)
        instance.check(tiles)
        assert change <= 0
        assert instance.objective(tiles) - instance.objective(arrays.tiles(origin)) == change
    assert annealing < 0 and rebuilding < 0


# --- split-groups --------------------------------------------------------------------------------------------


def crossbar_module(rng: np.random.Generator) -> ModuleOp:
    """A 3x3 conv (4 -> 10 channels, 36 rows: 3 row blocks of 16) and a dense layer (12 -> 15, one row block) on
    4-bit codes and weights, as integer references."""
    x_type = TensorType((None, 4, 5, 5), code_element(4))
    v_type = TensorType((None, 12), code_element(4))
    func = FuncOp.create("main", [("x", x_type), ("v", v_type)], [])
    x, v = func.body.args

    def linear(codes: object, rows: int, cols: int, loc: str) -> object:
        weights = rng.integers(-8, 8, (rows, cols)).astype(np.int8)
        attributes = {
            "weights": tensor_attr(weights, f"{loc}.weights"),
            "weight_bits": IntAttr(4),
            "input_bits": IntAttr(4),
        }
        return func.body.append(LinearOp.build(codes, attributes=attributes, location=Location(loc))).result

    window = {
        "kernel_shape": DenseArrayAttr(I64, (3, 3)),
        "strides": DenseArrayAttr(I64, (1, 1)),
        "pads": DenseArrayAttr(I64, (1, 1, 1, 1)),
        "dilations": DenseArrayAttr(I64, (1, 1)),
    }
    patches = func.body.append(Im2ColOp.build(x, attributes=window)).result
    outputs = [linear(patches, 36, 10, "conv"), linear(v, 12, 15, "fc")]
    func.body.append(ReturnOp(outputs))
    func.set_output_names(["y0", "y1"])
    func.update_function_type()
    module = new_module([func])
    verify(module)
    return module


def programs(module: ModuleOp) -> list[ProgramOp]:
    """The ``cim.program`` ops of ``main`` before ``place`` numbers them."""
    return [op for op in module.function("main").body.ops if isinstance(op, ProgramOp)]


@pytest.mark.parametrize("sign_encoding", ["differential", "offset"])
def test_split_groups_is_bit_exact(sign_encoding: str) -> None:
    rng = np.random.default_rng(7)
    module = crossbar_module(rng)
    inputs = {
        "x": rng.integers(0, 16, (2, 4, 5, 5)).astype(np.uint8),
        "v": rng.integers(0, 16, (3, 12)).astype(np.uint8),
    }
    reference = run_module(module, inputs)
    run(
        module,
        f"tile{{array-rows=16}},bit-slice{{cell-bits=2 dac-bits=2 sign-encoding={sign_encoding} array-rows=16 "
        "array-cols=2}",
    )
    per_block = 2 * 2 if sign_encoding == "differential" else 2  # signs x slices of 4-bit weights on 2-bit cells
    for program in programs(module):
        if program.location.name == "conv":  # two copies of the conv's arrays: each column block counts twice
            program.attributes["replication"] = IntAttr(2)
    before = [(p.location.name, p.arrays) for p in programs(module)]
    assert before == [("conv", 2 * 5 * per_block)] * 3 + [("fc", 8 * per_block)]
    capacity = 3 * 2 * per_block  # three column blocks of the conv, six of the dense layer
    run(with_chip(module, 2, 2, capacity), "split-groups")
    # conv: 10 columns in chunks of 6 + 4 per row block; fc: 15 columns in 12 + 3, now accumulated
    after = [(p.location.name, p.columns) for p in programs(module)]
    assert after == [("conv", 6), ("conv", 4)] * 3 + [("fc", 12), ("fc", 3)]
    assert all(p.arrays <= capacity for p in programs(module))
    accumulates = [op for op in module.walk() if isinstance(op, AccumulateOp)]
    assert [a.attr("col_offsets") for a in accumulates] == [(0, 6) * 3, (0, 12)]
    outputs = run_module(module, inputs)
    for name in reference:
        assert outputs[name].dtype == reference[name].dtype
        assert np.array_equal(outputs[name], reference[name])


def test_split_groups_names_the_layer_that_cannot_fit() -> None:
    module = crossbar_module(np.random.default_rng(0))
    run(module, "tile{array-rows=16},bit-slice{cell-bits=2 dac-bits=2 array-rows=16 array-cols=2}")
    with pytest.raises(
        VerifyError,
        match=r"at loc\(\"conv\"\): layer 'conv': one column block takes 4 arrays \(2 signs x 2 slices\), more than "
        r"a tile's 3: use a chip with more arrays per tile$",
    ):
        run(with_chip(module, 2, 2, 3), "split-groups")


def test_split_groups_leaves_fitting_groups_alone() -> None:
    module = with_chip(digits_mlp(), 2, 2, 8)
    before = str(module)
    run(module, "split-groups")
    assert str(module) == before


# --- ResNet-18 -----------------------------------------------------------------------------------------------


def test_resnet18_placement_beats_naive_by_30_percent() -> None:
    resnet18_cifar = from_benchmarks("lowering").resnet18_cifar
    images = np.random.default_rng(1).standard_normal((2, 3, 32, 32), dtype=np.float32)
    module, _ = compile_onnx(resnet18_cifar(np.random.default_rng(0)), PipelineOptions(emit="cim", calib={"x": images}))
    with_chip(module, 16, 16, 128)  # the default chip's grid
    manager = PassManager("split-groups,place{effort=5}", verify_each=True)
    manager.run(module)
    report = dict(module.attributes[PLACEMENT_ATTRIBUTE].value)  # type: ignore[attr-defined]
    objective, naive, lower = (report[k].value for k in ("objective", "naive_objective", "lower_bound"))
    assert report["status"].value == "hierarchical"
    assert objective <= 0.7 * naive
    assert lower <= objective
    assert len(array_groups(module)) == 493
    assert traffic_flows(module) == Traffic(module).flows  # recorded once by place, read back as computed
    kinds = {f.kind for f in traffic_flows(module)}
    assert kinds == {"activations", "partials", "operands", "outputs"}
    assert all(isinstance(f, Flow) for f in traffic_flows(module))


def test_place_numbers_the_groups_once_and_their_reader_checks_the_numbers() -> None:
    module = with_chip(digits_mlp(), 2, 3, 16)
    with pytest.raises(VerifyError, match="has no 'cim.group' number: run 'place' first"):
        array_groups(module)
    run(module, "place{effort=2}")
    groups = array_groups(module)
    assert [p.attr("cim.group") for p in groups] == [0, 1, 2, 3, 4]
    assert groups == programs(module)  # in body order
    groups[3].attributes["cim.group"] = IntAttr(1)
    with pytest.raises(VerifyError, match=r"'cim.group = 1' repeats or is outside 0..4"):
        array_groups(module)
    groups[3].attributes["cim.group"] = IntAttr(5)
    with pytest.raises(VerifyError, match=r"'cim.group = 5' repeats or is outside 0..4"):
        array_groups(module)
