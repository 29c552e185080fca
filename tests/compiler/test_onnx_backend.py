"""ONNX's own conformance tests, run on cimc's ONNX backend (importer + reference interpreter).

Cases come from ``onnx.backend.test``: the node tests (one operator each, expected outputs from the ONNX reference),
the PyTorch-converted and PyTorch-operator models (where grouped, depthwise and dilated Conv live), and the small
"simple" models. A case runs when its model uses only ops the graph dialect has and only tensors of element types
the IR has, so the selection grows with the dialect; CPU only. Selected cases that cannot pass by design are in
``EXCLUDED`` with the reason.
"""

from __future__ import annotations

import os
import tempfile
import unittest
import warnings

import numpy as np
import onnx

_ONNX_HOME = tempfile.TemporaryDirectory(prefix="cimc-onnx-home-")
os.environ["ONNX_HOME"] = _ONNX_HOME.name  # before onnx.backend.test, which keeps its downloads there

import onnx.backend.test  # noqa: E402
from onnx.backend.test.case.test_case import TestCase  # noqa: E402
from onnx.backend.test.loader import load_model_tests  # noqa: E402

from cimc.compiler.backend import CimcBackend  # noqa: E402
from cimc.ir.dialects.graph import BY_ONNX_TYPE, element_from_onnx  # noqa: E402

_PRELU_6 = "opset-6 PRelu has a per-channel slope; onnx's version converter leaves it unbroadcastable at opset 7+"
_TRAINING_BATCHNORM = "training_mode BatchNorm uses batch statistics; cimc imports inference graphs"
_TRAINING_DROPOUT = "training_mode Dropout draws a random mask; cimc imports inference graphs"
_RUNTIME_AXES = "reduction axes are a run-time input, so ONNX shape inference gives the result no rank"
_RUNTIME_SPLIT = "Split lengths are computed at run time, so ONNX shape inference gives its results no rank"
_GLOBALMAXPOOL_22 = "opset-22 model cannot be down-converted: onnx has no GlobalMaxPool 22 -> 21 adapter"
_BLOCKED = "blocked (block_size > 0) quantization is not supported by the graph ops"
_ANTIALIAS = "antialiased Resize is not supported by graph.resize"
_ALIGN_CORNERS = (
    "onnx's reference uses the fractional output length (scale x length = 2.4) in align_corners; onnxruntime and "
    "cimc use the integer output size (2), and we follow onnxruntime"
)
_CROP_AND_RESIZE = "tf_crop_and_resize Resize is not supported by graph.resize"
_FLOAT_MOD_28 = (
    "float Mod with fmod=0 exists from opset 28; onnx cannot down-convert it to 21, where floats need fmod=1"
)
_CELU_FLOAT16 = "float16 Celu exists from opset 27; onnx cannot down-convert the model to 21, where Celu is float only"
_SPACETODEPTH_CRD = "SpaceToDepth mode=CRD exists from opset 28; onnx cannot down-convert it to 21, which has DCR only"

#: Selected case (without the ``_cpu`` suffix) -> why it cannot pass.
EXCLUDED: dict[str, str] = {
    "test_PReLU_1d_multiparam": _PRELU_6,
    "test_PReLU_2d_multiparam": _PRELU_6,
    "test_PReLU_3d_multiparam": _PRELU_6,
    "test_batchnorm_epsilon_training_mode": _TRAINING_BATCHNORM,
    "test_batchnorm_example_training_mode": _TRAINING_BATCHNORM,
    "test_training_dropout": _TRAINING_DROPOUT,
    "test_training_dropout_default": _TRAINING_DROPOUT,
    "test_training_dropout_default_mask": _TRAINING_DROPOUT,
    "test_training_dropout_mask": _TRAINING_DROPOUT,
    "test_training_dropout_zero_ratio": _TRAINING_DROPOUT,
    "test_training_dropout_zero_ratio_mask": _TRAINING_DROPOUT,
    "test_globalmaxpool": _GLOBALMAXPOOL_22,
    "test_globalmaxpool_precomputed": _GLOBALMAXPOOL_22,
    "test_range_float16_type_positive_delta": "float16 Range needs opset 27; the model cannot be down-converted to 21",
    "test_reduce_log_sum_asc_axes_expanded": _RUNTIME_AXES,
    "test_reduce_log_sum_desc_axes_expanded": _RUNTIME_AXES,
    "test_reduce_log_sum_empty_set_expanded": _RUNTIME_AXES,
    "test_reduce_log_sum_negative_axes_expanded": _RUNTIME_AXES,
    "test_rotary_embedding_expanded": _RUNTIME_SPLIT,
    "test_rotary_embedding_interleaved_expanded": _RUNTIME_SPLIT,
    "test_rotary_embedding_no_position_ids_expanded": _RUNTIME_SPLIT,
    "test_rotary_embedding_no_position_ids_interleaved_expanded": _RUNTIME_SPLIT,
    "test_rotary_embedding_no_position_ids_rotary_dim_expanded": _RUNTIME_SPLIT,
    "test_rotary_embedding_with_interleaved_rotary_dim_expanded": _RUNTIME_SPLIT,
    "test_rotary_embedding_with_rotary_dim_expanded": _RUNTIME_SPLIT,
    "test_dequantizelinear_blocked": _BLOCKED,
    "test_quantizelinear_blocked_asymmetric": _BLOCKED,
    "test_quantizelinear_blocked_symmetric": _BLOCKED,
    "test_resize_downsample_scales_cubic_align_corners": _ALIGN_CORNERS,
    "test_resize_downsample_scales_linear_align_corners": _ALIGN_CORNERS,
    "test_resize_downsample_scales_cubic_antialias": _ANTIALIAS,
    "test_resize_downsample_scales_linear_antialias": _ANTIALIAS,
    "test_resize_downsample_sizes_cubic_antialias": _ANTIALIAS,
    "test_resize_downsample_sizes_linear_antialias": _ANTIALIAS,
    "test_resize_tf_crop_and_resize": _CROP_AND_RESIZE,
    "test_resize_tf_crop_and_resize_axes_2_3": _CROP_AND_RESIZE,
    "test_resize_tf_crop_and_resize_axes_3_2": _CROP_AND_RESIZE,
    "test_resize_tf_crop_and_resize_extrapolation_value": _CROP_AND_RESIZE,
    "test_mod_float16_mixed_sign_fmod_0": _FLOAT_MOD_28,
    "test_mod_float32_mixed_sign_fmod_0": _FLOAT_MOD_28,
    "test_mod_float64_mixed_sign_fmod_0": _FLOAT_MOD_28,
    "test_mod_float_edge_cases_fmod_0_float16": _FLOAT_MOD_28,
    "test_mod_float_edge_cases_fmod_0_float32": _FLOAT_MOD_28,
    "test_mod_float_edge_cases_fmod_0_float64": _FLOAT_MOD_28,
    "test_celu_float16": _CELU_FLOAT16,
    "test_spacetodepth_crd_mode_example": _SPACETODEPTH_CRD,
    **dict.fromkeys(
        (
            f"test_rms_normalization_{case}_expanded"
            for case in (
                "default_axis 2d_axis0 2d_axis1 2d_axis_negative_1 2d_axis_negative_2 3d_axis0_epsilon "
                "3d_axis1_epsilon 3d_axis2_epsilon 3d_axis_negative_1_epsilon 3d_axis_negative_2_epsilon "
                "3d_axis_negative_3_epsilon 4d_axis0 4d_axis1 4d_axis2 4d_axis3 4d_axis_negative_1 4d_axis_negative_2 "
                "4d_axis_negative_3 4d_axis_negative_4"
            ).split()
        ),
        _RUNTIME_AXES,  # computed by Range(axis, Size(Shape(X)))
    ),
}

_KINDS = ("node", "simple", "pytorch-converted", "pytorch-operator")
_SUPPORTED_OPS = {*BY_ONNX_TYPE, "Constant"}


def _model(case: TestCase) -> onnx.ModelProto:
    if case.model is not None:
        return case.model
    return onnx.load(os.path.join(case.model_dir, "model.onnx"), load_external_data=False)


def _has_ir_type(value: onnx.ValueInfoProto) -> bool:
    if not value.type.HasField("tensor_type"):
        return False  # sequences, optionals, maps
    try:
        element_from_onnx(value.type.tensor_type.elem_type)
    except ValueError:
        return False  # bfloat16, float8, 4- and 2-bit integers, strings
    return True


def _runs_on_graph_ops(model: onnx.ModelProto) -> bool:
    """Whether every op is a graph op (or a Constant) and every graph input and output an IR tensor type."""
    graph = model.graph
    ops = all(n.op_type in _SUPPORTED_OPS and n.domain in ("", "ai.onnx") for n in graph.node)
    return ops and all(_has_ir_type(v) for v in (*graph.input, *graph.output))


with warnings.catch_warnings():  # the node cases compute their expected outputs on import, overflowing on purpose
    warnings.simplefilter("ignore", RuntimeWarning)
    SELECTED = sorted(c.name for kind in _KINDS for c in load_model_tests(kind=kind) if _runs_on_graph_ops(_model(c)))


def _conformance_cases() -> dict[str, type[unittest.TestCase]]:
    """The runner's test classes, pruned to the selected CPU cases, excluded ones skipped with their reason."""
    cases = onnx.backend.test.BackendTest(CimcBackend, __name__).test_cases
    selected = set(SELECTED)
    for cls in cases.values():
        for name in [n for n in vars(cls) if n.startswith("test_")]:
            case = name.removesuffix("_cpu")
            if case == name or case not in selected:
                delattr(cls, name)
            elif case in EXCLUDED:
                setattr(cls, name, unittest.skip(EXCLUDED[case])(getattr(cls, name)))
    return {name: cls for name, cls in cases.items() if any(n.startswith("test_") for n in vars(cls))}


globals().update(_conformance_cases())


def test_exclusions_name_selected_cases() -> None:
    """Each exclusion names a case that is still selected, so the list cannot go stale."""
    assert sorted(set(EXCLUDED) - set(SELECTED)) == []


def test_backend_outputs_are_named_and_ordered() -> None:
    node = onnx.helper.make_node("Add", ["a", "b"], ["sum"])
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1.0, -1.0, 0.5], np.float32)
    outputs = CimcBackend.run_node(node, [a, b])
    np.testing.assert_array_equal(outputs[0], a + b)
    np.testing.assert_array_equal(outputs["sum"], a + b)
    assert CimcBackend.supports_device("CPU") and not CimcBackend.supports_device("CUDA")
