"""Exports the ONNX files beside this script with PyTorch's two exporters (TorchScript: dynamo=False at opset 17;
dynamo=True, the torch.export-based one): a residual CNN, a MobileNetV2-style depthwise CNN, a transformer encoder
with a padding mask, and a 1-D conv speech model. They test the importer on graphs as PyTorch writes them (Shape/
Slice/Concat chains, constants computed through Mod, external data files). torch is not a cimc dependency: this
script is run by hand (``pip install torch==2.13.0 onnxscript``, torch 2.13.0 made the committed files), never by
CI; the tests read the committed files.
"""

import torch
from torch import nn

torch.manual_seed(0)


class Block(nn.Module):
    """A ResNet basic block; ``stride`` 2 halves the map and doubles the channels through a projection."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        inputs = channels if stride == 1 else channels // 2
        self.c1 = nn.Conv2d(inputs, channels, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(channels)
        self.c2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(channels)
        projection = nn.Sequential(nn.Conv2d(inputs, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))
        self.shortcut = nn.Sequential() if stride == 1 else projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        self.layers = nn.Sequential(Block(16, 1), Block(32, 2), Block(64, 2))
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(self.layers(self.stem(x)), 1)
        return self.fc(torch.flatten(pooled, 1))


class MobileNetV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU6(),
            nn.Conv2d(16, 16, 3, 1, 1, groups=16), nn.BatchNorm2d(16), nn.Hardswish(),
            nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32), nn.ReLU6(),
            nn.Conv2d(32, 32, 3, 2, 2, dilation=2, groups=32), nn.BatchNorm2d(32), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(32, 5),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(100, 32)
        self.position = nn.Parameter(torch.randn(1, 64, 32))
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 3)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.embedding(ids) + self.position[:, : ids.shape[1]]
        h = self.encoder(h, src_key_padding_mask=mask == 0)
        return self.head(h.mean(1))


class Speech(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(40, 64, 5, 2, 2), nn.BatchNorm1d(64), nn.GELU(),
            nn.Conv1d(64, 64, 3, 1, 1, groups=64), nn.Conv1d(64, 64, 1), nn.LayerNorm([64, 50]),
        )  # fmt: skip
        self.up = nn.ConvTranspose1d(64, 16, 4, 2, 1)
        self.out = nn.Linear(16, 30)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(self.conv(x)).transpose(1, 2)
        return torch.log_softmax(self.out(h), -1)


BATCH = {0: "batch"}
TOKENS = {0: "batch", 1: "seq"}
CASES = [
    ("resnet", ResNet(), (torch.randn(2, 3, 32, 32),), ["x"], {"x": BATCH}),
    ("mbv2", MobileNetV2(), (torch.randn(2, 3, 32, 32),), ["x"], {"x": BATCH}),
    ("encoder", Encoder(), (torch.randint(0, 100, (2, 16)), torch.ones(2, 16, dtype=torch.int64)), ["ids", "mask"],
     {"ids": TOKENS, "mask": TOKENS}),
    ("speech", Speech(), (torch.randn(2, 40, 100),), ["x"], {"x": BATCH}),
]  # fmt: skip

for name, model, args, names, dynamic_axes in CASES:
    model.eval()
    for dynamo in (False, True):
        path = f"{name}_{'dynamo' if dynamo else 'ts'}.onnx"
        options = {"dynamo": True} if dynamo else {"dynamo": False, "opset_version": 17}
        torch.onnx.export(
            model, args, path, input_names=names, output_names=["y"], dynamic_axes=dynamic_axes, **options
        )
        print("wrote", path)
