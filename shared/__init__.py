"""What every service shares: schemas, topics, settings, config, database, Kafka and ops helpers."""
