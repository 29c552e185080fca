"""lower-solve against independent references: the programmed blocks hold the matrix quantized by the formula and
tile it exactly; the lowered module's exact executor equals numpy's solve; the transposed form, vectors and batches
too; what is not a constant float32 matrix stays a graph op (a digital unit after lower-to-cim); and ``cim.solve``'s
verifier and ``graph.inverse`` check what they promise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cimc.ir import (
    DenseArrayAttr,
    ElementType,
    Location,
    PassManager,
    PipelineError,
    TensorType,
    VerifyError,
    run_module,
)
from cimc.ir.dialects.cim import DigitalOp, ProgramOp
from cimc.ir.dialects.cim_solve import SolveOp
from cimc.ir.dialects.graph import InverseOp
from cimc.ir.target.chip import load_chip
from cimc.ir.types import F32
from cimc.passes.lower_solve import block_sizes

I64 = ElementType("i64")


def well_conditioned(n: int, rng: np.random.Generator) -> np.ndarray:
    """A diagonally dominant float32 matrix: well conditioned, its eigenvalues' real parts positive."""
    return (4 * np.eye(n) + rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)


def inverse_times(graph, a: np.ndarray, rhs: TensorType, left: bool = True):
    """``Inverse(A) @ b`` (``left``) or ``b @ Inverse(A)`` on a graph input ``b``."""
    g = graph({"b": rhs})
    inverse = g.func.body.append(InverseOp.build(g.const(a, "a"))).result
    b = g.inputs["b"]
    product = g.op("MatMul", *((inverse, b) if left else (b, inverse)), loc="mm")
    return g.finish([product.result])


def lowered(module, pipeline: str = "lower-solve"):
    PassManager(pipeline, verify_each=True).run(module)
    return module


def solves(module) -> list[SolveOp]:
    return [op for op in module.walk() if isinstance(op, SolveOp)]


def signed_blocks(solve: SolveOp) -> np.ndarray:
    """The signed integers the solve's programs hold, assembled into the matrix they tile (read off the levels by
    the differential-pair formula: slices shifted and added, the negative array subtracted)."""
    sizes = solve.attr("block")
    starts = np.cumsum([0, *sizes])
    n = starts[-1]
    out = np.zeros((n, n), np.int64)
    for index, value in enumerate(solve.operands[1:]):
        program = value.op
        assert isinstance(program, ProgramOp)
        levels = program.tensor_attr("levels").astype(np.int64)
        shifts = program.attr("cell_bits") * np.arange(levels.shape[1]).reshape(1, -1, 1, 1)
        magnitude = (levels << shifts).sum(axis=1)
        i, j = divmod(index, len(sizes))
        out[starts[i] : starts[i + 1], starts[j] : starts[j + 1]] = magnitude[0] - magnitude[1]
    return out


@pytest.mark.parametrize(("n", "sizes"), [(16, [16]), (64, [64]), (100, [64, 36]), (130, [64, 64, 2])])
def test_blocks_hold_the_quantized_matrix(graph, rng, n, sizes) -> None:
    a = well_conditioned(n, rng)
    module = lowered(inverse_times(graph, a, TensorType((n, 3), F32)))
    (solve,) = solves(module)
    assert list(solve.attr("block")) == sizes == block_sizes(n, 64)
    assert solve.attr("scale") == float(np.abs(a).max())
    np.testing.assert_array_equal(solve.tensor_attr("matrix"), a)
    expected = np.rint(a.astype(np.float64) / np.abs(a).max() * 127).astype(np.int64)
    np.testing.assert_array_equal(signed_blocks(solve), expected)
    programs = [v.op for v in solve.operands[1:]]
    assert all(p.attr("weight_bits") == 8 and p.attr("cell_bits") == 2 and p.slices == 4 for p in programs)
    # the four slices are parallel cells of each element of one differential pair: two arrays a block
    assert all(p.attr("parallel_slices") == 1 and p.arrays == 2 for p in programs)
    assert [op.name for op in module.function("main").body.ops] == ["cim.program"] * len(sizes) ** 2 + [
        "cim.solve",
        "func.return",
    ]


@pytest.mark.parametrize(
    ("shape", "left"),
    [((16,), True), ((16, 3), True), ((None, 16, 2), True), ((16,), False), ((3, 16), False), ((None, 2, 16), False)],
)
def test_exact_executor_equals_numpy_solve(graph, rng, shape, left) -> None:
    n = 16
    a = well_conditioned(n, rng)
    module = lowered(inverse_times(graph, a, TensorType(shape, F32), left))
    assert len(solves(module)) == 1 and not any(isinstance(op, InverseOp) for op in module.walk())
    b = rng.standard_normal([5 if d is None else d for d in shape]).astype(np.float32)
    (x,) = run_module(module, {"b": b}).values()
    inverse = np.linalg.inv(a.astype(np.float64))  # well conditioned: float64's inverse is exact to ~1e-15
    expected = inverse @ b.astype(np.float64) if left else b.astype(np.float64) @ inverse
    assert x.dtype == np.float32 and x.shape == b.shape
    np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-7)


def test_options_and_chip(graph, rng) -> None:
    a = well_conditioned(5, rng)
    module = inverse_times(graph, a, TensorType((5, 1), F32))
    chip = load_chip("default")
    tile = dataclasses.replace(chip.tile, cell_bits=1, array_rows=4, array_cols=3)
    module.attributes["cim.chip"] = dataclasses.replace(chip, tile=tile).to_attribute()
    lowered(module, "lower-solve{matrix-bits=6}")
    (solve,) = solves(module)
    assert list(solve.attr("block")) == [3, 2]  # the smaller array side bounds the square blocks
    program = solve.operands[1].op
    assert (program.attr("cell_bits"), program.slices, program.attr("array_rows")) == (1, 6, 4)
    expected = np.rint(a.astype(np.float64) / np.abs(a).max() * 31).astype(np.int64)
    np.testing.assert_array_equal(signed_blocks(solve), expected)


def test_what_is_no_constant_solve_stays_digital(graph, rng) -> None:
    n = 4
    g = graph({"m": TensorType((n, n), F32), "b": TensorType((n, 2), F32), "w": TensorType((2, n, n), F32)})
    computed = g.func.body.append(InverseOp.build(g.inputs["m"], location=Location("computed"))).result
    y0 = g.op("MatMul", computed, g.inputs["b"], loc="digital").result
    wide = g.const(well_conditioned(n, rng).astype(np.float64), "wide")  # float64: not the chip's float32
    y1 = g.op("MatMul", g.func.body.append(InverseOp.build(wide)).result, g.op("Cast", g.inputs["b"], to=11).result)
    stack = g.const(np.stack([well_conditioned(n, rng)] * 2), "stack")  # a stack of matrices
    y2 = g.op("MatMul", g.func.body.append(InverseOp.build(stack)).result, g.inputs["b"]).result
    module = lowered(g.finish([y0, y1.result, y2]), "lower-solve,lower-to-cim")
    assert not solves(module)
    works = [op.work.name for op in module.walk() if isinstance(op, DigitalOp)]
    assert works.count("graph.inverse") == 3 and works.count("graph.matmul") == 3
    m = well_conditioned(n, rng)
    b = rng.standard_normal((n, 2)).astype(np.float32)
    out = run_module(module, {"m": m, "b": b, "w": np.zeros((2, n, n), np.float32)})
    np.testing.assert_allclose(out["y0"], np.linalg.solve(m.astype(np.float64), b), rtol=1e-5, atol=1e-6)


def test_singular_matrix_is_an_error(graph) -> None:
    singular = np.array([[1, 2], [2, 4]], np.float32)
    with pytest.raises(VerifyError, match=r"'graph.matmul' .*singular 2x2 constant matrix \(rank 1\); fix the model"):
        lowered(inverse_times(graph, singular, TensorType((2, 1), F32)))


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ("lower-solve{matrix-bits=1}", "'matrix-bits' must be an integer from 2 to 16, got 1"),
        ("lower-solve{cell-bits=9}", "'cell-bits' must be an integer from 0 to 8, got 9"),
        ("lower-solve{array-rows=-1}", "'array-rows' must be an integer from 0 to 4096, got -1"),
    ],
)
def test_bad_options(pipeline, message) -> None:
    with pytest.raises(PipelineError, match=message):
        PassManager(pipeline)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"block": DenseArrayAttr(I64, (2, 2))}, r"'block' sizes \[2, 2\] must be positive and add up to .* 3"),
        ({"block": DenseArrayAttr(I64, (1, 1, 1))}, r"3 x 3 blocks need 9 arrays, got 4"),
        ({"block": DenseArrayAttr(I64, (1, 2))}, r"array 0 \(block 0, 0\) must be levels ui8 \[2, slices, 1, 1\]"),
    ],
)
def test_solve_verifier(graph, rng, change, message) -> None:
    module = lowered(inverse_times(graph, well_conditioned(3, rng), TensorType((3, 2), F32)), _small())
    (solve,) = solves(module)
    solve.attributes.update(change)
    with pytest.raises(VerifyError, match=message):
        solve.verify_()


def test_solve_verifier_wants_parallel_slices(graph, rng) -> None:
    module = lowered(inverse_times(graph, well_conditioned(3, rng), TensorType((3, 2), F32)), _small())
    (solve,) = solves(module)
    del solve.operands[2].op.attributes["parallel_slices"]
    with pytest.raises(VerifyError, match=r"array 1 \(block 0, 1\) must hold its slices as parallel cells"):
        solve.verify_()


def test_solve_verifier_shapes(graph, rng) -> None:
    module = lowered(inverse_times(graph, well_conditioned(3, rng), TensorType((3, 2), F32)), _small())
    (solve,) = solves(module)
    solve.results[0].type = TensorType((3, 1), F32)
    with pytest.raises(VerifyError, match=r"result type tensor<3x1xf32> must be the right-hand side's"):
        solve.verify_()
    g = graph({"b": TensorType((4, 2), F32)})
    with pytest.raises(VerifyError, match=r"right-hand side must be \[3\], \[3, k\] or \[\.\.\., 3, k\]"):
        SolveOp.build(g.inputs["b"], solve.operands[1:], attributes=dict(solve.attributes)).verify_()


def _small() -> str:
    return "lower-solve{matrix-bits=4 cell-bits=2 array-rows=2 array-cols=2}"


def test_inverse_op(graph, rng) -> None:
    a = np.stack([well_conditioned(3, rng) for _ in range(2)])
    g = graph({"a": TensorType((2, 3, 3), F32)})
    module = g.finish([g.func.body.append(InverseOp.build(g.inputs["a"])).result])
    (y,) = run_module(module, {"a": a}).values()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, np.linalg.inv(a.astype(np.float64)), rtol=1e-6)
    with pytest.raises(VerifyError, match=r"operand X must be square matrices \[\.\.\., n, n\], got tensor<3x2xf32>"):
        InverseOp.build(graph({"a": TensorType((3, 2), F32)}).inputs["a"]).verify_()


def test_canonicalize_keeps_the_inverse_of_a_constant(graph, rng) -> None:
    module = inverse_times(graph, well_conditioned(4, rng), TensorType((4, 1), F32))
    PassManager("canonicalize,lower-solve").run(module)
    assert len(solves(module)) == 1
