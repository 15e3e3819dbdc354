"""Metrics of docs/design.md §10: accuracies, membership inference, discriminability, ASR."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from sklearn.svm import SVC

from forgetflow.core.data.tensors import ImageSet, to_float
from forgetflow.core.triggers import TriggerSpec, stamp

GAP_KEYS = ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")
MIA_MAX_PER_SIDE = 3000  # SVC cost grows quadratically; 3000 members + 3000 non-members


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, batch: int = 2048) -> torch.Tensor:
    """Logits for uint8 images, evaluated in eval mode on the model's device."""
    model.eval()
    tensor = next(model.parameters(), None)
    if tensor is None:  # a parameter-free module (e.g. a fixed rule) still has a device
        tensor = next(model.buffers(), torch.empty(0))
    device = tensor.device
    out = [model(to_float(images[i: i + batch]).to(device)).float().cpu()
           for i in range(0, len(images), batch)]
    return torch.cat(out) if out else torch.empty(0)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean()) if len(labels) else float("nan")


def true_class_confidence(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    return F.softmax(logits, 1).gather(1, labels[:, None]).squeeze(1).numpy()


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    return F.cross_entropy(logits, labels, reduction="none").numpy()


def _balanced(a: np.ndarray, b: np.ndarray, cap: int, rng: np.random.Generator):
    n = min(len(a), len(b), cap)
    return rng.choice(a, n, replace=False), rng.choice(b, n, replace=False)


def mia_efficacy(retain_conf: np.ndarray, test_conf: np.ndarray, forget_conf: np.ndarray,
                 seed: int = 0) -> float:
    """SalUn/l1-sparse protocol: RBF-SVC (C=3, gamma='auto') on true-class confidence, fitted
    on retain (members) vs test (non-members) in equal counts; share of forget predicted
    non-member."""
    rng = np.random.default_rng(seed)
    members, non_members = _balanced(retain_conf, test_conf, MIA_MAX_PER_SIDE, rng)
    x = np.concatenate([members, non_members])[:, None]
    y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    return float((clf.predict(forget_conf[:, None]) == 0).mean())


def mia_loss_acc(forget_loss: np.ndarray, test_loss: np.ndarray, seed: int = 0) -> float:
    """Logistic regression on per-sample loss, forget vs test, balanced, 5 shuffled splits;
    0.5 means the forget set is indistinguishable from unseen data; NaN below 10 rows a side
    (as discriminator_auc), where the splits cannot hold both sides and the score is noise."""
    rng = np.random.default_rng(seed)
    f, t = _balanced(forget_loss, test_loss, 10 * MIA_MAX_PER_SIDE, rng)
    if len(f) < 10:
        return float("nan")
    x = np.log1p(np.concatenate([f, t]))[:, None]
    y = np.concatenate([np.ones(len(f)), np.zeros(len(t))])
    splitter = StratifiedShuffleSplit(n_splits=5, test_size=0.3, random_state=seed)
    scores = [LogisticRegression().fit(x[a], y[a]).score(x[b], y[b])
              for a, b in splitter.split(x, y)]
    return float(np.mean(scores))


def output_features(logits: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
    """Per-sample features of a model's output for the discriminator: top-1/top-2 log-probs,
    entropy, and the loss on the given label where labels are comparable."""
    logp = F.log_softmax(logits, 1)
    top = logp.topk(min(2, logp.shape[1]), 1).values
    entropy = -(logp.exp() * logp).sum(1, keepdim=True)
    cols = [top, entropy]
    if labels is not None:
        cols.append(-logp.gather(1, labels[:, None]))
    return torch.cat(cols, 1).numpy()


def discriminator_auc(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Cross-validated AUC of a logistic discriminator telling feature set a from b (balanced)."""
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b), 10 * MIA_MAX_PER_SIDE)
    if n < 10:
        return float("nan")
    a, b = a[rng.choice(len(a), n, replace=False)], b[rng.choice(len(b), n, replace=False)]
    x = np.concatenate([a, b])
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    y = np.concatenate([np.ones(n), np.zeros(n)])
    scores = np.zeros(len(y))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
        scores[te] = LogisticRegression(max_iter=500).fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
    return float(roc_auc_score(y, scores))


def attack_success_rate(model: torch.nn.Module, test: ImageSet, spec: TriggerSpec) -> float:
    """Share of non-target test images that, stamped with the trigger, land on the target."""
    keep = test.labels != spec.target
    logits = predict_logits(model, stamp(test.images[keep], spec))
    return float((logits.argmax(1) == spec.target).float().mean())


def avg_gap(row: dict, retrain_row: dict) -> float:
    """Mean absolute difference to Retrain over GAP_KEYS, in percentage points."""
    return float(np.mean([abs(row[k] - retrain_row[k]) * 100.0 for k in GAP_KEYS]))
