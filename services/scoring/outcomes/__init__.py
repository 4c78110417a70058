"""Revenue outcomes: opportunities alerts open and billing or owners close, the revenue ledger, the metrics over it."""
