"""Linear classifier readout on event features (FEAST histograms, HD-SNN evidence, ...).

Multinomial logistic regression, P(k | h) = softmax(W z + b)_k with z the standardized feature vector
(z = (h - mean) / std over the training set, std = 1 where a feature is constant), fitted by
minimizing cross-entropy + (1 / (2 C)) ||W||² (scikit-learn's ``LogisticRegression``, lbfgs; this is
the "linear classifier on feature histograms" back-end of Afshar et al. 2020, Sensors 20(6):1600).
"""

from __future__ import annotations

import numpy as np

from neuromorph.errors import ConfigError, NonFiniteError, ShapeError


class LinearReadout:
    """Standardize-then-logistic-regression classifier; deterministic (lbfgs, no random state used).

    Args:
        C: inverse L2 strength (larger = weaker regularization), > 0.
        max_iter: lbfgs iteration limit.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 2000):
        try:
            C = float(C)
        except (TypeError, ValueError):
            raise ConfigError(f"C={C!r} must be a positive number") from None
        if not np.isfinite(C) or C <= 0:
            raise ConfigError(f"C={C!r} must be a positive finite number")
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ConfigError(f"max_iter={max_iter!r} must be an integer >= 1")
        self.C = C
        self.max_iter = int(max_iter)
        self._model = None
        self.mean_ = None
        self.scale_ = None

    @staticmethod
    def _check_features(features, name: str = "features", n_features: int | None = None) -> np.ndarray:
        h = np.asarray(features, dtype=np.float64)
        if h.ndim != 2:
            raise ShapeError(f"{name} must be 2-D [n_samples, n_features], got shape {h.shape}")
        if h.shape[0] == 0:
            raise ShapeError(f"{name} has no samples")
        if n_features is not None and h.shape[1] != n_features:
            raise ShapeError(f"{name} has {h.shape[1]} features, the readout was fitted on {n_features}")
        if not np.isfinite(h).all():
            raise NonFiniteError(f"{name} contains NaN or Inf")
        return h

    def fit(self, features: np.ndarray, labels: np.ndarray) -> "LinearReadout":
        """Fit on ``features`` [n_samples, n_features] and integer ``labels`` [n_samples]."""
        from sklearn.linear_model import LogisticRegression

        h = self._check_features(features)
        y = np.asarray(labels)
        if y.shape != (h.shape[0],):
            raise ShapeError(f"labels must have shape ({h.shape[0]},) to match features, got {y.shape}")
        if len(np.unique(y)) < 2:
            raise ConfigError("labels hold a single class; a classifier needs at least two")
        self.mean_ = h.mean(axis=0)
        std = h.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        self._model = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self._model.fit((h - self.mean_) / self.scale_, y)
        return self

    def _z(self, features) -> np.ndarray:
        if self._model is None:
            raise ConfigError("this LinearReadout is not fitted; call fit() first")
        h = self._check_features(features, n_features=self.mean_.shape[0])
        return (h - self.mean_) / self.scale_

    @property
    def classes_(self) -> np.ndarray:
        if self._model is None:
            raise ConfigError("this LinearReadout is not fitted; call fit() first")
        return self._model.classes_

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities [n_samples, n_classes] (columns in :attr:`classes_` order)."""
        z = self._z(features)  # raises first when not fitted
        return self._model.predict_proba(z)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Most probable class label of each sample."""
        z = self._z(features)
        return self._model.predict(z)

    def score(self, features: np.ndarray, labels: np.ndarray) -> float:
        """Accuracy: fraction of samples whose predicted label equals ``labels``."""
        y = np.asarray(labels)
        pred = self.predict(features)
        if y.shape != pred.shape:
            raise ShapeError(f"labels must have shape {pred.shape}, got {y.shape}")
        return float(np.mean(pred == y))
