"""LlamaDesk ui layer."""
