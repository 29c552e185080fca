"""tile, bit-slice and replicate: the crossbar form computes what the integer reference does, bit for bit with an
exact ADC and as worked out by hand with a finite one; array counts follow the closed form; replication factors
follow the greedy rule on a hand-worked example."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimc.ir import (
    DenseArrayAttr,
    ElementType,
    FuncOp,
    IntAttr,
    Location,
    ModuleOp,
    PassManager,
    PipelineError,
    ReturnOp,
    TensorType,
    Value,
    VerifyError,
    new_module,
    parse_module,
    run_module,
    tensor_attr,
    verify,
)
from cimc.ir.dialects.cim import (
    AccumulateOp,
    AdcOp,
    BitPlanesOp,
    Im2ColOp,
    LinearOp,
    ProgramOp,
    ShiftAddOp,
    code_element,
)

I64 = ElementType("i64")


class CimBuilder:
    """One function, ``main``, of integer-reference crossbar ops on unsigned code inputs."""

    def __init__(self, inputs: dict[str, tuple[tuple[int | None, ...], int]]) -> None:
        """``inputs``: name -> (shape, input bits)."""
        types = [(name, TensorType(shape, code_element(bits))) for name, (shape, bits) in inputs.items()]
        self.func = FuncOp.create("main", types, [])
        self.inputs = dict(zip(inputs, self.func.body.args))

    def im2col(self, codes: Value, kernel: int, pad: int) -> Value:
        """Square-kernel, stride-1 patches of ``codes``."""
        attributes = {
            "kernel_shape": DenseArrayAttr(I64, (kernel, kernel)),
            "strides": DenseArrayAttr(I64, (1, 1)),
            "pads": DenseArrayAttr(I64, (pad,) * 4),
            "dilations": DenseArrayAttr(I64, (1, 1)),
        }
        return self.func.body.append(Im2ColOp.build(codes, attributes=attributes)).result

    def linear(
        self, codes: Value, weights: np.ndarray, weight_bits: int, input_bits: int, loc: str, row_offset: int = 0
    ) -> Value:
        """A ``cim.linear`` located at ``loc``."""
        attributes = {
            "weights": tensor_attr(weights.astype(np.int8 if weight_bits <= 8 else np.int16), f"{loc}.weights"),
            "weight_bits": IntAttr(weight_bits),
            "input_bits": IntAttr(input_bits),
            "row_offset": IntAttr(row_offset),
        }
        return self.func.body.append(LinearOp.build(codes, attributes=attributes, location=Location(loc))).result

    def finish(self, outputs: list[Value]) -> ModuleOp:
        self.func.body.append(ReturnOp(outputs))
        self.func.set_output_names([f"y{i}" for i in range(len(outputs))])
        self.func.update_function_type()
        module = new_module([self.func])
        verify(module)
        return module


def ops_of(module: ModuleOp, kind: type) -> list:
    return [op for op in module.walk() if isinstance(op, kind)]


def lower(module: ModuleOp, pipeline: str) -> ModuleOp:
    return PassManager(pipeline, verify_each=True).run(module)


def random_weights(rng: np.random.Generator, shape: tuple[int, int], bits: int) -> np.ndarray:
    """Signed ``bits``-bit weights including both extremes."""
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = rng.integers(low, high + 1, shape)
    w.flat[0], w.flat[-1] = low, high
    return w


def random_codes(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    """Unsigned ``bits``-bit codes, the first vector all at the top code."""
    codes = rng.integers(0, 1 << bits, shape).astype(np.uint8)
    codes.reshape(-1, shape[-1])[0] = (1 << bits) - 1
    return codes


# --- bit exactness -------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    rows=st.integers(1, 200),
    cols=st.integers(1, 12),
    batch=st.integers(1, 3),
    weight_bits=st.integers(2, 8),
    input_bits=st.integers(1, 8),
    cell_bits=st.integers(1, 4),
    dac_bits=st.integers(1, 4),
    sign_encoding=st.sampled_from(["differential", "offset"]),
    row_offset=st.integers(0, 9),
    array_rows=st.sampled_from([8, 32, 64]),
    zero_band=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_tile_and_bit_slice_are_exact(
    rows: int,
    cols: int,
    batch: int,
    weight_bits: int,
    input_bits: int,
    cell_bits: int,
    dac_bits: int,
    sign_encoding: str,
    row_offset: int,
    array_rows: int,
    zero_band: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    weights = random_weights(rng, (rows, cols), weight_bits)
    if zero_band:  # rows and edge columns without weights: dropped blocks and narrowed column ranges
        start = int(rng.integers(0, rows))
        weights[start : start + int(rng.integers(0, 2 * array_rows)), :] = 0
        weights[: rows // 2, : int(rng.integers(0, cols))] = 0
    depth = row_offset + rows + 3  # the codes are wider than the rows the layer reads
    b = CimBuilder({"codes": ((None, depth), input_bits)})
    module = b.finish([b.linear(b.inputs["codes"], weights, weight_bits, input_bits, "fc", row_offset)])
    codes = random_codes(rng, (batch, depth), input_bits)
    reference = run_module(module, {"codes": codes})["y0"]
    np.testing.assert_array_equal(reference, codes[:, row_offset : row_offset + rows].astype(np.int64) @ weights)

    lower(
        module,
        f"tile{{array-rows={array_rows}}},bit-slice{{cell-bits={cell_bits},dac-bits={dac_bits},"
        f"sign-encoding={sign_encoding},array-rows={array_rows}}}",
    )
    assert not ops_of(module, LinearOp)
    assert all(p.rows <= array_rows for p in ops_of(module, ProgramOp))
    assert len(ops_of(module, BitPlanesOp)) == 1  # every row block streams the same planes
    out = run_module(module, {"codes": codes})["y0"]
    assert out.dtype == reference.dtype and np.array_equal(out, reference)


def test_grouped_conv_uses_few_columns_per_block_and_is_exact() -> None:
    # a 3x3 convolution of 8 channels in 4 groups of 2 -> 8 channels: its im2col matrix is block diagonal, group g
    # holding rows [18g, 18g + 18) and columns [2g, 2g + 2). Row blocks of 16 rows then cover groups
    # {0}, {0, 1}, {1, 2}, {2, 3}, {3}: columns [0, 2), [0, 4), [2, 6), [4, 8), [6, 8).
    rng = np.random.default_rng(1)
    weights = np.zeros((72, 8), np.int64)
    for g in range(4):
        weights[18 * g : 18 * g + 18, 2 * g : 2 * g + 2] = rng.choice([-7, -3, -1, 1, 2, 5], (18, 2))
    b = CimBuilder({"x": ((None, 8, 5, 5), 8)})
    module = b.finish([b.linear(b.im2col(b.inputs["x"], 3, 1), weights, 4, 8, "conv")])
    x = random_codes(rng, (2, 8, 5, 5), 8)
    reference = run_module(module, {"x": x})["y0"]

    lower(module, "tile{array-rows=16},bit-slice{cell-bits=2,dac-bits=2,array-rows=16}")
    (accumulate,) = ops_of(module, AccumulateOp)
    assert accumulate.attr("col_offsets") == (0, 0, 2, 4, 6)
    assert [p.columns for p in ops_of(module, ProgramOp)] == [2, 4, 4, 4, 2]
    assert np.array_equal(run_module(module, {"x": x})["y0"], reference)


def test_tile_drops_all_zero_blocks_and_keeps_one() -> None:
    weights = np.zeros((20, 3), np.int64)
    weights[12:14, 1] = [3, -2]  # only block 1 (rows 8..15 on 8-row arrays), only column 1
    b = CimBuilder({"codes": ((None, 20), 4)})
    module = b.finish(
        [b.linear(b.inputs["codes"], weights, 4, 4, "fc"), b.linear(b.inputs["codes"], 0 * weights, 4, 4, "zero")]
    )
    lower(module, "tile{array-rows=8}")
    sparse, zero = ops_of(module, LinearOp)
    assert (sparse.attr("row_offset"), sparse.rows) == (8, 8)
    assert sparse.tensor_attr("weights").tolist() == [[0], [0], [0], [0], [3], [-2], [0], [0]]
    assert (zero.attr("row_offset"), zero.rows, zero.tensor_attr("weights").shape) == (0, 8, (8, 3))
    assert [a.attr("col_offsets") for a in ops_of(module, AccumulateOp)] == [(1,), (0,)]


def test_tile_leaves_a_fitting_dense_layer_alone() -> None:
    b = CimBuilder({"codes": ((None, 64), 8)})
    module = b.finish([b.linear(b.inputs["codes"], random_weights(np.random.default_rng(2), (64, 5), 8), 8, 8, "fc")])
    before = str(module)
    lower(module, "tile")
    assert str(module) == before


def test_bit_planes_are_shared_by_the_layers_reading_the_same_codes() -> None:
    # "q" and "k" read the same 8-bit codes: one set of planes (4 DAC bits: 2 planes). "n" reads them as 2-bit codes,
    # narrower than the DAC: its own planes, streamed in one 2-bit step.
    rng = np.random.default_rng(5)
    b = CimBuilder({"codes": ((None, 6), 8)})
    x = b.inputs["codes"]
    weights = [random_weights(rng, (6, 3), 8) for _ in range(3)]
    module = b.finish([b.linear(x, w, 8, bits, loc) for w, bits, loc in zip(weights, (8, 8, 2), "qkn")])
    codes = rng.integers(0, 4, (5, 6)).astype(np.uint8)
    reference = run_module(module, {"codes": codes})
    lower(module, "bit-slice{dac-bits=4}")
    planes = [(p.attr("dac_bits"), p.attr("input_bits"), len(p.result.uses)) for p in ops_of(module, BitPlanesOp)]
    assert planes == [(2, 2, 1), (4, 8, 2)]  # each inserted right after the codes: the latest first
    assert [s.attr("dac_bits") for s in ops_of(module, ShiftAddOp)] == [4, 4, 2]
    outputs = run_module(module, {"codes": codes})
    assert all(np.array_equal(outputs[k], reference[k]) for k in reference)


# --- finite ADC ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "adc_bits, expected",
    [
        # exact: column 0 sums 3n, column 1 sums -2n for n ones among the 4 input bits
        (0, [[0, 0], [3, -2], [6, -4], [9, -6], [12, -8]]),
        # the full scale of 4 rows x 1-bit planes x 2-bit cells is 12: 4 bits. A 2-bit ADC drops 2 bits, reading
        # min(floor(x / 4 + 1/2), 3) * 4: 3n = 3, 6, 9, 12 -> 4, 8, 8, 12 and 2n = 2, 4, 6, 8 -> 4, 4, 8, 8
        (2, [[0, 0], [4, -4], [8, -4], [8, -8], [12, -8]]),
        # a 1-bit ADC drops 3 bits and saturates at code 1 (= 8): 3n -> 0, 8, 8, 8 (12 saturates), 2n -> 0, 8, 8, 8
        (1, [[0, 0], [0, 0], [8, -8], [8, -8], [8, -8]]),
    ],
)
def test_finite_adc_rounds_and_saturates(adc_bits: int, expected: list[list[int]]) -> None:
    # weights 3 and -2 (3 bits) on 2-bit cells, differential: slice 0 of the positive array holds 3 in column 0,
    # slice 0 of the negative array holds 2 in column 1, slice 1 holds nothing; so each output is one ADC reading
    weights = np.array([[3, -2]] * 4)
    b = CimBuilder({"codes": ((None, 4), 1)})
    module = b.finish([b.linear(b.inputs["codes"], weights, 3, 1, "fc")])
    lower(module, f"bit-slice{{cell-bits=2,dac-bits=1,adc-bits={adc_bits}}}")
    (adc,) = ops_of(module, AdcOp)
    assert (adc.attr("bits"), adc.attr("full_scale_bits")) == (adc_bits or 4, 4)
    codes = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], np.uint8)
    assert run_module(module, {"codes": codes})["y0"].tolist() == expected


# --- levels and array counts ---------------------------------------------------------------------------------


def test_levels_hold_the_weights_slice_by_slice() -> None:
    # -5 = -(0b0101) and 6 = 0b0110 as 4-bit weights on 2-bit cells: differential magnitudes split low slice first;
    # offset codes w + 8 = 3 = 0b0011 and 14 = 0b1110
    weights = np.array([[-5], [6]])
    levels = {}
    for encoding in ("differential", "offset"):
        b = CimBuilder({"codes": ((None, 2), 8)})
        module = b.finish([b.linear(b.inputs["codes"], weights, 4, 8, "fc")])
        lower(module, f"bit-slice{{cell-bits=2,sign-encoding={encoding}}}")
        (program,) = ops_of(module, ProgramOp)
        levels[encoding] = program.tensor_attr("levels")[..., 0].tolist()  # [sign][slice][row]
        (shift_add,) = ops_of(module, ShiftAddOp)
        assert shift_add.attr("weight_offset") == (8 if encoding == "offset" else 0)
    assert levels["differential"] == [[[0, 2], [0, 1]], [[1, 0], [1, 0]]]
    assert levels["offset"] == [[[3, 2], [0, 3]]]


@pytest.mark.parametrize(
    "sign_encoding, weight_bits, message",
    [
        # 5-bit weights would take 3 slices of 2-bit cells
        ("differential", 5, "5-bit weights take 3 slices of 2-bit cells, got 2"),
        # 3-bit weights: magnitudes up to 4, offset codes up to 7; -8 is stored as magnitude 8, 7 as offset code 15
        ("differential", 3, "levels hold magnitude 8, beyond 3-bit weights (at most 4)"),
        ("offset", 3, "levels hold offset code 15, beyond 3-bit weights (at most 7)"),
    ],
)
def test_program_levels_are_checked_against_its_weight_bits(sign_encoding: str, weight_bits: int, message: str) -> None:
    # -8 and 7, the extremes of 4-bit weights, on 2-bit cells: 2 slices, magnitudes up to 8, offset codes up to 15
    b = CimBuilder({"codes": ((None, 2), 8)})
    module = b.finish([b.linear(b.inputs["codes"], np.array([[-8], [7]]), 4, 8, "fc")])
    lower(module, f"bit-slice{{cell-bits=2,sign-encoding={sign_encoding}}}")
    (program,) = ops_of(module, ProgramOp)
    assert program.attr("weight_bits") == 4  # the cim.linear's
    program.attributes["weight_bits"] = IntAttr(weight_bits)
    with pytest.raises(VerifyError, match=r"'cim.program' op at loc\(\"fc\"\): " + re.escape(message)):
        verify(module)


@pytest.mark.parametrize("sign_encoding, signs", [("differential", 2), ("offset", 1)])
def test_array_counts_follow_the_closed_form(sign_encoding: str, signs: int) -> None:
    rows, cols, weight_bits, cell_bits = 300, 130, 8, 2
    rng = np.random.default_rng(3)
    b = CimBuilder({"codes": ((None, rows), 8)})
    module = b.finish([b.linear(b.inputs["codes"], random_weights(rng, (rows, cols), weight_bits), 8, 8, "fc")])
    codes = random_codes(rng, (4, rows), 8)
    reference = run_module(module, {"codes": codes})["y0"]
    lower(module, f"tile,bit-slice{{cell-bits={cell_bits},sign-encoding={sign_encoding}}}")
    programs = ops_of(module, ProgramOp)
    assert [p.rows for p in programs] == [64, 64, 64, 64, 44]
    closed_form = math.ceil(rows / 64) * math.ceil(cols / 64) * math.ceil(weight_bits / cell_bits) * signs
    assert sum(p.arrays for p in programs) == closed_form == (120 if signs == 2 else 60)
    assert np.array_equal(run_module(module, {"codes": codes})["y0"], reference)


# --- options and errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pipeline, message",
    [
        ("bit-slice{cell-bits=9}", "pass 'bit-slice' option 'cell-bits' must be an integer from 1 to 8, got 9"),
        ("bit-slice{dac-bits=0}", "pass 'bit-slice' option 'dac-bits' must be an integer from 1 to 8, got 0"),
        ("bit-slice{sign-encoding=twos}", "must be one of 'differential', 'offset', got 'twos'"),
        ("bit-slice{array-cols=0}", "pass 'bit-slice' option 'array-cols' must be an integer from 1 to 4096, got 0"),
        ("tile{array-rows=0}", "pass 'tile' option 'array-rows' must be an integer from 1 to 4096, got 0"),
        ("replicate{budget=-1}", "pass 'replicate' option 'budget' must be an integer >= 0, got -1"),
    ],
)
def test_bad_options_are_named(pipeline: str, message: str) -> None:
    with pytest.raises(PipelineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PassManager(pipeline)


def test_weights_left_out_of_the_text_are_named() -> None:
    b = CimBuilder({"codes": ((None, 70), 8)})
    module = b.finish([b.linear(b.inputs["codes"], np.ones((70, 2)), 8, 8, "fc")])
    elided = parse_module(str(module))  # printed without its resource blobs
    with pytest.raises(VerifyError, match=r"at loc\(\"fc\"\): cannot cut or slice weights that are not in the IR"):
        lower(elided, "tile")


def test_bit_slice_asks_for_tile_first() -> None:
    b = CimBuilder({"codes": ((None, 65), 8)})
    module = b.finish([b.linear(b.inputs["codes"], np.ones((65, 2)), 8, 8, "fc")])
    with pytest.raises(VerifyError, match=r"at loc\(\"fc\"\): 65 rows do not fit arrays of 64 rows; run 'tile"):
        lower(module, "bit-slice")


# --- replication ---------------------------------------------------------------------------------------------


def two_conv_layers(a_first: bool = True) -> ModuleOp:
    """Conv A (3x3 on 8x8: 64 output pixels), conv B (3x3 on 4x4: 16 pixels) and a dense layer, each 9 or 20 rows
    of 4 or 3 columns: one 64x64 block, 4 slices of 8-bit weights on 2-bit cells, a differential pair = 8 arrays."""
    b = CimBuilder({"a": ((None, 1, 8, 8), 8), "b": ((None, 1, 4, 4), 8), "c": ((None, 20), 8)})
    rng = np.random.default_rng(4)
    convs = {
        "A": lambda: b.linear(b.im2col(b.inputs["a"], 3, 1), random_weights(rng, (9, 4), 8), 8, 8, "A"),
        "B": lambda: b.linear(b.im2col(b.inputs["b"], 3, 1), random_weights(rng, (9, 4), 8), 8, 8, "B"),
    }
    outputs = [convs[name]() for name in ("AB" if a_first else "BA")]
    outputs.append(b.linear(b.inputs["c"], random_weights(rng, (20, 3), 8), 8, 8, "fc"))
    module = b.finish(outputs)
    return lower(module, "tile,bit-slice")


def replication(module: ModuleOp) -> dict[str, int]:
    return {p.location.name: p.attr("replication") for p in ops_of(module, ProgramOp)}


@pytest.mark.parametrize(
    "budget, a_first, factors",
    [
        # rounds = pixels x 8 planes / copies: A 512, B 128 to start. A takes copies 2, 3, 4 (128, tied with B),
        # the tie goes to the first in module order, then B (128 -> 64), then A again (102.4 -> 85.3): each copy
        # costs 8 arrays over the 24 unreplicated ones
        (72, True, {"A": 6, "B": 2, "fc": 1}),
        (56, True, {"A": 5, "B": 1, "fc": 1}),
        (56, False, {"A": 4, "B": 2, "fc": 1}),
        # budget 0: twice the 24 unreplicated arrays, so three copies of 8 arrays: A to 4; A's fifth would not fit
        (0, True, {"A": 4, "B": 1, "fc": 1}),
        (24, True, {"A": 1, "B": 1, "fc": 1}),
        # at most one copy per input vector: B stops at 16, A at 64, then nothing is left to replicate
        (10_000, True, {"A": 64, "B": 16, "fc": 1}),
    ],
)
def test_replication_follows_the_slowest_conv_layer(budget: int, a_first: bool, factors: dict[str, int]) -> None:
    module = two_conv_layers(a_first)
    assert sum(p.arrays for p in ops_of(module, ProgramOp)) == 24
    lower(module, f"replicate{{budget={budget}}}")
    assert replication(module) == factors
    # arrays per layer: the closed form x its replication
    assert sum(p.arrays for p in ops_of(module, ProgramOp)) == 8 * sum(factors.values())
    lower(module, f"replicate{{budget={budget}}}")  # from scratch again: the same factors
    assert replication(module) == factors


def test_replication_budget_below_the_module_is_an_error() -> None:
    module = two_conv_layers()
    with pytest.raises(PipelineError, match="array budget 23 is below the 24 arrays the module needs unreplicated"):
        lower(module, "replicate{budget=23}")
