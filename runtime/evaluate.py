"""Evaluation of a compiled model on a labelled dataset: accuracy on the simulated chip, the fp32 model's accuracy
with onnxruntime on the same data, their top-1 agreement and the output error, over one or several noise seeds.

The dataset streams through in batches: only predictions and running error sums are kept, so memory stays that of
one batch however long the data. onnxruntime is imported only when a reference model is given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cimc.runtime.session import InferenceSession
from cimc.runtime.simulator import AdcCounts


@dataclass
class _ErrorSums:
    """Running sums of the output error against the reference."""

    count: int = 0
    abs_sum: float = 0.0
    square_sum: float = 0.0
    reference_square_sum: float = 0.0
    max_abs: float = 0.0

    def add(self, out: np.ndarray, reference: np.ndarray) -> None:
        diff = out.astype(np.float64) - reference.astype(np.float64)
        self.count += diff.size
        self.abs_sum += float(np.abs(diff).sum())
        self.square_sum += float((diff * diff).sum())
        self.reference_square_sum += float((reference.astype(np.float64) ** 2).sum())
        self.max_abs = max(self.max_abs, float(np.abs(diff).max(initial=0.0)))

    def summary(self) -> dict[str, float]:
        rms = math.sqrt(self.square_sum / max(self.count, 1))
        ref = math.sqrt(self.reference_square_sum / max(self.count, 1))
        return {
            "max_abs": self.max_abs,
            "mean_abs": self.abs_sum / max(self.count, 1),
            "rms": rms,
            "relative_rms": rms / ref if ref > 0 else 0.0,
        }


@dataclass
class SeedResult:
    """One noise seed's figures."""

    seed: int
    accuracy: float | None
    agreement: float | None
    error: dict[str, float] | None


@dataclass
class Evaluation:
    """The figures of ``evaluate``; ``accuracy`` and ``agreement`` are means over seeds (``*_std`` their spread,
    the sample standard deviation; 0 for one seed); ``adc_saturation``: each crossbar layer's ADC conversions and
    saturations over every seed."""

    samples: int
    seeds: list[SeedResult]
    reference_accuracy: float | None
    settings: dict[str, Any] = field(default_factory=dict)
    adc_saturation: dict[str, AdcCounts] = field(default_factory=dict)

    def _mean_std(self, key: str) -> tuple[float | None, float | None]:
        values = [getattr(s, key) for s in self.seeds if getattr(s, key) is not None]
        if not values:
            return None, None
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return float(np.mean(values)), std

    @property
    def accuracy(self) -> float | None:
        return self._mean_std("accuracy")[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``accuracy``, ``accuracy_std``, ``reference_accuracy``, ``accuracy_loss`` (reference minus
        simulated, in points of 1.0), ``agreement`` (top-1 with the fp32 model), ``agreement_std``, ``error``
        (the first seed's output error against the fp32 model), ``adc_saturation`` (per crossbar layer:
        ``conversions``, ``saturated`` and their ``fraction``, over every seed), ``samples``, ``seeds`` (each seed's
        figures), ``settings``."""
        accuracy, accuracy_std = self._mean_std("accuracy")
        agreement, agreement_std = self._mean_std("agreement")
        loss = None if accuracy is None or self.reference_accuracy is None else self.reference_accuracy - accuracy
        return {
            "samples": self.samples,
            "accuracy": accuracy,
            "accuracy_std": accuracy_std,
            "reference_accuracy": self.reference_accuracy,
            "accuracy_loss": loss,
            "agreement": agreement,
            "agreement_std": agreement_std,
            "error": self.seeds[0].error if self.seeds else None,
            "adc_saturation": {layer: counts.to_dict() for layer, counts in self.adc_saturation.items()},
            "seeds": [asdict(s) for s in self.seeds],
            "settings": self.settings,
        }


def top1(outputs: np.ndarray) -> np.ndarray:
    """Class predictions: the argmax over the last axis of ``[N, classes]`` (or ``[N, classes, 1, ...]``)."""
    flat = outputs.reshape(len(outputs), -1) if outputs.ndim > 2 else outputs
    return np.argmax(flat, axis=-1) if flat.ndim == 2 else flat


class DatasetError(ValueError):
    """Inputs or labels that cannot be evaluated; the message names them (``where``) and what to do."""


def labels_of(y: np.ndarray, where: str = "labels") -> np.ndarray:
    """Integer labels from class indices (integers, ``[N]`` or ``[N, 1]``) or one-hot rows (``[N, classes]`` of 0
    and 1, one 1 a row); a ``DatasetError`` naming ``where`` for anything else (float classes, other shapes)."""
    if y.ndim == 2 and y.shape[1] > 1:
        if y.dtype.kind not in "biuf" or not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise DatasetError(
                f"{where}: {y.dtype}{list(y.shape)} is not one-hot rows (0 and 1, one 1 a row); give class indices [N]"
            )
        return np.argmax(y, axis=-1)
    if y.ndim not in (1, 2) or y.dtype.kind not in "iu":
        raise DatasetError(f"{where}: {y.dtype}{list(y.shape)} are not class indices; give integers, shape [N]")
    return y.reshape(len(y))


class ReferenceModel:
    """The fp32 ONNX model under onnxruntime, run batch by batch beside the simulator."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: x})[0])


def evaluate(
    make_session: Callable[[int], InferenceSession],
    x: np.ndarray,
    y: np.ndarray | None,
    *,
    seeds: Sequence[int] = (0,),
    reference: ReferenceModel | None = None,
    progress: Callable[[int, int], None] | None = None,
    settings: dict[str, Any] | None = None,
) -> Evaluation:
    """Run ``x`` through a session per seed (``make_session(seed)``) in batches and score it against labels ``y``
    and the fp32 ``reference``; ``progress(done, total)`` counts samples over all seeds."""
    labels = None if y is None else labels_of(np.asarray(y))
    if labels is not None and len(labels) != len(x):
        raise DatasetError(f"{len(x)} inputs but {len(labels)} labels: give one label per sample")
    reference_top1: list[np.ndarray] = []
    results: list[SeedResult] = []
    saturation: dict[str, AdcCounts] = {}
    total = len(x) * len(seeds)
    for index, seed in enumerate(seeds):
        session = make_session(seed)
        name = session.simulator.input_names[0]
        predictions, agree, errors = [], 0, _ErrorSums()
        outputs = session.stream([session.simulator.output_names[0]], {name: x})  # one stream: noise as one run's
        for start, (out,) in zip(range(0, len(x), session.batch_size), outputs):
            batch = x[start : start + session.batch_size]
            predictions.append(top1(out))
            if reference is not None:  # run again per seed rather than kept: memory stays one batch's
                ref = reference(batch)
                if index == 0:
                    reference_top1.append(top1(ref))
                errors.add(out, ref)
                agree += int((top1(out) == top1(ref)).sum())
            if progress is not None:
                progress(index * len(x) + start + len(batch), total)
        for layer, counts in session.simulator.adc_counts.items():
            summed = saturation.setdefault(layer, AdcCounts())
            summed.conversions += counts.conversions
            summed.saturated += counts.saturated
        predicted = np.concatenate(predictions) if predictions else np.zeros(0, np.int64)
        accuracy = None if labels is None else float((predicted == labels).mean())
        results.append(
            SeedResult(
                seed=seed,
                accuracy=accuracy,
                agreement=None if reference is None else agree / max(len(x), 1),
                error=None if reference is None else errors.summary(),
            )
        )
    reference_accuracy = None
    if reference is not None and labels is not None:
        reference_accuracy = float((np.concatenate(reference_top1) == labels).mean())
    return Evaluation(len(x), results, reference_accuracy, settings or {}, saturation)
