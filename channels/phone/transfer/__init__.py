"""Warm transfer of a call to a human rep: state machine, routing, audio, TwiML, web hooks."""
