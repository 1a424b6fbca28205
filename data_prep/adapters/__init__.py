"""Adapters from public emotion data set annotation formats into the emoreason sample schema."""
