"""Raw clips and public annotation formats become validated samples with cached features."""
