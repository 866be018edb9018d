"""The local OpenAI-compatible HTTP API (docs/api.md): an ASGI app on uvicorn, on its own
thread with its own event loop, that queues its replies on the one inference worker
beside the window's own."""

# Here rather than in server.py: `llamadesk serve --help` and the window need them
# without importing FastAPI.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8716
