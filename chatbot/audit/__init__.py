"""The audit log of staff actions: who did what to which object, and when.

One call from any app: `record(actor, "training_data.import", target, **details)`.
"""
