"""A resume checkpoint is data too: what it carries into a run is checked or replaced before the
Trainer sees it (issue 18 rows 2, 3, 4, 9 and 13). Each crafted checkpoint is a copy of a real one."""

import json
import zipfile
from itertools import pairwise

import pytest
import torch
from conftest import compose_config, peak_memory_of

from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.train import train

SHORT = ["trainer.limit_train_batches=5", "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    """The last.ckpt of a one-epoch run, and the dict torch.save wrote."""
    run_dir = tmp_path_factory.mktemp("run")
    train(compose_config(["trainer.max_epochs=1", *SHORT], run_dir))
    path = run_dir / "checkpoints" / "last.ckpt"
    return path, torch.load(path, weights_only=True)


def resume(checkpoint: dict, tmp_path, *overrides: str) -> dict:
    """Save ``checkpoint`` as crafted.ckpt, resume from it for one more epoch; the new last.ckpt."""
    tmp_path.mkdir(exist_ok=True)
    crafted = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, crafted)
    cfg = compose_config(
        ["trainer.max_epochs=2", *SHORT, f"ckpt_path={crafted}", *overrides], tmp_path / "run"
    )
    train(cfg)
    return torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)


def test_the_optimizer_hyperparameters_come_from_the_config_not_the_checkpoint(genuine, tmp_path):
    checkpoint = torch.load(genuine[0], weights_only=True)
    checkpoint["optimizer_states"][0]["param_groups"][0] |= {"lr": 0.3, "momentum": 0.0, "weight_decay": 0.05}
    group = resume(checkpoint, tmp_path)["optimizer_states"][0]["param_groups"][0]
    assert (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]) == (
        0.01,
        0.9,
        0.0,
        True,
    )


def test_the_optimizer_buffers_are_restored(genuine, tmp_path):
    """What resuming is for: the momentum buffers carry over (a resumed run equals an uninterrupted one,
    tests/test_train.py); here a buffer scaled by 1000 must change the weights the next epoch reaches."""
    checkpoint = torch.load(genuine[0], weights_only=True)
    plain = resume(checkpoint, tmp_path / "plain")["state_dict"]
    for state in checkpoint["optimizer_states"][0]["state"].values():
        state["momentum_buffer"] *= 1000
    scaled = resume(checkpoint, tmp_path / "scaled")["state_dict"]
    assert not torch.equal(plain["network.0.weight"], scaled["network.0.weight"])


def tampered(part: str):
    """A change to one part of a checkpoint that Lightning or torch would fail on with a traceback."""

    def change(checkpoint):
        if part == "loop counter":
            checkpoint["loops"]["fit_loop"]["epoch_progress"]["total"]["completed"] = "1"
        elif part == "loop keys":
            checkpoint["loops"]["fit_loop"]["epoch_loop.mystery"] = {}
        elif part == "random state":
            checkpoint["PimaDataModule"]["torch_rng_state"] = torch.zeros(10, dtype=torch.uint8)
        elif part == "buffer shape":
            checkpoint["optimizer_states"][0]["state"][0]["momentum_buffer"] = torch.zeros(3)
        elif part == "buffer values":
            checkpoint["optimizer_states"][0]["state"][1]["momentum_buffer"][0] = float("nan")
        elif part == "version":
            checkpoint["pytorch-lightning_version"] = "banana"
        elif part == "newer version":
            checkpoint["pytorch-lightning_version"] = "99.0.0"
        elif part == "unmigratable layout":  # 1.5's migrations look for loops this layout does not have
            checkpoint["pytorch-lightning_version"] = "1.5.0"
        elif part == "callback state":
            for key, state in checkpoint["callbacks"].items():
                if key.startswith("ModelCheckpoint"):
                    state["best_k_models"] = ["not", "a", "mapping"]
        return checkpoint

    return change


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ("loop counter", "loops.fit_loop.epoch_progress.total.completed: expected a count, found '1'"),
        ("loop keys", "loops.fit_loop: expected the keys"),
        ("random state", "torch_rng_state: expected 5056 bytes"),
        ("buffer shape", "parameter 0's momentum_buffer has shape (3,), the parameter (12, 8)"),
        ("buffer values", "parameter 1's momentum_buffer holds non-finite numbers"),
        ("version", "pytorch-lightning_version: expected a version"),
        ("newer version", "written by Lightning 99.0.0, newer than this"),
        ("unmigratable layout", "its Lightning 1.5.0 layout could not be migrated to"),
        ("callback state", "best_k_models is not a mapping"),
    ],
)
def test_a_tampered_training_state_is_refused_in_one_line(genuine, tmp_path, part, expected):
    with pytest.raises(InputError, match="cannot resume from it") as refused:
        resume(tampered(part)(torch.load(genuine[0], weights_only=True)), tmp_path)
    assert expected in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()  # refused before training


def test_a_checkpoint_of_an_older_lightning_is_migrated_as_lightning_migrates_it(genuine, tmp_path):
    """Labelled 1.9.0, it goes through Lightning's 2.0.0 migrations (as Lightning's own loader would put
    it) before its loops are compared with this Lightning's, and the resumed run reaches the same weights
    as from the genuine file: the migrations leave a layout they need not change as it was. (The
    refusal of one they cannot migrate is the "unmigratable layout" case above.)"""
    checkpoint = torch.load(genuine[0], weights_only=True)
    from_genuine = resume(checkpoint, tmp_path / "genuine")["state_dict"]
    checkpoint["pytorch-lightning_version"] = "1.9.0"
    from_older = resume(checkpoint, tmp_path / "older")["state_dict"]
    assert all(torch.equal(from_genuine[name], from_older[name]) for name in from_genuine)


def peak_memory_of_loading(path) -> tuple[str, int]:
    """``load_checkpoint(path)``'s error and how far (MiB) loading it raised the peak resident memory."""
    return peak_memory_of("pima_lightning.inputs.checkpoint:load_checkpoint", path)


def test_size_bombs_are_refused_before_anything_is_materialised(genuine, tmp_path):
    """A 20000 x 20000 network of expanded (stride-0) tensors, and a zip entry that inflates to 200 MB:
    refused, raising the process's peak memory by almost nothing (measured < 10 MiB, limit 100; loading
    the expanded network would take 1.5 GiB, the inflated entry 200 MiB)."""
    checkpoint = torch.load(genuine[0], weights_only=True)
    checkpoint["hyper_parameters"]["hidden"] = [20_000, 20_000]
    sizes = [8, 20_000, 20_000, 1]
    state = {
        "preprocess.mean": torch.zeros(8),
        "preprocess.scale": torch.ones(8),
    }
    for k, (a, b) in enumerate(pairwise(sizes)):
        state[f"network.{3 * k}.weight"] = torch.zeros(1).expand(b, a)
        state[f"network.{3 * k}.bias"] = torch.zeros(1).expand(b)
    checkpoint["state_dict"] = state
    expanded = tmp_path / "expanded.ckpt"
    torch.save(checkpoint, expanded)
    assert expanded.stat().st_size < 100_000
    message, peak = peak_memory_of_loading(expanded)
    assert "(an expanded tensor)" in message and peak < 100

    inflating = tmp_path / "inflating.ckpt"
    with zipfile.ZipFile(genuine[0]) as source, zipfile.ZipFile(inflating, "w", zipfile.ZIP_DEFLATED) as out:
        for entry in source.infolist():
            out.writestr(entry.filename, source.read(entry))
        with out.open("archive/data/padding", "w", force_zip64=True) as padding:
            for _ in range(200):
                padding.write(bytes(1 << 20))
    assert inflating.stat().st_size < 1_000_000
    message, peak = peak_memory_of_loading(inflating)
    assert "is compressed" in message and peak < 100


def test_a_network_train_accepts_every_command_loads_and_the_limits_are_the_same(train_cli, cli, tmp_path):
    """No hidden layer (logistic regression) trains and loads; sizes past the shared limits are
    refused by train and by the loader with the same words."""
    trained = train_cli("model.hidden=[]", "trainer.max_epochs=1", *SHORT, run_dir=tmp_path / "lr")
    assert trained.returncode == 0, trained.stderr
    checkpoint = tmp_path / "lr" / "checkpoints" / "last.ckpt"
    model, _ = load_checkpoint(checkpoint)
    assert sum(p.numel() for p in model.parameters()) == 9
    assert cli("summary", f"ckpt_path={checkpoint}").returncode == 0
    deep = "model.hidden=[" + ",".join(["2"] * 101) + "]"
    refused = train_cli(deep, run_dir=tmp_path / "deep")
    assert (
        refused.stderr.strip().splitlines()[-1] == "error: model.hidden: 101 layers; at most 100 are accepted"
    )
    saved = torch.load(checkpoint, weights_only=True)
    saved["hyper_parameters"]["hidden"] = [2] * 101
    torch.save(saved, tmp_path / "deep.ckpt")
    with pytest.raises(InputError, match="hidden: 101 layers; at most 100 are accepted"):
        load_checkpoint(tmp_path / "deep.ckpt")


def test_a_resumed_early_stopping_run_tests_the_best_epoch_of_the_whole_run(tmp_path):
    """Interrupted after epoch 8 of 12 and resumed in a new folder: the best epoch so far (its score and
    best.ckpt, copied from the first folder) carries over, so the test scores the uninterrupted run's
    best epoch."""
    settings = [
        "callbacks=early_stopping",
        "data.val_size=0.2",
        "optimizer=adam",
        "optimizer.lr=0.01",
        "trainer.enable_progress_bar=false",
    ]
    whole = tmp_path / "whole"
    train(compose_config([*settings, "trainer.max_epochs=12"], whole))
    part = tmp_path / "part"
    train(compose_config([*settings, "trainer.max_epochs=8"], part))
    resumed = tmp_path / "resumed"
    train(
        compose_config(
            [*settings, "trainer.max_epochs=12", f"ckpt_path={part / 'checkpoints' / 'last.ckpt'}"], resumed
        )
    )
    records = [json.loads((run / "metrics.json").read_text()) for run in (whole, resumed)]
    best_epochs = [
        torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] for run in (whole, resumed)
    ]
    assert best_epochs[0] == best_epochs[1] < 8  # the best epoch was before the interruption
    assert records[1]["tested_checkpoint"] == str(resumed / "checkpoints" / "best.ckpt")
    assert records[0]["test/acc"] == records[1]["test/acc"]
    assert records[0]["test/loss"] == pytest.approx(records[1]["test/loss"], abs=1e-6)


@pytest.mark.parametrize(
    "scheduler",
    [
        ["scheduler=step", "scheduler.step_size=2", "scheduler.gamma=0.5"],
        ["scheduler=plateau", "scheduler.patience=0", "scheduler.threshold=1.0", "data.val_size=0.2"],
    ],
    ids=["step", "plateau"],
)
def test_a_resumed_scheduler_goes_on_where_the_interrupted_one_stopped(tmp_path, scheduler):
    """Stopped after epoch 3 of 6 and resumed: the learning rate and weights are those of the uninterrupted
    run, so the scheduler's progress (its epoch, the rate it reached, the plateau's counters) carried over."""
    whole = tmp_path / "whole"
    train(compose_config([*SHORT, *scheduler, "trainer.max_epochs=6", "test=false"], whole))
    half = tmp_path / "half"
    train(compose_config([*SHORT, *scheduler, "trainer.max_epochs=3", "test=false"], half))
    resumed = tmp_path / "resumed"
    last = half / "checkpoints" / "last.ckpt"
    train(
        compose_config(
            [*SHORT, *scheduler, "trainer.max_epochs=6", "test=false", f"ckpt_path={last}"], resumed
        )
    )
    ends = [torch.load(run / "checkpoints" / "last.ckpt", weights_only=True) for run in (whole, resumed)]
    rates = [end["optimizer_states"][0]["param_groups"][0]["lr"] for end in ends]
    assert rates[0] == rates[1] < 0.01  # the scheduler lowered the rate, and by as much after the resume
    for name, weights in ends[0]["state_dict"].items():
        assert torch.equal(weights, ends[1]["state_dict"][name]), name


def test_a_resume_reads_no_path_from_a_checkpoint_callbacks_state(tmp_path):
    """The best epoch is found by the callback's own file name beside ckpt_path, whatever paths the
    state names: here they name a decoy checkpoint in another folder, which is neither copied nor tested."""
    settings = ["callbacks=early_stopping", "data.val_size=0.2", "optimizer=adam", "optimizer.lr=0.01",
                "trainer.enable_progress_bar=false"]  # fmt: skip
    part = tmp_path / "part"
    train(compose_config([*settings, "trainer.max_epochs=8"], part))
    decoy = tmp_path / "elsewhere" / "best.ckpt"
    decoy.parent.mkdir()
    decoy.write_bytes((part / "checkpoints" / "last.ckpt").read_bytes())  # epoch 8, not the best
    checkpoint = torch.load(part / "checkpoints" / "last.ckpt", weights_only=True)
    for key, state in checkpoint["callbacks"].items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_path"):
            score = state["best_model_score"]
            state |= {"best_model_path": str(decoy), "kth_best_model_path": str(decoy)}
            state["best_k_models"] = {str(decoy): score}
    crafted = part / "checkpoints" / "crafted.ckpt"
    torch.save(checkpoint, crafted)
    resumed = tmp_path / "resumed"
    train(compose_config([*settings, "trainer.max_epochs=12", f"ckpt_path={crafted}"], resumed))
    best = [
        torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] for run in (part, resumed)
    ]
    assert best[0] == best[1] < 8  # the part run's best epoch, found by name, not the decoy's epoch
    record = json.loads((resumed / "metrics.json").read_text())
    assert record["tested_checkpoint"] == str(resumed / "checkpoints" / "best.ckpt")
