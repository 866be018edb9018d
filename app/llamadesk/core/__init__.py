"""LlamaDesk core layer."""
