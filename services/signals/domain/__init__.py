"""The signals rules as pure functions over plain state: no I/O (see apply.py and rules.py)."""
