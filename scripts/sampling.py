"""`sanigrid` commands: sampling."""
