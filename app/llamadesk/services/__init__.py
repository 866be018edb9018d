"""LlamaDesk services layer."""
