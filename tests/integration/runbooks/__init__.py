"""Runbooks against a loopback Kubernetes, Prometheus and admin endpoint; shared fixtures in conftest.py."""
