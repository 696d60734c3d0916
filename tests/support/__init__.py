"""Test helpers shared by several test suites (builders for synthetic evidence)."""
