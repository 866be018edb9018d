"""The command line, `llamadesk`: one module per command group beside `ui/` and `api/`.

`main.py` parses and dispatches (the window by default); each group's module is imported
only when its command runs, so parsing stays light. Nothing is imported here.
"""
