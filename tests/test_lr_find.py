import json
import math

import pytest
from hydra import compose, initialize_config_module
from PIL import Image

from pima_lightning.errors import InputError
from pima_lightning.lr_find import SKIP_BEGIN, SMOOTHING, check_finder_settings, unbiased


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
    assert "Finding best initial lr" not in result.stderr  # the finder's own bar, off the terminal
    found = json.loads((run_dir / "lr_find.json").read_text())
    # the picture's curve: flat near ln 2 at the smallest rates, where Lightning's starts at about 0.35
    assert found["loss"][0] < 0.4 and abs(found["loss_bias_corrected"][SKIP_BEGIN] - math.log(2)) < 0.03
    rates = found["lr"]
    assert 10 < len(rates) <= 40 and rates == sorted(rates)  # one step each, rising (it may stop early)
    assert rates[0] < 1e-5 and len(found["loss"]) == len(rates)
    assert found["suggestion"] in rates
    assert f"optimizer=adam optimizer.lr={found['suggestion']:.3g}" in result.stdout
    assert Image.open(run_dir / "lr_find.png").size[0] > 300
    assert not list(run_dir.glob("*.ckpt"))  # the finder's temporary checkpoint is gone


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("lr_find.mode=bogus", "lr_find.mode=bogus: expected one of exponential, linear"),
        ("lr_find.num_training=0", "lr_find.num_training=0: expected a whole number of steps >= 2"),
        ("lr_find.min_lr=-1", "lr_find.min_lr=-1: expected a learning rate in (0, 1e+30]"),
        ("lr_find.max_lr=1e-7", "lr_find.max_lr=1e-07: expected a learning rate in (1e-06, 1e+30]"),
        ("lr_find.early_stop_threshold=0.5", "lr_find.early_stop_threshold=0.5: expected a multiple"),
    ],
)
def test_finder_settings_are_checked_before_anything_trains(override, expected):
    """Each was a traceback from inside Lightning's finder (or, for min_lr=-1, a run to nowhere)."""
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        finder = compose("lr_find", overrides=[override]).lr_find
    with pytest.raises(InputError) as raised:
        check_finder_settings(finder)
    assert str(raised.value).startswith(expected)


def test_the_bias_correction_put_right_returns_a_constant_loss_unchanged():
    """Lightning's running average as _LRCallback computes it (global_step already counts the step)."""
    average, smoothed = 0.0, []
    for step in range(1, 30):
        average = SMOOTHING * average + (1 - SMOOTHING) * 0.69
        smoothed.append(average / (1 - SMOOTHING ** (step + 1)))
    assert smoothed[0] == pytest.approx(0.69 * 0.02 / (1 - 0.98**2))  # about 0.35
    assert unbiased(smoothed) == pytest.approx([0.69] * 29)
