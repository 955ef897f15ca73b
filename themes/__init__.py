"""Theme files; a package only so they are shipped and found with importlib.resources."""
