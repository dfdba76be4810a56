"""The service's OpenAPI 3.1 description (GET /openapi.json), with the limits it was started with."""

from __future__ import annotations

from typing import Any

from ..constants import MAX_LENGTH_PENALTY
from . import ServeConfig

_ERROR = {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _error(description: str) -> dict[str, Any]:
    return {**_ERROR, "description": description}


def openapi_schema(config: ServeConfig, max_src_tokens: int, max_beam: int) -> dict[str, Any]:
    ids = {"type": "array", "items": {"type": "integer"}, "description": "target ids without <sos>/<eos>"}
    hypothesis = {
        "type": "object",
        "required": ["output", "ids", "score"],
        "properties": {"output": {"type": "string"}, "ids": ids, "score": {"type": ["number", "null"]}},
    }
    request = {
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {
            "inputs": {
                "type": "array",
                "maxItems": config.max_inputs,
                "items": {
                    "type": "string",
                    "maxLength": config.max_input_chars,
                    "description": f"at most {max_src_tokens} tokens as the model sees them",
                },
            },
            "beam_size": {"type": "integer", "minimum": 1, "maximum": max_beam, "default": 1},
            "n_best": {"type": "integer", "minimum": 1, "default": 1, "description": "at most beam_size"},
            "length_penalty": {"type": "number", "minimum": 0, "maximum": MAX_LENGTH_PENALTY, "default": 1.0},
        },
    }
    translation = {
        "type": "object",
        "required": ["input", "output", "ids", "score", "hypotheses"],
        "properties": {
            "input": {"type": "string"},
            "output": {"type": "string"},
            "ids": ids,
            "score": {"type": ["number", "null"], "description": "null for an empty input"},
            "hypotheses": {"type": "array", "items": hypothesis, "description": "the n-best list, best first"},
        },
    }
    status = {"description": "JSON status", "content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "s2s-serve",
            "version": "1",
            "description": "Translate with a seq2seq-export bundle; concurrent requests are batched together.",
        },
        "paths": {
            "/v1/translate": {
                "post": {
                    "summary": "Translate inputs, answered in input order (s2s-translate --json's records)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TranslateRequest"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "one translation per input, in input order",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["translations"],
                                        "properties": {"translations": {"type": "array", "items": translation}},
                                    }
                                }
                            },
                        },
                        "400": _error("malformed JSON"),
                        "413": _error(f"body over {config.max_body_bytes} bytes"),
                        "422": _error(
                            "a field of the wrong type, too many inputs, an input too long, bad search settings"
                        ),
                        "429": _error("the queue is full: retry after the Retry-After header's seconds"),
                    },
                }
            },
            "/healthz": {"get": {"summary": "The process is alive", "responses": {"200": status}}},
            "/readyz": {
                "get": {
                    "summary": "The bundle is loaded and checked, and requests are taken",
                    "responses": {"200": status, "503": _error("not ready")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {"description": "Prometheus text exposition format", "content": {"text/plain": {}}}
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "TranslateRequest": request,
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            }
        },
    }
