"""The notifier's handlers: records.py (each consumed record), commands.py (the API, Slack buttons, digest and
`radar dlq replay`), delivery.py (one due delivery through its channel)."""
