"""Deterministic L2-regularized logistic regression on sparse features, in plain Python.

Small data (a few thousand stories, a few thousand features) trains in seconds with L-BFGS; the same
inputs in the same order always give the same weights (no randomness, a fixed iteration order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Row = Sequence[tuple[int, float]]  # sparse features of one example: (feature index, value)


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _loss_and_gradient(
    w: list[float], rows: Sequence[Row], labels: Sequence[int], weights: Sequence[float], l2: Sequence[float]
) -> tuple[float, list[float]]:
    """Weighted log loss plus 0.5 * l2[j] * w[j]^2; w[0] is the bias (l2[0] is usually 0)."""
    grad = [c * x for c, x in zip(l2, w, strict=True)]
    loss = 0.5 * sum(c * x * x for c, x in zip(l2, w, strict=True))
    for row, label, weight in zip(rows, labels, weights, strict=True):
        z = w[0]
        for j, v in row:
            z += w[j] * v
        margin = z if label else -z
        loss += weight * (math.log1p(math.exp(-margin)) if margin > -30 else -margin)
        delta = weight * (sigmoid(z) - label)
        grad[0] += delta
        for j, v in row:
            grad[j] += delta * v
    return loss, grad


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def fit(
    rows: Sequence[Row],
    labels: Sequence[int],
    n_features: int,
    l2: Sequence[float],
    *,
    weights: Sequence[float] | None = None,
    max_iter: int = 400,
    memory: int = 10,
    tol: float = 1e-7,
) -> list[float]:
    """Weights (index 0: bias) minimizing the regularized weighted log loss, by L-BFGS with a
    backtracking (Armijo) line search. `l2[j]` is feature j's penalty (l2[0] for the bias)."""
    if len(l2) != n_features:
        raise ValueError("one l2 penalty per feature (bias included)")
    weights = weights if weights is not None else [1.0] * len(rows)
    w = [0.0] * n_features
    loss, grad = _loss_and_gradient(w, rows, labels, weights, l2)
    history: list[tuple[list[float], list[float], float]] = []  # (s, y, 1 / y.s)
    for _ in range(max_iter):
        # two-loop recursion: direction = -H * grad
        q = list(grad)
        alphas = []
        for s, y, rho in reversed(history):
            a = rho * _dot(s, q)
            alphas.append(a)
            q = [qi - a * yi for qi, yi in zip(q, y, strict=True)]
        if history:
            s, y, _ = history[-1]
            gamma = _dot(s, y) / _dot(y, y)
            q = [gamma * qi for qi in q]
        for (s, y, rho), a in zip(history, reversed(alphas), strict=True):
            b = rho * _dot(y, q)
            q = [qi + (a - b) * si for qi, si in zip(q, s, strict=True)]
        direction = [-qi for qi in q]
        slope = _dot(grad, direction)
        if slope >= 0:  # not a descent direction: restart from the gradient
            history.clear()
            direction = [-g for g in grad]
            slope = -_dot(grad, grad)
        step = 1.0 if history else 1.0 / max(1.0, math.sqrt(-slope))
        while True:
            trial = [wi + step * di for wi, di in zip(w, direction, strict=True)]
            new_loss, new_grad = _loss_and_gradient(trial, rows, labels, weights, l2)
            if new_loss <= loss + 1e-4 * step * slope or step < 1e-12:
                break
            step *= 0.5
        s = [t - wi for t, wi in zip(trial, w, strict=True)]
        y = [ng - g for ng, g in zip(new_grad, grad, strict=True)]
        ys = _dot(y, s)
        if ys > 1e-12:
            history.append((s, y, 1.0 / ys))
            if len(history) > memory:
                history.pop(0)
        converged = abs(loss - new_loss) <= tol * max(1.0, abs(loss))
        w, loss, grad = trial, new_loss, new_grad
        if converged or math.sqrt(_dot(grad, grad)) < 1e-6:
            break
    return w
