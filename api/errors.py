"""Exceptions from `geo` mapped to HTTP answers: user mistakes are 4xx that name the problem."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from geo.schema import ZoneValidationError
from geo.store import StoreError

log = logging.getLogger("zoning.api")


class NotFoundError(LookupError):
    """A zone, collection or version that does not exist."""


class PayloadTooLargeError(ValueError):
    """An upload or batch over the configured limit."""


class OGCException(HTTPException):
    """An error answered as an OGC exception: ``{"code", "description"}`` (and ``detail``)."""

    def __init__(self, status: int, code: str, description: str):
        super().__init__(status_code=status, detail=description)
        self.code = code


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message, **extra})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ZoneValidationError)
    async def _zone_validation(_: Request, exc: ZoneValidationError) -> JSONResponse:
        return _error(422, str(exc), problems=exc.problems)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(PayloadTooLargeError)
    async def _too_large(_: Request, exc: PayloadTooLargeError) -> JSONResponse:
        return _error(413, str(exc))

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", exc)
        return _error(503, str(exc))

    @app.exception_handler(OGCException)
    async def _ogc(_: Request, exc: OGCException) -> JSONResponse:
        return JSONResponse({"code": exc.code, "description": exc.detail, "detail": exc.detail},
                            status_code=exc.status_code)

    # geo raises ValueError subclasses (UnknownCRSError, CoordinateError, ...) for bad input.
    @app.exception_handler(ValueError)
    async def _value(_: Request, exc: ValueError) -> JSONResponse:
        return _error(422, str(exc))
