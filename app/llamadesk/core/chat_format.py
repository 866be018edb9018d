"""Chat templates: turn a list of messages into the prompt text a model expects.

A GGUF usually carries its own Jinja template (``tokenizer.chat_template``); we render it
in a sandbox, as llama-cpp-python and Hugging Face do, with a budget of operations, time
and output (``core.template_sandbox``), so a hostile template can neither reach Python's
internals nor hang the app or fill its memory. Files without a template, or with one
that does not compile, use a named fallback format from the catalog; a model's own
template that fails while rendering (other than by refusing the conversation with
``raise_exception``) is replaced by that fallback for good, with a warning.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2

# The named formats and the message shape live in a light module (no Jinja) and are
# re-exported here for the callers that name them as this module's.
from llamadesk.core.chat_formats import DEFAULT_FORMAT as DEFAULT_FORMAT
from llamadesk.core.chat_formats import FALLBACK_FORMATS as FALLBACK_FORMATS
from llamadesk.core.chat_formats import ChatMessage as ChatMessage
from llamadesk.core.chat_formats import FallbackFormat as FallbackFormat
from llamadesk.core.template_sandbox import (
    BudgetedSandbox,
    RenderCancelled,
    RenderLimits,
    TemplateBudgetError,
    render_bounded,
)

log = logging.getLogger(__name__)


class ChatTemplateError(Exception):
    """A chat template could not be compiled or rendered."""


class ChatTemplateRefusal(ChatTemplateError):  # noqa: N818 (reads as what happened)
    """The template refused the conversation itself (``raise_exception``), for example a
    system message given to a model without a system role. Not a broken template."""


class ChatTemplateCancelled(ChatTemplateError):  # noqa: N818 (control flow)
    """Rendering stopped because the cancel flag was set (the user pressed Stop)."""




def _raise_exception(message: str) -> None:
    raise ChatTemplateRefusal(f"the chat template refused the conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


#: Real templates are a few kilobytes; a longer one is refused before it is compiled.
MAX_TEMPLATE_CHARS = 1_000_000
#: What one render may use (grown per render with the conversation's size).
DEFAULT_LIMITS = RenderLimits()

_ENV = BudgetedSandbox(trim_blocks=True, lstrip_blocks=True, loader=jinja2.BaseLoader())
_ENV.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)

#: Called with the warning when a template is replaced while rendering.
WarningCallback = Callable[[str], None]


class ChatTemplate:
    """A compiled chat template plus the stop strings that end a reply.

    A model's own template (from ``for_model``) remembers its fallback format: if it fails
    while rendering, or runs past its budget, it switches to the fallback for good, and
    ``warning`` says why (``on_warning`` is called once, too).
    """

    def __init__(self, source: str, name: str, stop: Sequence[str] = (),
                 warning: str | None = None, *, compiled: jinja2.Template,
                 fallback: str | None = None, limits: RenderLimits = DEFAULT_LIMITS) -> None:
        self._source = source
        self._name = name
        self._stop = tuple(stop)
        self._warning = warning
        self._compiled = compiled
        self._fallback = fallback
        self.limits = limits
        self.on_warning: WarningCallback | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ChatTemplate(name={self._name!r}, warning={self._warning!r})"

    @property
    def source(self) -> str:
        """The Jinja source in use."""
        return self._source

    @property
    def supports_tools(self) -> bool:
        """Whether the template hands the model tool definitions (it reads ``tools``)."""
        return "tools" in self._source

    @property
    def name(self) -> str:
        """"model's own", or the fallback format's name."""
        return self._name

    @property
    def stop(self) -> tuple[str, ...]:
        """Strings that end a reply."""
        return self._stop

    @property
    def warning(self) -> str | None:
        """Why the model's own template is not used, or None."""
        return self._warning

    @classmethod
    def compile(cls, source: str, name: str, stop: Sequence[str] = ()) -> ChatTemplate:
        """Compile ``source``; raise ChatTemplateError with a readable reason."""
        return cls(source, name, stop, compiled=_compile(source, name))

    @classmethod
    def named(cls, format_name: str) -> ChatTemplate:
        """A fallback format by name (unknown names raise ChatTemplateError)."""
        fmt = _format(format_name)
        return cls.compile(fmt.template, fmt.name, fmt.stop)

    @classmethod
    def for_model(cls, gguf_template: str | None, fallback: str = DEFAULT_FORMAT) -> ChatTemplate:
        """The model's own template if it has a usable one, else the fallback format.

        A template that does not compile is not fatal: the chat still works with the
        fallback, and ``warning`` says why so the UI can tell the user. One that fails
        later, while rendering, switches to the same fallback then.
        """
        fmt = _format(fallback)
        if gguf_template and gguf_template.strip():
            try:
                return cls(gguf_template, "model's own", compiled=_compile(gguf_template,
                                                                          "model's own"),
                           fallback=fmt.name)
            except ChatTemplateError as exc:
                warning = f"{exc}; using the {fmt.name} format instead"
                log.warning("%s", warning)
                return cls(fmt.template, fmt.name, fmt.stop, warning,
                           compiled=_compile(fmt.template, fmt.name))
        return cls.named(fmt.name)

    def render(
        self,
        messages: Sequence[ChatMessage],
        *,
        bos_token: str = "",
        eos_token: str = "",
        add_generation_prompt: bool = True,
        cancel: threading.Event | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """The prompt text for ``messages`` (with ``tools``: OpenAI tool definitions, for
        a template that offers them to the model, see ``supports_tools``).

        Raises ChatTemplateCancelled when ``cancel`` is set during the render,
        ChatTemplateRefusal when the template refuses the conversation, and
        ChatTemplateError for any other failure of a template without a fallback.
        """
        context: dict[str, Any] = {
            "messages": [dict(m) for m in messages],
            "bos_token": bos_token,
            "eos_token": eos_token,
            "add_generation_prompt": add_generation_prompt,
        }
        if tools:
            context["tools"] = [dict(t) for t in tools]
        size = sum(len(str(m.get("content", ""))) for m in messages) + len(bos_token) \
            + len(eos_token)
        limits = self.limits.for_input(size, len(messages))
        with self._lock:
            compiled, name, fallback = self._compiled, self._name, self._fallback
        try:
            return render_bounded(compiled, context, limits, cancel)
        except ChatTemplateError:
            raise
        except RenderCancelled as exc:
            raise ChatTemplateCancelled("the prompt was not finished: stopped") from exc
        except TemplateBudgetError as exc:
            failure = ChatTemplateError(f"the {name} chat template ran past its budget: {exc}")
            cause: Exception = exc
        except Exception as exc:  # jinja raises many types from user-supplied templates
            failure = ChatTemplateError(f"the {name} chat template failed to render: {exc}")
            cause = exc
        if fallback is None:
            raise failure from cause
        self._replace_with(fallback, failure)
        return self.render(messages, bos_token=bos_token, eos_token=eos_token,
                           add_generation_prompt=add_generation_prompt, cancel=cancel)

    def _replace_with(self, fallback: str, failure: ChatTemplateError) -> None:
        """Use ``fallback`` from now on; warn once."""
        fmt = _format(fallback)
        compiled = _compile(fmt.template, fmt.name)
        with self._lock:
            if self._fallback is None:
                return  # another thread switched first
            warning = f"{failure}; using the {fmt.name} format instead"
            self._source, self._name, self._stop = fmt.template, fmt.name, fmt.stop
            self._compiled, self._fallback, self._warning = compiled, None, warning
            callback = self.on_warning
        log.warning("%s", warning)
        if callback is not None:
            callback(warning)


def _format(format_name: str) -> FallbackFormat:
    fmt = FALLBACK_FORMATS.get(format_name)
    if fmt is None:
        known = ", ".join(sorted(FALLBACK_FORMATS))
        raise ChatTemplateError(f"unknown chat format {format_name!r} (known: {known})")
    return fmt


def _compile(source: str, name: str) -> jinja2.Template:
    if len(source) > MAX_TEMPLATE_CHARS:
        raise ChatTemplateError(f"the {name} chat template is {len(source):,} characters "
                                f"long (limit {MAX_TEMPLATE_CHARS:,})")
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateError as exc:
        raise ChatTemplateError(f"the {name} chat template does not compile: {exc}") from exc
    except (RecursionError, MemoryError, ValueError) as exc:  # absurdly nested source
        raise ChatTemplateError(f"the {name} chat template does not compile: "
                                f"{type(exc).__name__}") from exc
