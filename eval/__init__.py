"""Emotion metrics, LLM judges and leaderboard files (built in a later issue)."""
