"""`sanigrid` commands: web."""
