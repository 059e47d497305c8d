"""Typed domain errors. The API maps each to one HTTP status in a single handler."""


class DomainError(Exception):
    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    status_code = 422


class BadRequest(DomainError):
    """A well-formed request the current state refuses (e.g. a team quota above its org's ceiling)."""
    status_code = 400


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Gone(DomainError):
    """What was asked for no longer exists for the caller (an agent's claim on a finished job)."""
    status_code = 410


class PayloadTooLarge(DomainError):
    status_code = 413


class Unavailable(DomainError):
    status_code = 503


class StorageError(DomainError):
    """A refusal of the S3-compatible storage endpoint, answered as S3's XML error with its ``code``
    (``AccessDenied``, ``NoSuchKey``, ``SignatureDoesNotMatch``, ...) and HTTP status."""

    def __init__(self, code: str, detail: str, status_code: int = 400) -> None:
        super().__init__(detail)
        self.code, self.status_code = code, status_code
