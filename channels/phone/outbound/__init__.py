"""Outbound calls of proactive outreach: placed through Twilio's REST API, answered by a
person (the agent speaks first on our Media Stream) or a machine (a short voicemail)."""
