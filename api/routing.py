"""Routes that carry their own documentation.

``route(...)`` is where an endpoint is mounted and described at once: its path, query and
header parameters (pydantic models), its body, what it answers (models, links to the next
call), which problem statuses it can give and which key it needs. It returns a Starlette
``Route`` holding an ``OperationDoc``; api/openapi.py walks ``app.routes`` and builds
/openapi.json from these alone, so nothing is declared twice.

Types are anything pydantic can describe (a model, a union of models, ``str``); they are
only documented here, the handlers parse and answer as before.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

JSON = "application/json"

Endpoint = Callable[[Request], Awaitable[Response]]
# Which bearer key an operation needs (the two security schemes of the document).
Security = Literal["tenant_key", "admin_key"]

_PLACEHOLDER = re.compile(r"{([^}:]+)(?::[^}]*)?}")


@dataclass(frozen=True)
class Header:
    """A response header: its meaning and its value's type."""

    description: str
    value: Any = str
    required: bool = False


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: values of this answer feed the next call (``operation`` is its
    operationId, the name of its route). Values are runtime expressions such as
    ``$response.body#/hold_id`` or ``$request.path.slug``; ``body`` is the whole request body."""

    operation: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    description: str = ""


@dataclass(frozen=True)
class Reply:
    """A success response: the type of its body (None: no body), and more."""

    body: Any = None
    description: str = ""
    media_type: str = JSON
    headers: Mapping[str, Header] = field(default_factory=dict)
    links: Mapping[str, Link] = field(default_factory=dict)


@dataclass(frozen=True)
class OperationDoc:
    summary: str
    tag: str
    responses: Mapping[int, Reply]
    path: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    body: Any = None
    body_required: bool = True
    # Problem statuses besides 500 (which any operation can give), each with a note that
    # replaces the generic description of the status, or None.
    problems: Mapping[int, str | None] = field(default_factory=dict)
    security: Security | None = None


class DocumentedRoute(Route):
    """A Starlette route of one method that knows its OpenAPI operation."""

    def __init__(self, path: str, endpoint: Endpoint, method: str, name: str, doc: OperationDoc) -> None:
        super().__init__(path, endpoint, methods=[method], name=name)
        self.method = method.lower()
        self.doc = doc


def route(
    template: str,
    endpoint: Endpoint,
    method: str,
    /,
    *,
    summary: str,
    tag: str,
    responses: Mapping[int, Reply | Any],
    path: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    headers: type[BaseModel] | None = None,
    body: Any = None,
    body_required: bool = True,
    problems: Iterable[int] = (),
    notes: Mapping[int, str] | None = None,
    security: Security | None = None,
    name: str | None = None,
) -> DocumentedRoute:
    """Mount ``endpoint`` at ``template`` for ``method``, documented.

    ``responses`` maps each success status to a ``Reply`` or just the type of its JSON body;
    ``notes`` explains problem statuses of this operation more precisely than the generic
    text. ``name`` (the route name and operationId) defaults to the endpoint's name.
    """
    notes = dict(notes or {})
    problem_statuses = set(problems)
    if not notes.keys() <= problem_statuses:
        raise ValueError(f"{template}: notes for statuses not in problems: {set(notes) - problem_statuses}")
    placeholders = set(_PLACEHOLDER.findall(template))
    declared = set() if path is None else {f.alias or n for n, f in path.model_fields.items()}
    if placeholders != declared:
        raise ValueError(f"{template}: path parameters {sorted(placeholders)}, path model has {sorted(declared)}")
    doc = OperationDoc(
        summary=summary,
        tag=tag,
        responses={s: r if isinstance(r, Reply) else Reply(r) for s, r in responses.items()},
        path=path,
        query=query,
        headers=headers,
        body=body,
        body_required=body_required,
        problems={s: notes.get(s) for s in sorted(problem_statuses)},
        security=security,
    )
    return DocumentedRoute(template, endpoint, method, name or endpoint.__name__, doc)
