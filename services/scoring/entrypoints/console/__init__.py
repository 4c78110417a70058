"""The web console (/ui): server-rendered pages over the scoring database, behind the same API keys."""
