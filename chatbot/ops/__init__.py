"""Keeping the promise that an acknowledged message is answered: recovery of
unanswered messages, worker heartbeats, health, supervision of `serve`'s
children, and the pools and limits that keep faults from spreading."""
