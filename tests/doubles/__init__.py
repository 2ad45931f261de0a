"""Test doubles. Everything in this package is a stand-in for a real tool, used by tests only."""
