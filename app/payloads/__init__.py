"""The contract's input payloads, declared once (pydantic models): validation, the error
``details`` and the JSON Schemas of the OpenAPI document and docs/EVENTS.md all come from here.

``rules`` holds the plain rules (one integer parser, one user-id rule), ``base`` the shared
behaviour (unknown fields, every problem at once, ``details``), ``models`` the payloads, and
``schema`` the JSON Schemas generated from them.
"""
