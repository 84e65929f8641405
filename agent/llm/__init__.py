"""The LLM agent core: `LlmBrain` reasons with any OpenAI-compatible server,
acts through the shared tools behind guardrails, streams its answer sentence by
sentence, and falls back to the embedded policy (or a person) when the model fails."""
