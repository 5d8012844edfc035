"""Celery side: the app factory, the tasks and the executors."""
