"""Reading untrusted files: CSVs, the downloaded dataset, checkpoints (read, checked, never executed)."""
