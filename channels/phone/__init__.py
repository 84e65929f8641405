"""The phone channel: Twilio Media Streams audio, codec and endpointing."""
