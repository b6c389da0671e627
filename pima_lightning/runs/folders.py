"""Run folders are never mixed: a Hydra callback that claims every folder a command writes into (the run
folder, a sweep's folder, each sweep job's folder, and an ``output_dir`` set apart from them), through
one mechanism, before the command writes anything there.

A command pointed at a folder that holds another run's results would silently replace some of them and
leave the rest. Claiming a folder

- refuses one that cannot be made or written in, or whose disk has under 1 MiB free, with one line;
- refuses one that holds an earlier run (its ``.hydra/``, results or checkpoints) before touching it,
  unless the command continues that run (``reuse``): ``train ckpt_path=<that folder>/checkpoints/...``
  (``resume``), ``tune`` resuming the study in it (``study``); a sweep's folder that holds an earlier
  sweep is always refused, so a sweep's summary holds its own jobs only, and so is a sweep job's folder
  that holds another job's results (``hydra.sweep.subdir`` naming one folder for several jobs);
- takes a lock (``<folder>/.lock``, ``flock``) held until the job ends: a second command started in the
  same folder at the same time, through any of these doors, is refused, naming the first one's process.

A DDP process that Lightning starts (``LOCAL_RANK`` > 0) runs inside its first process's claimed
folders and claims nothing.
"""

import fcntl
import os
import shutil
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pima_lightning.runs.exits import error_exit

LOCK = ".lock"
MIN_FREE_BYTES = 1 << 20  # a default run writes about 0.5 MiB (checkpoint, pictures, TensorBoard events)
STUDY = "study.db"  # what a tune folder holds: rerunning tune there resumes its study
_held = []  # the open lock files of the process's first job (a single run holds them until it exits)


class RunFolders(Callback):
    """``hydra.callbacks.run_folders``; ``reuse``: which earlier run the command may continue in its
    folders: ``never``, ``resume`` (train: the one ``ckpt_path`` lies in) or ``study`` (tune: a folder
    holding its ``study.db``)."""

    def __init__(self, reuse: str = "never") -> None:
        if reuse not in ("never", "resume", "study"):
            raise ValueError(f"reuse={reuse!r}: expected never, resume or study")
        self.reuse = reuse
        self.claimed: set[Path] = set()
        self.job_locks: list = []  # a sweep job's locks, released when the job ends
        self.records: dict[Path, tuple] = {}  # a sweep job's folder -> the Hydra record it wrote there

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        if not _first_process():
            return
        run_dir = Path(config.hydra.run.dir).absolute()
        self._claim(config, run_dir, "hydra.run.dir", run_dir)
        output_dir = _resolved_output_dir(config)  # None while it follows hydra.runtime.output_dir
        if output_dir is not None and output_dir != run_dir:
            self._claim(config, output_dir, "output_dir", run_dir)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if not _first_process():
            return
        folder = Path(config.hydra.sweep.dir).absolute()
        claim(folder, "hydra.sweep.dir", may_continue=False, kept=_held)
        self.claimed.add(folder)

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        """A sweep job's folder (Hydra has written only this job's record in it) and an ``output_dir``
        set apart from the job's folder."""
        if not _first_process():
            return
        job_dir = Path(config.hydra.runtime.output_dir).absolute()
        if job_dir not in self.claimed:  # a sweep job
            if others := earlier_run(job_dir, ignored=hydra_record(config)):
                self._restore_record(job_dir)
                raise error_exit(
                    f"hydra.sweep.subdir puts job {config.hydra.job.num} in {job_dir}, which holds "
                    f"another job's results ({others}); keep ${{hydra.job.num}} in hydra.sweep.subdir so "
                    "that each job gets a folder of its own"
                )
            claim(job_dir, "hydra.sweep.subdir", may_continue=True, kept=self.job_locks)
            self.claimed.add(job_dir)
        output_dir = Path(config.output_dir).absolute()
        if output_dir not in self.claimed:
            self._claim(config, output_dir, "output_dir", job_dir, kept=self.job_locks)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        """Release the job's locks (the next job of a sweep may run in this process), and remember the
        record Hydra wrote in a sweep job's folder, to put it back should a later job overwrite it."""
        if not _first_process():
            return
        job_dir = Path(config.hydra.runtime.output_dir).absolute()
        self.records[job_dir] = (job_return.cfg, job_return.hydra_cfg, job_return.overrides)
        for lock in self.job_locks:
            lock.close()
        self.job_locks.clear()
        self.claimed -= {job_dir, Path(config.output_dir).absolute()}

    def _claim(self, config: DictConfig, folder: Path, setting: str, run_dir: Path, kept=None) -> None:
        may_continue = self._may_continue(config, folder, run_dir)
        locks = _held if kept is None else kept
        claim(folder, setting, may_continue, kept=locks, resume_hint=self.reuse == "resume")
        self.claimed.add(folder)

    def _may_continue(self, config: DictConfig, folder: Path, run_dir: Path) -> bool:
        """Whether the command continues the earlier run in ``folder``: the folder holds what it continues
        (the checkpoint it resumes, the study), or it is the run folder of such a run set apart from the
        results and holds nothing but Hydra's record."""
        if self.reuse == "never":
            return False
        output_dir = _resolved_output_dir(config) or run_dir

        def continued(place: Path) -> bool:
            if self.reuse == "study":
                return (place / STUDY).is_file()
            ckpt_path = config.get("ckpt_path")
            return bool(ckpt_path) and place in Path(ckpt_path).expanduser().absolute().parents

        if continued(folder):
            return True
        return (
            folder == run_dir != output_dir
            and continued(output_dir)
            and not earlier_run(folder, hydra_record(config))
        )

    def _restore_record(self, job_dir: Path) -> None:
        """Write back the record of the job that ran in ``job_dir``, which Hydra has just overwritten."""
        if job_dir not in self.records:
            return
        task, hydra_config, overrides = self.records[job_dir]
        for name, content in (
            ("config.yaml", task),
            ("hydra.yaml", hydra_config),
            ("overrides.yaml", overrides),
        ):
            OmegaConf.save(OmegaConf.create(content), job_dir / ".hydra" / name)


def hydra_record(config: DictConfig) -> set[str]:
    """What Hydra writes into a job's folder before the command starts: ``.hydra/`` and the job's log."""
    return {".hydra", f"{config.hydra.job.name}.log"}


def _first_process() -> bool:
    """False in a DDP process Lightning started, which runs inside its first process's folders."""
    return os.environ.get("LOCAL_RANK", "0") == "0"


def _resolved_output_dir(config: DictConfig) -> Path | None:
    """``output_dir`` when it can be resolved now (it was set), else None (it follows the run folder)."""
    try:
        output_dir = config.get("output_dir")
    except OmegaConfBaseException:  # ${hydra:runtime.output_dir} before Hydra has set it
        return None
    return Path(output_dir).expanduser().absolute() if output_dir else None


def make_folder(folder: Path, setting: str) -> None:
    """Make ``folder`` (and its parents), or exit with one line saying why it cannot be made or written."""
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise error_exit(f"{setting}={folder}: {existing} is not a folder; choose another {setting}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise error_exit(
            f"{setting}={folder}: cannot write in {existing} (read-only or not yours); "
            f"choose another {setting}, e.g. {setting}=/tmp/run"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as err:
        raise error_exit(f"{setting}={folder}: {err.strerror}; choose another {setting}") from None
    if free < MIN_FREE_BYTES:
        raise error_exit(
            f"{setting}={folder}: only {free // 1024} KiB free on its disk, and a run writes about "
            f"0.5 MiB; free some space or choose another {setting}"
        )


def claim(folder: Path, setting: str, may_continue: bool, kept: list, resume_hint: bool = False) -> None:
    """Make ``folder`` and lock it for this process (the lock joins ``kept``), or exit with one line saying
    why not: it cannot be made, another process holds it, or it holds an earlier run that the command
    does not continue (checked before the lock file is made, and again once the lock is held)."""
    make_folder(folder, setting)
    if not may_continue and not (folder / LOCK).exists():  # refused before anything is made in it
        _refuse_earlier_run(folder, setting, resume_hint)
    try:
        lock = open(folder / LOCK, "a+")  # noqa: SIM115 (held open until the job ends)
    except OSError as err:
        raise error_exit(f"{setting}={folder}: {err.strerror}; choose another {setting}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise error_exit(
            f"{setting}={folder} is in use by a run still going (process {holder}); wait for it to "
            f"end or choose another {setting}"
        ) from None
    if not may_continue:
        try:
            _refuse_earlier_run(folder, setting, resume_hint)  # a run that finished while we waited
        except SystemExit:
            lock.close()
            raise
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    kept.append(lock)


def _refuse_earlier_run(folder: Path, setting: str, resume_hint: bool) -> None:
    if earlier := earlier_run(folder):
        resume = (
            f", or continue that run with ckpt_path={folder}/checkpoints/last.ckpt" if resume_hint else ""
        )
        fresh = (
            "(by default each sweep gets one), so that its summary holds its own jobs only"
            if setting == "hydra.sweep.dir"
            else "(by default each run gets one)"
        )
        what = "earlier results" if setting == "hydra.sweep.dir" else "an earlier run"
        raise error_exit(f"{setting}={folder} holds {what} ({earlier}); choose a new folder {fresh}{resume}")


def earlier_run(folder: Path, ignored: set[str] = frozenset()) -> str:
    """What in ``folder`` shows an earlier run (its first few entries, but the lock and ``ignored``), or ''
    for a folder without one."""
    if not folder.is_dir():
        return ""
    entries = sorted(entry.name for entry in folder.iterdir() if entry.name not in {LOCK, *ignored})
    return ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
