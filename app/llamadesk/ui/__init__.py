"""LlamaDesk ui layer."""

from llamadesk.ui.pyside_sources import keep_no_import_sources

# Before the window's modules are imported, so none of their sources stays in memory.
keep_no_import_sources()
