"""Speech for any voice channel: audio helpers, VAD and endpointing, end of turn,
recognition (faster-whisper), synthesis (espeak-ng in a worker) and model management."""
