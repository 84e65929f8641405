"""Configuration, read and validated once at start-up.

Sources, highest priority first: keyword arguments (tests), environment
variables `GATEWAY_<NAME>`, a TOML file (`GATEWAY_CONFIG`, or `gateway.toml` in
the working directory when present), then the defaults below. Every error names
the setting by the environment variable an operator would set.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway import settings_checks as check
from gateway.settings_sources import (
    ENV_PREFIX,
    EnvSource,
    config_error,
    secret_names,
    toml_path,
)


class Settings(BaseSettings):
    """Every setting of the gateway. Field `x` is set by `GATEWAY_X` or `x = ...` in TOML."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    # --- where it listens and how it is reached
    host: str = Field("127.0.0.1", description="Interface `gateway serve` binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port `gateway serve` listens on.")
    public_url: str = Field(
        "",
        description="Public base URL the outside world (Twilio, browsers) uses to reach us;"
        " empty: http://localhost:PORT.",
    )
    data_dir: Path = Field(Path("./data"), description="Where all state lives.")
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING or ERROR.")

    # --- storage
    database_url: str = Field(
        "",
        description="The store: sqlite:///PATH or postgresql://USER@HOST/DB;"
        " empty means SQLite at DATA_DIR/gateway.sqlite3.",
    )
    database_pool_max: int = Field(
        20, ge=2, le=500, description="PostgreSQL: most connections this node opens."
    )
    redis_url: SecretStr | None = Field(
        None,
        description="redis://[:PASSWORD@]HOST[:PORT]/DB: the bus between several gateway"
        " nodes (with a PostgreSQL store); unset: this node runs alone.",
    )
    redis_prefix: str = Field(
        "gateway",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Prefix of this gateway's Redis channels and keys (one per deployment).",
    )
    node_id: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_-]{0,64}$",
        description="This node's name on the bus; empty: <host>-<pid>.",
    )
    assumed_resolved_after_s: float = Field(
        1800.0,
        ge=0.0,
        le=30 * 86400.0,
        description="A bot conversation whose agent answered and whose customer then wrote"
        " nothing for this long is closed as assumed resolved (the conversation.resolved"
        " event, how=assumed); a later message starts a new conversation. 0: never.",
    )
    cluster_recover_after_s: float = Field(
        10.0,
        ge=1.0,
        le=600.0,
        description="Several nodes: a message unanswered this long (its node died) is"
        " answered by another node; queued work without a queue entry is queued again.",
    )
    sqlite_synchronous: str = Field(
        "FULL",
        description="SQLite `synchronous` pragma: FULL survives power loss, NORMAL only a crash.",
    )
    store_batch_max: int = Field(
        256, ge=1, le=10_000, description="Most writes in one group commit."
    )

    # --- secrets
    secret_key: SecretStr | None = Field(
        None,
        description="Signs visitor tokens; generated into DATA_DIR/secret.key when unset.",
    )
    webchat_identity_secret: SecretStr | None = Field(
        None,
        description="Shared with the embedding site to HMAC-sign its user ids; unset: demo secret.",
    )
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token of the machine API (/api/v1/reports/...), at least 16 "
        "characters; admins also create and revoke tokens in the console. Unset: only those.",
    )

    # --- web chat
    webchat_max_message_chars: int = Field(
        2000, ge=1, le=8000, description="Longer chat messages are refused with an error frame."
    )
    webchat_history_limit: int = Field(
        200,
        ge=1,
        le=5000,
        description="Messages a chat opened afresh gets as history; a resuming chat gets every "
        "message after its last seq, this many per history frame.",
    )
    webchat_allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to open the chat websocket and rate from the widget"
        " (https://shop.example,https://www.shop.example); empty allows any (demo).",
    )
    # A person types far below this; a script flooding one socket is refused
    # (`rate_limited`, nothing stored) instead of filling the store and the agent's lanes.
    webchat_frames_per_minute: int = Field(
        120, ge=0, le=1_000_000, description="Frames a chat socket may send a minute; 0: no limit."
    )
    webchat_frame_burst: int = Field(
        20, ge=1, le=10_000, description="Frames one chat socket may send at once before the limit."
    )

    # --- agent
    handover_threshold: float = Field(
        0.45, ge=0.0, le=1.0, description="Below this confidence the agent hands over."
    )
    kb_dir: Path | None = Field(None, description="Folder of Markdown articles; unset: built-in.")
    backend: str = Field("demo", description="Business backend: `demo` (embedded SQLite).")
    password_resets_per_day: int = Field(
        3, ge=0, description="Password resets the agent makes per account per day."
    )
    otp_ttl_s: int = Field(600, ge=60, le=3600, description="How long a one-time code is valid.")
    otp_attempts: int = Field(5, ge=1, le=10, description="Tries at one one-time code.")
    otp_sends_per_hour: int = Field(
        3, ge=1, description="One-time codes sent per customer, and per phone/address, per hour."
    )
    otp_sends_per_target_per_day: int = Field(
        10, ge=1, description="One-time codes sent to one phone number or address per day."
    )
    agent_timeout_s: float = Field(
        10.0, gt=0, description="An agent turn slower than this falls back to a person."
    )
    refund_approval_limit_cents: int = Field(
        5000, ge=0, description="Refunds above this (minor units) wait for a rep's approval."
    )

    # --- LLM agent (any OpenAI-compatible server); unset: the embedded policy answers
    llm_base_url: str = Field(
        "", description="e.g. https://api.openai.com/v1 or http://localhost:11434/v1 (Ollama)."
    )
    llm_model: str = Field("", description="Model name the server knows, e.g. gpt-4o-mini.")
    llm_api_key: SecretStr | None = Field(None, description="Bearer key; local servers need none.")
    llm_timeout_s: float = Field(8.0, gt=0, le=120, description="Longest wait for one request.")
    llm_max_retries: int = Field(1, ge=0, le=5, description="Retries of a failed request.")
    llm_max_tool_steps: int = Field(4, ge=1, le=10, description="Tool rounds per turn.")
    llm_budget_phone_s: float = Field(4.0, gt=0, description="Time for one turn on a call.")
    llm_budget_sms_s: float = Field(8.0, gt=0, description="Time for one SMS turn.")
    llm_budget_email_s: float = Field(9.0, gt=0, description="Time for one email turn.")
    llm_budget_chat_s: float = Field(8.0, gt=0, description="Time for one web chat turn.")
    llm_history_messages: int = Field(
        20, ge=0, le=200, description="Recent messages (every channel) in the model's context."
    )
    llm_prompts_dir: Path | None = Field(
        None, description="Folder of prompt files overriding the packaged ones (base.md, "
        "phone.md, sms.md, email.md, chat.md)."
    )  # fmt: skip
    llm_fallback: Literal["policy", "handover"] = Field(
        "policy",
        description="When the LLM fails: answer with the embedded policy, or hand over.",
    )
    llm_tools: list[str] = Field(
        default_factory=list, description="Allow-list of tool names; empty: every tool."
    )
    llm_min_transcript_confidence: float = Field(
        0.35, ge=0.0, le=1.0,
        description="A caller's transcript less sure than this is not acted on (the caller is "
        "asked to repeat); twice in a row hands over.",
    )  # fmt: skip

    # --- phone speech (speech-to-text and text-to-speech)
    stt_model: str = Field(
        "tiny.en",
        description="faster-whisper model name (looked up offline in DATA_DIR/models and the "
        "Hugging Face cache; fetch with `gateway models pull NAME`) or a CTranslate2 directory.",
    )
    stt_language: str = Field("en", min_length=2, max_length=8, description="Spoken language.")
    stt_compute_type: str = Field(
        "int8", description="CTranslate2 compute type on CPU: int8, int8_float32, int16, float32."
    )
    stt_workers: int = Field(2, ge=1, le=16, description="Transcriptions run at once.")
    stt_cpu_threads: int = Field(
        0, ge=0, le=64, description="Threads per transcription; 0: CPU cores / STT_WORKERS."
    )
    stt_timeout_s: float = Field(15.0, gt=0, description="Longest wait for one transcript.")
    stt_window: Literal["auto", "utterance", "full"] = Field(
        "auto",
        description="What the recogniser encodes: `full`, Whisper's whole 30 s window; "
        "`utterance`, the caller's words plus 1 s of silence (2-5x less CPU per turn); "
        "`auto`, the window measured as accurate for the model (today `utterance` for "
        "base, padded to at least 10 s, and `full` for tiny.en and any model not "
        "measured: see docs/voice.md).",
    )
    tts_voice: str = Field("en-us", min_length=1, description="espeak-ng voice name.")
    tts_rate: int = Field(170, ge=80, le=450, description="Speaking rate, words per minute.")
    tts_timeout_s: float = Field(10.0, gt=0, description="Longest wait for one utterance.")

    # --- phone (Twilio Media Streams)
    twilio_account_sid: str = Field(
        "",
        description="Account SID the REST API is called with (hang-ups); also checked on "
        "incoming webhooks when set.",
    )
    twilio_auth_token: SecretStr | None = Field(
        None,
        description="Checks X-Twilio-Signature on every Twilio request and authenticates REST "
        "calls; unset: every Twilio request is refused with 403.",
    )
    twilio_api_url: str = Field(
        "https://api.twilio.com",
        description="Base URL of Twilio's REST API (a regional edge; a local stand-in in tests).",
    )
    phone_end_silence_ms: int = Field(
        600, ge=100, le=5000, description="Caller silence that ends their turn."
    )
    phone_quick_end_ms: int = Field(
        300,
        ge=0,
        le=5000,
        description="Caller silence that ends their turn when the words so far read as a "
        "finished sentence (transcribed while the silence runs); 0: always wait "
        "GATEWAY_PHONE_END_SILENCE_MS.",
    )
    phone_end_of_turn: Literal["smart", "text"] = Field(
        "smart",
        description="How a caller's pause is judged: `smart`, from the audio by the Smart Turn "
        "v3.2 model (pipecat-ai's ONNX file; `text` with a warning when it is not installed); "
        "`text`, from the early transcript's punctuation.",
    )
    phone_smart_turn_threshold: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="Smart Turn probability that ends a turn early (chosen with "
        "bench/end_of_turn.py; docs/voice.md, End of turn).",
    )
    phone_smart_turn_ms: int = Field(
        300,
        ge=100,
        le=5000,
        description="Caller silence after which a turn Smart Turn judges complete ends.",
    )
    phone_smart_turn_max_ms: int = Field(
        800,
        ge=100,
        le=5000,
        description="Caller silence that ends a turn Smart Turn judges unfinished (in place "
        "of GATEWAY_PHONE_END_SILENCE_MS when GATEWAY_PHONE_END_OF_TURN=smart).",
    )
    phone_min_speech_ms: int = Field(
        250, ge=0, le=5000, description="Shorter caller sounds are noise, not an utterance."
    )
    phone_max_utterance_ms: int = Field(
        15_000, ge=1000, le=30_000, description="Longest caller utterance before it is cut."
    )
    barge_in_min_speech_ms: int = Field(
        120,
        ge=0,
        le=2000,
        description="Caller speech this long while the agent talks stops the agent's audio "
        "(a backchannel or a sound without words then resumes it).",
    )
    phone_link_accounts: bool = Field(
        True,
        description="Tie a caller to the business account that lists their number (caller ID "
        "is spoofable: the account's tools then answer whoever presents that number).",
    )
    sms_link_accounts: bool = Field(
        True,
        description="Tie a texter to the business account that lists their number, so their "
        "texts join the account's customer and history (replies go to that number only).",
    )
    email_link_accounts: bool = Field(
        True,
        description="Tie an email sender to the business account that lists their address "
        "(From can be forged: it stays 'sender'-verified, and account changes asked for by "
        "email are never made on its strength alone).",
    )

    # --- warm transfer of a call (Twilio conference)
    transfer_numbers: str = Field(
        "",
        description="Lines a transferred call rings when no rep with a phone is eligible, "
        "tried in order: `+15550001111,+15550002222` for every queue, or per queue "
        "`billing=+1555...,+1555...; *=+1555...` (`*`: every queue, tried after the queue's "
        "own); empty: reps' phones only.",
    )
    transfer_caller_id: str = Field(
        "",
        description="Twilio number (E.164) the calls to reps come from; set, a call handed "
        "over rings the phones of eligible reps (then TRANSFER_NUMBERS); unset: the caller "
        "hears the hold prompt and waits in the queue. Needed with TRANSFER_NUMBERS.",
    )
    transfer_ring_timeout_s: int = Field(
        20, ge=5, le=600, description="How long a rep's phone rings before the next rep."
    )
    transfer_accept_timeout_s: int = Field(
        8, ge=1, le=60, description="How long a rep has after the brief to press 1."
    )
    transfer_hold_music_url: str = Field(
        "", description="waitUrl the caller hears while held; empty: Twilio's hold music."
    )
    transfer_audio_ttl_s: int = Field(
        600, ge=30, le=86_400, description="Lifetime of a signed brief or prompt audio URL."
    )

    # --- outbound calls (proactive outreach)
    outbound_caller_id: str = Field(
        "",
        description="Twilio number (E.164) outbound calls of proactive outreach come from; "
        "empty: GATEWAY_TRANSFER_CALLER_ID; both empty: no outbound calls (the outreach "
        "uses its other channels).",
    )
    outbound_ring_timeout_s: int = Field(
        25, ge=5, le=600, description="How long an outbound call rings before it is a no-answer."
    )
    outbound_audio_ttl_s: int = Field(
        600, ge=30, le=86_400, description="Lifetime of a signed voicemail audio URL."
    )

    # --- SMS (Twilio Programmable Messaging)
    twilio_sms_from: str = Field(
        "",
        description="Number (E.164) or sender the SMS replies come from; empty: the number the "
        "customer last texted (remembered in memory only, so set it when replies may outlive a "
        "restart).",
    )
    sms_help_text: str = Field(
        "Support: reply here with your question, or reply STOP to opt out. "
        "Msg&data rates may apply.",
        min_length=1, max_length=320,
        description="The answer to HELP / INFO.",
    )  # fmt: skip
    sms_start_text: str = Field(
        "You will get our messages again. Reply STOP to opt out, HELP for help.",
        max_length=320,
        description="The answer to START / YES / UNSTOP; empty: none.",
    )
    sms_max_segments: int = Field(
        3, ge=1, le=10,
        description="Most SMS segments in one reply (153 GSM-7 or 67 UCS-2 characters each when "
        "concatenated); a longer reply is shortened.",
    )  # fmt: skip
    sms_send_timeout_s: float = Field(
        10.0, gt=0, le=60, description="Longest wait for Twilio to accept one SMS."
    )

    # --- outbound delivery (the outbox, gateway/outbox.py)
    outbox_retry_base_s: float = Field(
        2.0,
        gt=0,
        le=3600,
        description="Wait before the first retry of a reply the provider did not take; "
        "doubles with each attempt.",
    )
    outbox_retry_max_s: float = Field(
        300.0, gt=0, le=86400, description="Longest wait between two attempts of one reply."
    )
    outbox_max_attempts: int = Field(
        8,
        ge=1,
        le=100,
        description="Attempts before a reply is given up (marked failed, with a "
        "`delivery.failed` event reps see).",
    )
    outbox_lease_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="How long a node holds a reply it is sending; a reply held by a node "
        "that died is sent by another after this (keep it above the send timeouts).",
    )
    outbox_poll_s: float = Field(
        1.0, gt=0, le=60, description="How often each node looks for replies due for sending."
    )

    # --- email
    email_address: str = Field(
        "",
        description="The support address mail is sent to and replies come from; empty: the "
        "email channel is off.",
    )
    email_listen: str = Field(
        "",
        description="host:port of the embedded SMTP server that receives mail for the support "
        "address; empty: no SMTP server.",
    )
    email_relay: SecretStr | None = Field(
        None,
        description="Outbound mail relay: smtp://[user:pass@]host[:port] (STARTTLS when offered, "
        "required with credentials) "
        "or smtps://... (TLS); unset: replies are recorded as failed (email_off).",
    )
    email_imap: SecretStr | None = Field(
        None,
        description="Poll an existing mailbox instead of (or as well as) the SMTP server: "
        "imaps://user:pass@host[:port]/MAILBOX (imap:// only for a server on this machine).",
    )
    email_imap_interval_s: float = Field(
        30.0, gt=0, le=3600, description="Seconds between two polls of GATEWAY_EMAIL_IMAP."
    )
    email_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024,
        description="Largest mail accepted (attachments included); larger is refused with 552.",
    )  # fmt: skip
    email_replies_per_hour: int = Field(
        5, ge=1, le=1000,
        description="Most answers one sender gets per hour; more mail is stored, not answered.",
    )  # fmt: skip
    email_replies_per_domain_per_hour: int = Field(
        50, ge=1, le=100_000,
        description="Most answers all senders of one mail domain get per hour together (a "
        "responder answering from a new address each time); more mail is stored, not answered.",
    )  # fmt: skip
    email_replies_total_per_hour: int = Field(
        1000, ge=1, le=1_000_000,
        description="Most automatic email answers per hour in all (every node together); more "
        "mail is stored for reps, not answered.",
    )  # fmt: skip
    email_parse_workers: int = Field(
        2, ge=1, le=32,
        description="Processes that parse received mail off the event loop.",
    )  # fmt: skip
    email_parse_timeout_s: float = Field(
        20.0, gt=0, le=300,
        description="Longest time one mail may take to parse; past it the worker is killed and "
        "the mail is stored from its headers only.",
    )  # fmt: skip
    email_send_timeout_s: float = Field(
        30.0, gt=0, le=300, description="Longest wait for the relay to accept one mail."
    )
    email_max_attachment_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024,
        description="Largest attachment kept; a larger one is not stored, only recorded on the "
        "message as refused (the mail's text is kept and answered).",
    )  # fmt: skip
    email_tls_cert: Path | None = Field(
        None,
        description="PEM certificate (chain) the embedded SMTP server offers STARTTLS with; "
        "needs GATEWAY_EMAIL_TLS_KEY. Unset: no STARTTLS.",
    )
    email_tls_key: Path | None = Field(
        None, description="PEM private key of GATEWAY_EMAIL_TLS_CERT."
    )
    email_require_starttls: bool = Field(
        False,
        description="Refuse mail from a client that did not STARTTLS first (the default "
        "accepts plain mail too, since not every sending server does TLS).",
    )

    # --- human queues and the rep console
    queues: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "billing": ["billing"], "technical": ["technical"], "general": ["general"]
        },
        description="Queue name -> skills a rep needs (all of them) to be offered its work.",
    )  # fmt: skip
    business_timezone: str = Field("UTC", description="IANA time zone of BUSINESS_HOURS.")
    business_hours: dict[str, str] = Field(
        default_factory=dict,
        description='Open hours per weekday, e.g. {"mon": "09:00-17:00"}; a day not listed is '
        "closed; empty: always open.",
        examples=[{"mon": "09:00-17:00", "tue": "09:00-17:00"}],
    )
    offer_timeout_s: float = Field(
        20.0, gt=0, le=600, description="How long a rep has to accept an offer before the next."
    )
    rep_max_text: int = Field(3, ge=0, le=50, description="Default text conversations per rep.")
    rep_max_calls: int = Field(1, ge=0, le=5, description="Default calls per rep at once.")
    console_away_after_s: float = Field(
        60.0, ge=0, le=3600,
        description="An available rep whose last console disconnected is set away after this "
        "long (unless one reconnects), so offers stop waiting on a closed browser.",
    )  # fmt: skip
    console_events_days: float = Field(
        7.0, gt=0, description="Console events (what reconnecting consoles replay) are kept "
        "this long; older ones, and old sessions, are deleted at start-up.",
    )  # fmt: skip
    console_login_failures_per_address: int = Field(
        20, ge=1, le=100_000,
        description="Wrong console passwords from one client address (an IPv6 /64) within 15"
        " minutes before every login from there is refused until they age out (5 per username"
        " lock that username alike). Kept in the store: a restart lifts no lock.",
    )  # fmt: skip
    console_session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="Lifetime of a rep's console login."
    )
    rating_window_hours: float = Field(
        48.0, gt=0, description="How long after a close the customer may still rate it."
    )
    sla_first_response_s: dict[str, float] = Field(
        default_factory=dict,
        description='Queue -> seconds from handover to the first rep reply, e.g. {"billing": '
        "300}; a conversation answered later (or not yet, past it) breaches its SLA.",
    )
    sla_resolution_s: dict[str, float] = Field(
        default_factory=dict,
        description="Queue -> seconds from the conversation's start to its close (SLA).",
    )
    cost_rates: dict[str, float] = Field(
        default_factory=dict,
        description="What each unit costs, in COST_CURRENCY, for the reports' cost section: "
        "llm_prompt_per_1k_tokens, llm_completion_per_1k_tokens, stt_per_minute, "
        "tts_per_minute, sms_segment, call_minute, rep_minute; one not given costs 0.",
        examples=[{"llm_prompt_per_1k_tokens": 0.00015, "llm_completion_per_1k_tokens": 0.0006,
                   "sms_segment": 0.0079, "call_minute": 0.0085, "rep_minute": 0.5}],
    )  # fmt: skip
    cost_currency: str = Field(
        "USD", description="ISO 4217 code of the currency COST_RATES are in (shown with costs)."
    )
    sla_next_response_s: dict[str, float] = Field(
        default_factory=dict,
        description="Queue -> seconds from a customer's message to the rep's next reply, once "
        "a rep has answered (SLA). These three are defaults: an admin can set each queue's "
        "targets in the console, stored in the database. Counted in BUSINESS_HOURS.",
    )
    sla_at_risk_share: float = Field(
        0.25, gt=0, lt=1,
        description="An item whose SLA target has less than this share of its time left is "
        "shown at risk (0.25: the last quarter).",
    )  # fmt: skip
    approvals_queue: str = Field(
        "billing", max_length=50,
        description="Reps who serve this queue decide actions waiting for approval (refunds "
        "over REFUND_APPROVAL_LIMIT_CENTS) from the console; the rep holding the "
        "conversation always may. Empty or no such queue: only the holder.",
    )  # fmt: skip

    # --- proactive outreach (gateway/outreach)
    outreach_rules_dir: Path | None = Field(
        None, description="Folder whose rules.toml replaces the packaged outreach rules and "
        "templates (gateway/outreach/rules.toml): event types, channel order, texts, calls."
    )  # fmt: skip
    outreach_quiet_hours: str = Field(
        "21:00-08:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d)?$",
        description="HH:MM-HH:MM in the customer's local time (their phone number's region, "
        "else BUSINESS_TIMEZONE) when no outreach text or call goes out: it waits for the end. "
        "Empty: none.",
    )  # fmt: skip
    outreach_max_per_day: int = Field(
        3, ge=0, le=1000,
        description="Outreach messages one customer gets in 24 hours at most; more are "
        "skipped (frequency_cap). 0: no cap.",
    )  # fmt: skip
    outreach_poll_s: float = Field(
        1.0, gt=0, le=60, description="How often each node looks for outreach that is due."
    )
    outreach_lease_s: float = Field(
        60.0, ge=5, le=3600,
        description="How long a node holds an outreach it is sending; a node that dies "
        "holding it leaves it to another (or to itself after a restart) after this.",
    )  # fmt: skip
    outreach_send_rate: float = Field(
        1.0, gt=0, le=1000,
        description="Outreach messages sent per second at most, by all nodes together "
        "(events and campaigns; a campaign may set a lower rate of its own). 1 is a Twilio "
        "long code's rate; a toll-free number or a short code allows more.",
    )  # fmt: skip
    outreach_saved_days: float = Field(
        3.0, gt=0, le=60,
        description="The reports' calls saved: outreach sent that the customer did not "
        "contact us about (no inbound message on any channel) within this many days.",
    )  # fmt: skip
    outreach_call_timeout_s: float = Field(
        300.0, ge=10, le=3600,
        description="An outreach call with no outcome reported after this long counts as "
        "failed: the next channel is tried.",
    )  # fmt: skip

    # --- checks (settings_checks.py), run by pydantic in this order
    _default_public_url = model_validator(mode="before")(check.default_public_url)
    _check_llm = model_validator(mode="after")(check.llm_pairing)
    _check_email_tls = model_validator(mode="after")(check.email_tls)
    _check_llm_url = field_validator("llm_base_url")(check.llm_url)
    _check_queues = field_validator("queues")(check.queues)
    _check_api_token = field_validator("api_token")(check.api_token)
    _check_cost_rates = field_validator("cost_rates")(check.cost_rates)
    _check_cost_currency = field_validator("cost_currency")(check.currency)
    _check_sla = field_validator("sla_first_response_s", "sla_resolution_s", "sla_next_response_s")(
        check.sla_targets
    )
    _check_timezone = field_validator("business_timezone")(check.time_zone)
    _check_hours = field_validator("business_hours")(check.business_hours)
    _check_email_address = field_validator("email_address")(check.email_address)
    _check_email_listen = field_validator("email_listen")(check.host_port)
    _check_email_relay = field_validator("email_relay")(check.smtp_url)
    _check_redis_url = field_validator("redis_url")(check.redis_url)
    _check_email_imap = field_validator("email_imap")(check.imap_url)
    _check_compute_type = field_validator("stt_compute_type")(check.compute_type)
    _check_sms_from = field_validator("twilio_sms_from")(check.sms_sender)
    _check_transfer_numbers = field_validator("transfer_numbers")(check.transfer_numbers)
    _check_transfer_caller_id = field_validator("transfer_caller_id")(check.transfer_caller_id)
    _check_outbound_caller_id = field_validator("outbound_caller_id")(check.caller_id)
    _check_hold_music = field_validator("transfer_hold_music_url")(check.hold_music_url)
    _check_api_url = field_validator("twilio_api_url")(check.twilio_api_url)
    _check_url = field_validator("public_url")(check.public_url)
    _check_database_url = field_validator("database_url")(check.database_url)
    _check_sync = field_validator("sqlite_synchronous")(check.sqlite_synchronous)
    _check_level = field_validator("log_level")(check.log_level)

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}"

    @property
    def transfer_targets(self) -> dict[str, tuple[str, ...]]:
        """GATEWAY_TRANSFER_NUMBERS by queue (`*`: every queue), numbers in E.164."""
        return check.parse_transfer_numbers(self.transfer_numbers)

    @property
    def public_ws_base(self) -> str:
        """The public base URL with a websocket scheme (for stream URLs)."""
        parts = urlsplit(self.public_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # EnvSource: lists as a,b,c and one clear error for a value that is not the JSON
        # a setting needs (env_settings would raise pydantic-settings' SettingsError).
        sources: list[PydanticBaseSettingsSource] = [init_settings, EnvSource(settings_cls)]
        path = toml_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings once; raise ConfigError naming each bad setting."""
    try:
        return Settings(**overrides)
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise config_error(exc, secret_names(Settings.model_fields)) from exc
