"""``PimaDataModule``: the Pima CSV, split 67/33 exactly as the notebook's ``train_test_split``."""

import math
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from pima_lightning.checks import flag, number, whole
from pima_lightning.csvfile import read_labelled_csv
from pima_lightning.download import ensure_dataset
from pima_lightning.errors import InputError

DATASET_FILENAME = "pima-indians-diabetes.csv"
DATASET_URL = "https://raw.githubusercontent.com/jbrownlee/Datasets/master/pima-indians-diabetes.data.csv"
DATASET_SHA256 = "6bfe5d0f379d17a0e0819b996407e3c09bf80febd4287f2ed212190dfff154af"
SPLITS = ("random", "last", "none")
FOLD_SCOPES = ("train", "all")  # cross-validate the training part of the split, or every row of the file
DEFAULT_DATA_DIR = "~/.cache/pima_lightning"  # where the public copy is downloaded (conf: env PIMA_DATA_DIR)


class PimaDataModule(L.LightningDataModule):
    """Training rows, validation rows and the held-out test rows of a Pima CSV, or of any CSV of numeric
    features and a 0/1 label (``path``; ``label_column`` names the label in its header, else the last
    column is the label). ``n_features`` and ``feature_names`` (the header's, or None) come from the file.

    ``split`` picks the held-out rows: ``random`` is ``train_test_split(X, Y, test_size,
    random_state=split_seed)``'s test part, in sklearn's order; ``last`` is the last ``test_size``
    of the rows in file order, as Keras's ``validation_split`` takes them; ``none`` holds nothing
    out and evaluates on the training rows, as the notebook's ``fit(X, Y)`` then ``evaluate(X, Y)``.
    The held-out part is also the validation data unless ``val_size`` carves a validation part
    out of the training rows. Features stay raw here; ``feature_mean`` and ``feature_scale``
    (training rows only) are for the model, which standardises its inputs. ``replicas`` is the
    number of models trained side by side: each gets its own shuffled order of the training rows.
    Validation and test rows come in file (or split) order, ``eval_batch_size`` at a time.
    """

    def __init__(
        self,
        path: str | None = None,
        data_dir: str = DEFAULT_DATA_DIR,
        url: str = DATASET_URL,
        sha256: str = DATASET_SHA256,
        split: str = "random",
        test_size: float = 0.33,
        split_seed: int = 7,
        stratify: bool = False,
        val_size: float = 0.0,
        standardize: bool = True,
        batch_size: int = 10,
        eval_batch_size: int = 128,
        replicas: int = 1,
        label_column: str | None = None,
        folds: int = 0,
        fold: int = 0,
        fold_seed: int = 0,
        fold_scope: str = "all",
    ) -> None:
        super().__init__()
        if split not in SPLITS:
            raise InputError(f"data.split={split}: expected one of {', '.join(SPLITS)}")
        number("data.test_size", test_size, 0, 1, low_open=True, high_open=True, what="a fraction")
        number("data.val_size", val_size, 0, 1, high_open=True, what="a fraction")
        whole("data.split_seed", split_seed, 0, 2**32 - 1)
        for name, size in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            whole(f"data.{name}", size)
        for name, value in (("stratify", stratify), ("standardize", standardize)):
            flag(f"data.{name}", value)
        if label_column is not None and not isinstance(label_column, str):
            raise InputError(
                f"data.label_column={label_column}: expected a column name from the CSV's header"
            )
        if folds:
            whole("data.folds", folds, low=2)
            whole("data.fold", fold, 0, folds - 1)
            whole("data.fold_seed", fold_seed, 0, 2**32 - 1)
            if fold_scope not in FOLD_SCOPES:
                raise InputError(f"data.fold_scope={fold_scope}: expected one of {', '.join(FOLD_SCOPES)}")
        try:
            whole("data.replicas", replicas)
        except InputError as err:
            raise InputError(f"{err} (the config sets it to model.replicas)") from None
        self.save_hyperparameters(logger=False)
        self.csv_path = Path(path or Path(data_dir) / DATASET_FILENAME).expanduser()
        self.train_set: TensorDataset | None = None
        self.n_features, self.feature_names = 0, None  # from the CSV, in setup()

    def prepare_data(self) -> None:
        """Download the public copy when no ``path`` is given (once; verified; atomic)."""
        if self.hparams.path is None:
            ensure_dataset(self.csv_path, self.hparams.url, self.hparams.sha256)

    def setup(self, stage: str | None = None) -> None:
        """Read and validate the CSV, split it and fit the feature statistics (once)."""
        if self.train_set is not None:
            return
        hp = self.hparams
        features, labels, self.feature_names = read_labelled_csv(self.csv_path, label_column=hp.label_column)
        self.n_features = features.shape[1]
        if len(set(labels.tolist())) == 1:  # no split or stratification can help
            raise InputError(
                f"{self.csv_path}: every row has label {labels[0]}; a classifier needs rows of both classes"
            )
        if hp.split == "random":
            x_train, x_test, y_train, y_test = self._split(features, labels, hp.test_size, "held-out")
        elif hp.split == "last":
            # Keras's validation_split: the last rows, before any shuffling
            first_held_out = math.floor(len(labels) * (1 - hp.test_size))
            x_train, x_test = features[:first_held_out], features[first_held_out:]
            y_train, y_test = labels[:first_held_out], labels[first_held_out:]
            self._check_classes(labels, {"training": y_train, "held-out": y_test})
        else:
            x_train, x_test, y_train, y_test = features, features, labels, labels
        if hp.folds:  # cross-validation: this fold's held-out rows are the validation and test rows
            self.cv_features, self.cv_labels = (
                (features, labels) if hp.fold_scope == "all" else (x_train, y_train)
            )
            self.cv_splits = cross_validation_folds(self.cv_labels, hp.folds, hp.fold_seed, self.csv_path)
            train_rows, held_out_rows = self.cv_splits[hp.fold]
            x_train, y_train = self.cv_features[train_rows], self.cv_labels[train_rows]
            x_test, y_test = self.cv_features[held_out_rows], self.cv_labels[held_out_rows]
        if hp.val_size > 0:
            x_train, x_val, y_train, y_val = self._split(x_train, y_train, hp.val_size, "validation")
        else:
            x_val, y_val = x_test, y_test
        if hp.standardize:
            scaler = StandardScaler().fit(x_train)
            self.feature_mean, self.feature_scale = scaler.mean_, scaler.scale_
        else:
            self.feature_mean, self.feature_scale = np.zeros(features.shape[1]), np.ones(features.shape[1])
        self.train_set = _tensor_dataset(x_train, y_train)
        self.val_set = _tensor_dataset(x_val, y_val)
        self.test_set = _tensor_dataset(x_test, y_test)

    def _split(self, features, labels, size: float, part: str):
        """``train_test_split`` with this module's seed; both parts must hold both classes."""
        stratify = labels if self.hparams.stratify else None
        try:
            parts = train_test_split(
                features, labels, test_size=size, random_state=self.hparams.split_seed, stratify=stratify
            )
        except ValueError as err:
            raise InputError(f"{self.csv_path}: cannot split {len(labels)} rows ({err})") from None
        self._check_classes(labels, {"training": parts[2], part: parts[3]})
        return parts

    def _check_classes(self, labels: np.ndarray, parts: dict[str, np.ndarray]) -> None:
        """Raise InputError unless every part of the split holds rows of both classes."""
        counts = np.bincount(labels, minlength=2).tolist()
        for name, part_labels in parts.items():
            missing = {0, 1} - set(part_labels.tolist())
            if missing:
                raise InputError(
                    f"{self.csv_path}: the {name} part of the split has no rows of class "
                    f"{min(missing)} ({counts[0]} rows of class 0, {counts[1]} of class 1); "
                    "add rows of each class, or set data.stratify=true"
                )

    def train_dataloader(self) -> DataLoader:
        """Minibatches of ``batch_size`` training rows, reshuffled every epoch, for every replica at once.

        A plain shuffling ``DataLoader`` whose batch sampler (``ReplicaBatchSampler``) hands each
        replica its own order of the rows: features ``(replicas, rows, n_features)``, labels
        ``(replicas, rows)``. Under DDP, Lightning swaps in its distributed sampler as for any loader.
        """
        hp = self.hparams
        # Trainer(overfit_batches=N) trains on the same first N minibatches every epoch; Lightning turns
        # shuffling off for it only through DataLoader.sampler, which a batch sampler leaves unused
        overfit = self.trainer is not None and self.trainer.overfit_batches > 0
        order = SequentialSampler(self.train_set) if overfit else RandomSampler(self.train_set)
        batches = ReplicaBatchSampler(order, hp.batch_size, False, hp.replicas, len(self.train_set))
        return DataLoader(self.train_set, batch_sampler=batches)

    def val_dataloader(self) -> DataLoader:
        """The validation rows in order, ``eval_batch_size`` at a time."""
        return DataLoader(self.val_set, batch_size=self.hparams.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        """The held-out rows in order, ``eval_batch_size`` at a time."""
        return DataLoader(self.test_set, batch_size=self.hparams.eval_batch_size)


def cross_validation_folds(
    labels: np.ndarray, folds: int, seed: int, source=""
) -> list[tuple[np.ndarray, ...]]:
    """``(training rows, held-out rows)`` of each of ``folds`` stratified folds: scikit-learn's
    ``StratifiedKFold(folds, shuffle=True, random_state=seed)``, the folds the baselines are scored on too."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    try:
        return list(splitter.split(np.zeros(len(labels)), labels))
    except ValueError as err:
        raise InputError(f"{source}: cannot make {folds} stratified folds ({err})") from None


class ReplicaBatchSampler(BatchSampler):
    """A ``BatchSampler`` whose minibatches hold a row index per replica: a tensor ``(replicas, rows)``.

    Replica 0 takes ``sampler``'s order, so with one replica and a ``RandomSampler`` the minibatches
    are exactly those of ``DataLoader(rows, batch_size, shuffle=True)``. Replica k > 0 takes
    ``order_k[i]`` for each index ``i`` of that order, where ``order_k`` is a permutation of the
    ``n_rows`` rows drawn afresh every epoch from torch's global generator: each replica's order is
    then uniformly random and independent of the others'. Under DDP, Lightning injects its
    ``DistributedSampler`` as ``sampler``; every process draws the same ``order_k``
    (``seed_everything`` seeds them alike), so each replica still sees every row once an epoch
    across the processes.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool, replicas: int = 1, n_rows: int = 0) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.replicas, self.n_rows = replicas, n_rows

    def __iter__(self) -> Iterator[torch.Tensor]:
        orders = torch.stack(
            [torch.arange(self.n_rows), *(torch.randperm(self.n_rows) for _ in range(self.replicas - 1))]
        )
        for batch in super().__iter__():
            yield orders[:, batch]


class Rows(TensorDataset):
    """Feature and label rows whose ``__getitems__`` (the DataLoader's call for a whole minibatch) indexes
    each tensor once: by a list of row numbers, or by ``ReplicaBatchSampler``'s ``(replicas, rows)`` tensor.

    It returns the samples the default collate function stacks, as ``TensorDataset`` would one by one:
    rows, or for replicas one ``(rows, n_features)`` block each. Fetching an epoch of minibatches for 32
    replicas took 13.3 ms with ``TensorDataset``'s index per replica, 5.8 ms this way (1 thread).
    """

    def __getitems__(self, indices) -> list[tuple[torch.Tensor, ...]]:
        return list(zip(*(tensor[indices] for tensor in self.tensors), strict=True))


def _tensor_dataset(features: np.ndarray, labels: np.ndarray) -> Rows:
    return Rows(torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.float32))
