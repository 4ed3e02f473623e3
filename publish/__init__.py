"""Publishers: turn a report into what people read (Markdown, JSON, HTML, artifacts)."""
