"""Proactive outreach: a business event (an order running late, a failed payment, a
renewal coming up) becomes a message on the customer's own channel, sent once, with
respect for opt-outs, quiet hours and a frequency cap, and the agent answers the reply
knowing why we got in touch. See docs/outreach.md.

- `models`: the event the API takes and the outreach it becomes;
- `rules`: per event type, the channel order and the texts (a TOML file);
- `respect`: quiet hours, signed unsubscribe links;
- `store`, `sqlite_store`, `pg_store`: the durable state machine;
- `service`: `OutreachService.submit` and the sender loop;
- `caller`: the seam to the outbound call (`OutboundCaller`);
- `api`, `setup`: the HTTP routes and the wiring.
"""
