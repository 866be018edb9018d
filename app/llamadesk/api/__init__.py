"""The local OpenAI-compatible HTTP API (docs/api.md): an ASGI app on uvicorn, on its own
thread with its own event loop, that queues its replies on the one inference worker
beside the window's own."""
