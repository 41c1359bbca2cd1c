"""HTTP blueprints: the webhook, the health check (and, later, the inbox API)."""

from __future__ import annotations

from flask import Blueprint

from app.api import health, webhook

BLUEPRINTS: tuple[Blueprint, ...] = (webhook.bp, health.bp)
