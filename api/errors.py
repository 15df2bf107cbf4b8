"""RFC 9457 problem details: every error the API answers has a stable ``code``."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from slotmill.materializer.bookings import BookingError, HoldExpired, NotFound

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Raise anywhere in a handler; the app turns it into a problem+json response.

    ``field`` names the offending input for 422s (e.g. ``"query.from"``, ``"body.slot_id"``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.field = field
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": f"https://slotmill.dev/problems/{self.code}", "title": self.title,
                               "status": self.status, "code": self.code}
        if self.detail:
            out["detail"] = self.detail
        if self.field:
            out["field"] = self.field
        if instance:
            out["instance"] = instance
        out.update(self.extra)
        return out


def problem_response(err: ProblemError, instance: str | None = None) -> JSONResponse:
    return JSONResponse(err.body(instance), status_code=err.status, headers=err.headers, media_type=PROBLEM_JSON)


def not_found(what: str, detail: str | None = None) -> ProblemError:
    return ProblemError(404, f"{what}_not_found", f"Unknown {what.replace('_', ' ')}", detail)


def invalid(field: str, detail: str) -> ProblemError:
    return ProblemError(422, "validation_error", "Invalid request", detail, field=field)


# HTTP statuses of the booking lifecycle's refusals (slotmill.materializer.bookings); any
# other BookingError is a conflict with the current state: 409.
_BOOKING_STATUS: dict[type[BookingError], int] = {NotFound: 404, HoldExpired: 410}


def booking_problem(err: BookingError) -> ProblemError:
    """The problem+json answer for a refused booking operation (same ``code``)."""
    status = next((s for cls, s in _BOOKING_STATUS.items() if isinstance(err, cls)), 409)
    return ProblemError(status, err.code, err.title, err.detail)
