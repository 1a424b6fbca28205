"""Workarounds for third-party packages that do not fit this machine's stack, each switched on only where needed."""
