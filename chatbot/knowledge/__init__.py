"""The help center: articles and their passages, imported from files and exported
back to Markdown. Retrieval itself lives in inference.knowledge (no Django)."""
