"""A checkpoint is data: loading one for evaluate, predict, export or summary builds nothing it names,
runs nothing, and opens no file or URL it names. Each crafted checkpoint fails with one error line, and
sentinel files show that nothing ran."""

import sys

import pytest
import torch

from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.settings.config_checks import check_buildable_config
from pima_lightning.train import train


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    """A real checkpoint of a short run, read back as the dict torch.save wrote."""
    from hydra import compose, initialize_config_module

    run_dir = tmp_path_factory.mktemp("run")
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[f"output_dir={run_dir}", "trainer.max_epochs=1", "trainer.limit_train_batches=5",
                       "trainer.enable_progress_bar=false"],
        )  # fmt: skip
    train(cfg)
    path = run_dir / "checkpoints" / "last.ckpt"
    return path, torch.load(path, weights_only=True)


@pytest.fixture
def craft(genuine, tmp_path):
    """``craft(section, key, value, **more)``: a copy of the genuine checkpoint with settings replaced."""

    def make(section: str, key: str, value, **more) -> str:
        checkpoint = torch.load(genuine[0], weights_only=True)
        checkpoint[section] |= {key: value, **more}
        path = tmp_path / f"crafted-{key}.ckpt"
        torch.save(checkpoint, path)
        return str(path)

    return make


def payloads(sentinel, victim) -> dict[str, dict]:
    """Optimizer configs that would run a command, delete, truncate or fetch-and-unpickle if built."""
    shell = {"_target_": "asyncio.create_subprocess_shell", "_args_": [f"touch {sentinel}"]}
    return {
        "shell": {"_target_": "asyncio.run", "_args_": [shell]},
        "unlink": {"_target_": "pathlib.Path.unlink", "_args_": [str(victim)]},
        "truncate": {"_target_": "builtins.open", "_args_": [str(victim), "w"]},
        "fetch": {"_target_": "torch.hub.load_state_dict_from_url", "url": "http://127.0.0.1:9/x.pt"},
        "through-a-module": {"_target_": "torch.optim.sgd.torch.load", "_args_": [str(victim)]},
        "nested": {
            "_target_": "torch.optim.SGD",
            "_partial_": True,
            "lr": {"_target_": "pathlib.Path.touch", "_args_": [str(sentinel)]},
        },
        "nested-in-a-list": {
            "_target_": "torch.optim.Adam",
            "_partial_": True,
            "betas": [0.9, {"_target_": "pathlib.Path.touch", "_args_": [str(sentinel)]}],
        },
    }


@pytest.mark.parametrize("payload", list(payloads("s", "v")))
@pytest.mark.parametrize("group", ["optimizer", "scheduler"])
def test_a_checkpoint_whose_configs_would_build_anything_else_is_refused(craft, tmp_path, payload, group):
    sentinel, victim = tmp_path / "sentinel", tmp_path / "victim.txt"
    victim.write_text("keep me")
    crafted = craft("hyper_parameters", group, payloads(sentinel, victim)[payload])
    with pytest.raises(InputError, match=rf"not a usable pima_lightning checkpoint \({group}"):
        load_checkpoint(crafted)
    assert not sentinel.exists() and victim.read_text() == "keep me"


@pytest.mark.parametrize("command", ["evaluate", "predict", "export", "summary"])
def test_every_command_refuses_a_checkpoint_that_would_run_a_shell_command(craft, cli, tmp_path, command):
    sentinel = tmp_path / "sentinel"
    crafted = craft("hyper_parameters", "optimizer", payloads(sentinel, tmp_path / "v")["shell"])
    extra = {"predict": ["input=rows.csv"], "export": ["format=pt2", f"output={tmp_path / 'm.pt2'}"]}
    (tmp_path / "rows.csv").write_text("6,148,72,35,0,33.6,0.627,50\n")
    result = cli(command, f"ckpt_path={crafted}", *extra.get(command, []))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {crafted}: not a usable pima_lightning checkpoint (optimizer: _target_")
    assert "Traceback" not in result.stderr and not sentinel.exists()


def test_evaluate_never_opens_the_file_a_checkpoint_names(craft, cli, tmp_path):
    crafted = craft("datamodule_hyper_parameters", "path", "/etc/passwd")
    result = cli("evaluate", f"ckpt_path={crafted}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {crafted} was trained on '/etc/passwd', not the public copy; to score its held-out rows "
        "pass data.path=<that CSV>; to score every row of a CSV, data.path=<CSV> data.rows=all"
    )


def test_evaluate_never_downloads_from_where_a_checkpoint_says(craft, tmp_path, pima_csv):
    from pima_lightning.evaluate import evaluate

    planted = tmp_path / "planted"
    crafted = craft(
        "datamodule_hyper_parameters",
        "data_dir",
        str(planted),
        url="http://127.0.0.1:9/x.csv",
        sha256="0" * 64,
    )
    (tmp_path / "out").mkdir()
    report = evaluate(crafted, tmp_path / "out", data_dir=str(pima_csv.parent))
    assert report["n_rows"] == 254 and report["data"] == str(pima_csv.resolve())  # the user's public copy
    assert not planted.exists()


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("hyper_parameters", "hidden", [100_000, 100_000], "at most 100,000,000"),  # no 40 GB
        ("hyper_parameters", "hidden", [12, 7], "hyper_parameters describe"),
        ("hyper_parameters", "replicas", 0, "replicas=0: expected a whole number"),
        ("hyper_parameters", "dropout", "0.2; rm -rf /", "dropout=0.2; rm -rf /: expected a number"),
        ("hyper_parameters", "hidden", "12,6", "hidden=12,6: expected a list"),
        ("datamodule_hyper_parameters", "split", "../../etc", "split=../../etc: expected one of"),
        ("datamodule_hyper_parameters", "test_size", float("nan"), "test_size=nan: expected a number"),
    ],
)
def test_sizes_and_split_settings_are_checked_before_use(craft, section, key, value, expected):
    with pytest.raises(InputError, match=expected):
        load_checkpoint(craft(section, key, value))


def test_weights_must_be_the_networks_and_finite(genuine, tmp_path):
    path, checkpoint = genuine
    for name, change in [("nan", lambda w: w.fill_(float("nan"))), ("shape", lambda w: w.unsqueeze(0))]:
        state = dict(checkpoint["state_dict"])
        state["network.0.weight"] = change(state["network.0.weight"].clone())
        torch.save({**checkpoint, "state_dict": state}, tmp_path / f"{name}.ckpt")
        with pytest.raises(InputError, match="state_dict"):
            load_checkpoint(tmp_path / f"{name}.ckpt")
    model, split = load_checkpoint(path)  # the genuine one loads; its optimizer config is checked data
    assert model.hparams.optimizer["_target_"] == "torch.optim.SGD"
    assert split["split"] == "random" and split["trained_on"] is None


def test_allowed_configs_are_torch_optim_classes_found_without_importing_anything_else():
    for group, target in [
        ("optimizer", "torch.optim.SGD"),
        ("optimizer", "torch.optim.Adam"),
        ("scheduler", "torch.optim.lr_scheduler.ExponentialLR"),
        ("scheduler", "torch.optim.lr_scheduler.ReduceLROnPlateau"),
    ]:
        check_buildable_config(group, {"_target_": target, "_partial_": True, "lr": 0.1})
    with pytest.raises(InputError, match=r"is not a class of torch\.optim \(Optimizer\)"):
        check_buildable_config("optimizer", {"_target_": "antigravity.fly"})
    assert "antigravity" not in sys.modules  # refused by name: the module was never imported
    with pytest.raises(InputError, match=r"is not a class of torch\.optim\.lr_scheduler \(LRScheduler\)"):
        check_buildable_config("scheduler", {"_target_": "torch.optim.SGD"})


def test_training_refuses_an_optimizer_that_is_not_torch_optim(train_cli, tmp_path):
    result = train_cli("optimizer._target_=builtins.print", "trainer.max_epochs=1", run_dir=tmp_path / "run")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "error: optimizer: _target_ 'builtins.print' is not a class of torch.optim (Optimizer); "
        "choose one of conf/optimizer/"
    )


def test_a_resume_checkpoints_callback_paths_outside_the_run_are_not_restored(genuine, tmp_path, caplog):
    """A crafted ModelCheckpoint state whose best_model_path is ``local://<folder>``: Lightning's top-k
    cleanup would delete that folder at the next save, epoch 10 (its guard treats ``local://`` as not
    local)."""
    from hydra import compose, initialize_config_module

    sentinel = tmp_path / "keep"
    sentinel.mkdir()
    (sentinel / "precious.txt").write_text("still here")
    checkpoint = torch.load(genuine[0], weights_only=True)
    for state in checkpoint["callbacks"].values():
        if "best_model_path" in state:
            state["best_model_path"] = f"local://{sentinel}"
    crafted = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, crafted)
    run_dir = tmp_path / "resumed"
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[f"output_dir={run_dir}", "trainer.max_epochs=11", "trainer.limit_train_batches=5",
                       "trainer.enable_progress_bar=false", f"ckpt_path={crafted}"],
        )  # fmt: skip
    with caplog.at_level("INFO", logger="pima_lightning.runs.resume"):
        train(cfg)
    assert (sentinel / "precious.txt").read_text() == "still here"
    assert f"local://{sentinel}" in caplog.text and "not restored" in caplog.text
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert crafted.is_file()  # the checkpoint given is read, never changed


@pytest.mark.parametrize(
    ("section", "key", "value", "override"),
    [
        ("datamodule_hyper_parameters", "split", "shuffle", "data.split=shuffle"),
        ("datamodule_hyper_parameters", "test_size", 1.2, "data.test_size=1.2"),
        ("datamodule_hyper_parameters", "stratify", "yes", "data.stratify=yes"),
        ("hyper_parameters", "dropout", 1, "model.dropout=1"),
        ("hyper_parameters", "hidden", [0], "model.hidden=[0]"),
        ("hyper_parameters", "replicas", 0, "model.replicas=0"),
    ],
)
def test_a_setting_is_refused_alike_in_a_config_and_in_a_checkpoint(
    craft, make_config, section, key, value, override
):
    """One declaration per setting (settings/declared.py): the same value, one reason, at both boundaries."""
    from pima_lightning.settings.config_checks import check_train_config

    with pytest.raises(InputError) as from_config:
        check_train_config(make_config(override))
    with pytest.raises(InputError) as from_checkpoint:
        load_checkpoint(craft(section, key, value))
    reason = str(from_config.value).removeprefix(override.split("=")[0].split(".")[0] + ".")
    assert str(from_checkpoint.value).endswith(f"({reason})"), (reason, str(from_checkpoint.value))
