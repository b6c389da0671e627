import json
import os

import pytest
from PIL import Image

from pima_lightning.runs.atomic import write_json
from pima_lightning.runs.sweep import collect_jobs, format_groups, group_jobs

FAST = ["trainer.max_epochs=2", "trainer.enable_progress_bar=false"]


def fake_job(
    sweep_dir, number: int, overrides: list[str], acc: float | None = None, error: str | None = None
):
    job_dir = sweep_dir / str(number)
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if acc is not None:
        metrics = {f"test/{m}": acc for m in ("acc", "auroc", "f1", "precision", "recall", "loss")}
        write_json(job_dir / "metrics.json", {**metrics, "epochs": 3, "wall_time_s": 1.5})
    if error is not None:
        write_json(job_dir / "failure.json", {"error": error})


def test_an_override_holding_a_space_is_grouped_like_any_other(tmp_path):
    """Hydra keeps ``data.path='/my data.csv'`` as one override; split at spaces it crashed the summary
    (which Hydra turns into a warning, so the sweep exited 0)."""
    for number, (path, seed) in enumerate([("/my data.csv", 0), ("/my data.csv", 1), ("/other.csv", 0)]):
        fake_job(tmp_path, number, [f"data.path='{path}'", f"seed={seed}"], 0.7 + number / 100)
    rows = collect_jobs(tmp_path)
    groups = {group["group"]: group["n"] for group in group_jobs(rows)}
    assert groups == {"data.path='/my data.csv'": 2, "data.path='/other.csv'": 1}


def test_summary_groups_jobs_that_differ_only_in_seed(tmp_path):
    for number, (optimizer, seed, acc) in enumerate(
        [("sgd", 0, 0.70), ("adam", 0, 0.76), ("sgd", 1, 0.74), ("adam", 1, 0.78), ("sgd", 2, 0.72)]
    ):
        fake_job(tmp_path, number, [f"optimizer={optimizer}", f"seed={seed}", "trainer.max_epochs=3"], acc)
    fake_job(tmp_path, 5, ["optimizer=adam", "seed=2", "trainer.max_epochs=3"], error="InputError: bad row")
    fake_job(tmp_path, 6, ["optimizer=adam", "seed=3", "trainer.max_epochs=3"])  # killed: no result

    rows = collect_jobs(tmp_path)
    assert [row["status"] for row in rows] == ["finished"] * 5 + ["failed", "incomplete"]
    assert rows[5]["error"] == "InputError: bad row"
    groups = {group["group"]: group for group in group_jobs(rows)}
    assert set(groups) == {"optimizer=sgd", "optimizer=adam"}
    assert (groups["optimizer=sgd"]["n"], groups["optimizer=sgd"]["failed"]) == (3, 0)
    assert (groups["optimizer=adam"]["n"], groups["optimizer=adam"]["failed"]) == (2, 2)
    assert groups["optimizer=sgd"]["test/acc mean"] == pytest.approx(0.72)
    assert groups["optimizer=sgd"]["test/acc std"] == pytest.approx(0.02)
    assert groups["optimizer=adam"]["test/acc mean"] == pytest.approx(0.77)
    assert "optimizer=sgd   3  0       0.7200 ± 0.0200" in format_groups(list(groups.values()))


def test_summary_with_more_than_ten_jobs_keeps_numeric_order(tmp_path):
    for number in range(12):
        fake_job(tmp_path, number, [f"seed={number}"], 0.7)
    assert [row["job"] for row in collect_jobs(tmp_path)] == [str(n) for n in range(12)]


def test_cli_multirun_writes_the_summary(cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = cli("train", "-m", "optimizer=sgd,adam", "seed=0,1", *FAST, f"hydra.sweep.dir={sweep_dir}")
    assert result.returncode == 0, result.stderr
    jobs = json.loads((sweep_dir / "jobs.json").read_text())["jobs"]
    assert len(jobs) == 4 and {job["status"] for job in jobs} == {"finished"}
    for job in jobs:
        metrics = json.loads((sweep_dir / job["job"] / "metrics.json").read_text())
        assert job["test/acc"] == metrics["test/acc"]
    groups = json.loads((sweep_dir / "groups.json").read_text())["groups"]
    assert [(g["group"], g["n"]) for g in groups] == [("optimizer=sgd", 2), ("optimizer=adam", 2)]
    assert (
        (sweep_dir / "jobs.csv").read_text().splitlines()[0].startswith("job,overrides,status,error,test/acc")
    )
    assert "optimizer=adam" in result.stdout and "Sweep summary" in result.stdout
    # the layer table once, for the first job; each later job's in its train.log
    assert result.stdout.count("Total params: 193") == 1
    assert "Total params: 193" in (sweep_dir / "3" / "train.log").read_text()
    assert Image.open(sweep_dir / "accuracy.png").size[0] > 300
    # TensorBoard's run list names each job by its overrides, not only by its number
    (run,) = (sweep_dir / "3" / "tensorboard").iterdir()
    assert run.name.startswith("optimizer=adam,seed=1,trainer.") and any(run.glob("events.out.tfevents.*"))
    assert groups[0]["test/majority_share mean"] == pytest.approx(162 / 254)  # class 0 in the test rows


def test_a_failing_job_is_marked_and_the_others_are_kept(cli, tmp_path, pima_csv):
    bad = tmp_path / "bad.csv"
    bad.write_text("6,148,72,35,0,33.6,0.627,50,3\n")
    sweep_dir = tmp_path / "sweep"
    result = cli("train", "-m", f"data.path={pima_csv},{bad}", *FAST, f"hydra.sweep.dir={sweep_dir}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: 1 of 2 jobs did not finish")
    good, failed = json.loads((sweep_dir / "jobs.json").read_text())["jobs"]
    assert good["status"] == "finished" and good["test/acc"] > 0.5
    assert failed["status"] == "failed"
    assert (
        failed["error"]
        == f"InputError: {bad}: every row has label 3; a classifier needs rows of both classes"
    )
    assert not (sweep_dir / "1" / "metrics.json").exists()


def finished_two_seed_sweep(cli, sweep_dir, *launcher: str) -> list[dict]:
    """Run seeds 0 and 1 under ``launcher`` overrides; check both finished; return jobs.json's jobs."""
    result = cli("train", "-m", *launcher, "seed=0,1", *FAST, f"hydra.sweep.dir={sweep_dir}")
    assert result.returncode == 0, result.stderr
    jobs = json.loads((sweep_dir / "jobs.json").read_text())["jobs"]
    assert [job["status"] for job in jobs] == ["finished", "finished"]
    return jobs


def test_joblib_launcher_runs_jobs_in_parallel_processes_with_one_torch_thread_each(cli, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep_dir = tmp_path / "sweep"
    jobs = finished_two_seed_sweep(cli, sweep_dir, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    threads = {
        json.loads((sweep_dir / job["job"] / "metrics.json").read_text())["torch_threads"] for job in jobs
    }
    assert threads == {max(1, (os.cpu_count() or 1) // 2)}


@pytest.mark.slow
def test_submitit_local_launcher_runs_the_same_code_path(cli, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep_dir = tmp_path / "sweep"
    finished_two_seed_sweep(cli, sweep_dir, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10")
    assert list(sweep_dir.glob(".submitit/*/*_log.out"))  # submitit really ran the jobs


def test_slurm_launcher_config_composes_for_cluster_users():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_module

    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    assert (
        cfg.hydra.launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    )
    assert (cfg.hydra.launcher.cpus_per_task, cfg.hydra.launcher.timeout_min) == (1, 20)


def test_the_accuracy_chart_keeps_its_legend_off_the_points(tmp_path):
    """Inside the axes (lower right), the legend hid the point of a group that scored low."""
    from pima_lightning.runs.sweep import accuracy_chart

    for number, (optimizer, acc) in enumerate([("sgd", 0.75), ("adam", 0.64), ("sgd", 0.77), ("adam", 0.64)]):
        fake_job(tmp_path, number, [f"optimizer={optimizer}", f"seed={number}"], acc)
    figure = accuracy_chart(group_jobs(collect_jobs(tmp_path)))
    (axes,) = figure.axes
    figure.canvas.draw()
    (legend,) = figure.legends
    assert axes.get_legend() is None
    assert legend.get_window_extent().y1 <= axes.get_window_extent().y0  # wholly below the axes
