"""A sweep job that trains on several processes (``trainer=ddp_cpu``, ``trainer=ddp``) runs as a single run
would: its extra processes run this job, in its folder, and the next job starts from a clean slate.

Lightning's launcher starts each extra DDP process as ``python -m <module> <sys.argv[1:]>
hydra.run.dir=<HydraConfig's run.dir>``. In a single run that is the same run, in the same folder. In a
multirun job it would be ``-m`` and every sweep value again, in a run folder no job uses: the extra
processes ran other jobs than the first process, or none. The launcher also leaves ``LOCAL_RANK`` and the
other DDP variables in the environment and the process group open, so that the next job of the sweep in
this process would start no processes of its own and talk to the previous job's, long gone.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import read_write

from pima_lightning.runs.hparams import in_multirun

# what Lightning's subprocess launcher sets in its own process's environment
DDP_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def one_sweep_job() -> Iterator[None]:
    """In a multirun job: ``sys.argv`` holds this job's own overrides and Hydra's ``run.dir`` this job's
    folder, so that each extra process runs this job as a single run in its folder; afterwards the process
    group is closed and the environment and both settings are as before. Outside a multirun: nothing."""
    if not in_multirun():
        yield
        return
    hydra = HydraConfig.get()
    argv, run_dir = sys.argv[:], hydra.run.dir
    environment = {name: os.environ.get(name) for name in DDP_VARIABLES}
    sys.argv = [sys.argv[0], *hydra.overrides.task]
    with read_write(hydra.run):
        hydra.run.dir = hydra.runtime.output_dir
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sys.argv = argv
        with read_write(hydra.run):
            hydra.run.dir = run_dir
