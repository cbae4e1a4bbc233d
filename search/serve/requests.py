"""Reading a request as TEI's router reads it: the body (its content type, the payload limit, the body
deadline, JSON), each field checked as serde checks TEI's request types and refused with serde's messages,
and TEI's error bodies (`TEIRequestError`: ``{"error", "error_type"}``, or OpenAI's shape for its routes)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse

from .limits import ServeLimits

ErrorType = Literal["Unhealthy", "Backend", "Overloaded", "Validation", "Tokenizer", "Empty"]
STATUS: dict[str, int] = {"Unhealthy": 503, "Backend": 424, "Overloaded": 429, "Tokenizer": 422,
                          "Validation": 422, "Empty": 400}
"""TEI's HTTP status for each error_type (`impl From<&ErrorType> for StatusCode`)."""

EMPTY_INPUT = "Input validation error: `inputs` cannot be empty"
NOT_AN_EMBEDDER = "Backend error: Model is not an embedding model"
NOT_A_RERANKER = "Backend error: model is not a re-ranker model"
DESERIALIZE = "Failed to deserialize the JSON body into the target type: "


class TEIRequestError(Exception):
    """A request TEI would refuse: `status`, `error_type` and the message of its error body."""

    def __init__(self, error_type: ErrorType, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = STATUS[error_type] if status is None else status

    def response(self, *, openai: bool = False, headers: dict[str, str] | None = None) -> JSONResponse:
        """TEI's error body; for the OpenAI routes TEI's ``{"message", "code", "type"}`` with OpenAI's own
        ``{"error": {...}}`` beside it, so either kind of client finds the message."""
        if openai:
            body: dict[str, Any] = {"message": self.message, "code": self.status, "type": self.error_type,
                                    "error": {"message": self.message, "type": self.error_type, "param": None,
                                              "code": self.status}}
        else:
            body = {"error": self.message, "error_type": self.error_type}
        return JSONResponse(body, status_code=self.status, headers=headers)


MISSING = object()  # a field a request leaves out, told apart from one sent as null


async def read_json(request: Request, limits: ServeLimits) -> Any:
    """The request's JSON body: 415 without a JSON content type, 413 past `payload_limit`, 408 when it
    has not all arrived within `body_timeout_s`, 400 when it is not JSON (axum's messages, as TEI's)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise TEIRequestError("Validation", "Expected request with `Content-Type: application/json`", status=415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.payload_limit:
        raise _too_large(limits.payload_limit)
    body = bytearray()
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limits.payload_limit:
                    raise _too_large(limits.payload_limit)
    except TimeoutError:
        raise TEIRequestError("Validation", f"the request body did not arrive within {limits.body_timeout_s:g} s "
                                            "(the server's body timeout)", status=408) from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise TEIRequestError("Validation", f"Failed to parse the request body as JSON: {error}", status=400) \
            from None


def _too_large(limit: int) -> TEIRequestError:
    return TEIRequestError("Validation", f"Failed to buffer the request body: length limit exceeded (the payload "
                                         f"limit is {limit} bytes; send fewer or shorter texts per request)",
                           status=413)


def deserialize_error(detail: str) -> TEIRequestError:
    """TEI's 422 for a body that does not fit its request type, serde's `detail` after axum's prefix."""
    return TEIRequestError("Validation", DESERIALIZE + detail)


def struct(body: Any, name: str, path: str = "") -> dict[str, Any]:
    """`body` when it is a JSON object (TEI's struct `name`, at `path`); raises TEIRequestError (422) otherwise."""
    if not isinstance(body, dict):
        where = f"{path}: " if path else ""
        raise deserialize_error(f"{where}invalid type: {_json_kind(body)}, expected struct {name}")
    return body


_KINDS = {str: "a string", bool: "a boolean", int: "u32", list: "a sequence"}


def read_field(request: dict[str, Any], name: str, kind: type, *, required: bool = False, default: Any = None,
               nullable: bool = False) -> Any:
    """`request[name]` checked as serde checks TEI's field: missing -> `default` (or 422 when `required`),
    null -> `default` when `nullable` else 422, a wrong type -> 422."""
    if name not in request:
        if required:
            raise deserialize_error(f"missing field `{name}`")
        return default
    value = request[name]
    if value is None and nullable:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        expected = _KINDS.get(kind, kind.__name__)
        raise deserialize_error(f"{name}: invalid type: {_json_kind(value)}, expected {expected}")
    return value


def read_strings(request: dict[str, Any], name: str) -> list[str]:
    """The required list of strings `request[name]`; raises TEIRequestError (422) otherwise."""
    value = read_field(request, name, list, required=True)
    for item in value:
        if not isinstance(item, str):
            raise deserialize_error(f"{name}: invalid type: {_json_kind(item)}, expected a string")
    return value


def read_direction(request: dict[str, Any]) -> str:
    """``truncation_direction`` as "left" or "right" (default "right")."""
    value = read_field(request, "truncation_direction", str, default="Right")
    if value not in ("Left", "Right", "left", "right"):
        raise deserialize_error(f"truncation_direction: unknown variant `{value}`, expected `Left` or `Right`")
    return value.lower()


def read_dimensions(request: dict[str, Any]) -> int | None:
    """``dimensions`` (None when absent or null); raises TEIRequestError (422) for a negative number."""
    value = read_field(request, "dimensions", int, default=None, nullable=True)
    if value is not None and value < 0:
        raise deserialize_error(f"dimensions: invalid value: integer `{value}`, expected usize")
    return value


def read_inputs(request: dict[str, Any], name: str) -> tuple[list[str | list[int]], bool]:
    """TEI's `Input`: a string or token ids (one input), or a list of them (a batch). As serde's untagged
    enums read it, an empty list is one input with no token ids."""
    value = request.get(name, MISSING)
    if value is MISSING:
        raise deserialize_error(f"missing field `{name}`")
    if isinstance(value, str) or (isinstance(value, list) and all(is_token_id(item) for item in value)):
        return [value], False
    if isinstance(value, list) and all(isinstance(item, str) or (isinstance(item, list) and
                                                                  all(is_token_id(i) for i in item))
                                       for item in value):
        return list(value), True
    raise deserialize_error(f"{name}: data did not match any variant of untagged enum Input")


def read_predict_inputs(request: dict[str, Any]) -> tuple[list[list[str]], bool]:
    """TEI's `PredictInput`: a string, a [string, string] pair, or a batch of [string] / [string, string]."""
    expected = ("a string, a pair of strings [string, string] or a batch of mixed strings and pairs [[string], "
                "[string, string], ...]")
    value = request.get("inputs", MISSING)
    if value is MISSING:
        raise deserialize_error("missing field `inputs`")
    if isinstance(value, str):
        return [[value]], False
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        if len(value) > 2:
            raise deserialize_error(f"inputs: invalid length {len(value)}, expected {expected}")
        return [list(value)], False
    if (isinstance(value, list) and value and all(isinstance(item, list) and all(isinstance(s, str) for s in item)
                                                  for item in value)):
        for item in value:
            if len(item) not in (1, 2):
                raise deserialize_error(f"inputs: invalid length {len(item)}, expected {expected}")
        return [list(item) for item in value], True
    raise deserialize_error(f"inputs: invalid type: {_json_kind(value)}, expected {expected}")


def is_token_id(value: Any) -> bool:
    """Whether `value` is a token id as TEI reads one (a u32)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 32


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value[:40])}"
    return "sequence" if isinstance(value, list) else "map"
