"""HTTP blueprints: the webhook, the health check and the inbox API."""

from __future__ import annotations

from flask import Blueprint

from app.api import health, inbox, metrics, webhook

BLUEPRINTS: tuple[Blueprint, ...] = (webhook.bp, health.bp, inbox.bp, metrics.bp)
