"""The Twilio side of a phone call: Media Streams codec, TwiML, call-control REST, transport."""
