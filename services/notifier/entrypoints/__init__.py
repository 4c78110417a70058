"""How the notifier is driven: http.py (ops, actions API, Slack buttons), kafka.py (the consumer), runners.py
(the delivery loop, the digest timer), dlq.py (`radar dlq list|replay`)."""
