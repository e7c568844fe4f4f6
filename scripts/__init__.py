"""The `sanigrid` command line."""
