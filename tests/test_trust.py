"""Issue 25's trust holes, one test a row: what a file, a flag or a signal could do on the code before it.

Each test fails on that code: a crafted file, a sentinel that must survive, a real FIFO, a real run folder.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import FAST, descendants

from pima_lightning.model import PimaClassifier


@pytest.fixture(scope="module")
def named_classes_run(tmp_path_factory):
    """A short run with ``data.class_names`` set: its folder, after ``train`` wrote it."""
    folder = tmp_path_factory.mktemp("named")
    run_dir = folder / "run"
    result = subprocess.run(
        [sys.executable, "-m", "pima_lightning.train", *FAST, "data.class_names=[healthy,diabetic]",
         f"hydra.run.dir={run_dir}"],
        cwd=folder, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return run_dir


def test_a_class_names_run_checkpoint_holds_plain_data_and_loads_everywhere(named_classes_run, cli, tmp_path):
    """Row 8: ``data.class_names=[a,b]`` wrote an omegaconf ListConfig, which every loader refused."""
    checkpoint = named_classes_run / "checkpoints" / "last.ckpt"
    stored = torch.load(checkpoint, weights_only=True)["datamodule_hyper_parameters"]["class_names"]
    assert stored == ["healthy", "diabetic"] and type(stored) is list
    model = PimaClassifier.load_from_checkpoint(checkpoint, weights_only=True)
    assert model.hparams.n_features == 8
    rows = tmp_path / "rows.csv"
    rows.write_text("6,148,72,35,0,33.6,0.627,50\n")
    for command, *arguments in (
        ("evaluate",),
        ("predict", f"input={rows}", f"output={tmp_path / 'p.csv'}"),
        ("summary",),
        ("export", f"output={tmp_path / 'model.pt2'}", "format=pt2"),
    ):
        result = cli(command, f"ckpt_path={checkpoint}", *arguments, run_dir=tmp_path / command)
        assert result.returncode == 0, f"{command}: {result.stderr}"


def test_load_from_checkpoint_refuses_a_size_bomb_before_allocating(tmp_path, named_classes_run):
    """Row 7: a small file claiming hidden=[60000, 60000] made ``load_from_checkpoint(weights_only=True)``
    allocate 14.4 GB; the CLI's parameter limit applies to the Python loader too. Peak memory is measured."""
    checkpoint = torch.load(named_classes_run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["hidden"] = [60000, 60000]
    bomb = tmp_path / "bomb.ckpt"
    torch.save(checkpoint, bomb)
    assert bomb.stat().st_size < 64_000
    probe = textwrap.dedent(f"""
        import resource
        from pima_lightning.model import PimaClassifier
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            PimaClassifier.load_from_checkpoint({str(bomb)!r}, weights_only=True)
            said = "loaded"
        except ValueError as err:
            said = str(err)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grown // 1024, said, sep="\\n")
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    grown_mib, said = result.stdout.strip().splitlines()[-2:]
    assert int(grown_mib) < 200, f"grew {grown_mib} MiB"
    assert "3,600," in said and "parameters; at most 100,000,000" in said


def run_briefly(
    module: str, *overrides: str, cwd, env=None, timeout: int = 90
) -> subprocess.CompletedProcess:
    """``python -m <module>`` that must answer within ``timeout`` seconds (a hang fails the test)."""
    return subprocess.run(
        [sys.executable, "-m", module, *overrides], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_a_fifo_as_data_is_refused_at_once_by_tune(tmp_path):
    """Row 6: tune read the SHA-256 of data.path before any regular-file check, and a FIFO hung it."""
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    result = run_briefly("pima_lightning.tune", f"data.path={fifo}", "tune.n_trials=1",
                         f"hydra.run.dir={tmp_path / 'tune'}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {fifo}: not a regular file (a device, FIFO or socket); data.path must name a CSV file"
    )


@pytest.mark.parametrize("cached", ["fifo", "link to /dev/zero"])
def test_a_cached_public_copy_that_is_not_a_regular_file_is_refused(tmp_path, cached):
    """Row 6: a FIFO in the download cache hung every default run; a link to /dev/zero read until memory
    ran out."""
    data_dir = tmp_path / "cache"
    data_dir.mkdir()
    copy = data_dir / "pima-indians-diabetes.csv"
    os.mkfifo(copy) if cached == "fifo" else copy.symlink_to("/dev/zero")
    result = run_briefly("pima_lightning.train", *FAST, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                         env={"PIMA_DATA_DIR": str(data_dir)})  # fmt: skip
    assert result.returncode == 1
    said = result.stderr.strip().splitlines()[-1]
    assert said.startswith(f"error: {copy}: not a regular file (a device, FIFO or socket)"), said
    assert not (tmp_path / "run" / "metrics.json").exists()


TINY_TUNE = ["tune.n_trials=1", "tune.folds=2", "tune.seeds=1", "tune.space.max_epochs=[2]",
             "trainer.enable_progress_bar=false"]  # fmt: skip


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    """A real one-trial tune folder."""
    folder = tmp_path_factory.mktemp("study")
    result = run_briefly("pima_lightning.tune", *TINY_TUNE, f"hydra.run.dir={folder / 'tune'}", cwd=folder,
                         timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder / "tune"


def copy_of(folder, tmp_path):
    import shutil

    copy = tmp_path / "tune"
    shutil.copytree(folder, copy)
    return copy


def test_a_crafted_study_cannot_reach_instantiate(finished_study, tmp_path):
    """Row 1: resuming composed the best trial's stored ``overrides`` text, so a crafted study could add
    ``+logger.evil._target_=builtins.open`` and truncate any file. The settings are rebuilt from the
    trial's parameters, checked against the space; stored text is never read."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    study_dir = copy_of(finished_study, tmp_path)
    evil = ["+logger.evil._target_=builtins.open", f"+logger.evil.file={victim}", "+logger.evil.mode=w"]
    import sqlite3

    with sqlite3.connect(study_dir / "study.db") as db:
        db.execute("UPDATE trial_user_attributes SET value_json = ? WHERE key = 'overrides'",
                   (json.dumps(evil),))  # fmt: skip
        db.execute("INSERT INTO trial_user_attributes (trial_id, key, value_json) SELECT trial_id, "
                   "'overrides', ? FROM trials WHERE NOT EXISTS (SELECT 1 FROM trial_user_attributes "
                   "WHERE key = 'overrides')", (json.dumps(evil),))  # fmt: skip
    result = run_briefly("pima_lightning.tune", *TINY_TUNE, f"hydra.run.dir={study_dir}", cwd=tmp_path,
                         timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "precious"
    # a parameter outside the space (a crafted distribution and value) is refused in one line
    with sqlite3.connect(study_dir / "study.db") as db:
        choices = {"name": "CategoricalDistribution", "attributes": {"choices": ["sgd", evil[0]]}}
        db.execute("UPDATE trial_params SET param_value = 1, distribution_json = ? WHERE param_name = "
                   "'optimizer'", (json.dumps(choices),))  # fmt: skip
    result = run_briefly("pima_lightning.tune", *TINY_TUNE, f"hydra.run.dir={study_dir}", cwd=tmp_path,
                         timeout=600)  # fmt: skip
    assert result.returncode == 1
    said = result.stderr.strip().splitlines()[-1]
    assert said.startswith(f"error: {study_dir / 'study.db'}: trial 0's optimizer='+logger.evil"), said
    assert said.endswith("is not one of tune.space.optimizer")
    assert victim.read_text() == "precious"


def test_another_applications_database_is_refused_and_left_alone(cli, tmp_path):
    """Row 1: Optuna silently added its 13 tables to any SQLite file named study.db."""
    import sqlite3

    run_dir = tmp_path / "tune"
    run_dir.mkdir()
    with sqlite3.connect(run_dir / "study.db") as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    before = (run_dir / "study.db").read_bytes()
    result = cli("tune", *TINY_TUNE, run_dir=run_dir)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {run_dir / 'study.db'}: an SQLite database of another application (tables notes), not an "
        "Optuna study; move it away to start a new study"
    )
    assert (run_dir / "study.db").read_bytes() == before


def test_a_study_tune_did_not_make_is_one_line(cli, tmp_path):
    """Row 1: a study without the record tune keeps of its search was resumed as if it matched."""
    import optuna

    run_dir = tmp_path / "tune"
    run_dir.mkdir()
    study = optuna.create_study(study_name="pima", storage=f"sqlite:///{run_dir / 'study.db'}")
    study.add_trial(optuna.trial.create_trial(params={"x": 1.0}, value=0.9,
                    distributions={"x": optuna.distributions.FloatDistribution(0, 2)}))  # fmt: skip
    result = cli("tune", *TINY_TUNE, run_dir=run_dir)
    assert result.returncode == 1
    said = result.stderr.strip().splitlines()[-1]
    assert said.startswith(f"error: {run_dir / 'study.db'}: an Optuna study without the record tune keeps")


def snapshot(folder) -> dict:
    """Every file under ``folder`` with its bytes (but the lock, which names the process holding it)."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture
def finished_run(named_classes_run, tmp_path):
    """A copy of a finished training run's folder, to point commands at."""
    return copy_of(named_classes_run, tmp_path)


def test_output_dir_naming_a_finished_run_is_refused_by_train_and_evaluate(finished_run, cli, tmp_path):
    """Row 2: the run-folder checks looked at hydra.run.dir only; output_dir= replaced a finished run's
    last.ckpt and metrics.json (train) or its pictures (evaluate)."""
    before = snapshot(finished_run)
    trained = cli("train", *FAST, "seed=8", f"output_dir={finished_run}", run_dir=tmp_path / "elsewhere")
    assert trained.returncode == 1
    assert (
        trained.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: output_dir={finished_run} holds an earlier run (")
    )
    evaluated = cli("evaluate", f"ckpt_path={finished_run / 'checkpoints' / 'last.ckpt'}",
                    f"output_dir={finished_run}", run_dir=tmp_path / "evaluation")  # fmt: skip
    assert evaluated.returncode == 1
    assert f"error: output_dir={finished_run} holds an earlier run (" in evaluated.stderr
    assert snapshot(finished_run) == before


def test_tune_in_a_finished_training_runs_folder_is_refused(finished_run, cli):
    """Row 2: tune's folder could be any folder (reuse: always), so it overwrote a train run's .hydra."""
    before = snapshot(finished_run)
    result = cli("tune", *TINY_TUNE, run_dir=finished_run)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: hydra.run.dir={finished_run} holds an earlier run (")
    )
    assert snapshot(finished_run) == before


def test_two_tunes_cannot_share_an_output_dir_at_once(tmp_path):
    """Row 2: two tunes with their own hydra.run.dir and one output_dir ran every trial twice into one
    best_test/: the output_dir is locked as the run folder is."""
    shared = tmp_path / "shared"
    # the first tune runs long enough (50 trials of 150 epochs) for the second to start while it is going
    longer = [*TINY_TUNE[1:3], "tune.n_trials=50", "tune.space.max_epochs=[150]", *TINY_TUNE[4:]]
    command = [sys.executable, "-m", "pima_lightning.tune", *longer, f"output_dir={shared}"]
    first = subprocess.Popen([*command, f"hydra.run.dir={tmp_path / 'first'}"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (shared / "study.db").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        second = run_briefly("pima_lightning.tune", *TINY_TUNE, f"output_dir={shared}",
                             f"hydra.run.dir={tmp_path / 'second'}", cwd=tmp_path)  # fmt: skip
    finally:
        first.terminate()
        first.communicate(timeout=60)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f"error: output_dir={shared} is in use by a run still going (process {first.pid}); wait for it to "
        "end or choose another output_dir"
    )


def test_a_sweep_subdir_shared_by_jobs_is_refused_and_the_first_jobs_record_kept(cli, tmp_path):
    """Row 2: ``hydra.sweep.subdir=same`` wrote three jobs into one folder and reported n=1, exit 0."""
    sweep = tmp_path / "sweep"
    result = cli("train", "-m", "seed=0,1,2", *FAST, "hydra.sweep.subdir=same", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 1
    said = result.stderr.strip().splitlines()[-1]
    assert said.startswith(
        f"error: hydra.sweep.subdir puts job 1 in {sweep / 'same'}, which holds another job"
    )
    assert json.loads((sweep / "same" / "metrics.json").read_text())["seed"] == 0
    assert "seed=0" in (sweep / "same" / ".hydra" / "overrides.yaml").read_text()


def test_a_refused_folder_gets_no_lock_file(cli, tmp_path):
    """Smaller rows: ``hydra.run.dir=/`` left ``/.lock``: a folder holding other files is refused before
    anything is made in it."""
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = cli("train", *FAST, run_dir=folder)
    assert result.returncode == 1 and "holds an earlier run (notes.txt)" in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_sweep_of_ddp_runs_gives_each_job_the_single_runs_result(cli, tmp_path):
    """Row 3: ``train -m trainer=ddp_cpu optimizer.lr=0.005,0.01`` exited 137: Lightning started each job's
    second process with the whole sweep's command line. Each job's two processes now run that job: its
    metrics equal those of the same settings run alone on two processes."""
    ddp = ["trainer=ddp_cpu", *FAST]
    sweep = tmp_path / "sweep"
    swept = cli("train", "-m", *ddp, "optimizer.lr=0.005,0.01", f"hydra.sweep.dir={sweep}")
    assert swept.returncode == 0, swept.stderr
    alone = cli("train", *ddp, "optimizer.lr=0.01", run_dir=tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr
    for job in ("0", "1"):
        assert (sweep / job / "train_ddp_process_1.log").is_file()  # its second process ran, in its folder
    job_1 = json.loads((sweep / "1" / "metrics.json").read_text())
    single = json.loads((tmp_path / "alone" / "metrics.json").read_text())
    assert job_1["test/loss"] == single["test/loss"] and job_1["test/auroc"] == single["test/auroc"]
    assert json.loads((sweep / "0" / "metrics.json").read_text())["test/loss"] != single["test/loss"]


def test_evaluate_knows_its_rows_by_content_not_by_path_text(tmp_path, make_config, pima_csv):
    """Row 4: the training CSV shuffled at the same path scored 169 training rows among its 254 "held-out"
    rows. The checkpoint records the file's SHA-256 and its rows' fingerprints: the shuffled file is
    another file, and its rows the model did not train on are exactly the 254 held-out rows."""
    from pima_lightning.evaluate import evaluate
    from pima_lightning.train import train

    own = tmp_path / "own.csv"
    own.write_bytes(pima_csv.read_bytes())
    metrics = train(make_config(*FAST, f"data.path={own}", f"output_dir={tmp_path / 'run'}"))
    lines = own.read_text().splitlines()
    own.write_text("\n".join(lines[::-1]) + "\n")  # the same rows, in another order, at the same path
    (tmp_path / "out").mkdir()
    report = evaluate(str(tmp_path / "run" / "checkpoints" / "last.ckpt"), tmp_path / "out", str(own))
    assert report["n_rows"] == 254 and report["training_rows_scored"] == 0
    assert (
        "found by content" in report["rows"]
        and "514 of its 768 rows are training rows, left out" in report["rows"]
    )
    for name in ("acc", "auroc", "loss"):
        assert report[name] == pytest.approx(metrics[f"test/{name}"], abs=1e-6)


def test_with_split_none_the_scored_rows_are_called_training_rows(cli, tmp_path):
    """Row 4: with data.split=none the training rows were reported as "Test" rows, held out."""
    result = cli("train", *FAST, "data.split=none", run_dir=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("Training rows (768, none held out: data.split=none): ")
    evaluated = cli("evaluate", f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}",
                    run_dir=tmp_path / "evaluation")  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert "768 rows (data.split=none holds no rows out: all 768 are rows the model was trained on)" in (
        evaluated.stdout
    )
    tuned = cli("tune", *TINY_TUNE, "data.split=none", run_dir=tmp_path / "tune")
    assert tuned.returncode == 0, tuned.stderr
    assert "test accuracy" not in tuned.stdout
    assert "no test: with data.split=none no row is held out" in tuned.stdout


@pytest.mark.parametrize("header", ["reordered", "an Id column first"])
def test_predict_refuses_a_header_a_model_without_names_cannot_match(
    named_classes_run, cli, tmp_path, header
):
    """Row 5: a model trained on the public copy (no header) scored a headed input by position: a reordered
    header or a leading Id column gave wrong probabilities and exit 0."""
    names = ["Pregnancies", "Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI", "Pedigree", "Age"]
    values = ["6", "148", "72", "35", "0", "33.6", "0.627", "50"]
    if header == "reordered":
        names, values = names[::-1], values[::-1]
    else:
        names, values = ["Id", *names], ["17", *values]
    rows = tmp_path / "rows.csv"
    rows.write_text(",".join(names) + "\n" + ",".join(values) + "\n")
    output = tmp_path / "scored.csv"
    result = cli("predict", f"ckpt_path={named_classes_run / 'checkpoints' / 'last.ckpt'}", f"input={rows}",
                 f"output={output}", run_dir=tmp_path / "predict")  # fmt: skip
    assert result.returncode == 1
    said = result.stderr.strip()
    assert said.startswith(f"error: {rows}: its header names columns (") and "\n" not in said
    assert said.endswith(
        "remove the header line to read the first 8 columns in the order of the training CSV"
    )
    assert not output.exists()


def test_tune_scores_a_diverging_setting_below_any_that_learns(tmp_path):
    """Row 11: a diverged setting scored the majority-class rate (0.658) and outranked real settings."""
    from hydra import compose, initialize_config_module

    from pima_lightning.tune import search

    overrides = [
        *TINY_TUNE,
        "tune.space.optimizer=[sgd]",
        "tune.space.lr=[1000,10000]",
        f"output_dir={tmp_path}",
    ]
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        cfg = compose("tune", overrides=overrides)
        with pytest.raises(Exception, match="training diverged"):  # the best settings' retraining says so
            search(cfg, [], tmp_path)
    record = json.loads((tmp_path / "trials" / "0" / "members.json").read_text())
    assert record["diverged_members"] == 2 and record["objective"] == 0.0
    assert all(member["val_acc"] > 0.6 for member in record["members"])  # what it scored before: 0.658


def test_tune_refuses_more_folds_than_a_class_has_rows_and_keeps_fixed_epochs(cli, tmp_path):
    """Row 11: tune.folds larger than a class's row count made folds without that class (cv refuses it);
    trainer.max_epochs=... on the command line was silently replaced by the searched epochs."""
    result = cli("tune", *TINY_TUNE, "tune.folds=200", run_dir=tmp_path / "folds")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: tune.folds=200: class 1 has 176 of the 514 rows the folds split, so some folds would hold "
        "none of it and their AUROC is undefined; use tune.folds=176 or fewer"
    )
    fixed = cli("tune", *TINY_TUNE, "trainer.max_epochs=4", run_dir=tmp_path / "fixed")
    assert fixed.returncode == 0, fixed.stderr
    best = json.loads((tmp_path / "fixed" / "best.json").read_text())
    assert "max_epochs" not in best["best_params"]
    assert json.loads((tmp_path / "fixed" / "best_test" / "metrics.json").read_text())["epochs"] == 4


def test_cv_counts_rounding_differences_as_ties():
    """Row 12: float32-vs-float64 rounding (1e-8) counted as network wins ("wins 6 of 10", really 3 wins,
    4 ties, 3 losses)."""
    from pima_lightning.cv import NETWORK, REFERENCE, SCORES, console_line, summarize

    network = [0.75, 0.70, 0.80, 0.7 + 1e-8, 0.6 + 1e-8, 0.9 - 1e-8, 0.8 + 2e-8, 0.60, 0.65, 0.70]
    reference = [0.70, 0.65, 0.75, 0.70, 0.60, 0.90, 0.80, 0.65, 0.70, 0.75]
    rows = [
        {"repeat": 0, "fold": i}
        | {f"{NETWORK} {score}": a for score in SCORES}
        | {f"{REFERENCE} {score}": b for score in SCORES}
        for i, (a, b) in enumerate(zip(network, reference, strict=True))
    ]
    summary = summarize(rows, 10, 1, "all")
    paired = summary[f"{NETWORK} - {REFERENCE} acc"]
    assert (paired["network wins"], paired["ties"], paired["reference wins"]) == (3, 4, 3)
    assert "of 10 folds the network wins 3, ties 4, loses 3" in console_line(summary)


def test_a_signal_to_tune_says_what_was_written_and_fails_its_running_trial(tmp_path):
    """Row 9: after a signal tune said "nothing was written" while study.db and trials/ existed, and the
    trial it was running stayed RUNNING in the study forever."""
    import optuna

    run_dir = tmp_path / "tune"
    longer = [*TINY_TUNE[1:3], "tune.n_trials=50", "tune.space.max_epochs=[150]", *TINY_TUNE[4:]]
    process = subprocess.Popen(
        [sys.executable, "-m", "pima_lightning.tune", *longer, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run_dir / "trials" / "1").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the second trial is running
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    said = stderr.strip().splitlines()[-1]
    assert said.startswith(
        f"error: interrupted by SIGTERM before the command finished; written so far in {run_dir}"
    )
    assert "study.db" in said and "trials" in said and f"rerun with hydra.run.dir={run_dir} to resume" in said
    study = optuna.load_study(study_name="pima", storage=f"sqlite:///{run_dir / 'study.db'}")
    states = [trial.state.name for trial in study.trials]
    assert "RUNNING" not in states and states[-1] == "FAIL", states


def test_sigterm_to_a_joblib_sweep_ends_its_workers_and_writes_the_summary(tmp_path):
    """Row 9: SIGTERM to the parent of a joblib sweep exited 143 with no line and no summary, and the workers
    trained on and wrote results after the sweep had "ended"."""
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "pima_lightning.train", "-m", "hydra/launcher=joblib"]
    command += ["hydra.launcher.n_jobs=2", "seed=0,1,2,3", "trainer.max_epochs=150"]
    command += [f"hydra.sweep.dir={sweep}", "trainer.enable_progress_bar=false"]
    process = subprocess.Popen(command, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while len(list(sweep.glob("*/tensorboard"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # both workers train
    workers = descendants(process.pid)
    assert workers and process.poll() is None
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143
    assert stderr.strip().splitlines()[-1] == (
        "error: interrupted by SIGTERM: the sweep stopped, its workers with it; its summary covers the jobs "
        "that ran"
    )
    time.sleep(3)
    assert not {pid for pid in workers if Path(f"/proc/{pid}").exists()}
    jobs = (sweep / "jobs.csv").read_text()
    assert jobs.count("interrupted by SIGTERM") == 2
    assert not list(sweep.glob("*/metrics.json"))  # no worker went on to finish a job after the sweep ended


def test_three_first_mlflow_runs_at_once_all_succeed(tmp_path):
    """Row 10: three first runs at once on a fresh MLflow store failed 2 of 3 (schema migration races)."""
    pytest.importorskip("mlflow")
    import mlflow

    command = [sys.executable, "-m", "pima_lightning.train", *FAST, "logger=mlflow"]
    runs = [
        subprocess.Popen([*command, f"seed={seed}", f"hydra.run.dir={tmp_path / str(seed)}"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in range(3)
    ]  # fmt: skip
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    experiment = client.get_experiment_by_name("pima_lightning")
    names = sorted(run.info.run_name for run in client.search_runs([experiment.experiment_id]))
    assert [name.split(",")[0] for name in names] == ["seed=0", "seed=1", "seed=2"]
    assert not any("logger" in name for name in names)  # not named by the logger=mlflow all of them share


@pytest.mark.parametrize("case", ["store is a folder", "empty name", "deleted experiment"])
def test_an_unusable_mlflow_store_or_experiment_is_one_line_within_seconds(tmp_path, case):
    """Row 10: a store path that is a folder or read-only took about 100 s of retries and 36 lines; a deleted
    experiment was a 117-line traceback; an empty experiment name a traceback."""
    pytest.importorskip("mlflow")
    import mlflow

    store = tmp_path / "store" / "mlflow.db"
    overrides = [*FAST, "logger=mlflow", f"logger.mlflow.tracking_uri=sqlite:///{store}"]
    expected = {
        "store is a folder": f"error: logger.mlflow.tracking_uri: {store} is a folder; name a database file",
        "empty name": "error: logger.mlflow.experiment_name is empty; name the MLflow experiment",
        "deleted experiment": "error: logger.mlflow.experiment_name=pima_lightning: that MLflow experiment "
        "is deleted (in the store's trash); restore it",
    }[case]
    store.parent.mkdir()
    if case == "store is a folder":
        store.mkdir()
    elif case == "empty name":
        overrides.append("logger.mlflow.experiment_name=''")
    else:
        client = mlflow.MlflowClient(f"sqlite:///{store}")
        client.delete_experiment(client.create_experiment("pima_lightning"))
    started = time.monotonic()
    result = run_briefly(
        "pima_lightning.train", *overrides, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    said = result.stderr.strip().splitlines()
    assert len(said) == 1 and said[0].startswith(expected), said


def test_a_resume_checkpoint_with_an_all_zero_random_state_is_one_line(
    named_classes_run, make_config, tmp_path
):
    """Smaller rows: a resume checkpoint whose data-module random state is all zero was a traceback."""
    from pima_lightning.errors import InputError
    from pima_lightning.train import train

    checkpoint = torch.load(named_classes_run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["PimaDataModule"]["torch_rng_state"].zero_()
    crafted = tmp_path / "zero.ckpt"
    torch.save(checkpoint, crafted)
    config = make_config(
        *FAST, "trainer.max_epochs=4", "data.class_names=[healthy,diabetic]", f"ckpt_path={crafted}"
    )
    with pytest.raises(
        InputError, match=r"cannot resume from it \(the data module's torch_rng_state: all zero"
    ):
        train(config)


def test_cv_seeds_have_an_upper_bound(cli, tmp_path):
    """Smaller rows: cv.seeds=1000000 ended in a bad_alloc traceback."""
    result = cli("cv", "cv.seeds=1000000", run_dir=tmp_path / "cv")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: cv.seeds=1000000: expected a whole number from 1 to 1000"


def test_a_tilde_output_is_written_where_it_was_checked(named_classes_run, cli, tmp_path):
    """Smaller rows: output='~/x.csv' was expanded by the check but not by the write."""
    rows = tmp_path / "rows.csv"
    rows.write_text("6,148,72,35,0,33.6,0.627,50\n")
    home = tmp_path / "home"
    home.mkdir()
    checkpoint = named_classes_run / "checkpoints" / "last.ckpt"
    result = subprocess.run(
        [sys.executable, "-m", "pima_lightning.predict", f"ckpt_path={checkpoint}", f"input={rows}",
         "output='~/scored.csv'", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "HOME": str(home)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (home / "scored.csv").read_text().startswith("probability,class\n")
    assert not (tmp_path / "~").exists()


def test_a_refused_file_is_quoted_by_a_few_characters_only(cli, tmp_path):
    """Smaller rows: data.path=/proc/self/environ printed the environment into the error and failure.json."""
    secret = "s3cr3t-value-that-must-not-be-printed"
    result = subprocess.run(
        [sys.executable, "-m", "pima_lightning.train", "data.path=/proc/self/environ",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={"MY_TOKEN": secret, "A_LIST": "x,y,z", **os.environ},  # the secret first: the first "cell"
    )  # fmt: skip
    assert result.returncode == 1 and result.stderr.startswith("error: /proc/self/environ, line 1: ")
    assert "MY_TOKEN" not in result.stderr and secret[:8] not in result.stderr
    assert secret[:8] not in (tmp_path / "run" / "failure.json").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a machine without a GPU gives")
def test_trainer_gpu_without_a_gpu_says_so(cli, tmp_path):
    """Smaller rows: trainer=gpu on a machine without one said only Lightning's "No supported gpu backend"."""
    result = cli("train", "trainer=gpu", run_dir=tmp_path / "run")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: trainer.accelerator=gpu: no CUDA GPU is visible here (torch.cuda.is_available() is False); "
        "train on the CPU with trainer=cpu (or trainer=ddp_cpu for several processes)"
    )


def test_a_monitored_model_checkpoint_composes_and_tests_its_best_epoch(cli, tmp_path):
    """Smaller rows: the template's ``callbacks.model_checkpoint.monitor=val/loss`` did not compose."""
    run_dir = tmp_path / "run"
    result = cli(
        "train", *FAST, "callbacks.model_checkpoint.monitor=val/loss", "data.val_size=0.2", run_dir=run_dir
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["tested_checkpoint"] == str(run_dir / "checkpoints" / "best.ckpt")
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()  # the last epoch's, for evaluate and resume


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.max_epoch=5",
         "error: trainer.max_epoch: no such setting; did you mean trainer.max_epochs or trainer.min_epochs?"),
        ("optimizer=adamw", "error: optimizer=adamw: conf/optimizer/ has no such option; did you mean "
         "optimizer=adam? its options: adam, sgd"),
    ],
)  # fmt: skip
def test_hydras_errors_about_the_command_line_are_one_line(cli, override, expected):
    """Smaller rows: a typo was Hydra's 5 lines suggesting a ``+`` that then fails; an unknown option 9."""
    result = cli("train", override)
    assert result.returncode == 1
    assert result.stderr.strip() == expected
