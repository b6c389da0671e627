"""The notebook's training as a hand-written PyTorch loop: the baseline benchmarks/speed.py compares against.

Same work as ``python -m pima_lightning.train``: the same CSV and split, standardised features, the same
network and initialisation, SGD(lr=0.01, momentum=0.9, nesterov=True), 150 epochs of minibatches of 10
reshuffled every epoch, validation on the held-out rows after every epoch, then a test. Run as a script,
it is also the whole-process baseline (imports included).
"""

import sys
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from pima_lightning.model import MLP


def load(path: str):
    dataset = np.loadtxt(path, delimiter=",")
    x_train, x_test, y_train, y_test = train_test_split(
        dataset[:, :8], dataset[:, 8], test_size=0.33, random_state=7
    )
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    tensors = [torch.as_tensor(a, dtype=torch.float32) for a in (x_train, y_train, x_test, y_test)]
    return (*tensors, mean, scale)


def fit(x_train, y_train, x_val, y_val, mean, scale, epochs: int = 150, batch_size: int = 10, seed: int = 7):
    """Train and return (network, seconds spent fitting)."""
    torch.manual_seed(seed)
    network = MLP(feature_mean=mean, feature_scale=scale)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    loss_fn = nn.BCEWithLogitsLoss()
    started = time.perf_counter()
    for _ in range(epochs):
        network.train()
        for rows in torch.randperm(len(y_train)).split(batch_size):
            optimizer.zero_grad()
            loss = loss_fn(network(x_train[rows]), y_train[rows])
            loss.backward()
            optimizer.step()
        network.eval()
        with torch.no_grad():
            logits = network(x_val)
            val_loss = loss_fn(logits, y_val)
            val_acc = ((logits > 0).float() == y_val).float().mean()
    del val_loss, val_acc
    return network, time.perf_counter() - started


if __name__ == "__main__":
    x_train, y_train, x_test, y_test, mean, scale = load(sys.argv[1])
    network, seconds = fit(x_train, y_train, x_test, y_test, mean, scale)
    with torch.no_grad():
        accuracy = ((network.eval()(x_test) > 0).float() == y_test).float().mean().item()
    print(f"plain loop: test accuracy {accuracy:.4f}, fit {seconds:.2f} s")
