"""The airlock's request states and the explicit table of allowed transitions.

Owns which step may happen in which state and by which kind of actor; the
manager asks :func:`check` before every change, so a step not in
:data:`TRANSITIONS` is refused with :class:`WrongState` (and a step by the
wrong kind of actor with :class:`NotAllowed`) and nothing changes.

Actor kinds:

``author``
    the request's creator (a project member); edits, submits, withdraws.
``reviewer``
    a user whose role is in :data:`REVIEWER_ROLES` and who is neither the
    author nor a member of the request's project.
``operator``
    an ``admin`` (the CLI acts as one): may start a release of an approved
    request, never vote or decide.
``system``
    the workflow itself: consolidation after votes, the release worker.

Flow: ``draft → submitted → partially_reviewed → reviewed →
approved | returned | rejected``; ``approved → releasing → released``;
``returned → submitted`` (resubmission); ``withdrawn`` from any state before a
decision. ``rejected``, ``withdrawn`` and ``released`` are final.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from jupyterlab_hdh.egress.errors import NotAllowed, WrongState
from jupyterlab_hdh.store.models import Role


class State(StrEnum):
    """A request's state (``egress_requests.state``); members compare equal to the text."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    PARTIALLY_REVIEWED = "partially_reviewed"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    RETURNED = "returned"
    REJECTED = "rejected"
    RELEASING = "releasing"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"


DRAFT = State.DRAFT
SUBMITTED = State.SUBMITTED
PARTIALLY_REVIEWED = State.PARTIALLY_REVIEWED
REVIEWED = State.REVIEWED
APPROVED = State.APPROVED
RETURNED = State.RETURNED
REJECTED = State.REJECTED
RELEASING = State.RELEASING
RELEASED = State.RELEASED
WITHDRAWN = State.WITHDRAWN

STATES: Final = (
    DRAFT,
    SUBMITTED,
    PARTIALLY_REVIEWED,
    REVIEWED,
    APPROVED,
    RETURNED,
    REJECTED,
    RELEASING,
    RELEASED,
    WITHDRAWN,
)
FINAL: Final = frozenset({REJECTED, RELEASED, WITHDRAWN})
#: States in which the author may change the files (add, replace, remove).
EDITABLE: Final = frozenset({DRAFT, RETURNED})
#: States in which reviewers vote.
VOTING: Final = frozenset({SUBMITTED, PARTIALLY_REVIEWED})
#: States in which reviewers see the request at all (drafts are the author's own).
UNDER_REVIEW: Final = frozenset(set(STATES) - {DRAFT, WITHDRAWN})

AUTHOR, REVIEWER, OPERATOR, SYSTEM = "author", "reviewer", "operator", "system"
ACTOR_KINDS: Final = (AUTHOR, REVIEWER, OPERATOR, SYSTEM)
#: User roles that may review requests (never the author or a member of the project).
#: Admins operate the platform and may start a release, but do not judge outputs.
REVIEWER_ROLES: Final = (Role.REVIEWER, Role.COMMITTEE)

#: (from, to) -> the actor kinds allowed to make that step.
TRANSITIONS: Final[dict[tuple[str, str], frozenset[str]]] = {
    (DRAFT, SUBMITTED): frozenset({AUTHOR}),
    (DRAFT, WITHDRAWN): frozenset({AUTHOR}),
    (SUBMITTED, PARTIALLY_REVIEWED): frozenset({SYSTEM}),
    (SUBMITTED, REVIEWED): frozenset({SYSTEM}),  # resubmitted with every vote kept
    (SUBMITTED, WITHDRAWN): frozenset({AUTHOR}),
    (PARTIALLY_REVIEWED, REVIEWED): frozenset({SYSTEM}),
    (PARTIALLY_REVIEWED, WITHDRAWN): frozenset({AUTHOR}),
    (REVIEWED, APPROVED): frozenset({REVIEWER}),
    (REVIEWED, RETURNED): frozenset({REVIEWER}),
    (REVIEWED, REJECTED): frozenset({REVIEWER}),
    (REVIEWED, WITHDRAWN): frozenset({AUTHOR}),
    (RETURNED, SUBMITTED): frozenset({AUTHOR}),
    (RETURNED, WITHDRAWN): frozenset({AUTHOR}),
    (APPROVED, RELEASING): frozenset({REVIEWER, OPERATOR}),
    (RELEASING, RELEASED): frozenset({SYSTEM}),
}


def allowed(source: str, target: str) -> frozenset[str]:
    """The actor kinds that may move a request from ``source`` to ``target`` (empty: none)."""
    return TRANSITIONS.get((source, target), frozenset())


def check(source: str, target: str, kinds: set[str] | frozenset[str], *, who: str = "") -> None:
    """Raise unless one of ``kinds`` may move a request from ``source`` to ``target``.

    WrongState when the step is not in the table at all; NotAllowed when it is
    but not for this actor.
    """
    if source not in STATES or target not in STATES:
        raise WrongState(f"unknown request state {source!r} or {target!r}")
    permitted = allowed(source, target)
    if not permitted:
        nexts = sorted(t for (s, t) in TRANSITIONS if s == source)
        raise WrongState(
            f"a request that is {source} cannot become {target}"
            + (f" (from {source}: {', '.join(nexts)})" if nexts else f" ({source} is final)")
        )
    if not permitted & set(kinds):
        raise NotAllowed(
            f"{who or 'this actor'} may not move a request from {source} to {target}"
            f" (only the {' or '.join(sorted(permitted))} may)"
        )
