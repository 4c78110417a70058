"""What the signals worker does with its input: records applied in batches (records.py), admitted in order
(intake.py), and the worker that publishes, writes and commits (worker.py)."""
