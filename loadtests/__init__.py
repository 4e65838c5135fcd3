"""Locust users, load shapes and the spike benchmark runner for the booth survey."""
