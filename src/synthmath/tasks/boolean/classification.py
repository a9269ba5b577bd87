"""Binary classification with formulas against scikit-learn's classifiers (specs/boolean.md).

The release evaluates on PMLB datasets; PMLB is not available offline, so the protocol runs
on the datasets that ship with scikit-learn, made binary: ``breast_cancer`` (malignant vs
benign), ``iris`` (versicolor vs the rest), ``wine`` (class 0 vs the rest) and ``digits``
(even vs odd). Protocol as released: a seeded shuffle, 80/20 split with at most 600 training
rows, features binarised (here: continuous features thresholded at training-split quantiles,
``bits`` thresholds each, since the release drops features with more than 5 values, which is
every feature of these datasets), at most 100 binary features. Baselines on the same split:
a decision tree, random forests of 1 and 100 trees, logistic regression; scores: accuracy
and F1 of the positive class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthmath.core.errors import ConfigError
from synthmath.tasks.boolean import formulas as F

DATASETS = ("breast_cancer", "iris", "wine", "digits")
BASELINES = ("decision_tree", "random_forest_1", "random_forest_100", "logistic_regression")
MAX_TRAIN = 600
MAX_FEATURES = 100


@dataclass
class Split:
    """Binary features and labels of one seeded train/test split."""

    name: str
    x_train: np.ndarray  # (n, d) uint8
    y_train: np.ndarray  # (n,) uint8
    x_test: np.ndarray
    y_test: np.ndarray
    features: list[str]  # feature j is the test "features[j]" (e.g. "mean radius > 13.4")


def _raw(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn import datasets

    if name not in DATASETS:
        raise ConfigError(f"dataset: unknown {name!r}; allowed: {', '.join(DATASETS)}")
    data = getattr(datasets, f"load_{name}")()
    target = np.asarray(data.target)
    y = {
        "breast_cancer": target == 0,  # positive class: malignant
        "iris": target == 1,
        "wine": target == 0,
        "digits": target % 2 == 0,
    }[name]
    names = list(getattr(data, "feature_names", [f"f{j}" for j in range(data.data.shape[1])]))
    return np.asarray(data.data, dtype=float), y.astype(np.uint8), [str(n) for n in names]


def binarise(x_train: np.ndarray, x_test: np.ndarray, names: list[str], bits: int = 1):
    """Threshold features at the training split's quantiles (1 bit: the median; k bits: the
    k inner quantiles); binary features are kept, constant ones dropped."""
    columns_train, columns_test, features = [], [], []
    for j in range(x_train.shape[1]):
        values = np.unique(x_train[:, j])
        if len(values) < 2:
            continue
        if len(values) == 2:
            thresholds = [values[0]]
        else:
            qs = np.quantile(x_train[:, j], np.arange(1, bits + 1) / (bits + 1))
            thresholds = sorted({float(q) for q in qs if q < values[-1]})
        for t in thresholds:
            columns_train.append(x_train[:, j] > t)
            columns_test.append(x_test[:, j] > t)
            features.append(f"{names[j]} > {t:.4g}")
    if len(features) > MAX_FEATURES:
        raise ConfigError(
            f"binarise: {len(features)} binary features, at most {MAX_FEATURES}; use fewer bits"
        )
    as_array = lambda cols, n: np.stack(cols, 1).astype(np.uint8) if cols else np.zeros((n, 0))  # noqa: E731
    return as_array(columns_train, len(x_train)), as_array(columns_test, len(x_test)), features


def load_split(name: str, seed: int = 0, bits: int = 1, train_ratio: float = 0.8) -> Split:
    """The seeded split of dataset ``name``: shuffle, at most :data:`MAX_TRAIN` training rows
    (``train_ratio`` of the data when fewer), the rest for testing, features binarised."""
    x, y, names = _raw(name)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_train = min(MAX_TRAIN, int(train_ratio * len(x)))
    x_train, x_test, features = binarise(x[:n_train], x[n_train:], names, bits)
    return Split(name, x_train, y[:n_train], x_test, y[n_train:], features)


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and F1 of the positive class (0 when it is never predicted nor present)."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "acc": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
    }


def run_baselines(split: Split, seed: int = 0) -> dict[str, dict[str, float]]:
    """Test scores of scikit-learn's classifiers trained on the same binary features."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    models = {
        "decision_tree": DecisionTreeClassifier(random_state=seed),
        "random_forest_1": RandomForestClassifier(n_estimators=1, random_state=seed, n_jobs=1),
        "random_forest_100": RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
        "logistic_regression": LogisticRegression(max_iter=1000, random_state=seed),
    }
    out = {}
    for name, model in models.items():
        model.fit(split.x_train, split.y_train)
        out[name] = scores(split.y_test, model.predict(split.x_test))
    return out


def evaluate_formula(tree: F.Tree, split: Split) -> dict[str, float]:
    """Train and test scores of a formula over the split's binary features (x_j = feature j)."""
    out = {}
    for part, x, y in (
        ("train", split.x_train, split.y_train),
        ("test", split.x_test, split.y_test),
    ):
        predicted = F.unpack(F.evaluate(tree, F.pack_rows(x), F.row_mask(len(x))), len(x))
        out |= {f"{part}_{k}": v for k, v in scores(y, predicted).items()}
    return out


def run_formula_model(model, task, split: Split, beam_size: int = 10) -> dict:
    """A trained boolean model on the split: its formula for the training rows (the beam's
    pick by fit error and complexity), with train and test scores."""
    from synthmath.tasks.boolean.fit import Table, fit_model

    result = fit_model(model, task, Table(split.x_train, split.y_train, None), beam_size)
    return {"formula": F.to_infix(result.tree), **evaluate_formula(result.tree, split)}
