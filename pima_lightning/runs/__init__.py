"""Run machinery: run folders, atomic writes, signals, loggers, callbacks, records, sweep summaries, resume,
and the work the commands share (training a run, evaluating a checkpoint)."""
