import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch

from pima_lightning.data import DATASET_FILENAME, DATASET_SHA256, PimaDataModule
from pima_lightning.ensembles.replicas import EnsembleDataModule, ReplicaBatchSampler
from pima_lightning.errors import InputError
from pima_lightning.settings.config_checks import check_data_settings


def setup_module_for(path, replicas: int = 1, **kwargs) -> PimaDataModule:
    datamodule = (
        EnsembleDataModule(replicas, path=str(path), **kwargs)
        if replicas > 1
        else PimaDataModule(path=str(path), **kwargs)
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def tensors(dataset):
    features, labels = dataset.tensors
    return features.numpy(), labels.numpy()


def test_held_out_rows_are_the_notebooks_x_test_in_order(pima_csv, notebook_split):
    x_train, x_test, y_train, y_test = notebook_split

    datamodule = setup_module_for(pima_csv)
    for got, want in zip(
        (*tensors(datamodule.test_set), *tensors(datamodule.train_set)),
        (x_test, y_test, x_train, y_train),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want.astype(np.float32))
    assert (len(datamodule.train_set), len(datamodule.test_set)) == (514, 254)
    # without data.val_size the held-out rows are also the validation data (validation_data=...)
    np.testing.assert_array_equal(tensors(datamodule.val_set)[0], x_test.astype(np.float32))


def test_split_seed_and_stratify_change_the_split(pima_csv):
    default = tensors(setup_module_for(pima_csv).test_set)[0]
    other_seed = tensors(setup_module_for(pima_csv, split_seed=8).test_set)[0]
    assert not np.array_equal(default, other_seed)
    stratified = setup_module_for(pima_csv, stratify=True)
    positives = tensors(stratified.test_set)[1].mean()
    assert positives == pytest.approx(268 / 768, abs=0.01)


def test_val_size_carves_validation_rows_from_the_training_part(pima_csv):
    datamodule = setup_module_for(pima_csv, val_size=0.2)
    train, val, test = (
        tensors(part)[0] for part in (datamodule.train_set, datamodule.val_set, datamodule.test_set)
    )
    assert (len(train), len(val), len(test)) == (411, 103, 254)
    rows = {tuple(row) for part in (train, val, test) for row in part}
    assert len(rows) == 768  # disjoint, nothing lost (the CSV has no duplicate rows)
    np.testing.assert_array_equal(test, tensors(setup_module_for(pima_csv).test_set)[0])


def test_feature_statistics_come_from_the_training_rows_only(pima_csv):
    datamodule = setup_module_for(pima_csv)
    train_features = tensors(datamodule.train_set)[0].astype(np.float64)
    np.testing.assert_allclose(datamodule.feature_mean, train_features.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(datamodule.feature_scale, train_features.std(axis=0), rtol=1e-6)
    raw = setup_module_for(pima_csv, standardize=False)
    assert raw.feature_mean.tolist() == [0.0] * 8 and raw.feature_scale.tolist() == [1.0] * 8


def test_training_batches_are_reshuffled_every_epoch_from_the_seed(pima_csv):
    datamodule = setup_module_for(pima_csv)

    def one_epoch():
        batches = list(datamodule.train_dataloader())
        assert [labels.shape for _, labels in batches] == [(10,)] * 51 + [(4,)]
        assert batches[0][0].shape == (10, 8)
        return torch.cat([features for features, _ in batches])

    torch.manual_seed(0)
    first, second = one_epoch(), one_epoch()
    torch.manual_seed(0)
    again = one_epoch()
    assert not torch.equal(first, second)
    assert torch.equal(first, again)
    assert torch.equal(first.sort(dim=0).values, datamodule.train_set.tensors[0].sort(dim=0).values)


def test_batches_are_those_of_a_shuffling_dataloader(pima_csv):
    """The loader serves exactly what ``DataLoader(shuffle=True)`` serves from a ``TensorDataset``;
    validation batches too."""
    datamodule = setup_module_for(pima_csv)
    torch.manual_seed(3)
    ours = list(datamodule.train_dataloader())
    torch.manual_seed(3)
    plain_rows = torch.utils.data.TensorDataset(*datamodule.train_set.tensors)  # fetched row by row
    reference = list(torch.utils.data.DataLoader(plain_rows, batch_size=10, shuffle=True))
    assert len(ours) == len(reference) == 52
    for (features, labels), (their_features, their_labels) in zip(ours, reference, strict=True):
        assert torch.equal(features, their_features) and torch.equal(labels, their_labels)
    plain_val = torch.utils.data.TensorDataset(*datamodule.val_set.tensors)
    for ours_val, theirs in zip(
        datamodule.val_dataloader(),
        torch.utils.data.DataLoader(plain_val, batch_size=datamodule.hparams.eval_batch_size),
        strict=True,
    ):
        assert all(torch.equal(mine, their) for mine, their in zip(ours_val, theirs, strict=True))


def epoch_orders(loader, features) -> torch.Tensor:
    """The training-row numbers an epoch of ``loader`` serves, per replica: ``(replicas, rows)``."""
    served = torch.cat([batch_features for batch_features, _ in loader], dim=1)
    return (served[..., None, :] == features).all(-1).float().argmax(-1)


def test_each_replica_sees_every_row_once_per_epoch_in_its_own_order(pima_csv):
    datamodule = setup_module_for(pima_csv, replicas=4)
    torch.manual_seed(0)
    batches = list(datamodule.train_dataloader())
    features, labels = datamodule.train_set.tensors
    assert batches[0][0].shape == (4, 10, 8) and batches[0][1].shape == (4, 10)
    orders = epoch_orders(batches, features)
    served_labels = torch.cat([batch_labels for _, batch_labels in batches], dim=1)
    for replica in range(4):  # rows and labels stay paired, and every row comes once
        assert sorted(orders[replica].tolist()) == list(range(len(labels)))
        assert torch.equal(served_labels[replica], labels[orders[replica]])
    assert len({tuple(order.tolist()) for order in orders}) == 4  # 4 orders
    torch.manual_seed(0)
    assert torch.equal(epoch_orders(datamodule.train_dataloader(), features), orders)  # from the seed


def test_under_ddp_every_replica_sees_every_row_once_an_epoch_across_the_processes(pima_csv):
    """Lightning swaps a ``DistributedSampler`` into the batch sampler; the replicas' orders are shared."""
    datamodule = setup_module_for(pima_csv, replicas=3)
    features = datamodule.train_set.tensors[0]
    shards = []
    for rank in (0, 1):
        torch.manual_seed(5)  # every process has the same seed
        sampler = torch.utils.data.DistributedSampler(datamodule.train_set, num_replicas=2, rank=rank, seed=5)
        batches = ReplicaBatchSampler(sampler, 10, False, replicas=3, n_rows=len(features))
        loader = torch.utils.data.DataLoader(datamodule.train_set, batch_sampler=batches)
        assert len(loader) == 26  # half the minibatches each
        shards.append(epoch_orders(loader, features))
    for replica in range(3):
        seen = sorted(shards[0][replica].tolist() + shards[1][replica].tolist())
        assert seen == list(range(len(features)))  # 514 rows: 257 each, none twice


def test_a_class_too_rare_to_split_is_reported(tmp_path):
    rows = ["1,85,66,29,0,26.6,0.351,31,0"] * 20 + ["6,148,72,35,0,33.6,0.627,50,1"]
    path = tmp_path / "rare.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"has no rows of class 1 \(20 rows of class 0, 1 of class 1\); add"):
        setup_module_for(path)
    path.write_text("\n".join(rows[:5] + rows[-1:]) + "\n")
    with pytest.raises(InputError, match="part of the split has no rows of class 1"):
        setup_module_for(path)


def test_a_one_class_part_under_split_last_does_not_suggest_stratifying(tmp_path):
    """data.split=last takes the last rows as they are, so data.stratify (which it ignores) cannot help."""
    path = tmp_path / "sorted.csv"
    path.write_text("6,148,72,35,0,33.6,0.627,50,1\n" * 10 + "1,85,66,29,0,26.6,0.351,31,0\n" * 20)
    with pytest.raises(InputError) as raised:
        setup_module_for(path, split="last")
    assert "has no rows of class 1" in str(raised.value) and "stratify" not in str(raised.value)
    assert str(raised.value).endswith("reorder the file's rows so its last ones hold both classes, or use "
                                      "data.split=random")  # fmt: skip


@pytest.mark.parametrize("split", ["random", "none"])
def test_a_file_of_one_class_does_not_suggest_stratifying(tmp_path, split):
    path = tmp_path / "one-class.csv"
    path.write_text("1,85,66,29,0,26.6,0.351,31,0\n" * 20)
    with pytest.raises(InputError) as raised:
        setup_module_for(path, split=split)
    assert str(raised.value).endswith("every row has label 0; a classifier needs rows of both classes")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"test_size": 0}, r"data.test_size=0: expected a fraction in \(0, 1\)"),
        ({"test_size": 1.5}, r"data.test_size=1.5"),
        ({"val_size": -0.1}, r"data.val_size=-0.1: expected a fraction in \[0, 1\)"),
        ({"batch_size": 0}, r"data.batch_size=0: expected a whole number >= 1"),
        ({"eval_batch_size": 0}, r"data.eval_batch_size=0: expected a whole number >= 1"),
    ],
)
def test_bad_settings_are_rejected_where_the_config_is_read(make_config, kwargs, expected):
    overrides = [f"data.{key}={value}" for key, value in kwargs.items()]
    with pytest.raises(InputError, match=expected):
        check_data_settings(make_config(*overrides).data)


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving files from a folder; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_download_is_verified_and_lands_once(http_server, pima_csv, tmp_path):
    folder, base_url = http_server
    (folder / "pima.csv").write_bytes(pima_csv.read_bytes())
    data_dir = tmp_path / "cache"
    datamodule = PimaDataModule(data_dir=str(data_dir), url=f"{base_url}/pima.csv")
    datamodule.prepare_data()
    target = data_dir / DATASET_FILENAME
    assert hashlib.sha256(target.read_bytes()).hexdigest() == DATASET_SHA256
    assert sorted(p.name for p in data_dir.iterdir()) == [DATASET_FILENAME]
    # a second call finds the verified file: the server no longer has it
    (folder / "pima.csv").unlink()
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert len(datamodule.test_set) == 254


@pytest.mark.parametrize("damage", ["truncated", "modified"])
def test_a_bad_download_leaves_nothing_behind(http_server, pima_csv, tmp_path, damage):
    folder, base_url = http_server
    content = pima_csv.read_bytes()
    content = content[: len(content) // 2] if damage == "truncated" else content.replace(b"148", b"149", 1)
    (folder / "pima.csv").write_bytes(content)
    data_dir = tmp_path / "cache"
    with pytest.raises(InputError, match=r"could not download .*invalid hash value.*data\.path="):
        PimaDataModule(data_dir=str(data_dir), url=f"{base_url}/pima.csv").prepare_data()
    assert list(data_dir.iterdir()) == []


def test_unreachable_url_names_the_url_and_the_way_out(http_server, tmp_path):
    _, base_url = http_server
    with pytest.raises(InputError) as caught:
        PimaDataModule(data_dir=str(tmp_path), url=f"{base_url}/missing.csv").prepare_data()
    message = str(caught.value)
    assert f"{base_url}/missing.csv" in message
    assert str(tmp_path / DATASET_FILENAME) in message
    assert "data.path=" in message


def test_a_corrupted_cached_copy_is_refused(tmp_path):
    (tmp_path / DATASET_FILENAME).write_text("6,148,72,35,0,33.6,0.627,50,1\n")
    with pytest.raises(InputError, match=r"SHA-256 is .* expected 6bfe5d0f.*delete the file"):
        PimaDataModule(data_dir=str(tmp_path)).prepare_data()
