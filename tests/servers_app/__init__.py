"""The Django project the server tests run under gunicorn, uvicorn and Celery (tests/servers_settings.py)."""
