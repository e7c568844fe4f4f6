"""`sanigrid` commands: problems."""
