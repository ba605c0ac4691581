"""Parity metrics: pure functions of engine outputs, labels and the output quantisation; no engines, files or plots.

Shapes: scores (N, classes), labels (N,) int. Top-1 is the arg-max; on a tie the lowest class index wins,
the same rule for every engine, so a tie alone never makes two engines disagree.

Int8 outputs are compared in LSB (units of the output scale). They are integers, so "bit-identical" and
"max |difference|" are exact. The float model's probabilities are compared with an int8 engine in LSB too,
after rounding them onto the output's int8 grid: that says how far int8 lands from the nearest value it
could have produced.

Float metrics follow ST Edge AI's `validate` report, computed over all N x classes values of the
dequantised int8 output P against the float reference R:
RMSE = sqrt(mean((P - R)^2)), MAE = mean(|P - R|), L2r = ||P - R||_2 / ||R||_2, COS = <P, R> / (||P|| ||R||).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np


def predictions(scores: np.ndarray) -> np.ndarray:
    return np.argmax(np.asarray(scores), axis=1)


def top1(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predictions(scores) == np.asarray(labels))) if len(labels) else float("nan")


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion correct/n (95 % for z = 1.96): where the true top-1 lies, given
    a sample of n images. Unlike the normal approximation it stays within [0, 1] and works for small n."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: row = true class, column = predicted class."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def _histogram(values: np.ndarray) -> dict[str, int]:
    counts = np.bincount(np.asarray(values, dtype=np.int64).ravel())
    return {str(k): int(c) for k, c in enumerate(counts) if c}


def lsb_differences(a: np.ndarray, b: np.ndarray) -> dict:
    """Compare two int8 output batches element by element, in LSB.

    Returns bit_identical (samples whose whole output vector is equal), its rate, the max and mean
    |difference|, and two histograms as {"|difference|": count}: of each sample's max |difference| and
    of every element's |difference|.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"output shapes differ: {a.shape} and {b.shape}")
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).reshape(len(a), -1)
    per_sample = diff.max(axis=1) if diff.size else np.zeros(len(a), np.int16)
    identical = int(np.sum(per_sample == 0))
    return {
        "bit_identical": identical,
        "bit_identical_rate": identical / len(a) if len(a) else float("nan"),
        "max_abs_diff_lsb": int(per_sample.max()) if len(a) else 0,
        "mean_abs_diff_lsb": float(diff.mean()) if diff.size else 0.0,
        "samples_by_max_abs_diff_lsb": _histogram(per_sample),
        "elements_by_abs_diff_lsb": _histogram(diff),
    }


def float_metrics(reference: np.ndarray, test: np.ndarray) -> dict:
    """ST-style RMSE, MAE, L2r and COS of `test` against `reference` (see the module docstring)."""
    r = np.asarray(reference, dtype=np.float64).ravel()
    p = np.asarray(test, dtype=np.float64).ravel()
    if r.shape != p.shape:
        raise ValueError(f"output sizes differ: {r.size} and {p.size}")
    error = p - r
    r_norm, p_norm = np.linalg.norm(r), np.linalg.norm(p)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "l2r": float(np.linalg.norm(error) / r_norm) if r_norm else float("nan"),
        "cos": float(np.dot(p, r) / (p_norm * r_norm)) if p_norm and r_norm else float("nan"),
    }


def compare(outputs: dict[str, np.ndarray], int8: dict[str, bool], labels: np.ndarray, classes: int, output_q) -> dict:
    """Every metric of the report, for the engines that produced `outputs` ({key: (N, classes)}).

    `int8[key]` says whether an engine's outputs are raw int8 (else float probabilities); `output_q` is the
    int8 model's output quantisation. Pairs come in the order of `outputs`.
    Returns {"engines": {key: {"top1", "correct", "confusion_matrix"}}, "pairs": [...]}.
    """
    labels = np.asarray(labels)
    predicted = {key: predictions(scores) for key, scores in outputs.items()}
    engines = {
        key: {
            "top1": top1(outputs[key], labels),
            "correct": int(np.sum(predicted[key] == labels)),
            "confusion_matrix": confusion_matrix(labels, predicted[key], classes).tolist(),
        }
        for key in outputs
    }
    pairs = []
    for a, b in combinations(outputs, 2):
        if int8[a] and not int8[b]:
            a, b = b, a  # float first: it is the reference
        pair = {
            "a": a,
            "b": b,
            "top1_agreement": float(np.mean(predicted[a] == predicted[b])) if len(labels) else float("nan"),
            "prediction_flips": int(np.sum(predicted[a] != predicted[b])),
        }
        if int8[a] and int8[b]:
            pair["lsb"] = lsb_differences(outputs[a], outputs[b])
        elif int8[b]:
            pair["lsb_vs_float_on_int8_grid"] = lsb_differences(output_q.quantize(outputs[a]), outputs[b])
            pair["float"] = float_metrics(outputs[a], output_q.dequantize(outputs[b]))
        else:
            pair["float"] = float_metrics(outputs[a], outputs[b])
        pairs.append(pair)
    return {"engines": engines, "pairs": pairs}


def flips(outputs: dict[str, np.ndarray], labels: np.ndarray, label_names: list[str], indices: np.ndarray, files: list[str]) -> list[dict]:
    """The samples on which the engines do not all predict the same class: split index, file, true class
    and each engine's class, by name. `indices` and `files` are the split's, aligned with `outputs`."""
    if len(outputs) < 2:
        return []
    predicted = {key: predictions(scores) for key, scores in outputs.items()}
    stacked = np.stack(list(predicted.values()))
    differing = np.nonzero(np.any(stacked != stacked[0], axis=0))[0]
    return [
        {
            "index": int(indices[i]),
            "file": files[i] if files else None,
            "label": label_names[int(labels[i])],
            "predictions": {key: label_names[int(p[i])] for key, p in predicted.items()},
        }
        for i in differing
    ]
