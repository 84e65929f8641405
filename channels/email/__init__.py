"""The email channel: an embedded SMTP server for the support address, replies through a
configured SMTP relay (see docs/email.md)."""
