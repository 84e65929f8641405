"""The SMS channel over Twilio Programmable Messaging (see docs/sms.md).

`codec` and `segments` are pure (webhook forms, keywords, GSM-7/UCS-2
segments); `transport` holds the webhooks, `channel` the outbound half,
`rest` the Twilio REST calls and `setup` the wiring (`setup_sms`).
"""
