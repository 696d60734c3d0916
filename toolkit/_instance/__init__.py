"""Internals of :mod:`toolkit.instance` (the ceremony config template)."""
