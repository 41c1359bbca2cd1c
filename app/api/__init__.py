"""HTTP blueprints: the webhook, health check, inbox API, metrics and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint

from app.api import health, inbox, metrics, openapi, webhook

BLUEPRINTS: tuple[Blueprint, ...] = (webhook.bp, health.bp, inbox.bp, metrics.bp, openapi.bp)
