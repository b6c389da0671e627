"""The plain loop's work as the barest Lightning can do it: what Lightning's own loop costs.

A ``LightningModule`` with nothing but ``training_step`` (the minibatch loss), ``validation_step`` (the
held-out loss and accuracy, not logged: a barebones Trainer forbids ``self.log``) and
``configure_optimizers``, on ``Trainer(barebones=True)`` (no logger, callbacks, checkpoints, progress bar),
fed by ``DataLoader(shuffle=True)`` minibatches of 10 rows. Same data, network, initialisation, optimizer
and epochs as benchmarks/plain_loop.py, whose functions it imports.

    python benchmarks/lightning_floor.py CSV [EPOCHS]   (150 epochs by default, the notebook's)
"""

import sys
import time
import warnings

import lightning as L
import torch
from plain_loop import load, network
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class BareClassifier(L.LightningModule):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.network, self.loss_fn = network(width), nn.BCEWithLogitsLoss()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        features, labels = batch
        return self.loss_fn(self.network(features), labels)

    def validation_step(self, batch, batch_idx: int) -> None:
        features, labels = batch
        logits = self.network(features)
        val_loss = self.loss_fn(logits, labels)
        val_acc = ((logits > 0).float() == labels).float().mean()
        del val_loss, val_acc  # computed as the plain loop computes them; a barebones Trainer logs nothing

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9, nesterov=True)


def fit(csv_path: str, epochs: int = 150) -> tuple[float, float]:
    """The notebook's fit, the barest Lightning way: (test accuracy, seconds in ``trainer.fit``)."""
    x_train, y_train, x_test, y_test = load(csv_path)
    torch.manual_seed(7)
    trainer = L.Trainer(barebones=True, max_epochs=epochs, accelerator="cpu", devices=1)
    train_rows = DataLoader(TensorDataset(x_train, y_train), batch_size=10, shuffle=True)
    held_out = DataLoader(TensorDataset(x_test, y_test), batch_size=len(y_test))
    model = BareClassifier()
    started = time.perf_counter()
    trainer.fit(model, train_rows, held_out)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        accuracy = ((model.network.eval()(x_test) > 0).float() == y_test).float().mean().item()
    return accuracy, seconds


if __name__ == "__main__":
    warnings.filterwarnings("ignore")  # barebones mode's notices
    accuracy, seconds = fit(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 150)
    print(f"bare lightning: test accuracy {accuracy:.4f}, fit {seconds:.2f} s")
