"""Training: one resumable loop (`loop.fit`) shared by every stage that trains weights."""
