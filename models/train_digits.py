"""Train the bundled digits models and write them, with their test and calibration data, next to this file.

Usage: ``python models/train_digits.py`` (needs scikit-learn, the ``models`` extra, for its bundled copy of the
UCI handwritten digits: 1797 images of 8x8 pixels, no download).

Two small classifiers take the same input, ``x`` of shape ``[N, 1, 8, 8]`` with pixels scaled to [0, 1]:
``digits_mlp.onnx`` (three Gemm layers, exported at opset 17) and ``digits_cnn.onnx`` (three 3x3 convolutions with
batch normalization and max pooling, exported at opset 13), so the importer's opset conversion is exercised by
both. Training is plain numpy (forward and backward written here, convolutions as im2col matrix products, Adam), in
float64 from a fixed seed; the exported weights are float32. Every run writes the same bytes on the same machine
and BLAS build (a different CPU may pick different BLAS kernels and round differently).

Written files: the two models, ``digits_test.npz`` (the 450-image test split, ``x`` and ``y``),
``digits_calib.npz`` (``x``: 128 training images, for post-training quantization calibration),
``metrics.json`` (accuracy of each model on the test split, measured with onnxruntime) and ``README.md``.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
SEED = 0
TEST_SIZE = 450
CALIB_SIZE = 128
EPOCHS = 30
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.1  # weight of the new batch statistic in the running average (ONNX's ``momentum`` is 1 - this)


# --- layers: forward, backward and ONNX export of each -----------------------------------------------------------


@dataclass
class Layer(ABC):
    """One layer of a sequential network: ``forward`` caches what ``backward`` needs; ``export`` gives its ONNX
    node and initializers. ``params`` are the trainable arrays, ``grads`` their gradients after ``backward``."""

    name: str
    params: dict[str, np.ndarray] = field(default_factory=dict)
    grads: dict[str, np.ndarray] = field(default_factory=dict)

    @abstractmethod
    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        """The layer's output; ``train`` selects batch statistics (and their running averages) over stored ones."""

    @abstractmethod
    def backward(self, grad: np.ndarray) -> np.ndarray:
        """The gradient with respect to the last ``forward``'s input; fills ``grads``."""

    @abstractmethod
    def export(self, x: str, y: str) -> tuple[onnx.NodeProto, list[TensorProto]]:
        """The ONNX node named after the layer, from tensor ``x`` to ``y``, and the initializers it reads."""

    def initializer(self, key: str, array: np.ndarray) -> TensorProto:
        """A float32 ONNX initializer named ``<layer>.<key>``, as PyTorch's exporter names them."""
        return numpy_helper.from_array(array.astype(np.float32), f"{self.name}.{key}")


def im2col(x: np.ndarray) -> np.ndarray:
    """The 3x3 patches (padding 1, stride 1) of ``x`` [B, C, H, W] as rows: [B*H*W, C*9], channel-major."""
    b, c, h, w = x.shape
    patches = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))
    return patches.transpose(0, 2, 3, 1, 4, 5).reshape(b * h * w, c * 9)


def col2im(cols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The adjoint of ``im2col``: sums each patch gradient back onto the input pixels it was read from."""
    b, c, h, w = shape
    patches = cols.reshape(b, h, w, c, 3, 3)
    padded = np.zeros((b, c, h + 2, w + 2))
    for i in range(3):
        for j in range(3):
            padded[:, :, i : i + h, j : j + w] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return padded[:, :, 1:-1, 1:-1]


class Conv3x3(Layer):
    """A 3x3 convolution with padding 1; without bias when a batch normalization follows (its shift subsumes it)."""

    def __init__(self, name: str, cin: int, cout: int, bias: bool, rng: np.random.Generator) -> None:
        super().__init__(name)
        self.params["weight"] = rng.normal(0.0, np.sqrt(2.0 / (cin * 9)), (cout, cin, 3, 3))  # He initialization
        if bias:
            self.params["bias"] = np.zeros(cout)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.shape, self.cols = x.shape, im2col(x)
        weight = self.params["weight"]
        out = self.cols @ weight.reshape(len(weight), -1).T + self.params.get("bias", 0.0)
        b, _, h, w = x.shape
        return out.reshape(b, h, w, -1).transpose(0, 3, 1, 2)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        weight = self.params["weight"]
        grad = grad.transpose(0, 2, 3, 1).reshape(-1, len(weight))
        self.grads["weight"] = (grad.T @ self.cols).reshape(weight.shape)
        if "bias" in self.params:
            self.grads["bias"] = grad.sum(axis=0)
        return col2im(grad @ weight.reshape(len(weight), -1), self.shape)

    def export(self, x: str, y: str) -> tuple[onnx.NodeProto, list[TensorProto]]:
        inits = [self.initializer(key, value) for key, value in self.params.items()]
        node = helper.make_node(
            "Conv",
            [x, *(t.name for t in inits)],
            [y],
            self.name,
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            strides=[1, 1],
        )
        return node, inits


class BatchNorm(Layer):
    """Per-channel batch normalization: batch statistics while training, running statistics when exported."""

    def __init__(self, name: str, channels: int) -> None:
        super().__init__(name, {"scale": np.ones(channels), "bias": np.zeros(channels)})
        self.running_mean, self.running_var = np.zeros(channels), np.ones(channels)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        axes = (0, 2, 3)
        if train:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            count = x.size // x.shape[1]
            self.running_mean += BN_MOMENTUM * (mean - self.running_mean)
            self.running_var += BN_MOMENTUM * (var * count / (count - 1) - self.running_var)  # unbiased, as PyTorch
        else:
            mean, var = self.running_mean, self.running_var
        self.inv_std = 1.0 / np.sqrt(var + BN_EPSILON)[:, None, None]
        self.normalized = (x - mean[:, None, None]) * self.inv_std
        return self.params["scale"][:, None, None] * self.normalized + self.params["bias"][:, None, None]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        axes = (0, 2, 3)
        self.grads["scale"] = (grad * self.normalized).sum(axis=axes)
        self.grads["bias"] = grad.sum(axis=axes)
        d_norm = grad * self.params["scale"][:, None, None]
        centered = d_norm - d_norm.mean(axis=axes, keepdims=True)
        return self.inv_std * (centered - self.normalized * (d_norm * self.normalized).mean(axis=axes, keepdims=True))

    def export(self, x: str, y: str) -> tuple[onnx.NodeProto, list[TensorProto]]:
        inits = [
            self.initializer("scale", self.params["scale"]),
            self.initializer("bias", self.params["bias"]),
            self.initializer("running_mean", self.running_mean),
            self.initializer("running_var", self.running_var),
        ]
        node = helper.make_node(
            "BatchNormalization",
            [x, *(t.name for t in inits)],
            [y],
            self.name,
            epsilon=BN_EPSILON,
            momentum=1.0 - BN_MOMENTUM,
        )
        return node, inits


class Relu(Layer):
    """max(x, 0)."""

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self.mask

    def export(self, x: str, y: str) -> tuple[onnx.NodeProto, list[TensorProto]]:
        return helper.make_node("Relu", [x], [y], self.name), []


class MaxPool2x2(Layer):
    """2x2 max pooling with stride 2; the gradient goes to the first maximum of each window."""

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        b, c, h, w = x.shape
        windows = x.reshape(b, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
        self.shape, self.argmax = x.shape, windows.argmax(axis=-1)[..., None]
        return np.take_along_axis(windows, self.argmax, axis=-1)[..., 0]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        b, c, h, w = self.shape
        windows = np.zeros((b, c, h // 2, w // 2, 4))
        np.put_along_axis(windows, self.argmax, grad[..., None], axis=-1)
        return windows.reshape(b, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(self.shape)

    def export(self, x: str, y: str) -> tuple[onnx.NodeProto, list[TensorProto]]:
        return helper.make_node("MaxPool", [x], [y], self.name, kernel_shape=[2, 2], strides=[2, 2]), []


class GlobalAveragePool(Layer):
    """The mean over the spatial dimensions: [B, C, H, W] -> [B, C, 1, 1]."""

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.shape = x.shape
        return x.mean(axis=(2, 3), keepdims=True)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        b, c, h, w = self.shape
        return np.broadcast_to(grad / (h * w), self.shape)

    def export(self, x: str, y: str) -> tuple[onnx.NodeProto, list[TensorProto]]:
        return helper.make_node("GlobalAveragePool", [x], [y], self.name), []


class Flatten(Layer):
    """[B, ...] -> [B, features]."""

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(self.shape)

    def export(self, x: str, y: str) -> tuple[onnx.NodeProto, list[TensorProto]]:
        return helper.make_node("Flatten", [x], [y], self.name, axis=1), []


class Dense(Layer):
    """A fully connected layer ``x @ weight.T + bias``, exported as Gemm with ``transB=1`` (weight [out, in])."""

    def __init__(self, name: str, fan_in: int, fan_out: int, rng: np.random.Generator) -> None:
        weight = rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_out, fan_in))  # He initialization
        super().__init__(name, {"weight": weight, "bias": np.zeros(fan_out)})

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.input = x
        return x @ self.params["weight"].T + self.params["bias"]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        self.grads["weight"] = grad.T @ self.input
        self.grads["bias"] = grad.sum(axis=0)
        return grad @ self.params["weight"]

    def export(self, x: str, y: str) -> tuple[onnx.NodeProto, list[TensorProto]]:
        inits = [self.initializer("weight", self.params["weight"]), self.initializer("bias", self.params["bias"])]
        return helper.make_node("Gemm", [x, *(t.name for t in inits)], [y], self.name, transB=1), inits


# --- the two architectures ---------------------------------------------------------------------------------------


def digits_mlp(rng: np.random.Generator) -> list[Layer]:
    """Flatten -> Gemm(64->64) -> Relu -> Gemm(64->32) -> Relu -> Gemm(32->10)."""
    return [
        Flatten("flatten"),
        Dense("fc1", 64, 64, rng),
        Relu("relu1"),
        Dense("fc2", 64, 32, rng),
        Relu("relu2"),
        Dense("fc3", 32, 10, rng),
    ]


def digits_cnn(rng: np.random.Generator) -> list[Layer]:
    """Conv(1->8) BN Relu, Conv(8->16) BN Relu, MaxPool 2x2, Conv(16->32) Relu, GlobalAveragePool, Flatten, Gemm."""
    return [
        Conv3x3("conv1", 1, 8, bias=False, rng=rng),
        BatchNorm("bn1", 8),
        Relu("relu1"),
        Conv3x3("conv2", 8, 16, bias=False, rng=rng),
        BatchNorm("bn2", 16),
        Relu("relu2"),
        MaxPool2x2("pool"),
        Conv3x3("conv3", 16, 32, bias=True, rng=rng),
        Relu("relu3"),
        GlobalAveragePool("gap"),
        Flatten("flatten"),
        Dense("fc", 32, 10, rng),
    ]


@dataclass
class ModelSpec:
    """A bundled model: its file, how to build it, the opset it is exported at and a one-line description."""

    filename: str
    build: Callable[[np.random.Generator], list[Layer]]
    opset: int
    architecture: str


MODELS = [
    ModelSpec(
        "digits_mlp.onnx",
        digits_mlp,
        17,
        "Flatten -> Gemm(64->64) -> Relu -> Gemm(64->32) -> Relu -> Gemm(32->10)",
    ),
    ModelSpec(
        "digits_cnn.onnx",
        digits_cnn,
        13,
        "Conv(1->8, 3x3, pad 1) -> BatchNormalization -> Relu -> Conv(8->16, 3x3, pad 1) -> BatchNormalization -> "
        "Relu -> MaxPool 2x2 -> Conv(16->32, 3x3, pad 1) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(32->10)",
    ),
]


# --- training ----------------------------------------------------------------------------------------------------


def forward(layers: list[Layer], x: np.ndarray, train: bool) -> np.ndarray:
    """The network's logits for ``x``."""
    for layer in layers:
        x = layer.forward(x, train)
    return x


def cross_entropy_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The gradient of the mean softmax cross-entropy with respect to the logits."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = shifted / shifted.sum(axis=1, keepdims=True)
    probs[np.arange(len(labels)), labels] -= 1.0
    return probs / len(labels)


def train(layers: list[Layer], x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
    """Adam (beta 0.9, 0.999) on mini-batches in a seeded order, learning rate on a cosine schedule to zero."""
    moments = {
        (i, k): (np.zeros_like(p), np.zeros_like(p)) for i, layer in enumerate(layers) for k, p in layer.params.items()
    }
    step = 0
    steps = EPOCHS * -(-len(x) // BATCH_SIZE)
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            grad = cross_entropy_grad(forward(layers, x[batch], train=True), y[batch])
            for layer in reversed(layers):
                grad = layer.backward(grad)
            step += 1
            lr = LEARNING_RATE * 0.5 * (1.0 + np.cos(np.pi * (step - 1) / steps))
            for i, layer in enumerate(layers):
                for key, param in layer.params.items():
                    m, v = moments[i, key]
                    g = layer.grads[key]
                    m += 0.1 * (g - m)  # m = 0.9 m + 0.1 g
                    v += 0.001 * (g * g - v)  # v = 0.999 v + 0.001 g^2
                    param -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)


# --- export and measurement --------------------------------------------------------------------------------------


def export(layers: list[Layer], spec: ModelSpec) -> onnx.ModelProto:
    """The trained network as an ONNX model with input ``x`` [N, 1, 8, 8] and output ``logits`` [N, 10]."""
    nodes, inits = [], []
    name = "x"
    for i, layer in enumerate(layers):
        out = "logits" if i == len(layers) - 1 else f"{layer.name}_out"
        node, tensors = layer.export(name, out)
        nodes.append(node)
        inits.extend(tensors)
        name = out
    graph = helper.make_graph(
        nodes,
        spec.filename.removesuffix(".onnx"),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", spec.opset)],
        producer_name="cimc models/train_digits.py",
        doc_string=f"Digits classifier (8x8 pixels scaled to [0, 1]): {spec.architecture}",
        ir_version=8,  # what ONNX opsets 13 to 17 go with; readable by every supported onnxruntime
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def onnxruntime_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """Correct test predictions of the model in ``path`` and their fraction, as onnxruntime computes them."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"x": x})
    correct = int((logits.argmax(axis=1) == y).sum())
    return correct, correct / len(y)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` with fixed zip timestamps, so the file's bytes depend only on the arrays."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())


def readme(metrics: dict[str, dict]) -> str:
    """The models/README.md text, from the measured metrics."""
    rows = "\n".join(
        f"| `{spec.filename}` | {spec.opset} | {metrics[spec.filename]['parameters']:,} | "
        f"{metrics[spec.filename]['trainable_parameters']:,} | "
        f"{metrics[spec.filename]['accuracy']:.4f} ({metrics[spec.filename]['correct']}/{TEST_SIZE}) |"
        for spec in MODELS
    )
    details = "\n".join(f"- `{spec.filename}`: {spec.architecture}." for spec in MODELS)
    return f"""# Bundled models

Small classifiers of scikit-learn's copy of the UCI handwritten digits (1797 images of 8x8 pixels, 10 classes),
trained by `train_digits.py` (plain numpy, seeded; `python models/train_digits.py` rewrites every file here,
with the same bytes on the same machine). Both take input `x` float32 `[N, 1, 8, 8]` (pixel / 16, in [0, 1]) and
give `logits` float32 `[N, 10]`; `N` is a symbolic batch dimension. The split is stratified, `random_state={SEED}`:
{1797 - TEST_SIZE} training and {TEST_SIZE} test images.

| file | opset | parameters | trainable | fp32 test accuracy (onnxruntime) |
|---|---|---|---|---|
{rows}

{details}

Parameters count every stored weight, batch-normalization running statistics included; trainable ones exclude
those statistics. Nodes are named after their
layer (`conv1`, `bn1`, `relu1`, ..., `fc`) and initializers `<layer>.<weight|bias|scale|running_mean|running_var>`.
The convolutions followed by batch normalization have no bias.

Other files:

- `digits_test.npz`: the test split, `x` float32 `[{TEST_SIZE}, 1, 8, 8]` and `y` int64 `[{TEST_SIZE}]`.
- `digits_calib.npz`: `x` float32 `[{CALIB_SIZE}, 1, 8, 8]`, the first {CALIB_SIZE} training images, for
  post-training quantization calibration (never the test images).
- `metrics.json`: the accuracies above, as measured with onnxruntime when the models were written;
  `tests/models/test_bundled_models.py` checks them.
"""


def main() -> None:
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_SIZE, stratify=labels, random_state=SEED
    )
    save_npz(HERE / "digits_test.npz", x=x_test, y=y_test)
    save_npz(HERE / "digits_calib.npz", x=x_train[:CALIB_SIZE])

    metrics: dict[str, dict] = {}
    for spec in MODELS:
        rng = np.random.default_rng(SEED)
        layers = spec.build(rng)
        start = time.perf_counter()
        train(layers, x_train.astype(np.float64), y_train, rng)
        seconds = time.perf_counter() - start
        model = export(layers, spec)
        path = HERE / spec.filename
        onnx.save(model, path)
        correct, accuracy = onnxruntime_accuracy(path, x_test, y_test)
        numpy_accuracy = float(
            (forward(layers, x_test.astype(np.float64), train=False).argmax(axis=1) == y_test).mean()
        )
        parameters = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
        trainable = sum(p.size for layer in layers for p in layer.params.values())
        metrics[spec.filename] = {
            "accuracy": accuracy,
            "correct": correct,
            "samples": TEST_SIZE,
            "parameters": parameters,
            "trainable_parameters": trainable,
        }
        print(
            f"{spec.filename}: {parameters} parameters ({trainable} trainable), trained in {seconds:.1f} s, "
            f"test accuracy {accuracy:.4f} ({correct}/{TEST_SIZE}) with onnxruntime, "
            f"{numpy_accuracy:.4f} with the float64 numpy model"
        )
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    (HERE / "README.md").write_text(readme(metrics))


if __name__ == "__main__":
    main()
