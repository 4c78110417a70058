"""The notifier's pure rules, one module per job: messages, routing, fatigue, quiet hours, retry, address guard."""
