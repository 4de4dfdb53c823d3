"""Async catalogue jobs: queue, runner, delivery, webhooks."""
