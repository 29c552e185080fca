"""A zoo of small models no one here wrote: ONNX graphs shaped the way exporters write them.

Each builder makes, with seeded random weights, a model in the style PyTorch's ``torch.onnx.export`` and
onnxruntime's quantization tool emit: node names such as ``/layer1/layer1.0/conv1/Conv``, anonymous initializers
such as ``onnx::Conv_193``, a symbolic ``batch_size`` dimension, ``Shape -> Gather -> Unsqueeze -> Concat ->
Reshape`` chains, ``Constant`` nodes, ``Identity`` nodes on weights and ``Dropout`` left in eval exports. They span
opsets 11 to 21 and the operator spellings that change between them (``Unsqueeze`` axes as an attribute or an
input, ``Split`` sizes, ``ReduceMean`` axes, Gelu as ``Erf`` arithmetic or one op). The importer and the reference
interpreter are tested on them against onnxruntime; none of them is built with cimc in mind.

``ZOO`` lists every model with its builder and a function giving seeded sample inputs.
"""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: IR version per opset, as the exporter of that era wrote it (onnxruntime refuses IR versions newer than it knows).
_IR_VERSION = {11: 6, 13: 7, 14: 7, 17: 8, 18: 8, 21: 10}

BATCH = "batch_size"


class _Exporter:
    """Accumulates nodes and initializers, naming them the way ``torch.onnx.export`` does.

    A node in module scope ``/layer1/layer1.0/conv1`` of type ``Conv`` is named ``/layer1/layer1.0/conv1/Conv``
    (``_1``, ``_2`` for repeats) and its outputs ``<node name>_output_<i>``; named parameters keep their module
    path (``fc.weight``) and folded or deduplicated ones become ``onnx::<OpType>_<n>``.
    """

    def __init__(self, opset: int, seed: int) -> None:
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._node_names: Counter[str] = Counter()
        self._anonymous = itertools.count(193)

    # --- tensors
    def initializer(self, array: np.ndarray, name: str) -> str:
        """Add ``array`` as an initializer called ``name``; returns the name."""
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def anonymous(self, op_type: str, array: np.ndarray) -> str:
        """An initializer named like one the exporter folded or deduplicated: ``onnx::Conv_193``."""
        return self.initializer(array, f"onnx::{op_type}_{next(self._anonymous)}")

    def weight(self, shape: Sequence[int], fan_in: int) -> np.ndarray:
        """He-normal weights, so that activations keep their scale through deep stacks."""
        return (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    def bias(self, n: int) -> np.ndarray:
        """Small random biases, so that a bias mixed up with another shows in the outputs."""
        return (0.1 * self.rng.standard_normal(n)).astype(np.float32)

    # --- nodes
    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        scope: str = "",
        outputs: int = 1,
        output_name: str = "",
        **attrs: object,
    ) -> str | list[str]:
        """Add a node in module ``scope``; returns its output name (a list when it has several outputs).

        ``output_name`` renames the single output, as the exporter does for graph outputs.
        """
        base = f"{scope}/{op_type}"
        count = self._node_names[base]
        self._node_names[base] += 1
        name = base if count == 0 else f"{base}_{count}"
        names = [output_name] if output_name else [f"{name}_output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=name, **attrs))
        return names[0] if outputs == 1 else names

    def constant(self, array: np.ndarray | float | int, scope: str = "") -> str:
        """A ``Constant`` node holding ``array`` (Python ints become int64, floats float32)."""
        if isinstance(array, int):
            array = np.array(array, np.int64)
        elif isinstance(array, float):
            array = np.array(array, np.float32)
        return self.op("Constant", [], scope, value=numpy_helper.from_array(np.asarray(array)))

    def ints(self, values: Sequence[int], scope: str = "") -> str:
        """A 1-D int64 ``Constant`` (shapes, axes, pads, split sizes)."""
        return self.constant(np.array(values, np.int64), scope)

    # --- spellings that changed between opsets
    def unsqueeze(self, x: str, axes: Sequence[int], scope: str = "") -> str:
        if self.opset < 13:
            return self.op("Unsqueeze", [x], scope, axes=list(axes))
        return self.op("Unsqueeze", [x, self.ints(axes, scope)], scope)

    def squeeze(self, x: str, axes: Sequence[int], scope: str = "") -> str:
        if self.opset < 13:
            return self.op("Squeeze", [x], scope, axes=list(axes))
        return self.op("Squeeze", [x, self.ints(axes, scope)], scope)

    def reduce_mean(self, x: str, axes: Sequence[int], keepdims: int, scope: str = "") -> str:
        if self.opset < 18:
            return self.op("ReduceMean", [x], scope, axes=list(axes), keepdims=keepdims)
        return self.op("ReduceMean", [x, self.ints(axes, scope)], scope, keepdims=keepdims)

    def split(self, x: str, sizes: Sequence[int], axis: int, scope: str = "") -> list[str]:
        if self.opset < 13:
            return self.op("Split", [x], scope, outputs=len(sizes), axis=axis, split=list(sizes))
        return self.op("Split", [x, self.ints(sizes, scope)], scope, outputs=len(sizes), axis=axis)

    def dropout(self, x: str, scope: str = "") -> str:
        """An eval-mode ``Dropout`` (identity at inference), as older exports and tf2onnx leave them."""
        if self.opset < 12:
            return self.op("Dropout", [x], scope, ratio=0.1)
        return self.op("Dropout", [x, self.constant(0.1, scope)], scope)

    def dim(self, x: str, axis: int, scope: str = "") -> str:
        """``x.size(axis)`` as the exporter spells it: ``Shape -> Gather`` (a scalar int64)."""
        shape = self.op("Shape", [x], scope)
        return self.op("Gather", [shape, self.constant(axis, scope)], scope, axis=0)

    def reshape(self, x: str, dims: Sequence[str | int], scope: str = "") -> str:
        """``x.view(*dims)`` where dims are ``dim()`` scalars or ints: ``Unsqueeze`` each, ``Concat``, ``Reshape``."""
        parts = [self.unsqueeze(d, [0], scope) if isinstance(d, str) else self.ints([d], scope) for d in dims]
        return self.op("Reshape", [x, self.op("Concat", parts, scope, axis=0)], scope)

    # --- layers
    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        kernel: Sequence[int],
        scope: str,
        name: str | None = None,
        bias: bool = True,
        group: int = 1,
        **attrs: object,
    ) -> str:
        """A convolution. With ``name`` its parameters are ``<name>.weight``/``.bias``; without, they are
        anonymous as when the exporter folded a BatchNorm into them."""
        shape = (cout, cin // group, *kernel)
        w = self.weight(shape, int(np.prod(shape[1:])))
        inputs = [x, self.initializer(w, f"{name}.weight") if name else self.anonymous("Conv", w)]
        if bias:
            b = self.bias(cout)
            inputs.append(self.initializer(b, f"{name}.bias") if name else self.anonymous("Conv", b))
        rank = len(kernel)
        attrs.setdefault("pads", [k // 2 for k in kernel] * 2)
        attrs.setdefault("strides", [1] * rank)
        attrs.setdefault("dilations", [1] * rank)
        return self.op("Conv", inputs, scope, group=group, kernel_shape=list(kernel), **attrs)

    def batch_norm(self, x: str, channels: int, scope: str, name: str) -> str:
        """An inference ``BatchNormalization`` with named, nontrivial running statistics."""
        params = {
            "weight": 1.0 + 0.1 * self.rng.standard_normal(channels),
            "bias": 0.1 * self.rng.standard_normal(channels),
            "running_mean": 0.1 * self.rng.standard_normal(channels),
            "running_var": self.rng.uniform(0.5, 1.5, channels),
        }
        inputs = [self.initializer(v.astype(np.float32), f"{name}.{k}") for k, v in params.items()]
        attrs: dict[str, object] = {"epsilon": 1e-5, "momentum": 0.9}
        if self.opset < 14:
            return self.op("BatchNormalization", [x, *inputs], scope, **attrs)
        return self.op("BatchNormalization", [x, *inputs], scope, training_mode=0, **attrs)

    def linear(self, x: str, cin: int, cout: int, scope: str, name: str, output_name: str = "") -> str:
        """``nn.Linear`` on the last axis of an N-d tensor: ``MatMul`` with the transposed weight, then ``Add``."""
        w = self.anonymous("MatMul", self.weight((cin, cout), cin))
        b = self.initializer(self.bias(cout), f"{name}.bias")
        return self.op("Add", [self.op("MatMul", [x, w], scope), b], scope, output_name=output_name)

    def gemm(self, x: str, cin: int, cout: int, scope: str, name: str, output_name: str = "") -> str:
        """``nn.Linear`` on a 2-d tensor: ``Gemm`` with ``transB=1`` over the ``[out, in]`` weight."""
        w = self.initializer(self.weight((cout, cin), cin), f"{name}.weight")
        b = self.initializer(self.bias(cout), f"{name}.bias")
        return self.op("Gemm", [x, w, b], scope, output_name=output_name, alpha=1.0, beta=1.0, transB=1)

    # --- the model
    def model(
        self, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]
    ) -> onnx.ModelProto:
        """The finished model, checked by ``onnx.checker`` with full shape inference."""
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", self.opset)],
            ir_version=_IR_VERSION[self.opset],
            producer_name="pytorch",
            producer_version="2.1.0",
        )
        onnx.checker.check_model(model, full_check=True)
        return model


def _float(name: str, shape: Sequence[int | str | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _normal(shape: Sequence[int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- (a) ResNet -------------------------------------------------------------------------------------------------


def resnet(opset: int = 11, seed: int = 0) -> onnx.ModelProto:
    """A ResNet-18-style CNN on 32x32 RGB: residual basic blocks, projection shortcuts, 10 classes.

    The stem and ``layer1`` keep their ``BatchNormalization`` nodes (an export with ``training=PRESERVE``);
    ``layer2``/``layer3`` have them folded into anonymous conv weights, as the default eval export does.
    """
    e = _Exporter(opset, seed)
    h = e.conv("input", 3, 16, (3, 3), "/conv1", name="conv1", bias=False)
    h = e.op("Relu", [e.batch_norm(h, 16, "/bn1", "bn1")], "/relu")
    h = e.op("MaxPool", [h], "/maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    for layer, (cin, cout, stride) in enumerate([(16, 16, 1), (16, 32, 2), (32, 64, 2)], start=1):
        scope = f"/layer{layer}/layer{layer}.0"
        prefix = f"layer{layer}.0"
        folded = layer > 1
        out = e.conv(
            h,
            cin,
            cout,
            (3, 3),
            f"{scope}/conv1",
            None if folded else f"{prefix}.conv1",
            bias=folded,
            strides=[stride, stride],
        )
        if not folded:
            out = e.batch_norm(out, cout, f"{scope}/bn1", f"{prefix}.bn1")
        out = e.op("Relu", [out], f"{scope}/relu")
        out = e.conv(out, cout, cout, (3, 3), f"{scope}/conv2", None if folded else f"{prefix}.conv2", bias=folded)
        if not folded:
            out = e.batch_norm(out, cout, f"{scope}/bn2", f"{prefix}.bn2")
        shortcut = h
        if stride != 1 or cin != cout:  # projection shortcut: 1x1 conv (BatchNorm folded in)
            shortcut = e.conv(h, cin, cout, (1, 1), f"{scope}/downsample/downsample.0", strides=[stride, stride])
        h = e.op("Relu", [e.op("Add", [out, shortcut], scope)], f"{scope}/relu_1")
    h = e.op("Flatten", [e.op("GlobalAveragePool", [h], "/avgpool")], "", axis=1)
    e.gemm(h, 64, 10, "/fc", "fc", output_name="logits")
    return e.model("main_graph", [_float("input", [BATCH, 3, 32, 32])], [_float("logits", [BATCH, 10])])


def image_inputs(seed: int = 0, batch: int = 2) -> dict[str, np.ndarray]:
    """A seeded batch of 32x32 RGB images for the ResNet, MobileNet and U-Net models."""
    return {"input": _normal((batch, 3, 32, 32), seed)}


# --- (b) MobileNet ----------------------------------------------------------------------------------------------


def mobilenet(opset: int = 17, seed: int = 1) -> onnx.ModelProto:
    """A MobileNetV2/V3-style CNN: depthwise convs (group = channels), inverted residuals, ReLU6 as ``Clip`` with
    min/max inputs, ``HardSwish``, a squeeze-excite gate with ``HardSigmoid``, and a dilated depthwise conv."""
    e = _Exporter(opset, seed)

    def relu6(x: str, scope: str) -> str:
        return e.op("Clip", [x, e.constant(0.0, scope), e.constant(6.0, scope)], scope)

    h = e.op(
        "HardSwish",
        [e.conv("input", 3, 16, (3, 3), "/features/features.0/features.0.0", strides=[2, 2])],
        "/features/features.0/features.0.2",
    )
    # V2 block without expansion: depthwise 3x3, ReLU6, linear projection, residual
    s = "/features/features.1/block"
    out = relu6(e.conv(h, 16, 16, (3, 3), f"{s}/block.0/block.0.0", group=16), f"{s}/block.0/block.0.2")
    h = e.op("Add", [h, e.conv(out, 16, 16, (1, 1), f"{s}/block.1/block.1.0")], "/features/features.1")
    # V2 inverted residual with a squeeze-excite gate, stride 2: 16 -> 64 -> 24
    s = "/features/features.2/block"
    out = relu6(e.conv(h, 16, 64, (1, 1), f"{s}/block.0/block.0.0"), f"{s}/block.0/block.0.2")
    out = relu6(
        e.conv(out, 64, 64, (3, 3), f"{s}/block.1/block.1.0", group=64, strides=[2, 2]), f"{s}/block.1/block.1.2"
    )
    se = e.op("GlobalAveragePool", [out], f"{s}/block.2/avgpool")
    se = e.op(
        "Relu",
        [e.conv(se, 64, 16, (1, 1), f"{s}/block.2/fc1", name="features.2.block.2.fc1")],
        f"{s}/block.2/activation",
    )
    se = e.conv(se, 16, 64, (1, 1), f"{s}/block.2/fc2", name="features.2.block.2.fc2")
    gate = e.op("HardSigmoid", [se], f"{s}/block.2/scale_activation", alpha=1.0 / 6.0, beta=0.5)
    out = e.op("Mul", [gate, out], f"{s}/block.2")
    h = e.conv(out, 64, 24, (1, 1), f"{s}/block.3/block.3.0")
    # V3 block with HardSwish and a dilated (atrous) depthwise conv, residual: 24 -> 72 -> 24
    s = "/features/features.3/block"
    out = e.op("HardSwish", [e.conv(h, 24, 72, (1, 1), f"{s}/block.0/block.0.0")], f"{s}/block.0/block.0.2")
    out = e.conv(out, 72, 72, (3, 3), f"{s}/block.1/block.1.0", group=72, pads=[2, 2, 2, 2], dilations=[2, 2])
    out = e.op("HardSwish", [out], f"{s}/block.1/block.1.2")
    h = e.op("Add", [e.conv(out, 72, 24, (1, 1), f"{s}/block.2/block.2.0"), h], "/features/features.3")
    h = e.op(
        "HardSwish",
        [e.conv(h, 24, 96, (1, 1), "/features/features.4/features.4.0")],
        "/features/features.4/features.4.2",
    )
    h = e.op("Flatten", [e.op("GlobalAveragePool", [h], "/avgpool")], "", axis=1)
    h = e.op("HardSwish", [e.gemm(h, 96, 64, "/classifier/classifier.0", "classifier.0")], "/classifier/classifier.1")
    h = e.dropout(h, "/classifier/classifier.2")
    e.gemm(h, 64, 10, "/classifier/classifier.3", "classifier.3", output_name="logits")
    return e.model("main_graph", [_float("input", [BATCH, 3, 32, 32])], [_float("logits", [BATCH, 10])])


# --- (c) transformer encoder ------------------------------------------------------------------------------------

_VOCAB, _MAX_SEQ, _D, _HEADS, _FFN, _CLASSES = 100, 16, 32, 4, 64, 4


def transformer(opset: int = 17, seed: int = 2) -> onnx.ModelProto:
    """A 2-layer post-LN transformer encoder (BERT-style, d=32, 4 heads) over token ids, with a dynamic
    ``sequence_length`` up to 16, mean pooling and a 4-class head.

    Per opset it is spelled as exported then: LayerNorm as ``ReduceMean``/``Sub``/``Pow``/``Sqrt``/``Div``
    arithmetic below 17 and ``LayerNormalization`` from 17; GELU as ``Erf`` arithmetic below 20 and ``Gelu``
    from 20; heads split with ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` chains.
    """
    e = _Exporter(opset, seed)
    head_dim = _D // _HEADS

    def layer_norm(x: str, scope: str, name: str) -> str:
        gamma = e.initializer((1.0 + 0.1 * e.rng.standard_normal(_D)).astype(np.float32), f"{name}.weight")
        beta = e.initializer(e.bias(_D), f"{name}.bias")
        if opset >= 17:
            return e.op("LayerNormalization", [x, gamma, beta], scope, axis=-1, epsilon=1e-12)
        centered = e.op("Sub", [x, e.reduce_mean(x, [-1], 1, scope)], scope)
        var = e.reduce_mean(e.op("Pow", [centered, e.constant(2.0, scope)], scope), [-1], 1, scope)
        std = e.op("Sqrt", [e.op("Add", [var, e.constant(1e-12, scope)], scope)], scope)
        return e.op("Add", [e.op("Mul", [e.op("Div", [centered, std], scope), gamma], scope), beta], scope)

    def gelu(x: str, scope: str) -> str:
        if opset >= 20:
            return e.op("Gelu", [x], scope)
        erf = e.op("Erf", [e.op("Div", [x, e.constant(1.4142135, scope)], scope)], scope)
        half = e.op("Mul", [x, e.op("Add", [erf, e.constant(1.0, scope)], scope)], scope)
        return e.op("Mul", [half, e.constant(0.5, scope)], scope)

    ids = "input_ids"
    s = "/embeddings"
    table = e.initializer(
        (0.5 * e.rng.standard_normal((_VOCAB, _D))).astype(np.float32), "embeddings.word_embeddings.weight"
    )
    positions = e.initializer(
        (0.5 * e.rng.standard_normal((1, _MAX_SEQ, _D))).astype(np.float32), "embeddings.position_embeddings"
    )
    seq = e.unsqueeze(e.dim(ids, 1, s), [0], s)
    pos = e.op("Slice", [positions, e.ints([0], s), seq, e.ints([1], s)], s)  # positions[:, :seq]
    h = e.op("Add", [e.op("Gather", [table, ids], f"{s}/word_embeddings", axis=0), pos], s)
    h = e.dropout(layer_norm(h, f"{s}/LayerNorm", "embeddings.LayerNorm"), f"{s}/dropout")
    for i in range(2):
        s = f"/encoder/layer.{i}"
        name = f"encoder.layer.{i}"
        qkv = e.linear(h, _D, 3 * _D, f"{s}/attention/qkv", f"{name}.attention.qkv")
        at = f"{s}/attention"
        q, k, v = e.split(qkv, [_D] * 3, -1, at)
        batch, length = e.dim(h, 0, at), e.dim(h, 1, at)
        # [N, S, D] -> [N, heads, S, head_dim] (keys: [N, heads, head_dim, S])
        q, k, v = (
            e.op("Transpose", [e.reshape(x, [batch, length, _HEADS, head_dim], at)], at, perm=perm)
            for x, perm in [(q, [0, 2, 1, 3]), (k, [0, 2, 3, 1]), (v, [0, 2, 1, 3])]
        )
        scores = e.op("Div", [e.op("MatMul", [q, k], at), e.constant(float(np.sqrt(head_dim)), at)], at)
        probs = e.dropout(e.op("Softmax", [scores], at, axis=-1), f"{at}/dropout")
        context = e.op("Transpose", [e.op("MatMul", [probs, v], at)], at, perm=[0, 2, 1, 3])
        context = e.reshape(context, [batch, length, _D], at)
        attn = e.linear(context, _D, _D, f"{s}/attention/output/dense", f"{name}.attention.output.dense")
        h = layer_norm(
            e.op("Add", [attn, h], f"{s}/attention/output"),
            f"{s}/attention/output/LayerNorm",
            f"{name}.attention.output.LayerNorm",
        )
        ffn = gelu(
            e.linear(h, _D, _FFN, f"{s}/intermediate/dense", f"{name}.intermediate.dense"),
            f"{s}/intermediate/intermediate_act_fn",
        )
        ffn = e.linear(ffn, _FFN, _D, f"{s}/output/dense", f"{name}.output.dense")
        h = layer_norm(e.op("Add", [ffn, h], f"{s}/output"), f"{s}/output/LayerNorm", f"{name}.output.LayerNorm")
    pooled = e.reduce_mean(e.op("Identity", [h], "/pooler"), [1], 0, "/pooler")
    # torch.onnx reads a deduplicated (shared) parameter through an Identity node, as the classifier does here
    shared = e.anonymous("MatMul", e.weight((_D, _CLASSES), _D))
    weight = e.op("Identity", [shared], "/classifier")
    bias = e.initializer(e.bias(_CLASSES), "classifier.bias")
    e.op("Add", [e.op("MatMul", [pooled, weight], "/classifier"), bias], "/classifier", output_name="logits")
    inputs = [helper.make_tensor_value_info(ids, TensorProto.INT64, [BATCH, "sequence_length"])]
    outputs = [_float("logits", [BATCH, _CLASSES])]
    return e.model("main_graph", inputs, outputs)


def token_inputs(seed: int = 0, batch: int = 2) -> dict[str, np.ndarray]:
    """Seeded token ids for the transformer: a batch of 12-token sequences (shorter than the 16 positions, so the
    position table is sliced to the dynamic length)."""
    return {"input_ids": np.random.default_rng(seed).integers(0, _VOCAB, (batch, 12), dtype=np.int64)}


# --- (d) QDQ-quantized ResNet ---------------------------------------------------------------------------------


def qdq_resnet(seed: int = 0) -> onnx.ModelProto:
    """The ResNet at opset 13 statically quantized the way onnxruntime's docs do it: ``quant_pre_process`` (which
    folds the BatchNorms into the convs), then ``quantize_static`` to QDQ format with per-channel int8 weights and
    activation ranges calibrated on seeded random images (the tool also drops the Relus the quantization clamps)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Images(CalibrationDataReader):
        """Eight seeded calibration images, one at a time."""

        def __init__(self) -> None:
            self._batches = iter(image_inputs(seed=100 + i, batch=1) for i in range(8))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, target = Path(tmp, "float.onnx"), Path(tmp, "prepared.onnx"), Path(tmp, "qdq.onnx")
        onnx.save(resnet(opset=13, seed=seed), source)
        quant_pre_process(source, prepared, skip_symbolic_shape=True)  # symbolic shapes would need sympy
        quantize_static(prepared, target, Images(), quant_format=QuantFormat.QDQ, per_channel=True)
        model = onnx.load(target)
    onnx.checker.check_model(model, full_check=True)
    return model


# --- (e) OCR: CRNN with an LSTM, and a conv-only variant ---------------------------------------------------------

_OCR_CLASSES = 37  # CTC blank + 26 letters + 10 digits


def _ocr_backbone(e: _Exporter) -> str:
    """The CRNN conv front end: [N, 1, 32, 64] text-line images -> [N, 64, 1, 33] feature columns.

    The pools with stride (2, 1) halve the height but keep the width, so each column becomes one time step.
    """
    h = e.op("Relu", [e.conv("image", 1, 16, (3, 3), "/cnn/conv0", "cnn.conv0")], "/cnn/relu0")
    h = e.op("MaxPool", [h], "/cnn/pooling0", kernel_shape=[2, 2], strides=[2, 2])  # 16 x 32
    h = e.conv(h, 16, 32, (3, 3), "/cnn/conv1", "cnn.conv1", bias=False)
    h = e.op("Relu", [e.batch_norm(h, 32, "/cnn/batchnorm1", "cnn.batchnorm1")], "/cnn/relu1")
    h = e.op("MaxPool", [h], "/cnn/pooling1", kernel_shape=[2, 1], strides=[2, 1])  # 8 x 32
    h = e.op("Relu", [e.conv(h, 32, 32, (3, 3), "/cnn/conv2", "cnn.conv2")], "/cnn/relu2")
    h = e.op("MaxPool", [h], "/cnn/pooling2", kernel_shape=[2, 2], strides=[2, 1], pads=[0, 1, 0, 1])  # 4 x 33
    return e.op("Relu", [e.conv(h, 32, 64, (4, 1), "/cnn/conv3", "cnn.conv3", pads=[0, 0, 0, 0])], "/cnn/relu3")


def crnn_lstm(opset: int = 13, seed: int = 3) -> onnx.ModelProto:
    """CRNN text recognition: the conv front end, a bidirectional LSTM over the 33 columns, per-step class
    probabilities [T, N, 37]. The LSTM is outside what cimc compiles: the importer must refuse it."""
    e = _Exporter(opset, seed)
    seq = e.op("Transpose", [e.squeeze(_ocr_backbone(e), [2], "/squeeze")], "", perm=[2, 0, 1])  # [T, N, 64]
    hidden = 32
    w = e.anonymous("LSTM", e.weight((2, 4 * hidden, 64), 64))
    r = e.anonymous("LSTM", e.weight((2, 4 * hidden, hidden), hidden))
    b = e.anonymous("LSTM", 0.1 * e.weight((2, 8 * hidden), 1))
    y, _, _ = e.op("LSTM", [seq, w, r, b], "/rnn/rnn.0/rnn", outputs=3, direction="bidirectional", hidden_size=hidden)
    y = e.op("Transpose", [y], "/rnn/rnn.0", perm=[0, 2, 1, 3])  # [T, N, 2, hidden]
    y = e.op("Reshape", [y, e.ints([0, 0, -1], "/rnn/rnn.0")], "/rnn/rnn.0")
    logits = e.linear(y, 2 * hidden, _OCR_CLASSES, "/rnn/rnn.1/embedding", "rnn.1.embedding")
    e.op("Softmax", [logits], "", output_name="probs", axis=2)
    return e.model("main_graph", [_float("image", [BATCH, 1, 32, 64])], [_float("probs", [33, BATCH, 37])])


def ocr_conv(opset: int = 18, seed: int = 4) -> onnx.ModelProto:
    """The CRNN front end with a per-column linear classifier instead of the LSTM: class probabilities
    [N, 33, 37] and the greedy CTC path (``ArgMax``, int64)."""
    e = _Exporter(opset, seed)
    h = _ocr_backbone(e)
    h = e.reshape(h, [e.dim(h, 0, "/head"), 64, -1], "/head")  # [N, 64, 33]
    h = e.op("Transpose", [h], "/head", perm=[0, 2, 1])
    logits = e.linear(h, 64, _OCR_CLASSES, "/head/classifier", "head.classifier")
    probs = e.op("Softmax", [logits], "/head", output_name="probs", axis=-1)
    e.op("ArgMax", [probs], "/head", output_name="best_path", axis=-1, keepdims=0)
    outputs = [
        _float("probs", [BATCH, 33, _OCR_CLASSES]),
        helper.make_tensor_value_info("best_path", TensorProto.INT64, [BATCH, 33]),
    ]
    return e.model("main_graph", [_float("image", [BATCH, 1, 32, 64])], outputs)


def text_line_inputs(seed: int = 0, batch: int = 2) -> dict[str, np.ndarray]:
    """Seeded grey 32x64 text-line images for the OCR models."""
    return {"image": _normal((batch, 1, 32, 64), seed)}


# --- (f) speech -----------------------------------------------------------------------------------------------


def speech(opset: int = 21, seed: int = 5) -> onnx.ModelProto:
    """A keyword-spotting net over 40 log-mel bands x 100 frames: 1-D conv, BatchNorm, depthwise-separable 1-D
    conv (stride 2), mean over time, a 12-keyword linear head."""
    e = _Exporter(opset, seed)
    h = e.conv("features", 40, 32, (5,), "/conv0", "conv0", bias=False)
    h = e.op("Relu", [e.batch_norm(h, 32, "/bn0", "bn0")], "/relu0")
    h = e.conv(h, 32, 32, (3,), "/dw1", "dw1", group=32, strides=[2])  # 50 frames
    h = e.conv(h, 32, 48, (1,), "/pw1", "pw1", bias=False)
    h = e.op("Relu", [e.batch_norm(h, 48, "/bn1", "bn1")], "/relu1")
    h = e.dropout(e.reduce_mean(h, [2], 0, "/pool"), "/dropout")
    e.linear(h, 48, 12, "/classifier", "classifier", output_name="logits")
    return e.model("main_graph", [_float("features", [BATCH, 40, 100])], [_float("logits", [BATCH, 12])])


def speech_inputs(seed: int = 0, batch: int = 2) -> dict[str, np.ndarray]:
    """Seeded [N, 40, 100] feature maps for the speech model."""
    return {"features": _normal((batch, 40, 100), seed)}


# --- (g) U-Net --------------------------------------------------------------------------------------------------


def unet(opset: int = 18, seed: int = 6) -> onnx.ModelProto:
    """A two-level U-Net for 32x32 segmentation, upsampled to a 64x64 probability map: ``ConvTranspose`` and
    nearest ``Resize`` on the way up, ``Concat`` skip connections, a reflect ``Pad``, a bilinear ``Resize`` to a
    size computed from the input's shape, and a ``Sigmoid``."""
    e = _Exporter(opset, seed)

    def block(x: str, cin: int, cout: int, name: str) -> str:
        return e.op("Relu", [e.conv(x, cin, cout, (3, 3), f"/{name}/conv", f"{name}.conv")], f"/{name}/relu")

    skip1 = block(block("input", 3, 8, "enc1a"), 8, 8, "enc1b")  # 8 x 32 x 32
    skip2 = block(e.op("MaxPool", [skip1], "/pool1", kernel_shape=[2, 2], strides=[2, 2]), 8, 16, "enc2")
    h = block(e.op("MaxPool", [skip2], "/pool2", kernel_shape=[2, 2], strides=[2, 2]), 16, 32, "bottleneck")
    w = e.initializer(e.weight((32, 16, 2, 2), 32), "up2.weight")
    h = e.op(
        "ConvTranspose", [h, w, e.initializer(e.bias(16), "up2.bias")], "/up2", kernel_shape=[2, 2], strides=[2, 2]
    )
    h = block(e.op("Concat", [h, skip2], "", axis=1), 32, 16, "dec2")  # 16 x 16 x 16
    scales = e.constant(np.array([1.0, 1.0, 2.0, 2.0], np.float32), "/up1")
    h = e.op(
        "Resize",
        [h, "", scales],
        "/up1",
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    h = block(h, 16, 8, "dec1a")
    h = e.op("Concat", [h, skip1], "", axis=1)  # 16 x 32 x 32
    h = e.op("Pad", [h, e.ints([0, 0, 1, 1, 0, 0, 1, 1], "/pad")], "/pad", mode="reflect")
    h = e.op("Relu", [e.conv(h, 16, 8, (3, 3), "/dec1b/conv", "dec1b.conv", pads=[0, 0, 0, 0])], "/dec1b/relu")
    leading = e.op(
        "Slice", [e.op("Shape", [h], "/upsample"), e.ints([0], "/upsample"), e.ints([2], "/upsample")], "/upsample"
    )
    sizes = e.op("Concat", [leading, e.ints([64, 64], "/upsample")], "/upsample", axis=0)
    h = e.op(
        "Resize", [h, "", "", sizes], "/upsample", mode="linear", coordinate_transformation_mode="pytorch_half_pixel"
    )
    h = e.conv(h, 8, 1, (1, 1), "/head/conv", "head.conv")
    e.op("Sigmoid", [h], "/head", output_name="mask")
    return e.model("main_graph", [_float("input", [BATCH, 3, 32, 32])], [_float("mask", [BATCH, 1, 64, 64])])


# --- the zoo ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: how to build it, seeded sample inputs, and the node the importer must refuse (if any)."""

    name: str
    build: Callable[[], onnx.ModelProto]
    sample_inputs: Callable[[int, int], dict[str, np.ndarray]]  # (seed, batch) -> inputs by name
    refused_node: str | None = None


ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in [
        ZooModel("resnet_opset11", lambda: resnet(11), image_inputs),
        ZooModel("resnet_opset21", lambda: resnet(21), image_inputs),
        ZooModel("mobilenet_opset17", lambda: mobilenet(17), image_inputs),
        ZooModel("transformer_opset13", lambda: transformer(13), token_inputs),
        ZooModel("transformer_opset17", lambda: transformer(17), token_inputs),
        ZooModel("transformer_opset21", lambda: transformer(21), token_inputs),
        ZooModel("qdq_resnet_opset13", qdq_resnet, image_inputs),
        ZooModel("crnn_lstm_opset13", crnn_lstm, text_line_inputs, refused_node="/rnn/rnn.0/rnn/LSTM"),
        ZooModel("ocr_conv_opset18", ocr_conv, text_line_inputs),
        ZooModel("speech_opset21", speech, speech_inputs),
        ZooModel("unet_opset18", unet, image_inputs),
    ]
}
