"""The phone channel: Twilio Media Streams calls answered by the agent.

- `twilio/`: the Twilio side (Media Streams codec, TwiML, call-control REST, the
  websocket transport).
- `call/`: one live call (turns, playback, keypad, early transcription, timing,
  what is stored).
- `transfer/`: warm transfer to a human rep (state machine, routing, audio, web hooks).
- `tools/`: the call simulator behind `gateway simulate-call`.
- `channel.py`, `services.py`, `setup.py`, `state.py`: wiring into the gateway.

Speech itself (VAD, end of turn, recognition, synthesis) lives in `channels/speech/`.
"""
