"""Backends: one async interface (`base.Backend`), several hosts behind it."""
