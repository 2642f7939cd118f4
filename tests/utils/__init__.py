"""Helpers shared by the tests (databases on both engines, waiting)."""
