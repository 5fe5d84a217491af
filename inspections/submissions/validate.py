"""Check a submission's answers against the pinned checklist version (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from inspections.checklists.questions import (
    Content,
    Question,
    answer_problem,
    max_points,
    points,
    questions,
)
from inspections.submissions.schemas import AnswerIn
from service.errors import FieldError


@dataclass(frozen=True)
class ScoredAnswer:
    position: int
    answer: AnswerIn
    question: Question
    points: float | None
    max_points: float | None


def check_answers(
    content: Content, answers: list[AnswerIn], final: bool
) -> tuple[list[ScoredAnswer], list[FieldError]]:
    """Type-check every answer (drafts too); a final one must also be complete."""
    by_key = {q.key: q for q in questions(content)}
    errors: list[FieldError] = []
    scored: list[ScoredAnswer] = []
    seen: set[str] = set()
    for i, a in enumerate(answers):
        where = f"$.answers[{i}]"
        q = by_key.get(a.question_key)
        if q is None:
            errors.append(FieldError(where, f"no question '{a.question_key}' in this checklist"))
            continue
        if a.question_key in seen:
            errors.append(FieldError(where, f"question '{a.question_key}' is answered twice"))
            continue
        seen.add(a.question_key)
        if a.na:
            if not q.allow_na:
                errors.append(FieldError(where, f"question '{q.key}' cannot be answered N/A"))
            elif a.value is not None:
                errors.append(FieldError(where, f"question '{q.key}': N/A takes no value"))
            else:
                scored.append(ScoredAnswer(i, a, q, None, None))
            continue
        if a.value is None:
            scored.append(ScoredAnswer(i, a, q, None, None))  # unanswered so far (drafts)
            continue
        problem = answer_problem(q, a.value)
        if problem:
            errors.append(FieldError(where, f"question '{q.key}': the answer {problem}"))
            continue
        earned = points(q, a.value)
        scored.append(ScoredAnswer(i, a, q, earned, max_points(q) if earned is not None else None))
    if final:
        # Answers already reported as wrong are not reported again as missing.
        answered = {a.question_key for a in answers if a.na or a.value is not None}
        for q in questions(content):
            if q.required and q.key not in answered:
                errors.append(FieldError("$.answers", f"question '{q.key}' is required"))
    return scored, errors
