"""Summarise a Hydra multirun: one row per job, and jobs that differ only in ``seed`` grouped.

Each job leaves its result in its own directory (``metrics.json`` when it finished, ``failure.json``
when it failed), because under parallel or cluster launchers the jobs run in other processes; the
``SweepSummary`` callback gathers those files in the launching process once every job has ended.
"""

import contextlib
import csv
import io
import json
import logging
import os
import shlex
import signal
import statistics
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf

from pima_lightning.errors import InputError
from pima_lightning.model import SCORES
from pima_lightning.runs.atomic import write_json, write_text
from pima_lightning.runs.exits import error_exit
from pima_lightning.runs.plots import save_figures

log = logging.getLogger(__name__)

METRICS = tuple(f"test/{name}" for name in (*SCORES, "loss"))  # a job's figures in the summaries
FAILURE_FILE = "failure.json"
BASELINE = "test/majority_share"  # accuracy of always predicting the commoner class of the tested rows


def record_failure(job_dir: Path, error: BaseException | str) -> None:
    """Leave the error's first line (or the text given) in ``job_dir`` for the sweep summary."""
    if isinstance(error, BaseException):
        error = InputError.within(error) or error
        first_line = (str(error).strip().splitlines() or [""])[0]
        error = f"{type(error).__name__}: {first_line}"
    try:
        write_json(job_dir / FAILURE_FILE, {"error": error})
    except OSError as err:  # a full disk or a vanished folder: the error itself still gets its one line
        log.warning("could not write %s: %s", job_dir / FAILURE_FILE, err.strerror or err)


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """One row per job directory under ``sweep_dir``, in job order."""
    job_dirs = [path.parent.parent for path in sweep_dir.glob("*/.hydra/overrides.yaml")]
    rows = []
    for job_dir in sorted(job_dirs, key=lambda path: (len(path.name), path.name)):
        overrides = list(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"))
        # quoted as a shell would need them: an override may hold a space ('data.path=/my data.csv')
        row = {"job": job_dir.name, "overrides": shlex.join(overrides), "status": "incomplete", "error": ""}
        if (job_dir / "metrics.json").is_file():
            result = json.loads((job_dir / "metrics.json").read_text())
            row |= {
                "status": "finished",
                **{key: result.get(key) for key in (*METRICS, BASELINE, "epochs", "wall_time_s")},
            }
        elif (job_dir / FAILURE_FILE).is_file():
            row |= {"status": "failed", "error": json.loads((job_dir / FAILURE_FILE).read_text())["error"]}
        rows.append(row)
    return rows


def group_jobs(rows: list[dict]) -> list[dict]:
    """Jobs whose overrides differ only in ``seed=``, with mean, sample std and n of each metric."""
    # name a group by the overrides that vary between jobs, seed aside; the rest are common to all
    settings = [dict(part.partition("=")[::2] for part in shlex.split(row["overrides"])) for row in rows]
    varying = [
        key
        for key in dict.fromkeys(key for job in settings for key in job)
        if key != "seed" and len({job.get(key) for job in settings}) > 1
    ]
    groups: dict[str, list[dict]] = {}
    for row, job in zip(rows, settings, strict=True):
        key = " ".join(f"{name}={job[name]}" for name in varying if name in job)
        groups.setdefault(key, []).append(row)
    summaries = []
    for key, members in groups.items():
        finished = [row for row in members if row["status"] == "finished"]
        summary = {"group": key or "(all jobs)", "n": len(finished), "failed": len(members) - len(finished)}
        for metric in (*METRICS, BASELINE, "wall_time_s"):
            values = [row[metric] for row in finished if row[metric] is not None]
            summary[f"{metric} mean"] = statistics.mean(values) if values else None
            summary[f"{metric} std"] = statistics.stdev(values) if len(values) > 1 else None
        summaries.append(summary)
    return summaries


def format_groups(groups: list[dict]) -> str:
    """The grouped table as aligned text."""
    header = ["group", "n", "failed", "accuracy", "AUROC", "F1", "wall time (s)"]

    def cell(group: dict, metric: str, digits: int) -> str:
        mean, std = group[f"{metric} mean"], group[f"{metric} std"]
        if mean is None:
            return "-"
        return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")

    table = [header] + [
        [
            group["group"],
            str(group["n"]),
            str(group["failed"]),
            cell(group, "test/acc", 4),
            cell(group, "test/auroc", 4),
            cell(group, "test/f1", 4),
            cell(group, "wall_time_s", 1),
        ]
        for group in groups
    ]
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)) for row in table]
    return "\n".join(line.rstrip() for line in lines)


def accuracy_chart(groups: list[dict]) -> Figure:
    """Mean test accuracy per group with the sample standard deviation as error bars, and the accuracy
    of always predicting the majority class of the scored rows (the baseline a model must beat)."""
    shown = [group for group in groups if group["test/acc mean"] is not None]
    figure = Figure(figsize=(max(5, 1.2 * len(shown) + 2), 4), layout="constrained")
    axes = figure.add_subplot()
    positions = range(len(shown))
    axes.errorbar(
        positions,
        [group["test/acc mean"] for group in shown],
        yerr=[group["test/acc std"] or 0 for group in shown],
        fmt="o",
        capsize=6,
        label="test accuracy, mean ± std over seeds",
    )
    for position, group in zip(positions, shown, strict=True):
        if group["test/majority_share mean"] is not None:
            axes.hlines(
                group["test/majority_share mean"],
                position - 0.4,
                position + 0.4,
                colors="grey",
                linestyles="--",
            )
    axes.plot([], [], "--", color="grey", label="majority class (always predicting it)")
    # one override a line: side by side, the names of groups differing in two settings overlapped
    names = ["\n".join(group["group"].split(" ")) + f"\n(n={group['n']})" for group in shown]
    axes.set_xticks(positions, names, fontsize=8)
    axes.set_xlim(-0.6, len(shown) - 0.4)
    axes.set_ylabel("accuracy on the held-out rows")
    # below the axes, not over them: inside, it hid the point of a group as low as its corner
    figure.legend(*axes.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8)
    figure.suptitle("Test accuracy per group of the sweep")
    return figure


def csv_text(rows: list[dict]) -> str:
    """Rows of dicts as CSV text, with every key any row has as a column."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summarize(sweep_dir: Path) -> tuple[list[dict], list[dict]]:
    """Write jobs.csv/json, groups.csv/json, groups.txt and accuracy.png into ``sweep_dir``."""
    rows = collect_jobs(sweep_dir)
    groups = group_jobs(rows)
    write_text(sweep_dir / "jobs.csv", csv_text(rows))
    write_json(sweep_dir / "jobs.json", {"jobs": rows})
    write_text(sweep_dir / "groups.csv", csv_text(groups))
    write_json(sweep_dir / "groups.json", {"groups": groups})
    write_text(sweep_dir / "groups.txt", format_groups(groups) + "\n")
    save_figures({"accuracy": accuracy_chart(groups)}, sweep_dir)
    return rows, groups


def report(sweep_dir: Path) -> tuple[list[dict], list[dict]]:
    """Summarise the sweep and print its table and each job that did not finish; ``(rows, failed)``."""
    rows, groups = summarize(sweep_dir)
    print(f"\nSweep summary ({sweep_dir}):\n{format_groups(groups)}")
    failed = [row for row in rows if row["status"] != "finished"]
    for row in failed:
        print(f"job {row['job']} ({row['overrides']}) {row['status']}: {row['error']}")
    return rows, failed


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (its launcher's workers and theirs), from ``/proc``; none elsewhere."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # a process that ended while listed
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, [])]
        found += frontier
    return found


def _workers(pid: int) -> list[int]:
    """The processes below ``pid`` but joblib's resource tracker, which ends by itself with ``pid`` (killed,
    it is relaunched and prints a traceback after the sweep's last line)."""
    workers = []
    for process in _descendants(pid):
        try:
            command = Path(f"/proc/{process}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in command:
            workers.append(process)
    return workers


def _end_workers(parent: int) -> None:
    """End the sweep's worker processes: joblib's executor shut down as joblib does it (its semaphores and
    folders cleaned up, its resource tracker told), then whatever is left of them killed."""
    with contextlib.suppress(Exception):  # no joblib, or its executor already gone
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True, kill_workers=True)
    for worker in _workers(parent):
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)


SWEEP_PROCESS = "PIMA_SWEEP_PROCESS"  # the launching process's id, for its jobs to know where they run
INTERRUPTED = ".interrupted"  # in the sweep folder while a stopped sweep waits for its running jobs


def launching_process() -> bool:
    """Whether this job runs in the process that launched the sweep (the basic launcher)."""
    return os.environ.get(SWEEP_PROCESS) == str(os.getpid())


def sweep_interrupted(sweep_dir: Path) -> bool:
    """Whether the sweep was stopped by a signal: a job that starts now does not run."""
    return (sweep_dir / INTERRUPTED).exists()


def running_jobs(sweep_dir: Path) -> list[Path]:
    """The job folders that have started and hold no result yet."""
    return [
        path.parent.parent
        for path in sweep_dir.glob("*/.hydra/overrides.yaml")
        if not any((path.parent.parent / name).exists() for name in ("metrics.json", FAILURE_FILE))
    ]


class SweepSummary(Callback):
    """Hydra callback: summarise the sweep when a multirun ends; exit non-zero if any job failed.

    A signal to the launching process of a parallel launcher (``hydra/launcher=joblib``), whose jobs run in
    worker processes, stops the sweep honestly: the workers get the signal (a running job stops at its next
    batch and records that it was interrupted; a job that starts later does not run), the running jobs are
    waited for (``STOP_WAIT_S``), the workers ended, the summary of the jobs that ran written, one line
    says so, and the exit status is 143 (SIGTERM) or 130 (Ctrl-C). Without this the launching process
    ended at once, silently, and its workers trained on. (With the basic launcher the job runs in the
    launching process, whose own handlers do the same.)
    """

    STOP_WAIT_S = 60

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        parent = os.getpid()
        os.environ[SWEEP_PROCESS] = str(parent)

        def stop(signum: int, frame) -> None:
            if os.getpid() != parent:  # a forked worker that kept this handler: the job's own handlers rule
                raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(143)
            (sweep_dir / INTERRUPTED).touch()
            for worker in _workers(parent):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker, signum)
            deadline = time.monotonic() + self.STOP_WAIT_S
            while running_jobs(sweep_dir) and time.monotonic() < deadline:
                time.sleep(0.2)
            _end_workers(parent)
            name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
            with contextlib.suppress(Exception):  # the one line and the exit status come whatever happens
                report(sweep_dir)
            (sweep_dir / INTERRUPTED).unlink(missing_ok=True)
            print(f"error: interrupted by {name}: the sweep stopped, its workers with it; its summary covers "
                  "the jobs that ran", file=sys.stderr, flush=True)  # fmt: skip
            raise SystemExit(143 if signum == signal.SIGTERM else 130)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            rows, failed = report(sweep_dir)
        except Exception as err:  # a bug here must not pass as a finished sweep (Hydra makes it a warning)
            log.exception("Sweep summary failed")
            raise error_exit(f"the sweep's summary failed ({type(err).__name__}: {err})") from None
        if failed:
            # SystemExit passes through Hydra's callback wrapper, which turns exceptions into warnings
            raise error_exit(
                f"{len(failed)} of {len(rows)} jobs did not finish; see {sweep_dir / 'jobs.csv'}"
            )
