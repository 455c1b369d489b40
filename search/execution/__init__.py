"""The execution: one trial run and recorded (objective, runs, record), the worker processes and
their supervisor, the hardware they use, and the storage a study lives in (identity, liveness)."""
