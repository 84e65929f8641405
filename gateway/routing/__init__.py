"""Human queues, routing of handed-over conversations to reps, and the rep console API.

Modules by role: `models` (shared records), `store` (the `RoutingStore` seam),
`passwords`, `policy` (priority, wait estimates, business hours), `router`
(queues and offers), `service` (rep actions), `calls` and `call_routing` (a
call's warm transfer: reps' phones ring as offers), `hub` (live console updates),
`auth`, `api` and `ws` (HTTP and websocket), `rating`, `setup` (wiring).
"""
