"""The typed `web.AppKey`s under which `create_app` keeps what the parts share.

A module of its own so that channels and gateway parts can read the shared
resources without importing the composition root (`gateway.app`), which imports
every channel: only `gateway.app` knows them all.
"""

from __future__ import annotations

from aiohttp import web

from gateway.bus import Bus
from gateway.dispatch import Dispatcher
from gateway.metrics import Metrics
from gateway.outbox import Outbox
from gateway.outreach.campaign_service import Campaigns
from gateway.outreach.service import OutreachService
from gateway.protocols import Brain, ChannelRegistry, OutboundCaller, Store, Transcriber
from gateway.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
SECRET_KEY = web.AppKey("secret_key", bytes)
STORE = web.AppKey("store", Store)
BRAIN = web.AppKey("brain", Brain)
CHANNELS = web.AppKey("channels", ChannelRegistry)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
OUTBOX = web.AppKey("outbox", Outbox)  # replies waiting to be sent (gateway/outbox.py)
BACKEND = web.AppKey("backend", object)
TRANSCRIBER = web.AppKey("transcriber", Transcriber)  # given to create_app (tests); else loaded
BUS = web.AppKey("bus", Bus)  # between nodes (gateway/bus.py); LocalBus on a single node
# Outbound calls of outreach (channels/phone/outbound/); absent when Twilio is not set up for them
OUTBOUND_CALLER = web.AppKey("outbound_caller", OutboundCaller)
# Business events to customers (gateway/outreach); the caller reports outcomes to it.
OUTREACH = web.AppKey("outreach", OutreachService)
# Campaigns: a notice to a list (gateway/outreach/campaigns.py), sent by OUTREACH.
CAMPAIGNS = web.AppKey("campaigns", Campaigns)

__all__ = [
    "BACKEND",
    "BRAIN",
    "BUS",
    "CAMPAIGNS",
    "CHANNELS",
    "DISPATCHER",
    "METRICS",
    "OUTBOUND_CALLER",
    "OUTBOX",
    "OUTREACH",
    "SECRET_KEY",
    "SETTINGS",
    "STORE",
    "TRANSCRIBER",
]
