"""Domain consoles: the byte channels behind the console view."""
