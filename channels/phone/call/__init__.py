"""One live phone call: turns, playback, keypad, early transcription, timing, storage."""
