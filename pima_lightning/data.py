"""``PimaDataModule``: the Pima CSV, split 67/33 exactly as the notebook's ``train_test_split``."""

import logging
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from pima_lightning.errors import InputError
from pima_lightning.inputs.csvfile import read_feature_rows, read_labelled_csv
from pima_lightning.inputs.download import ensure_dataset
from pima_lightning.inputs.files import MAX_CSV_BYTES, printable, sha256_of
from pima_lightning.inputs.frames import SOURCE, frame_sha256, labelled_frame
from pima_lightning.inputs.missing import mark_missing

log = logging.getLogger(__name__)
DATASET_FILENAME = "pima-indians-diabetes.csv"
DATASET_URL = "https://raw.githubusercontent.com/jbrownlee/Datasets/master/pima-indians-diabetes.data.csv"
DATASET_SHA256 = "6bfe5d0f379d17a0e0819b996407e3c09bf80febd4287f2ed212190dfff154af"
SPLITS = ("random", "last", "none")
FOLD_SCOPES = ("train", "all")  # cross-validate the training part of the split, or every row of the file
DATA_DIR_VARIABLE = "PIMA_DATA_DIR"  # where the public copy is downloaded to, if set
DEFAULT_DATA_DIR = "~/.cache/pima_lightning"  # ... and if not


class PimaDataModule(L.LightningDataModule):
    """Training rows, validation rows and the held-out test rows of a Pima CSV, or of any CSV of feature
    columns and a label of two or more classes (``path``; ``label_column`` names the label in its
    header, else the last column is the label; ``ignore_columns`` names columns that are not features,
    such as an ID), or of a pandas DataFrame (``frame``, checked as a CSV is). A text feature column, or
    one ``categorical_columns`` names, is categorical: its cells are its categories' indices. ``n_features``,
    ``feature_names`` (the header's, or None), ``classes`` (the label's values, text or numbers, in
    order; label k is ``classes[k]``) and ``categories`` (each categorical feature's, by its index) come
    from the file.

    ``split`` picks the held-out rows: ``random`` is ``train_test_split(X, Y, test_size,
    random_state=split_seed)``'s test part, in sklearn's order; ``last`` is the last ``test_size``
    of the rows in file order, as Keras's ``validation_split`` takes them; ``none`` holds nothing
    out and evaluates on the training rows, as the notebook's ``fit(X, Y)`` then ``evaluate(X, Y)``.
    The held-out part is also the validation data unless ``val_size`` carves a validation part
    out of the training rows. With ``folds``, fold ``fold`` of a ``StratifiedKFold`` is held out instead.

    Features stay raw here, NaN where a value is missing (an empty cell, ``NA``, or a value
    ``missing_values`` declares missing: ``{2: [0]}``, ``{"Glucose": [0]}``); ``feature_fill`` (medians),
    ``missing_indicators`` (the columns with missing values), ``feature_mean`` and ``feature_scale``
    (training rows only, ``fitted_inputs``) are for the model, which fills and standardises its inputs
    (``PimaClassifier.adapt``). Batches are ``(rows, n_features)``
    features and ``(rows,)`` labels. ``predict_dataloader`` serves the rows of ``predict_path`` (a CSV of
    features, a label column optional) or, without one, the held-out rows.
    """

    def __init__(
        self,
        path: str | None = None,
        data_dir: str | None = None,
        url: str = DATASET_URL,
        sha256: str = DATASET_SHA256,
        split: str = "random",
        test_size: float = 0.33,
        split_seed: int = 7,
        stratify: bool = False,
        val_size: float = 0.0,
        standardize: bool = True,
        batch_size: int = 10,
        eval_batch_size: int = 4096,
        num_workers: int = 0,
        pin_memory: bool = False,
        label_column: str | None = None,
        ignore_columns: Sequence[str] | None = None,
        missing_values: dict | None = None,
        categorical_columns: Sequence[str | int] | None = None,
        folds: int = 0,
        fold: int = 0,
        fold_seed: int = 0,
        fold_scope: str = "all",
        predict_path: str | None = None,
        class_names: Sequence[str] | None = None,
        frame: pd.DataFrame | None = None,
    ) -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
        # plain data in checkpoints: an omegaconf list there is refused by torch's weights-only loader
        class_names = [str(name) for name in class_names] if class_names is not None else None
        ignore_columns = [str(name) for name in ignore_columns] if ignore_columns else None
        categorical_columns = list(categorical_columns) if categorical_columns else None
        missing_values = (
            {key: list(values) for key, values in missing_values.items()} if missing_values else None
        )
        self.save_hyperparameters(ignore=["frame"], logger=False)  # a frame is data, not a setting
        self.frame = frame
        if frame is not None:  # what the run names as its data, in messages and its checkpoint
            self.hparams.path = path = SOURCE
        data_dir = data_dir or os.environ.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR
        self.csv_path = Path(path or Path(data_dir) / DATASET_FILENAME).expanduser()
        self.train_set: TensorDataset | None = None
        self.predict_set: TensorDataset | None = None
        self.n_features, self.feature_names, self.label_name = 0, None, None  # from the CSV, in setup()
        self.classes: list[str] = ["0", "1"]  # the label's distinct values in order, from the CSV in setup()
        self.missing_indicators: list[int] = []  # the feature columns with missing values, in setup()
        # each categorical feature's categories, by its index: found in setup(), or fixed before it (a
        # trained model's, which a file it scores is coded with: ``evaluate``, a loaded model's trainer)
        self.categories: dict[int, list[str]] | None = None
        self.data_sha256: str | None = None  # the file's SHA-256 and the fingerprints of the rows fitted on
        self.trained_rows: np.ndarray | None = None  # (training and validation rows), saved in checkpoints

    def prepare_data(self) -> None:
        """Download the public copy when neither ``path`` nor ``predict_path`` is given (once; verified;
        atomic)."""
        if self.hparams.path is None and self.hparams.predict_path is None and self.frame is None:
            ensure_dataset(self.csv_path, self.hparams.url, self.hparams.sha256)

    def setup(self, stage: str | None = None) -> None:
        """Read and validate the CSV, split it and fit the feature statistics (once); for ``predict``
        with ``predict_path``, read that file's feature columns (the model's, by name if it has names)."""
        if stage == "predict" and self.hparams.predict_path is not None:
            self._setup_predict()
            return
        if self.train_set is not None:
            return
        hp = self.hparams
        columns = {
            "label_column": hp.label_column,
            "ignore_columns": hp.ignore_columns or (),
            "categorical_columns": hp.categorical_columns or (),
            "categories": self._fixed_categories(),
        }
        if self.frame is not None:
            table = labelled_frame(self.frame, **columns)
            self.data_sha256 = frame_sha256(table)
        else:
            table = read_labelled_csv(self.csv_path, **columns)
            self.data_sha256 = sha256_of(self.csv_path, "data.path", MAX_CSV_BYTES, kind="CSV")
        features, labels = table.features, table.labels
        self.feature_names, self.label_name = table.feature_names, table.label_name
        self.classes = list(table.classes)
        if table.unlabelled:
            log.warning(
                "%s: %d rows without a label left out of training and scoring",
                self.csv_path,
                table.unlabelled,
            )
        self.n_features = features.shape[1]
        self.categories = table.categories
        features = mark_missing(features, self.missing_values, self.feature_names, self.categories)
        self.missing_indicators = missing_columns(features)
        if len(self.classes) == 1:  # no split or stratification can help
            raise InputError(
                f"{self.csv_path}: every row has label {self.classes[0]}; a classifier needs rows of both "
                "classes"
            )
        if hp.class_names is not None and len(hp.class_names) != len(self.classes):
            raise InputError(
                f"data.class_names={printable(str(hp.class_names))[:200]}: {len(hp.class_names)} names for "
                f"the {len(self.classes)} classes of {self.csv_path} ({', '.join(self.classes)[:200]})"
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
        fitted = fitted_inputs(x_train, self.missing_indicators, hp.standardize, self.categories)
        self.feature_fill, self.feature_mean, self.feature_scale, self.category_known = fitted
        self.train_set = _tensor_dataset(x_train, y_train)
        self.val_set = _tensor_dataset(x_val, y_val)
        self.test_set = _tensor_dataset(x_test, y_test)
        fitted_on = [self.train_set] + ([self.val_set] if hp.val_size > 0 else [])
        self.trained_rows = np.unique(np.concatenate([row_fingerprints(*part.tensors) for part in fitted_on]))

    @property
    def missing_values(self) -> dict | None:
        """What the model is told means missing, besides NaN: the ``missing_values`` setting."""
        return self.hparams.missing_values

    @property
    def input_width(self) -> int:
        """How many inputs the model's network takes: the features, a "was missing" indicator for each
        feature column with missing values, and for each categorical feature one input a category, plus
        one for any other value, in place of its own."""
        return input_width(self.n_features, self.missing_indicators, self.categories)

    def _fixed_categories(self) -> dict[int, list[str]] | None:
        """The categories the file must be coded with, if any: those set before ``setup`` (``evaluate``
        sets a checkpoint's), else those of the trainer's model, if it was built already (loaded, or
        adapted): a file it scores must give each category the code it was trained with."""
        if self.categories is not None:
            return self.categories
        trainer = self.trainer
        model = trainer.lightning_module if trainer is not None else None
        if model is not None and getattr(model, "network", None) is not None:
            return model.hparams.get("categories") or {}
        return None

    def _setup_predict(self) -> None:
        """The feature rows of ``predict_path``, in the columns of the model being run."""
        model = self.trainer.lightning_module if self.trainer is not None else None
        if model is None:
            raise ValueError("predict_path is read for a model: call trainer.predict(model, datamodule=...)")
        n_features, names = model.hparams.n_features, model.hparams.feature_names
        rows = read_feature_rows(
            self.hparams.predict_path, n_features, "input", names, model.hparams.get("categories")
        )
        self.predict_set = TensorDataset(torch.as_tensor(rows, dtype=torch.float32))

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
        """Raise InputError unless every part of the split holds rows of every class."""
        counts = np.bincount(labels, minlength=len(self.classes)).tolist()
        every = "both classes" if len(self.classes) == 2 else "every class"
        advice = (  # data.split=last takes the file's last rows as they are: stratifying does not apply
            f"reorder the file's rows so its last ones hold {every}, or use data.split=random"
            if self.hparams.split == "last"
            else "add rows of each class, or set data.stratify=true"
        )
        for name, part_labels in parts.items():
            missing = set(range(len(self.classes))) - set(part_labels.tolist())
            if missing:
                held = ", ".join(
                    f"{count} of class {value}" for count, value in zip(counts, self.classes, strict=True)
                )
                raise InputError(  # "(20 rows of class 0, 1 of class 1)"
                    f"{self.csv_path}: the {name} part of the split has no rows of class "
                    f"{self.classes[min(missing)]} ({held.replace(' of', ' rows of', 1)}); {advice}"
                )

    def state_dict(self) -> dict:
        """What Lightning saves of the data module in every checkpoint: torch's random state, which the batch
        order and dropout masks draw from, restored when a fit resumes (``ckpt_path``), so the resumed run
        draws what an uninterrupted run with the same seed would, and ends with its metrics; and what the
        model was fitted on, by content: the file's SHA-256 and each training or validation row's
        fingerprint (``row_fingerprints``), so that evaluating it later knows which rows are held out."""
        state = {"torch_rng_state": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda_rng_states"] = torch.cuda.get_rng_state_all()
        if self.trained_rows is not None:
            state |= {"data_sha256": self.data_sha256, "trained_rows": torch.from_numpy(self.trained_rows)}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        if "torch_rng_state" in state_dict:
            torch.set_rng_state(state_dict["torch_rng_state"])
        if "cuda_rng_states" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda_rng_states"])

    @property
    def class_names(self) -> list[str]:
        """How pictures name the classes (the label's values, in order): ``class_names`` if given
        (``benign (0)``); for the public copy ``no diabetes (0)`` and ``diabetes (1)``; else by the label
        column's header name (``Outcome = 0``, ``sex = female``), or ``class 0`` without a header."""
        if self.hparams.class_names:
            return [
                f"{name} ({value})"
                for value, name in zip(self.classes, self.hparams.class_names, strict=True)
            ]
        if self.hparams.path is None:
            return ["no diabetes (0)", "diabetes (1)"]
        if self.label_name:
            return [f"{self.label_name} = {value}" for value in self.classes]
        return [f"class {value}" for value in self.classes]

    def train_dataloader(self) -> DataLoader:
        """Minibatches of ``batch_size`` training rows, reshuffled every epoch: the batches
        ``DataLoader(train_set, batch_size, shuffle=True)`` makes, each an index tensor (``IndexBatches``)."""
        return self.loader(
            self.train_set, batch_sampler=IndexBatches(self.row_order(), self.hparams.batch_size, False)
        )

    def row_order(self) -> RandomSampler | SequentialSampler:
        """The training rows' order: shuffled every epoch, or in file order under
        ``Trainer(overfit_batches=N)``, which trains on the same first N minibatches every epoch (Lightning
        turns shuffling off only through ``DataLoader.sampler``, which a batch sampler leaves unused)."""
        overfit = self.trainer is not None and self.trainer.overfit_batches > 0
        return SequentialSampler(self.train_set) if overfit else RandomSampler(self.train_set)

    def val_dataloader(self) -> DataLoader:
        """The validation rows in order, ``eval_batch_size`` at a time."""
        return self.loader(self.val_set, batch_size=self.hparams.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        """The held-out rows in order, ``eval_batch_size`` at a time."""
        return self.loader(self.test_set, batch_size=self.hparams.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        """The rows of ``predict_path`` or, without one, the held-out rows, in order."""
        rows = self.predict_set if self.hparams.predict_path is not None else self.test_set
        return self.loader(rows, batch_size=self.hparams.eval_batch_size)

    def loader(self, dataset, **settings) -> DataLoader:
        """A ``DataLoader`` with this module's ``num_workers`` and ``pin_memory``. The order of the rows is
        drawn in this process (workers only fetch rows), so a seed gives the same batches again for the
        same ``num_workers``; workers are kept between epochs rather than started again for each."""
        workers = self.hparams.num_workers
        in_memory = isinstance(dataset, TensorDataset)  # a minibatch by one index operation
        return DataLoader(
            Minibatches(dataset) if in_memory else dataset,
            num_workers=workers,
            pin_memory=self.hparams.pin_memory,
            persistent_workers=workers > 0,
            collate_fn=minibatch if in_memory else None,
            **settings,
        )


def missing_columns(features: np.ndarray) -> list[int]:
    """The feature columns that get a was-missing input: those with a missing value (NaN) in any row of
    the table, so that every part fitted on it (a split's training rows, each cv member's) has the same
    inputs."""
    return np.flatnonzero(np.isnan(features).any(axis=0)).tolist()


def input_width(n_features: int, indicators: Sequence[int], categories: dict | None) -> int:
    """How many inputs a network reads: the features (a categorical one as one input a category, plus
    one for any other value), then a "was missing" input for each of ``indicators``."""
    return n_features + len(indicators) + sum(len(names) for names in (categories or {}).values())


def fitted_inputs(
    rows: np.ndarray, indicators: Sequence[int], standardize: bool = True, categories: dict | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """What the model's input steps need, fitted on training ``rows`` (``(n, k)``, NaN where missing; a
    categorical column's cells the codes of its ``categories``): each column's median (scikit-learn's
    ``SimpleImputer``; 0 for a column with no value), the means and scales (``StandardScaler``; 0 and 1
    without ``standardize``) of the model's inputs on these rows: filled, a 0/1 "was missing" column for
    each of ``indicators``, categories one-hot; and which categories the rows hold (``OneHotEncoder``;
    None without categories)."""
    imputer = SimpleImputer(strategy="median", keep_empty_features=True).fit(rows)
    sizes = {int(column): len(names) for column, names in (categories or {}).items()}
    known = known_categories(rows, sizes)
    width = input_width(rows.shape[1], indicators, categories)
    if not standardize:
        return imputer.statistics_, np.zeros(width), np.ones(width), known
    filled = imputer.transform(rows) if np.isnan(rows).any() else rows
    inputs = np.column_stack([filled, np.isnan(rows[:, list(indicators)])]) if len(indicators) else filled
    if sizes:  # as the model's OneHotCategories gives them: the other inputs, each category, any other value
        columns = sorted(sizes)
        masks = np.split(known, np.cumsum([sizes[column] for column in columns])[:-1])
        hot = [
            (rows[:, [column]] == np.arange(sizes[column])) * mask
            for column, mask in zip(columns, masks, strict=True)
        ]
        other = [~np.isnan(rows[:, column]) & ~part.any(1) for column, part in zip(columns, hot, strict=True)]
        inputs = np.column_stack([np.delete(inputs, columns, axis=1), *hot, *other])
    scaler = StandardScaler().fit(inputs)
    return imputer.statistics_, scaler.mean_, scaler.scale_, known


def known_categories(rows: np.ndarray, sizes: dict[int, int]) -> np.ndarray | None:
    """1 for each category (of each categorical column, ``{column: how many categories}``) that
    ``rows`` hold, else 0, one after the other: what scikit-learn's ``OneHotEncoder`` finds fitted on
    them (missing cells, NaN, are no category here); None without categorical columns."""
    if not sizes:
        return None
    columns = sorted(sizes)
    encoder = OneHotEncoder(handle_unknown="ignore").fit(rows[:, columns])
    known = []
    for column, found in zip(columns, encoder.categories_, strict=True):
        mask, codes = np.zeros(sizes[column]), found[~np.isnan(found)].astype(np.int64)
        mask[codes[(codes >= 0) & (codes < sizes[column])]] = 1
        known.append(mask)
    return np.concatenate(known)


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


class Rows(TensorDataset):
    """Feature and label rows whose ``__getitems__`` (the DataLoader's call for a whole minibatch) indexes
    each tensor once, instead of once per row as ``TensorDataset`` does; it returns the same samples."""

    def __getitems__(self, indices) -> list[tuple[torch.Tensor, ...]]:
        return list(zip(*(tensor[indices] for tensor in self.tensors), strict=True))


class Minibatches(Dataset):
    """In-memory ``rows`` (a ``TensorDataset``) as this module's loaders serve them: ``__getitems__``, the
    DataLoader's call for a whole minibatch, indexes each tensor once and returns the minibatch itself,
    ``(features, labels)``, which ``collate_fn=minibatch`` passes on: what ``default_collate`` makes of
    the rows one by one, without a tuple per row and their stacking. An index may be a ``(replicas,
    rows)`` tensor (``ReplicaBatchSampler``): the minibatch is then ``(replicas, rows, ...)``. The data
    module's ``train_set`` and the others stay ``TensorDataset``s, which a ``DataLoader`` of one's own
    collates as usual.

    Measured on 200,000 rows, batch 256 (``benchmarks/big_table.py``): fetching a minibatch row by row
    and collating it took more than half of an epoch."""

    def __init__(self, rows: TensorDataset) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index) -> tuple[torch.Tensor, ...]:
        return self.rows[index]

    def __getitems__(self, indices) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices)
        return tuple(tensor[index] for tensor in self.rows.tensors)


class IndexBatches(BatchSampler):
    """``BatchSampler(sampler, batch_size, drop_last)`` whose minibatches are index tensors, cut from the
    epoch's order in one piece: the same indices in the same minibatches, without a Python list of ints
    a minibatch (which ``Minibatches`` would turn into a tensor again). Under DDP, Lightning injects its
    ``DistributedSampler`` as ``sampler``."""

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.as_tensor(list(self.sampler), dtype=torch.long)
        batches = order.split(self.batch_size)
        if self.drop_last and len(order) % self.batch_size:
            batches = batches[:-1]
        yield from batches


def minibatch(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The ``collate_fn`` of ``Minibatches``, whose ``__getitems__`` returns a whole minibatch."""
    return batch


def row_fingerprints(features: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """A 64-bit fingerprint of each row's values as the model reads them (float32 features and label):
    the same wherever the row stands in a file and however its numbers are written (``6`` or ``6.0``).
    Vectorised (one pass per column, a splitmix64-style mix): a million rows take well under a second,
    where hashlib row by row takes seconds. For telling rows apart, not for security."""
    table = torch.column_stack([features, labels]).numpy().astype(np.float32) + np.float32(0)  # -0 is 0
    words = np.ascontiguousarray(table).view(np.uint32).astype(np.uint64)
    hashed = np.full(len(table), 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in words.T:
            hashed = (hashed ^ column) * np.uint64(0xBF58476D1CE4E5B9)
            hashed ^= hashed >> np.uint64(31)
            hashed *= np.uint64(0x94D049BB133111EB)
    return hashed.view(np.int64)


def _tensor_dataset(features: np.ndarray, labels: np.ndarray) -> Rows:
    return Rows(torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.float32))
