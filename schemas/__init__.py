"""Versioned schemas: the events on Parley's topics and the frames of its wire protocol.

The pydantic models here are the source of truth; `schemas/json/` holds the JSON Schema
documents generated from them (`parley schemas`), for clients and analytics consumers in
other languages. A test keeps the two in step.
"""
