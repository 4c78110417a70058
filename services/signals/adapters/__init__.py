"""What the signals worker touches outside itself: Kafka positions and sends, its Faust table, the recovery watch."""
