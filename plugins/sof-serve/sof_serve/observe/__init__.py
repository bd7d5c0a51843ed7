"""Observers usable with or without the server.

Prometheus metrics, OpenTelemetry spans, alerts that act (automatic rollback).
"""
