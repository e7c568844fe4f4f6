"""`sanigrid` commands: demo."""
