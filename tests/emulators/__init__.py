"""Local stand-ins for cloud services, started by session-scoped fixtures (``tests/emulators/google.py``)."""
