"""Run folders are never mixed: a Hydra callback that claims a command's run folder (or a multirun's sweep
folder) before Hydra writes anything into it.

Hydra writes ``.hydra/`` (config, overrides) into the run folder before the command starts, and the
command then writes its results there, so a run pointed at a folder that holds another run's results
(``hydra.run.dir=<a finished run>``) would silently replace some of them and leave the rest. Before
that, this callback

- refuses a folder that cannot be made or written in, or whose disk has under 1 MiB free, with one
  line (an ``output_dir`` set apart from the run folder too);
- takes a lock (``<folder>/.lock``, ``flock``) held until the process ends: a second run started in the
  same folder at the same time is refused, naming the first one's process;
- refuses a folder that holds an earlier run (its ``.hydra/``, results or checkpoints), unless the
  command continues that run (``train ckpt_path=<that folder>/checkpoints/...``, ``tune`` resuming its
  study, with ``reuse: true``); a sweep folder that holds an earlier sweep is always refused, so a sweep's
  summary holds its own jobs only.
"""

import fcntl
import os
import shutil
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

LOCK = ".lock"
MIN_FREE_BYTES = 1 << 20  # a default run writes about 0.5 MiB (checkpoint, pictures, TensorBoard events)
_held = []  # the open lock files: a lock lasts as long as this process


class RunFolders(Callback):
    """``hydra.callbacks.run_folders``; ``reuse``: whether the command may continue a run in its folder."""

    def __init__(self, reuse: str = "never") -> None:
        self.reuse = reuse  # "never", "resume" (train: when ckpt_path lies in the folder), "always" (tune)

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        if os.environ.get("LOCAL_RANK", "0") != "0":  # a DDP process Lightning started: its run's folder
            return
        folder = Path(config.hydra.run.dir).absolute()
        claim(folder, "hydra.run.dir")
        if earlier := earlier_run(folder):
            if self.reuse == "always" or (self.reuse == "resume" and _resumes_from(config, folder)):
                return
            resume = (
                f", or continue that run with ckpt_path={folder}/checkpoints/last.ckpt"
                if self.reuse == "resume"
                else ""
            )
            raise SystemExit(
                f"error: hydra.run.dir={folder} holds an earlier run ({earlier}); choose a new folder "
                f"(by default each run gets one){resume}"
            )

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        """An ``output_dir`` other than the run folder must be a folder that can be made and written in."""
        output_dir = config.get("output_dir")
        if output_dir and Path(output_dir).absolute() != Path(config.hydra.runtime.output_dir).absolute():
            make_folder(Path(output_dir).absolute(), "output_dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        folder = Path(config.hydra.sweep.dir).absolute()
        claim(folder, "hydra.sweep.dir")
        if earlier := earlier_run(folder):
            raise SystemExit(
                f"error: hydra.sweep.dir={folder} holds earlier results ({earlier}); choose a new folder "
                "(by default each sweep gets one), so that its summary holds its own jobs only"
            )


def make_folder(folder: Path, setting: str) -> None:
    """Make ``folder`` (and its parents), or exit with one line saying why it cannot be made or written."""
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise SystemExit(f"error: {setting}={folder}: {existing} is not a folder; choose another {setting}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SystemExit(
            f"error: {setting}={folder}: cannot write in {existing} (read-only or not yours); "
            f"choose another {setting}, e.g. {setting}=/tmp/run"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as err:
        raise SystemExit(f"error: {setting}={folder}: {err.strerror}; choose another {setting}") from None
    if free < MIN_FREE_BYTES:
        raise SystemExit(
            f"error: {setting}={folder}: only {free // 1024} KiB free on its disk, and a run writes about "
            f"0.5 MiB; free some space or choose another {setting}"
        )


def claim(folder: Path, setting: str) -> None:
    """Make ``folder`` and lock it for this process, or exit with one line saying why not."""
    make_folder(folder, setting)
    try:
        lock = open(folder / LOCK, "a+")  # noqa: SIM115 (held open until the process ends)
    except OSError as err:
        raise SystemExit(f"error: {setting}={folder}: {err.strerror}; choose another {setting}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise SystemExit(
            f"error: {setting}={folder} is in use by a run still going (process {holder}); wait for it to "
            f"end or choose another {setting}"
        ) from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    _held.append(lock)


def earlier_run(folder: Path) -> str:
    """What in ``folder`` shows an earlier run (its first few entries), or '' for an empty folder."""
    entries = sorted(entry.name for entry in folder.iterdir() if entry.name != LOCK)
    return ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")


def _resumes_from(config: DictConfig, folder: Path) -> bool:
    """Whether the command resumes from a checkpoint inside ``folder``."""
    ckpt_path = config.get("ckpt_path")
    return bool(ckpt_path) and folder in Path(ckpt_path).expanduser().absolute().parents
