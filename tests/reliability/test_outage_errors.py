"""How a request that lost its database connection is answered: a 503 Problem, also when a later
error from the broken transaction hides the connection error (the database outage test drives
this for real on PostgreSQL; here each case is pinned down on its own)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, PendingRollbackError

from app.deps import _note_disconnect, database_outage_as_503
from app.errors import NotFound, ServiceUnavailable


def test_a_connection_error_becomes_a_503_problem_with_retry_after() -> None:
    with pytest.raises(ServiceUnavailable) as caught, database_outage_as_503():
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "refused"))
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"].isdigit()


def test_a_connection_error_hidden_behind_a_later_error_still_becomes_a_503() -> None:
    with pytest.raises(ServiceUnavailable), database_outage_as_503():
        try:
            raise OperationalError("INSERT", {}, ConnectionResetError("reset"))
        finally:
            raise PendingRollbackError("Can't reconnect until invalid transaction is rolled back")


def test_a_disconnect_seen_by_sqlalchemy_during_the_request_makes_any_later_failure_a_503() -> None:
    # The masking error may come out of a greenlet with no link to the original one.
    with pytest.raises(ServiceUnavailable), database_outage_as_503():
        _note_disconnect(
            SimpleNamespace(is_disconnect=True, is_pre_ping=False, original_exception=ConnectionResetError())
        )  # type: ignore[arg-type]
        raise PendingRollbackError("This Session's transaction has been rolled back")


def test_other_errors_and_problems_pass_through_unchanged() -> None:
    with pytest.raises(PendingRollbackError), database_outage_as_503():
        raise PendingRollbackError("rolled back due to a previous exception")
    with pytest.raises(IntegrityError), database_outage_as_503():
        _note_disconnect(
            SimpleNamespace(is_disconnect=False, is_pre_ping=False, original_exception=ValueError())
        )  # type: ignore[arg-type]
        raise IntegrityError("INSERT", {}, ValueError("duplicate"))
    with pytest.raises(PendingRollbackError), database_outage_as_503():
        # A stale pooled connection found by the pre-ping is replaced; the request goes on.
        _note_disconnect(SimpleNamespace(is_disconnect=True, is_pre_ping=True, original_exception=OSError()))  # type: ignore[arg-type]
        raise PendingRollbackError("rolled back due to a previous exception")
    with pytest.raises(NotFound), database_outage_as_503():
        _note_disconnect(
            SimpleNamespace(is_disconnect=True, is_pre_ping=False, original_exception=ConnectionResetError())
        )  # type: ignore[arg-type]
        raise NotFound("no such plan")
