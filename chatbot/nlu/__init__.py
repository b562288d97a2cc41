"""Intents, training data, responses, model versions and feedback for retraining."""
