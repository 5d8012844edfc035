"""Deployment helpers (docker-compose, service start-up)."""
