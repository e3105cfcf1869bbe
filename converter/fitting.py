"""The parts of a training loop the image and audio trainers share: a shuffled batch feed (augmented
batch by batch) and a callback that scores every epoch on validation, keeps the best weights and
stops after `patience` epochs without gain. Keras is imported only when a trainer asks for these."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)  # {"phase", "epoch", "loss", "val_balanced_accuracy"}
    best_epoch: int = -1
    seconds: float = 0.0


@dataclass
class Best:
    score: float = -1.0
    weights: list | None = None


def shuffled_feed(n: int, batch: int, rng: np.random.Generator, make_batch: Callable[[np.ndarray], tuple]):
    """A keras PyDataset over n examples in a new random order every epoch; `make_batch(indices)`
    returns (inputs, labels, sample weights) for one batch (augmentation happens there)."""
    import keras

    class Feed(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = rng.permutation(n)

        def __len__(self):
            return int(np.ceil(n / batch))

        def __getitem__(self, k):
            return make_batch(self.order[k * batch:(k + 1) * batch])

        def on_epoch_end(self):
            self.order = rng.permutation(n)

    return Feed()


def keep_best(val_in: np.ndarray, val_y: np.ndarray, labels: tuple[str, ...], history: History, best: Best,
              patience: int, phase: str):
    """A keras callback: validation balanced accuracy after each epoch, into `history`; the best
    weights into `best`; stop after `patience` epochs without a better score."""
    import keras

    from converter.metrics import summary

    class KeepBest(keras.callbacks.Callback):
        wait = 0

        def on_epoch_end(self, epoch, logs=None):
            scores = self.model.predict(val_in, batch_size=256, verbose=0)
            bacc = summary(val_y, scores, labels)["balanced_accuracy"]
            loss = float((logs or {}).get("loss", np.nan))
            history.epochs.append({"phase": phase, "epoch": len(history.epochs) + 1, "loss": loss,
                                   "val_balanced_accuracy": bacc})
            print(f"  {phase} epoch {epoch + 1}: loss {loss:.4f}, val balanced accuracy {bacc:.4f}", file=sys.stderr, flush=True)
            if bacc > best.score:
                best.score, best.weights = bacc, self.model.get_weights()
                history.best_epoch = len(history.epochs)
                self.wait = 0
            else:
                self.wait += 1
                if self.wait >= patience:
                    self.model.stop_training = True

    return KeepBest()
