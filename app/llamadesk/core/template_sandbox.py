"""A Jinja sandbox with a budget, for chat templates that come inside model files.

Jinja's ``ImmutableSandboxedEnvironment`` stops a template from reaching Python's
internals, but not from running forever or filling memory: two nested
``range(100000)`` loops are allowed, and so is ``'x' * 10**9``. A Python thread cannot
be killed, and a process per render is too slow (the prompt planner renders several
times per message), so the budget is enforced from inside the sandbox:

- every function, method, macro and filter call, every step of a ``for`` loop (the
  loop's iterable is wrapped at compile time) and every ``range`` step counts as one
  operation; past ``max_operations``, or ``max_seconds`` of wall time, the render stops;
- the same checks poll a cancel flag, so the user's Stop reaches a render too;
- operators and filters that can multiply sizes (``*``, ``**``, ``+``, ``%``, ``~``,
  ``join``, ``replace``, ``indent``, format widths, block captures) are checked before
  they allocate, and the output is counted as it is produced.

What a render may use comes from ``RenderLimits``; a render that passes one raises
``TemplateBudgetError`` (``RenderCancelled`` for a cancel).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import wraps
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg, pass_context


class TemplateBudgetError(Exception):
    """A render used more operations, time, output or memory than it may."""


class RenderCancelled(Exception):  # noqa: N818 (control flow, not a failure)
    """The render stopped because its cancel flag was set."""


@dataclass(frozen=True)
class RenderLimits:
    """What one render may use. Sizes are in characters (or list items)."""

    max_operations: int = 2_000_000
    max_seconds: float = 5.0
    max_output: int = 4_000_000
    #: Integers passed to calls and filters (widths, counts) and format widths.
    max_size_argument: int = 100_000
    #: A bigger integer result (``10 ** 10 ** 10``) would take minutes to compute.
    max_int_bits: int = 4096

    def for_input(self, input_chars: int, n_messages: int) -> RenderLimits:
        """Limits that grow with the conversation, so a long chat is never refused."""
        return RenderLimits(
            max_operations=self.max_operations + 1_000 * n_messages,
            max_seconds=self.max_seconds,
            max_output=self.max_output + 8 * input_chars + 2_000 * n_messages,
            max_size_argument=self.max_size_argument,
            max_int_bits=self.max_int_bits,
        )


class _Budget:
    """The running count of one render."""

    _TIME_EVERY = 256  # operations between clock reads

    def __init__(self, limits: RenderLimits, cancel: threading.Event | None) -> None:
        self.limits = limits
        self.cancel = cancel
        self.operations = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def tick(self) -> None:
        self.operations += 1
        if self.cancel is not None and self.cancel.is_set():
            raise RenderCancelled("the render was cancelled")
        if self.operations > self.limits.max_operations:
            raise TemplateBudgetError(
                f"it took more than {self.limits.max_operations:,} operations")
        if self.operations % self._TIME_EVERY == 0 and time.monotonic() > self.deadline:
            raise TemplateBudgetError(
                f"it ran for more than {self.limits.max_seconds:g} seconds")

    def size(self, n: int, what: str) -> None:
        if n > self.limits.max_output:
            raise TemplateBudgetError(
                f"{what} would be {n:,} characters long (limit {self.limits.max_output:,})")

    def argument(self, value: Any) -> None:
        if (isinstance(value, int) and not isinstance(value, bool)
                and abs(value) > self.limits.max_size_argument):
            raise TemplateBudgetError(
                f"it passed {value:,} as a size (limit {self.limits.max_size_argument:,})")


_local = threading.local()


def _budget() -> _Budget:
    budget: _Budget | None = getattr(_local, "budget", None)
    if budget is None:
        # Templates of this environment only render through render_bounded().
        raise TemplateBudgetError("rendered outside a budget")
    return budget


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


_PRINTF_WIDTH = re.compile(r"%[#0\- +]*(\d*)(?:\.(\d*))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")
_DIGITS = re.compile(r"\d+")


def _check_format_string(fmt: str, budget: _Budget) -> None:
    """Refuse format strings whose widths or precisions would build huge text."""
    for match in _PRINTF_WIDTH.finditer(fmt):
        for group in match.groups():
            if group:
                budget.argument(int(group))
    for match in _BRACE_SPEC.finditer(fmt):
        for digits in _DIGITS.findall(match.group(1)):
            budget.argument(int(digits))


def _check_binop(operator: str, left: Any, right: Any, budget: _Budget) -> None:
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            bits = max(abs(left).bit_length(), 1) * right
            if abs(left) > 1 and bits > budget.limits.max_int_bits:
                raise TemplateBudgetError(f"{left} ** {right} is too large a number")
    elif operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if abs(left).bit_length() + abs(right).bit_length() > budget.limits.max_int_bits:
                raise TemplateBudgetError("a product is too large a number")
        elif isinstance(left, int) and _sized(right):
            budget.size(_sized(right) * max(left, 0), "a repeated value")
        elif isinstance(right, int) and _sized(left):
            budget.size(_sized(left) * max(right, 0), "a repeated value")
    elif operator == "+":
        budget.size(_sized(left) + _sized(right), "a joined value")
    elif operator == "%" and isinstance(left, str):
        _check_format_string(left, budget)
        for value in right if isinstance(right, tuple) else (right,):
            budget.argument(value)


def _estimate_call(obj: Any, args: tuple[Any, ...], budget: _Budget) -> None:
    """Checks before calling a str method that can multiply sizes."""
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(target, "__name__", "")
    if name in ("format", "format_map"):
        _check_format_string(owner, budget)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) \
            and isinstance(args[1], str):
        hits = len(owner) + 1 if not args[0] else owner.count(args[0])
        budget.size(len(owner) + hits * max(len(args[1]) - len(args[0]), 0),
                    "a replaced string")
    elif name == "join" and args and isinstance(args[0], list | tuple):
        parts = args[0]
        budget.size(sum(_sized(p) for p in parts) + len(owner) * len(parts), "a joined string")
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        budget.size(len(owner) + owner.count("\t") * size, "an expanded string")


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter so it counts, checks its size arguments and its result.

    The wrapper asks for the context, which also keeps Jinja from running the filter at
    compile time on constant arguments (outside any budget)."""
    pass_arg = _PassArg.from_obj(func)

    @pass_context
    @wraps(func)
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.tick()
        for arg in (*args, *kwargs.values()):
            budget.argument(arg)
        if name == "format" and isinstance(value, str):
            _check_format_string(value, budget)
        elif name == "indent" and isinstance(value, str):
            width = args[0] if args else kwargs.get("width", 4)
            width = len(width) if isinstance(width, str) else width
            if isinstance(width, int):
                budget.size(len(value) + (value.count("\n") + 1) * width, "an indented string")
        elif name == "join" and isinstance(value, list | tuple):
            sep = args[0] if args and isinstance(args[0], str) else ""
            budget.size(sum(_sized(v) for v in value) + len(sep) * len(value),
                        "a joined string")
        elif name == "replace" and isinstance(value, str) and len(args) >= 2:
            _estimate_call(value.replace, args, budget)
        if pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        budget.size(_sized(result), f"the result of the {name} filter")
        return result

    return guarded


class _CountedRange:
    """A ``range`` that counts each step taken through it against the budget."""

    def __init__(self, steps: range) -> None:
        self._steps = steps

    def __iter__(self) -> Iterator[int]:
        budget = _budget()
        for i in self._steps:
            budget.tick()
            yield i

    def __reversed__(self) -> Iterator[int]:
        return iter(_CountedRange(self._steps[::-1]))

    def __len__(self) -> int:
        return len(self._steps)

    def __contains__(self, value: object) -> bool:
        return value in self._steps

    def __getitem__(self, index: int | slice) -> int | _CountedRange:
        if isinstance(index, slice):
            return _CountedRange(self._steps[index])
        return self._steps[index]

    def __repr__(self) -> str:
        return repr(self._steps)


class _BudgetedCodeGenerator(CodeGenerator):
    """Compiles ``for`` loops so each step is counted, and ``~`` so its size is checked."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        counted = nodes.Call(nodes.EnvironmentAttribute("counted_steps"), [node.iter], [],
                             None, None, lineno=node.lineno)
        super().visit_For(nodes.For(node.target, counted, node.body, node.else_, node.test,
                                    node.recursive, lineno=node.lineno), frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BudgetedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus the budget of the render running on this thread."""

    code_generator_class = _BudgetedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = self.counted_range
        # Generates pages of text from a number; no chat template needs it.
        self.globals.pop("lipsum", None)
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}

    # Block captures and macro bodies are joined with this.
    def concat(self, parts: Iterable[Any]) -> str:
        items = [str(p) for p in parts]
        _budget().size(sum(len(p) for p in items), "a captured block")
        return "".join(items)

    def checked_concat(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b``: the joined size is checked before it is built."""
        budget = _budget()
        budget.tick()
        items = [str(p) for p in parts]
        budget.size(sum(len(p) for p in items), "a joined string")
        return "".join(items)

    def counted_steps(self, iterable: Any) -> Iterator[Any]:
        """The steps of a ``for`` loop, each counted."""
        budget = _budget()
        for item in iterable:
            budget.tick()
            yield item

    def counted_range(self, *args: int) -> _CountedRange:
        """``range`` whose steps are counted (loops with empty bodies call nothing)."""
        steps = range(*args)
        if len(steps) > _budget().limits.max_size_argument:
            raise TemplateBudgetError(f"range of {len(steps):,} numbers (limit "
                                      f"{_budget().limits.max_size_argument:,})")
        return _CountedRange(steps)

    def call(__self, __context: Context, __obj: Any, *args: Any,  # noqa: N805
             **kwargs: Any) -> Any:
        """Every call from a template: counted, its size arguments and result checked."""
        budget = _budget()
        budget.tick()
        if __obj not in (__self.counted_range, __self.counted_steps):
            for arg in (*args, *kwargs.values()):
                budget.argument(arg)
            _estimate_call(__obj, args, budget)
        result = super().call(__context, __obj, *args, **kwargs)
        budget.size(_sized(result), "a call's result")
        return result

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``*``, ``**``, ``+`` and ``%``: checked before they can allocate."""
        budget = _budget()
        budget.tick()
        _check_binop(operator, left, right, budget)
        return super().call_binop(context, operator, left, right)


def render_bounded(template: jinja2.Template, context: dict[str, Any], limits: RenderLimits,
                   cancel: threading.Event | None = None) -> str:
    """Render ``template`` (compiled by a ``BudgetedSandbox``) within ``limits``.

    Raises TemplateBudgetError past a limit, RenderCancelled when ``cancel`` is set, and
    whatever the template itself raises otherwise.
    """
    budget = _Budget(limits, cancel)
    previous = getattr(_local, "budget", None)
    _local.budget = budget
    try:
        parts: list[str] = []
        total = 0
        for chunk in template.generate(**context):
            total += len(chunk)
            budget.size(total, "the prompt")
            parts.append(chunk)
            budget.tick()
        return "".join(parts)
    finally:
        _local.budget = previous
