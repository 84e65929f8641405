"""The agent core: the embedded policy (`agent.policy.EmbeddedPolicy`), its tools
(`agent.tools`), the business backend protocol and demo backend, the knowledge
base, and `agent.wiring.build_agent` which puts them together from settings."""
