"""Hostile chat templates: each one that would hang, fill memory or reach Python's
internals ends as a budget error (or a blocked access), quickly, and legitimate
templates, long chats included, still render."""

from __future__ import annotations

import threading

import jinja2
import pytest

from llamadesk.core.template_sandbox import (
    BudgetedSandbox,
    RenderCancelled,
    RenderLimits,
    TemplateBudgetError,
    render_bounded,
)

ENV = BudgetedSandbox(trim_blocks=True, lstrip_blocks=True, loader=jinja2.BaseLoader())
MESSAGES = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]


def render(source: str, limits: RenderLimits | None = None,
           cancel: threading.Event | None = None, **context: object) -> str:
    template = ENV.from_string(source)
    return render_bounded(template, {"messages": MESSAGES, **context},
                          limits or RenderLimits(), cancel)


# Each of these, unbounded, hangs the process or asks for gigabytes.
HOSTILE = {
    "nested ranges": "{% for i in range(100000) %}{% for j in range(100000) %}"
                     "{% endfor %}{% endfor %}",
    "nested loops over a built list": "{% set xs = range(100000)|list %}"
                                      "{% for a in xs %}{% for b in xs %}{% endfor %}"
                                      "{% endfor %}",
    "repeat a string": "{{ 'x' * 10**9 }}",
    "repeat a string, constant": "{{ 'x' * 1000000000 }}",
    "repeat a list": "{{ messages * 1000000000 }}",
    "huge power": "{{ 10 ** 100000000 }}",
    "squaring in a loop": "{% set ns = namespace(n=3) %}{% for i in range(64) %}"
                          "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}",
    "doubling with ~": "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                       "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "doubling with +": "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                       "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
    "doubling a captured block": "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                                 "{% set block %}{{ ns.s }}{{ ns.s }}{% endset %}"
                                 "{% set ns.s = block %}{% endfor %}{{ ns.s }}",
    "printf width": "{{ '%1000000000s' % 'x' }}",
    "printf star width": "{{ '%*s' % (1000000000, 'x') }}",
    "format width": "{{ '{:>1000000000}'.format('x') }}",
    "format filter width": "{{ '%1000000000s'|format('x') }}",
    "center filter": "{{ 'x'|center(1000000000) }}",
    "ljust method": "{{ 'x'.ljust(1000000000) }}",
    "indent filter": "{{ ('\n' * 99999)|indent(99999) }}",
    "replace into every gap": "{{ ('x' * 99999).replace('', 'y' * 99999) }}",
    "replace filter": "{{ ('x' * 99999)|replace('', 'y' * 99999) }}",
    "join with a huge separator": "{{ (range(999)|list|map('string')|list)"
                                  "|join('y' * 99999) }}",
    "join method": "{{ ('y' * 99999).join(range(999)|list|map('string')|list) }}",
    "expandtabs": "{{ ('\t' * 99999).expandtabs(99999) }}",
    "endless output": "{% for i in range(100000) %}{% for j in range(100000) %}"
                      "{{ 'x' * 1000 }}{% endfor %}{% endfor %}",
    "range too long": "{% for i in range(10**9) %}{% endfor %}",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_template_is_stopped_by_the_budget(source: str) -> None:
    with pytest.raises(TemplateBudgetError):
        render(source, RenderLimits(max_operations=200_000))


def test_the_default_budget_stops_two_nested_ranges() -> None:
    """The hang a model file could ship with, under the limits the app uses."""
    with pytest.raises(TemplateBudgetError, match="operations"):
        render(HOSTILE["nested ranges"])


def test_the_time_budget_stops_a_render_the_operation_count_allows() -> None:
    with pytest.raises(TemplateBudgetError, match="seconds"):
        render(HOSTILE["nested ranges"], RenderLimits(max_operations=10**12, max_seconds=0.2))


def test_a_set_cancel_flag_stops_a_render() -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RenderCancelled):
        render(HOSTILE["nested ranges"], cancel=cancel)


def test_cancel_from_another_thread_reaches_a_running_render() -> None:
    cancel = threading.Event()
    started = threading.Event()

    def note_start() -> str:
        started.set()
        return ""

    stopper = threading.Thread(target=lambda: started.wait(30) and cancel.set())
    stopper.start()
    try:
        with pytest.raises(RenderCancelled):
            # A budget that would allow hours: only the cancel can end it.
            render("{{ note_start() }}" + HOSTILE["nested ranges"],
                   RenderLimits(max_operations=10**15, max_seconds=3600), cancel,
                   note_start=note_start)
    finally:
        stopper.join()


def test_constant_filters_are_not_run_at_compile_time() -> None:
    """Jinja folds constant expressions while compiling, outside any budget; the
    sandbox's filters must not be folded."""
    template = ENV.from_string("{{ 'x'|center(1000000000) }}")
    with pytest.raises(TemplateBudgetError):
        render_bounded(template, {}, RenderLimits())


def test_rendering_outside_a_budget_is_refused() -> None:
    with pytest.raises(TemplateBudgetError):
        ENV.from_string("{{ 'a' ~ 'b' }}").render()


# -- what must keep working ---------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
    ("{{ range(5)|length }}|{{ range(5)[1] }}|{{ range(6)[1:3]|list }}", "5|1|[1, 2]"),
    ("{{ range(3)|reverse|list }}|{{ 2 in range(3) }}", "[2, 1, 0]|True"),
    ("{% for m in messages %}{{ loop.index }}/{{ loop.length }}"
     "{% if loop.last %}!{% endif %} {% endfor %}", "1/2 2/2! "),
    ("{{ messages|map(attribute='role')|join(',') }}", "user,assistant"),
    ("{{ 'a' ~ 'b' ~ 1 }}|{{ 'x' * 3 }}|{{ 2 ** 10 }}|{{ '%05d' % 42 }}", "ab1|xxx|1024|00042"),
    ("{{ '{:>4}'.format('x') }}|{{ 'a-b'.replace('-', '+') }}|{{ ','.join(['a', 'b']) }}",
     "   x|a+b|a,b"),
    ("{% macro turn(m) %}<{{ m.role }}>{% endmacro %}{% for m in messages %}{{ turn(m) }}"
     "{% endfor %}", "<user><assistant>"),
    ("{% set b %}[{{ messages[0].content }}]{% endset %}{{ b }}", "[Hi]"),
    ("{{ messages|tojson }}", '[{"content": "Hi", "role": "user"}, '
                             '{"content": "Hello.", "role": "assistant"}]'),
    ("{{ (messages|first).content|upper }}{{ messages|length }}", "HI2"),
])
def test_ordinary_template_features_still_work(source: str, expected: str) -> None:
    assert render(source) == expected


def test_a_long_chat_renders_within_the_budget_it_grows() -> None:
    """The budget scales with the conversation: 3,000 messages of 2,000 characters,
    through a template that does a handful of operations per message."""
    source = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] "
              "+ '<|im_end|>' + '\n' }}{% endfor %}")
    long_chat = [{"role": "user" if i % 2 == 0 else "assistant", "content": "w" * 2000}
                 for i in range(3000)]
    size = sum(len(m["content"]) for m in long_chat)
    limits = RenderLimits().for_input(size, len(long_chat))
    text = render_bounded(ENV.from_string(source), {"messages": long_chat}, limits)
    assert text.count("<|im_start|>") == 3000
    assert len(text) > size
