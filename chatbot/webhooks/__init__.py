"""Webhooks: subscriptions, events recorded with the change that caused them,
signed deliveries retried with backoff for a day, and the delivery log."""
