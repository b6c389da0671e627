"""The notebook's training as a hand-written PyTorch loop: the baseline benchmarks/speed.py compares against.

Same work as ``python -m pima_lightning.train``: the same CSV and split, standardised features, the same
network and initialisation, SGD(lr=0.01, momentum=0.9, nesterov=True), 150 epochs of minibatches of 10
reshuffled every epoch, validation on the held-out rows after every epoch, then a test. Run as a script,
it is also the whole-process baseline (imports included):

    python benchmarks/plain_loop.py CSV           # the notebook run
    python benchmarks/plain_loop.py CSV 10 [150]  # 10-fold cross-validation, the folds one by one
"""

import sys
import time

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch import nn


def network(width: int = 8) -> nn.Sequential:
    """The notebook's 12-6-1 network for ``width`` inputs, initialised as Keras initialises it; one logit a
    row.

    Written out rather than imported from ``pima_lightning.model``, whose import pulls in Lightning:
    the baseline process must load what a plain PyTorch script loads, no more.
    """
    hidden_1, hidden_2, output = nn.Linear(width, 12), nn.Linear(12, 6), nn.Linear(6, 1)
    nn.init.xavier_uniform_(hidden_1.weight)
    nn.init.xavier_uniform_(hidden_2.weight)
    nn.init.uniform_(output.weight, -0.05, 0.05)
    for layer in (hidden_1, hidden_2, output):
        nn.init.zeros_(layer.bias)
    dropout = 0.2
    return nn.Sequential(
        hidden_1,
        nn.ReLU(),
        nn.Dropout(dropout),
        hidden_2,
        nn.ReLU(),
        nn.Dropout(dropout),
        output,
        nn.Flatten(0),
    )


def load(path: str):
    dataset = np.loadtxt(path, delimiter=",")
    x_train, x_test, y_train, y_test = train_test_split(
        dataset[:, :8], dataset[:, 8], test_size=0.33, random_state=7
    )
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)  # standardised with training-row statistics
    x_train, x_test = (x_train - mean) / scale, (x_test - mean) / scale
    return [torch.as_tensor(a, dtype=torch.float32) for a in (x_train, y_train, x_test, y_test)]


def fit(x_train, y_train, x_val, y_val, epochs: int = 150, batch_size: int = 10, seed: int = 7):
    """Train and return (network, seconds spent fitting)."""
    torch.manual_seed(seed)
    model = network(x_train.shape[1])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    loss_fn = nn.BCEWithLogitsLoss()
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for rows in torch.randperm(len(y_train)).split(batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[rows]), y_train[rows])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = loss_fn(logits, y_val)
            val_acc = ((logits > 0).float() == y_val).float().mean()
    del val_loss, val_acc
    return model, time.perf_counter() - started


def cross_validate(path: str, folds: int, epochs: int = 150) -> list[float]:
    """``folds``-fold cross-validation on every row, one fold after another, as ``python -m
    pima_lightning.cv`` splits them (``StratifiedKFold(folds, shuffle=True, random_state=0)``, features
    standardised with each fold's training rows): each fold's held-out accuracy."""
    dataset = np.loadtxt(path, delimiter=",")
    features, labels = dataset[:, :8], dataset[:, 8]
    accuracies = []
    for train_rows, held_out in StratifiedKFold(folds, shuffle=True, random_state=0).split(features, labels):
        mean, scale = features[train_rows].mean(axis=0), features[train_rows].std(axis=0)
        x_train, x_val = ((features[rows] - mean) / scale for rows in (train_rows, held_out))
        tensors = [torch.as_tensor(a, dtype=torch.float32) for a in (x_train, labels[train_rows], x_val)]
        y_val = torch.as_tensor(labels[held_out], dtype=torch.float32)
        model, _ = fit(*tensors, y_val, epochs=epochs)
        with torch.no_grad():
            accuracies.append(((model.eval()(tensors[2]) > 0).float() == y_val).float().mean().item())
    return accuracies


if __name__ == "__main__":
    if len(sys.argv) > 2:  # plain_loop.py CSV FOLDS [EPOCHS]: cross-validation
        accuracies = cross_validate(sys.argv[1], *map(int, sys.argv[2:4]))
        print(f"plain loop: {len(accuracies)}-fold accuracy {np.mean(accuracies):.4f}")
        sys.exit()
    x_train, y_train, x_test, y_test = load(sys.argv[1])
    model, seconds = fit(x_train, y_train, x_test, y_test)
    with torch.no_grad():
        accuracy = ((model.eval()(x_test) > 0).float() == y_test).float().mean().item()
    print(f"plain loop: test accuracy {accuracy:.4f}, fit {seconds:.2f} s")
