"""Emotion metrics, benchmark protocols, LLM judges, leaderboards and submission files."""
