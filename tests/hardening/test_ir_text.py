"""Bad IR text through ``cimc opt`` and ``cimc run``: each refused in one line with ``file:line:col`` naming the
literal at fault (see ``tests/refusal.py``): empty texts, nesting deep enough to exhaust Python's stack, integer
and dimension literals past their types, tensor types past the tensor limit, malformed dense literals. A hypothesis
test then mutates a small valid module's text: every mutant is refused in one line or accepted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from refusal import refused, refused_or_accepted, run_cimc

WEIGHT = ((np.arange(72, dtype=np.float32) - 30) / 50).reshape(4, 2, 3, 3)
FC_WEIGHT = np.full((2, 36), 1 / 36, np.float32)


def blob(array: np.ndarray) -> str:
    """A resource blob as the printer writes it: alignment, then the little-endian bytes."""
    return "0x04000000" + array.astype("<f4").tobytes().hex().upper()


#: A valid module: a convolution, a flatten and a Gemm, with weights inline and in resource blobs.
VALID = f"""\
"builtin.module"() ({{
  "func.func"() <{{arg_attrs = [{{graph.name = "x"}}], function_type = (tensor<1x2x3x3xf32>) -> tensor<1x2xf32>,
                 res_attrs = [{{graph.name = "y"}}], sym_name = "main"}}> ({{
  ^bb0(%arg0: tensor<1x2x3x3xf32>):
    %0 = "graph.constant"() <{{value = dense_resource<w> : tensor<4x2x3x3xf32>}}> : () -> tensor<4x2x3x3xf32>
    %1 = "graph.conv"(%arg0, %0) <{{pads = array<i64: 1, 1, 1, 1>}}> : (tensor<1x2x3x3xf32>, tensor<4x2x3x3xf32>) \
-> tensor<1x4x3x3xf32> loc("conv")
    %2 = "graph.relu"(%1) : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32> loc("relu")
    %3 = "graph.flatten"(%2) : (tensor<1x4x3x3xf32>) -> tensor<1x36xf32> loc("flat")
    %4 = "graph.constant"() <{{value = dense_resource<fw> : tensor<2x36xf32>}}> : () -> tensor<2x36xf32>
    %5 = "graph.constant"() <{{value = dense<[0.5, -0.5]> : tensor<2xf32>}}> : () -> tensor<2xf32>
    %6 = "graph.gemm"(%3, %4, %5) <{{transB = 1 : i64}}> : (tensor<1x36xf32>, tensor<2x36xf32>, tensor<2xf32>) \
-> tensor<1x2xf32> loc("fc")
    "func.return"(%6) : (tensor<1x2xf32>) -> ()
  }}) : () -> ()
}}) : () -> ()

{{-#
  dialect_resources: {{
    builtin: {{
      w: "{blob(WEIGHT)}",
      fw: "{blob(FC_WEIGHT)}"
    }}
  }}
#-}}
"""

DEEP = 10_000


def attribute(text: str) -> str:
    """A module holding one attribute ``a`` written as ``text``."""
    return f'"builtin.module"() <{{a = {text}}}> : () -> ()\n'


def returning(types: str) -> str:
    """A function whose return op has the function type ``types``."""
    return (
        '"builtin.module"() ({\n  "func.func"() <{function_type = () -> (), sym_name = "main"}> ({\n'
        f'    "func.return"() : {types}\n  }}) : () -> ()\n}}) : () -> ()\n'
    )


def with_argument(ttype: str) -> str:
    """A function taking one argument of type ``ttype`` and returning nothing."""
    return (
        f'"builtin.module"() ({{\n  "func.func"() <{{function_type = ({ttype}) -> (), sym_name = "main"}}> ({{\n'
        f'  ^bb0(%arg0: {ttype}):\n    "func.return"() : () -> ()\n  }}) : () -> ()\n}}) : () -> ()\n'
    )


def nested_regions(depth: int) -> str:
    return '"builtin.module"() (' + '{"builtin.module"() (' * depth + "{}" + ") : () -> ()}" * depth + ") : () -> ()\n"


# (text, what the line names after the file's name)
CASES: dict[str, tuple[str, list[str]]] = {
    # empty texts
    "empty": ("", [":1:1:", "no operations"]),
    "blank": ("\n\n   \n", ["no operations"]),
    "only-comments": ("// a comment\n// another\n", [":3:1:", "no operations"]),
    "only-resources": ("{-#\n  dialect_resources: {\n    builtin: {}\n  }\n#-}\n", ["no operations"]),
    # nesting past the parser's depth
    "nested-arrays": (attribute("[" * DEEP + "]" * DEEP), ["nesting deeper"]),
    "nested-dictionaries": (attribute("{b = " * DEEP + "1" + "}" * DEEP), ["nesting deeper"]),
    "nested-function-types": (returning("(" * DEEP + ") -> ()"), ["nesting deeper"]),
    "nested-dense": (attribute("dense<" + "[" * DEEP + "1" + "]" * DEEP + "> : tensor<1xf32>"), ["nesting deeper"]),
    "nested-regions": (nested_regions(DEEP), ["nesting deeper"]),
    "nested-parentheses-unclosed": (returning("(" * DEEP), ["nesting deeper"]),
    "nested-brackets-unclosed": (attribute("[" * DEEP), ["nesting deeper"]),
    # integer literals past their element type
    "i64-past-max": (attribute(f"{2**63} : i64"), [":1:26:", "out of range for i64"]),
    "i64-past-min": (attribute(f"{-(2**63) - 1} : i64"), ["out of range for i64"]),
    "i64-default-past-max": (attribute("99999999999999999999"), ["out of range for i64"]),
    "i8-past-max": (attribute("300 : i8"), ["300", "i8"]),
    "ui8-negative": (attribute("-1 : ui8"), ["-1", "ui8"]),
    "i1-two": (attribute("2 : i1"), ["i1"]),
    "i32-hex-past-max": (attribute("0x1FFFFFFFF : i32"), ["0x1FFFFFFFF", "i32"]),
    "integer-1000-digits": (attribute("9" * 1000 + " : i64"), ["out of range for i64"]),
    "integer-5000-digits": (attribute("9" * 5000 + " : i64"), ["out of range for i64"]),
    "array-i64-past-max": (attribute(f"array<i64: 1, {2**64}>"), ["out of range for i64"]),
    "array-i8-past-max": (attribute("array<i8: 128>"), ["128", "i8"]),
    "array-float-for-integer": (attribute("array<i64: 1.5>"), ["expected an integer"]),
    "dense-i64-past-max": (attribute(f"dense<[1, {2**63}]> : tensor<2xi64>"), ["out of range for i64"]),
    "dense-ui16-negative": (attribute("dense<-5> : tensor<3xui16>"), ["out of range for ui16"]),
    "dense-float-for-integer": (attribute("dense<[1.5]> : tensor<1xi32>"), ["float literal 1.5"]),
    # float literals past their type
    "f32-past-max": (attribute("1.0e39 : f32"), ["out of range for f32"]),
    "f16-past-max": (attribute("70000.0 : f16"), ["out of range for f16"]),
    "f64-past-max": (attribute("1.0e400"), ["out of range for f64"]),
    "dense-f32-past-max": (attribute("dense<[1.0, 3.5e38]> : tensor<2xf32>"), ["out of range for f32"]),
    "hex-float-too-long": (attribute("0x7F8000000 : f32"), ["more bits than f32"]),
    "hex-float-signed": (attribute("-0x7F800000 : f32"), ["hex float"]),
    # dims and shapes
    "dim-past-int64": (attribute(f"tensor<{2**63}xf32>"), [":1:26:", "beyond int64"]),
    "dim-5000-digits": (attribute("tensor<" + "9" * 5000 + "xf32>"), ["beyond int64"]),
    "shape-past-limit": (attribute("tensor<99999999999x99999999999xf32>"), ["99999999999x99999999999", "limit"]),
    "shape-product-past-int64": (attribute("tensor<4294967296x4294967296x4xf32>"), ["limit"]),
    "argument-past-limit": (with_argument("tensor<100000x100000xf32>"), [":2:", "37.3 GiB"]),
    "splat-past-limit": (attribute("dense<1.0> : tensor<100000x100000xf32>"), ["37.3 GiB"]),
    "resource-past-limit": (attribute("dense_resource<w> : tensor<1000000x1000000xf32>"), ["limit"]),
    "resource-dynamic": (attribute("dense_resource<w> : tensor<?xf32>"), ["static shape"]),
    "element-unknown": (attribute("tensor<2xi7>"), ["unknown element type 'i7'"]),
    "element-unknown-in-array": (attribute("array<f8: 1.0>"), ["unknown element type 'f8'"]),
    "element-not-scalar": (attribute("tensor<2xtensor<2xf32>>"), ["scalar type"]),
    # dense literals
    "dense-too-few": (attribute("dense<[1, 2]> : tensor<3xi64>"), ["does not fit tensor<3xi64>"]),
    "dense-ragged": (attribute("dense<[[1], 2]> : tensor<2x1xi64>"), ["ragged"]),
    "dense-ragged-rows": (attribute("dense<[[1, 2], [3]]> : tensor<2x2xf32>"), ["ragged"]),
    "dense-wrong-rank": (attribute("dense<[[1, 2]]> : tensor<2xf32>"), ["does not fit"]),
    "dense-empty-for-elements": (attribute("dense<> : tensor<2xf32>"), ["empty dense literal"]),
    "dense-hex-not-hex": (attribute('dense<"0xZZ"> : tensor<1xi8>'), ["dense hex literal"]),
    "dense-hex-too-short": (attribute('dense<"0x0000"> : tensor<2xf32>'), ["8 bytes"]),
    "dense-hex-no-prefix": (attribute('dense<"00000000"> : tensor<1xf32>'), ["'0x'"]),
    "dense-dynamic": (attribute("dense<1.0> : tensor<?xf32>"), ["static shape"]),
    # strings, counts, names
    "string-not-utf8": (attribute('"\\ff"'), ["not UTF-8"]),
    "string-bad-escape": (attribute('"\\zz"'), ["bad escape"]),
    "string-unterminated": (attribute('"abc'), ["unterminated string"]),
    "result-count-past-int64": ('%0:99999999999999999999 = "graph.constant"() : () -> ()\n', ["beyond int64"]),
    "result-number-past-int64": (
        returning("() -> ()").replace('"func.return"()', '"func.return"(%x#99999999999999999999)'),
        ["beyond int64"],
    ),
    "resource-not-hex": (VALID.replace(blob(FC_WEIGHT), "0x04000000ZZ"), ["non-hex"]),
    "resource-wrong-size": (VALID.replace(blob(FC_WEIGHT), blob(FC_WEIGHT[:1])), ["resource 'fw'"]),
    "undefined-value": (VALID.replace("(%3, %4, %5)", "(%3, %4, %9)"), ["undefined value %9"]),
    "unknown-op": (VALID.replace('"graph.relu"', '"graph.relux"'), ["unknown op 'graph.relux'"]),
}


@pytest.mark.parametrize(("text", "names"), CASES.values(), ids=CASES.keys())
def test_bad_ir_text_is_refused_at_its_line_and_column(tmp_path: Path, text: str, names: list[str]) -> None:
    path = tmp_path / "bad.mlir"
    path.write_text(text)
    output = tmp_path / "out.mlir"
    refused(["opt", str(path), "-o", str(output)], f"{path}:", *names, inputs=[path], outputs=[output])


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('"builtin.module"() ({}) : () -> ()\n', ["no function 'main'"]),
        (with_argument("tensor<100000x100000xf32>"), ["37.3 GiB"]),
        (attribute("[" * DEEP), ["nesting deeper"]),
        (VALID.replace("tensor<1x2x3x3xf32>", "tensor<1x2x3xf32>", 1), ["block argument types"]),
    ],
    ids=["empty-module", "argument-past-limit", "nested", "type-mismatch"],
)
def test_cimc_run_refuses_bad_ir_text(tmp_path: Path, text: str, names: list[str]) -> None:
    path = tmp_path / "bad.mlir"
    path.write_text(text)
    inputs = tmp_path / "x.npy"
    np.save(inputs, np.ones((1, 2, 3, 3), np.float32))
    refused(["run", str(path), "-i", str(inputs)], *names, inputs=[path, inputs])


#: A ConstantOfShape of 10^11 floats whose result type leaves the size to its operand's value.
DATA_SIZED = """\
"builtin.module"() ({
  "func.func"() <{function_type = (tensor<1xf32>) -> tensor<?xf32>, sym_name = "main"}> ({
  ^bb0(%arg0: tensor<1xf32>):
    %0 = "graph.constant"() <{value = dense<[100000000000]> : tensor<1xi64>}> : () -> tensor<1xi64>
    %1 = "graph.constant_of_shape"(%0) : (tensor<1xi64>) -> tensor<?xf32> loc("big")
    "func.return"(%1) : (tensor<?xf32>) -> ()
  }) : () -> ()
}) : () -> ()
"""


def test_a_size_from_a_constant_is_not_folded_and_refused_when_run(tmp_path: Path) -> None:
    path = tmp_path / "big.mlir"
    path.write_text(DATA_SIZED)
    status, out, err, peak = run_cimc(["opt", str(path), "--passes", "fold-constants"])
    assert status == 0 and "graph.constant_of_shape" in out and peak < 1 << 20, err
    inputs = tmp_path / "x.npy"
    np.save(inputs, np.ones(1, np.float32))
    refused(["run", str(path), "-i", str(inputs)], '"big"', "373 GiB", inputs=[path, inputs])


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 60


def test_the_valid_text_runs(tmp_path: Path) -> None:
    path = tmp_path / "ok.mlir"
    path.write_text(VALID)
    inputs = tmp_path / "x.npy"
    np.save(inputs, np.ones((1, 2, 3, 3), np.float32))
    status, out, err, _ = run_cimc(["run", str(path), "-i", str(inputs)])
    assert status == 0 and "y: float32[1, 2]" in out, err


def test_a_limit_raised_by_the_flag_accepts_the_type(tmp_path: Path) -> None:
    path = tmp_path / "big.mlir"
    path.write_text(with_argument("tensor<100000x100000xf32>"))
    status, out, err, _ = run_cimc(["opt", str(path), "--max-tensor-size", "40G"])
    assert status == 0 and "tensor<100000x100000xf32>" in out, err


# --- mutations of a valid text -------------------------------------------------------------------------------------

#: Syntax spliced into the valid text: brackets, sigils, a literal past int64, the openers of types and literals.
_PIECES = [
    *'()[]{}<>%#^:,="x?-\\\n',
    "0x",
    "99999999999999999999",
    "tensor<",
    "dense<",
    "array<i64: ",
    "loc(",
    "-> ",
    "f32",
]


@st.composite
def mutants(draw: st.DrawFn) -> str:
    """VALID with a few characters replaced, inserted or deleted, a syntax piece spliced in, or cut short."""
    text = VALID
    if draw(st.integers(0, 4)) == 0:
        return text[: draw(st.integers(0, len(text) - 1))]
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text) - 1))
        kind = draw(st.sampled_from(["replace", "insert", "delete", "splice"]))
        piece = draw(st.sampled_from(_PIECES)) if kind == "splice" else draw(st.characters(max_codepoint=0x7F))
        end = at + (kind in ("replace", "delete"))
        text = text[:at] + ("" if kind == "delete" else piece) + text[end:]
    return text


def check_mutant(tmp_path: Path, text: str) -> None:
    path = tmp_path / "m.mlir"
    path.write_text(text)
    refused_or_accepted(["opt", str(path), "--passes", "canonicalize"])


_FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(derandomize=True, max_examples=150, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(text=mutants())
def test_a_mutated_text_is_refused_in_one_line_or_accepted(tmp_path: Path, text: str) -> None:
    check_mutant(tmp_path, text)


@pytest.mark.slow
@settings(derandomize=True, max_examples=500, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(text=mutants())
def test_many_mutated_texts_are_refused_in_one_line_or_accepted(tmp_path: Path, text: str) -> None:
    check_mutant(tmp_path, text)
