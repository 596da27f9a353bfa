"""`greeting`, in Python: the agent greets the customer within the first N seconds.

The same rule as plugins/greeting (Rust), verdict for verdict: both pass
plugins/greeting/golden.

Passes when an agent segment that begins within `within-seconds` of the
start contains one of `phrases` (case-insensitive, matched by the host).
Not applicable when the session has no transcript or the agent never speaks
(an abandoned call is judged elsewhere).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.rule import (
    Descriptor,
    Finding,
    Outcome,
    ParamKind,
    ParamSpec,
    RuleError_BadParams,
    Verdict,
)
from wit_world.imports import helpers
from wit_world.imports.types import Role, Segment, Session, Value, Value_Integer, Value_Number, Value_Text, Value_TextList

DEFAULT_PHRASES = [
    "您好", "你好", "欢迎致电", "很高兴为您服务", "hello", "hi", "good morning",
    "good afternoon", "good evening", "thank you for calling", "welcome",
]

U32_MAX = 0xFFFF_FFFF


def bad_params(why: str) -> Err:
    # A `result` error is raised: componentize-py turns `Err` into `err(...)`.
    return Err(RuleError_BadParams(why))


def param(params: list[tuple[str, Value]], name: str) -> Value:
    for n, v in params:
        if n == name:
            return v
    raise bad_params(f"parameter `{name}` is missing")


def integer_param(params: list[tuple[str, Value]], name: str) -> int:
    v = param(params, name)
    if isinstance(v, Value_Integer):
        return v.value
    if isinstance(v, Value_Number) and v.value.is_integer():
        return int(v.value)
    raise bad_params(f"parameter `{name}` must be an integer, got {v!r}")


def text_list_param(params: list[tuple[str, Value]], name: str) -> list[str]:
    v = param(params, name)
    if isinstance(v, Value_TextList):
        return v.value
    if isinstance(v, Value_Text):
        return [v.value]
    raise bad_params(f"parameter `{name}` must be a list of strings, got {v!r}")


def finding_at(segment: Segment, message: str) -> Finding:
    return Finding(message, segment.id, segment.begin_ms, segment.end_ms)


class Rule(exports.Rule):
    def describe(self) -> Descriptor:
        return Descriptor(
            "greeting",
            "0.1.0",
            "The agent greets the customer within the first N seconds",
            [
                ParamSpec("within-seconds", ParamKind.INTEGER, "10", "The greeting must begin within this many seconds of the start"),
                ParamSpec("phrases", ParamKind.TEXT_LIST, json.dumps(DEFAULT_PHRASES, ensure_ascii=False, separators=(",", ":")), "Phrases that count as a greeting (case-insensitive substrings)"),
            ],
        )

    def evaluate(self, session: Session, params: list[tuple[str, Value]]) -> Verdict:
        within = integer_param(params, "within-seconds")
        if within <= 0:
            raise bad_params("`within-seconds` must be positive")
        phrases = text_list_param(params, "phrases")
        if not session.has_transcript():
            return Verdict(Outcome.NOT_APPLICABLE, None, "the session has no transcript", [])
        agent = session.segments_by_role(Role.AGENT)
        if not agent:
            return Verdict(Outcome.NOT_APPLICABLE, None, "the agent never spoke", [])
        # As the Rust twin: the seconds as a u32, times 1000, saturating.
        within_ms = min((within & U32_MAX) * 1000, U32_MAX)
        for segment in session.segments_between(0, within_ms):
            if segment.role != Role.AGENT:
                continue
            i = helpers.contains_any(segment.text, phrases)
            if i is not None:
                return Verdict(Outcome.PASS, 1.0, None, [finding_at(segment, f'greeted with "{phrases[i]}"')])
        return Verdict(
            Outcome.FAIL,
            0.0,
            f"no greeting within the first {within} s",
            [finding_at(agent[0], "the agent's first words have no greeting")],
        )
