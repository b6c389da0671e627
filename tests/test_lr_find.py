import json

from PIL import Image


def test_lr_find_sweeps_the_learning_rate_and_suggests_one(cli, tmp_path):
    run_dir = tmp_path / "lr_find"
    result = cli(
        "lr_find",
        "optimizer=adam",
        "lr_find.num_training=40",
        "trainer.enable_progress_bar=false",
        run_dir=run_dir,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads((run_dir / "lr_find.json").read_text())
    rates = found["lr"]
    assert 10 < len(rates) <= 40 and rates == sorted(rates)  # one step each, rising (it may stop early)
    assert rates[0] < 1e-5 and len(found["loss"]) == len(rates)
    assert found["suggestion"] in rates
    assert f"optimizer=adam optimizer.lr={found['suggestion']:.3g}" in result.stdout
    assert Image.open(run_dir / "lr_find.png").size[0] > 300
    assert not list(run_dir.glob("*.ckpt"))  # the finder's temporary checkpoint is gone
