"""`llmxmr eval`: score any survey (ours, another system's Markdown, the reference implementation's JSONL)
against the corpus it was written from, on equal terms."""
