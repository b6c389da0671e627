"""``NullProfiler``: no profiling, without the cost Lightning's default pays for it on every hook."""

from contextlib import AbstractContextManager, nullcontext

from lightning.pytorch.profilers import PassThroughProfiler


class NullProfiler(PassThroughProfiler):
    """Lightning's ``PassThroughProfiler`` (what a ``Trainer`` without ``profiler=`` uses), whose
    ``profile()`` hands out one shared ``nullcontext`` instead of making a generator-based context
    manager for each call. Lightning wraps every hook it calls in ``profiler.profile(...)``: the
    module's, each callback's, the strategy's, about thirty a training step whether anything is
    profiled or not. Counted with callgrind on the notebook's run, this took an epoch from 251 to 237
    million instructions (bare Lightning's 203 to 196; ``docs/speed.md``). Set as the default
    ``trainer.profiler`` in ``conf/trainer/default.yaml``; ``trainer.profiler=simple`` profiles as usual.
    """

    _nothing = nullcontext()

    def profile(self, action_name: str) -> AbstractContextManager:
        return self._nothing
