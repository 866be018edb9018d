"""Names the GUI thread's largest blocks while a reply streams: chosen methods of the
app are wrapped so that every call on the GUI thread records its own CPU time
(``time.thread_time``) and wall interval. ``bench/gui_profile.py --blocks`` installs it
before the window is built (slots are bound when they are connected) and prints, per
method, its calls and its largest CPU, and which calls fell in the heartbeat's largest
CPU gaps.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: module:Class.method of what runs on the GUI thread around a send and a reply's end.
METHODS = (
    "llamadesk.ui.chat_pane:ChatPane._send",
    "llamadesk.ui.chat_pane:ChatPane._sync_send_button",
    "llamadesk.ui.chat_pane:ChatPane._on_context_changed",
    "llamadesk.ui.chat_pane:ChatPane._on_changes",
    "llamadesk.ui.sidebar:ConversationSidebar._on_changes",
    "llamadesk.ui.conversation_list:ConversationListModel.refresh",
    "llamadesk.ui.documents_bar:DocumentsBar.refresh",
    "llamadesk.ui.message_view:MessageView.scroll_to_end",
    "llamadesk.ui.status_bar:AppStatusBar.show_reply_speed",
    "llamadesk.services.chat_documents:ChatDocuments.passages",
    "llamadesk.services.inference:InferenceService.generate",
    "llamadesk.services.chat:ChatController.send",
    "llamadesk.services.chat_session:ChatSession.add_question",
    "llamadesk.services.chat_session:ChatSession.request",
    "llamadesk.core.branch_reader:BranchReader.branch",
    "llamadesk.services.chat:ChatController._ask",
    "llamadesk.services.chat:ChatController._on_text",
    "llamadesk.services.chat:ChatController._store_reply",
    "llamadesk.services.chat_session:ChatSession.store_reply",
    "llamadesk.services.chat:ChatController._on_context_planned",
    "llamadesk.ui.chat_pane:ChatPane._on_question_added",
    "llamadesk.ui.chat_pane:ChatPane._on_reply_started",
    "llamadesk.ui.chat_pane:ChatPane._on_reply_finished",
    "llamadesk.ui.main_window:MainWindow._on_message_added",
    "llamadesk.ui.message_model:MessageListModel.finish_reply",
    "llamadesk.ui.message_view:MessageDelegate.document",
    "llamadesk.ui.message_view:MessageDelegate.paint",
    "llamadesk.ui.message_view:MessageDelegate.sizeHint",
    "llamadesk.ui.message_view:MessageView.paintEvent",
    "llamadesk.services.chat:ChatController._request_reply",
    "llamadesk.services.resolver:ModelResolver.__call__",
    "llamadesk.services.chat_documents:ChatDocuments.embedding_model",
    "llamadesk.ui.message_view:MessageView.doItemsLayout",
    "llamadesk.ui.message_view:MessageView.updateGeometries",
    "llamadesk.ui.message_view:MessageView.timerEvent",
    "llamadesk.ui.message_view:MessageView.rowsInserted",
    "llamadesk.ui.message_view:MessageView.dataChanged",
    "llamadesk.ui.message_view:MessageView._scroll_if_following",
)


@dataclass
class Blocks:
    """Every wrapped call on the GUI thread: (name, wall start, wall end, CPU s)."""

    calls: list[tuple[str, float, float, float]] = field(default_factory=list)
    recording: bool = False

    def install(self, methods: tuple[str, ...] = METHODS) -> None:
        gui = threading.get_ident()  # installed on the thread that will run the window
        for spec in methods:
            module_name, qualname = spec.split(":")
            cls_name, method = qualname.split(".")
            cls = getattr(importlib.import_module(module_name), cls_name)
            setattr(cls, method, self._wrap(qualname, getattr(cls, method), gui))

    def _wrap(self, name: str, fn: Callable[..., Any], gui: int) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.recording or threading.get_ident() != gui:
                return fn(*args, **kwargs)
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.calls.append((name, wall, time.perf_counter(),
                                   time.thread_time() - cpu))
        return timed

    def report(self, gaps: list[tuple[float, float, float]]) -> str:
        """Per method: calls, largest and total CPU and largest wall (ms); then the
        calls inside each of ``gaps`` (wall end, wall ms, CPU ms of the heartbeat's
        largest CPU gaps)."""
        by_name: dict[str, list[tuple[float, float]]] = {}
        for name, s, e, cpu in self.calls:
            by_name.setdefault(name, []).append((cpu * 1000, (e - s) * 1000))
        lines = [f"  {name:42s} {len(v):5d} calls, largest {max(c for c, _w in v):6.2f} ms, "
                 f"total {sum(c for c, _w in v):7.1f} ms CPU; largest wall "
                 f"{max(w for _c, w in v):6.2f} ms"
                 for name, v in sorted(by_name.items(), key=lambda kv: -max(kv[1])[0])]
        for end, wall_ms, cpu_ms in gaps:
            start = end - wall_ms / 1000
            inside = [(n, c * 1000) for n, s, e, c in self.calls if s < end and e > start]
            summed: dict[str, list[float]] = {}
            for n, c in inside:  # nested calls count in each caller too
                summed.setdefault(n, []).append(c)
            top = sorted(summed.items(), key=lambda nc: -sum(nc[1]))[:8]
            lines.append(f"  gap {wall_ms:.1f}/{cpu_ms:.1f} ms: "
                         + ", ".join(f"{n} {sum(c):.2f}" + (f" ({len(c)})" if len(c) > 1 else "")
                                     for n, c in top))
        return "\n".join(lines)
