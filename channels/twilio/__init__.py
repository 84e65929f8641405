"""What the Twilio channels (phone, SMS) share: request signatures and the REST client."""
