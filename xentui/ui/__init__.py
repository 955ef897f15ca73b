"""The Textual screen: the only package that imports textual (an import-linter contract checks it)."""
