"""Who is asking: dashboard sessions, service tokens, login throttling."""
