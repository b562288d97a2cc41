"""Visitors, conversations and messages: the chat itself."""
