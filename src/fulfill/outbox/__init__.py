"""The transactional outbox: events written with the change that caused them, relayed by a task."""
