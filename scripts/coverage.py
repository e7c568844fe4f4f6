"""`sanigrid` commands: coverage."""
