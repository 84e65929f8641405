"""Pattern-based intent detection and slot extraction for the embedded policy.

`parse(text)` scores every intent with a handful of regular expressions (the
strongest match per intent wins), then resolves: an explicit request for a
person beats everything (the business topic is kept for routing), a business
intent beats small talk ("hi, where is my order?" is about the order), and a
bare order number means order status. Scores double as confidence.

Order numbers are 3-10 digit ids: "1001", "#1001", "order 1001", "order no.
1001", or spoken digit by digit ("one zero zero one", "one oh oh one").
"""

from __future__ import annotations

import enum
import re

from agent.pii import mask_pii
from agent.understand import Match
from gateway.models import Frozen


class Intent(enum.StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    HUMAN = "human"
    ORDER_STATUS = "order_status"
    ORDER_CANCEL = "order_cancel"
    PASSWORD_RESET = "password_reset"
    REFUND = "refund"
    BILLING = "billing"
    CANCEL_SUBSCRIPTION = "cancel_subscription"
    LINK_IDENTITY = "link_identity"  # "text me a code": prove another number or address
    AFFIRM = "affirm"
    DENY = "deny"
    DONT_KNOW = "dont_know"
    COMPLAINT = "complaint"  # a complaint, legal threat or compensation demand: a person
    SECURITY = "security"  # an account taken over: a person, never an automatic reset
    HELP = "help"  # a question the help centre answers (policy, payment methods, ...)
    OUT_OF_SCOPE = "out_of_scope"  # nothing a support desk does ("what's the weather")
    UNKNOWN = "unknown"


# Business intents, highest priority first: on equal scores the earlier wins
# (a refund mentioned alongside a charge is a refund).
BUSINESS = (
    Intent.REFUND,
    Intent.CANCEL_SUBSCRIPTION,
    Intent.ORDER_CANCEL,
    Intent.PASSWORD_RESET,
    Intent.ORDER_STATUS,
    Intent.BILLING,
    Intent.LINK_IDENTITY,
)
_SMALL_TALK = (Intent.GOODBYE, Intent.THANKS, Intent.GREETING)
_REPLIES = (Intent.AFFIRM, Intent.DENY, Intent.DONT_KNOW)

_I = re.IGNORECASE
# Money taken without the customer's say-so: a dispute even with no billing word in it.
_STRONG_DISPUTE = re.compile(
    r"\b(someone|somebody|a stranger|strangers)\b.{0,25}\b(used|using|took|taken|stole|charged|"
    r"spent|withdr[ae]w\w*|transferr?\w*|bought)\b.{0,30}(\bcard\b|\baccount\b|\bmoney\b|\$|\d)|"
    r"\b(card|cards)\b.{0,15}\b(stolen|lost|cloned|skimmed)\b|"
    r"\b(lost|stolen|cloned)\b.{0,15}\b(debit |credit |bank )?card\b",
    re.IGNORECASE,
)
_PATTERNS: dict[Intent, list[tuple[re.Pattern[str], float]]] = {
    Intent.HUMAN: [
        (re.compile(r"\b(human( being)?|real person|actual person|live (agent|person|chat)|"
                    r"representative|operator|escalate)\b", _I), 0.95),
        (re.compile(r"\b(talk|speak|chat)\s+(to|with)\s+(a |an |the |some |your )?(someone|"
                    r"somebody|person|people|agent|human|rep|manager|supervisor|staff|team)\b",
                    _I), 0.95),
        (re.compile(r"\b(want|need|get|give)\s+(me\s+)?(a |an |to |your )?(person|agent|rep|"
                    r"manager|supervisor)\b", _I), 0.95),
        (re.compile(r"^\W*(agent|person|rep|someone|manager|supervisor)\W*$", _I), 0.9),
        (re.compile(r"\bagent\b", _I), 0.8),
    ],
    Intent.ORDER_STATUS: [
        (re.compile(r"\bwhere('?s| is| are)\s+(my|the)\s+(order|package|parcel|delivery|"
                    r"shipment|stuff|items?|purchase)", _I), 0.95),
        (re.compile(r"\b(order|delivery|shipping|shipment|package)\s+(status|update)\b", _I), 0.95),
        (re.compile(r"\bstatus of (my |the )?(order|delivery|package|parcel)", _I), 0.95),
        (re.compile(r"\btrack(ing)?\b", _I), 0.85),
        (re.compile(r"\b(has(n'?t| not)|have(n'?t| not)|didn'?t|did not|never|not yet|still not)"
                    r"\s+(arrived|come|shipped|been (shipped|delivered)|received|got(ten)?)", _I),
         0.85),
        (re.compile(r"\b(my|the) (order|package|parcel|delivery|shipment)\b.*\b(arrive|ship|"
                    r"deliver|come|get here)", _I), 0.9),
        (re.compile(r"\bmy (order|package|parcel|delivery|shipment)\b", _I), 0.7),
    ],
    Intent.ORDER_CANCEL: [
        (re.compile(r"\bcancel\w*\b.{0,20}\b(order|purchase)\b", _I), 0.9),
    ],
    Intent.COMPLAINT: [
        (re.compile(r"\b(complain\w*|complaint|lawyers?|solicitors?|attorneys?|sue|suing|"
                    r"legal action|court|ombudsman|trading standards|small claims|"
                    r"compensat\w+)\b", _I), 0.95),
    ],
    Intent.SECURITY: [
        (re.compile(r"\b(hack\w*|compromised|identity theft|"
                    r"(someone|somebody|stranger)\b.{0,20}\b(got|logged|broke|getting) (in|into)|"
                    r"unauthori[sz]ed (access|log ?ins?|sign ?ins?))", _I), 0.95),
    ],
    Intent.PASSWORD_RESET: [
        (re.compile(r"\b(reset|forgot|forgotten|change|recover|lost)\b.{0,20}\bpass ?word\b",
                    _I), 0.95),
        (re.compile(r"\bpass ?word\b.{0,25}\b(reset|forgot|not working|doesn'?t work|wrong|"
                    r"expired|incorrect)", _I), 0.95),
        (re.compile(r"\b(can'?t|cannot|unable to|couldn'?t|won'?t let me|not able to)\s+"
                    r"(log ?in|sign ?in|access|get in)", _I), 0.9),
        (re.compile(r"\blocked out\b", _I), 0.9),
        (re.compile(r"\b(pass ?word|pwd)\b", _I), 0.7),
        (re.compile(r"\b(log ?in|sign ?in)\b", _I), 0.55),
    ],
    Intent.REFUND: [
        (re.compile(r"\brefund(ed|s|ing)?\b", _I), 0.9),
        (re.compile(r"\b(money back|reimburse\w*)\b", _I), 0.9),
    ],
    Intent.BILLING: [
        (re.compile(r"\b(charged|billed)\s+(me\s+)?(twice|two times|double|again)\b", _I), 0.9),
        (re.compile(r"\b(double|duplicate|unauthori[sz]ed|unknown|wrong|extra)\s+(charge|"
                    r"payment|billing)", _I), 0.9),
        (re.compile(r"\b(overcharged|fraud\w*|don'?t recogni[sz]e|do not recogni[sz]e)\b", _I),
         0.9),
        (_STRONG_DISPUTE, 0.9),  # "a payment on my card I never made": contested money
        (re.compile(r"\b(bill|billed|billing|invoices?|receipts?|charge[sd]?|payments?|paid|"
                    r"statement|renew(al|s)?)\b", _I), 0.75),
        (re.compile(r"\b(subscription|membership)\b", _I), 0.6),
    ],
    Intent.CANCEL_SUBSCRIPTION: [
        (re.compile(r"\b(cancel\w*|end|stop|terminate|quit)\b.{0,30}\b(subscription|membership|"
                    r"plan|premium|auto-?renew\w*|renewal)\b", _I), 0.95),
        (re.compile(r"\bunsubscribe\b", _I), 0.8),
    ],
    Intent.LINK_IDENTITY: [
        (re.compile(r"\b(text|sms|txt|e-?mail|send|give)\s+(me\s+)?(a\s+|the\s+)?(verification\s+|"
                    r"one[- ]time\s+|confirmation\s+|security\s+)?(code|otp|pin)\b", _I), 0.95),
        (re.compile(r"\b(link|connect|merge)\b.{0,30}\b(accounts|numbers?|phones?|mobile|"
                    r"e-?mails?|address(es)?|profiles?)\b", _I), 0.85),
        (re.compile(r"\b(verify|confirm)\s+(my\s+|this\s+)?(phone|number|mobile|e-?mail)", _I),
         0.85),
    ],
    Intent.GREETING: [
        (re.compile(r"^\W*(hi|hello|hey|hiya|howdy|good (morning|afternoon|evening)|greetings)"
                    r"\b", _I), 0.9),
    ],
    Intent.THANKS: [
        (re.compile(r"\b(thanks|thank you|thx|ty|cheers|appreciate( it)?)\b", _I), 0.9),
    ],
    Intent.GOODBYE: [
        (re.compile(r"\b(bye|goodbye|see you|that'?s all|that is all|nothing else|"
                    r"that'?s it|have a (good|nice|great) (day|one))\b", _I), 0.9),
    ],
    Intent.AFFIRM: [
        (re.compile(r"^\W*(yes|yeah|yep|yup|yea|sure|ok(ay)?|correct|right|confirm(ed)?|"
                    r"please do|do it|go ahead|absolutely|definitely|y)\b", _I), 0.9),
    ],
    Intent.DENY: [
        (re.compile(r"^\W*(no|nope|nah|don'?t|do not|never ?mind|keep (it|my)|not now|"
                    r"changed my mind|n)\b", _I), 0.9),
    ],
    Intent.DONT_KNOW: [
        (re.compile(r"\b((don'?t|do not) (know|have|remember)|no idea|not sure|"
                    r"can'?t (find|remember)|lost (it|the))\b", _I), 0.85),
    ],
}  # fmt: skip

_INFO_QUESTION = re.compile(
    r"^\W*(how|what|when|why|which|is|are|do|does|did you|can you (tell|explain))\b", _I
)
_PERSONAL = re.compile(r"\b(my|mine)\b", _I)
_DISPUTE = re.compile(
    r"\b(twice|two times|double|duplicate|overcharged|unauthori[sz]ed|fraud\w*|scam\w*|"
    r"recogni[sz]e|wrong (amount|charge)|suspicious|stolen|"
    r"(didn'?t|did not|never) (order|buy|authori[sz]e|make|made|approve|purchase|agree)\w*|"
    r"(never|not) (made|authori[sz]ed|ordered|bought|placed|approved|purchased)|"
    r"wasn'?t me|not me|without my (permission|consent|authori[sz]ation)|"
    r"(someone|somebody|a stranger|they) (has |have )?(used|took|taken|stole|charged|spent|"
    r"withdr[ae]w\w*|transferr?ed)\b.{0,30}\b(card|account|money|\$|\d))",
    _I,
)

_ORDER_EXPLICIT = re.compile(
    r"(?:\border\s*(?:number|no\.?|num|nr|#|id)?\s*[:#]?\s*|#\s*)(\d{3,10})\b", _I
)
_LONG_DIGITS = re.compile(r"\+?(?:\d[ -]?){9,}\d")
_ORDER_BARE = re.compile(r"(?<![\d+\-./,])\b(\d{4,8})\b(?![\-/.,]?\d)")
_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_SPOKEN = re.compile(
    r"\b(?:(?:zero|oh|o|one|two|three|four|five|six|seven|eight|nine)[\s,-]+){2,9}"
    r"(?:zero|oh|o|one|two|three|four|five|six|seven|eight|nine)\b",
    _I,
)


class Parsed(Frozen):
    """What one message asks for."""

    intent: Intent
    confidence: float
    topic: Intent | None = None  # the business intent named, also when `intent` is HUMAN
    order_id: str | None = None
    info_question: bool = False  # "how do refunds work?" rather than "refund my order"
    dispute: bool = False  # a contested charge: billing must look at it


def extract_order_id(text: str, *, expecting: bool = False) -> str | None:
    """The order number in `text`. A bare number counts when it looks like an
    id (4-8 digits, not part of a phone number, card or date), or, when the
    agent just asked for one (`expecting`), any 3-10 digit number."""
    # Codes, cards and phone numbers are never order ids, nor are their parts.
    text = _LONG_DIGITS.sub(" ", mask_pii(text, card_last4=False))
    match = _ORDER_EXPLICIT.search(text)
    if match:
        return match.group(1)
    spoken = _SPOKEN.search(text)
    if spoken:
        words = re.split(r"[\s,-]+", spoken.group(0).lower())
        digits = "".join(_DIGIT_WORDS[w] for w in words if w in _DIGIT_WORDS)
        # Three spoken words are more likely prose ("one or two") than an id.
        if len(digits) >= 4 and not all(w in {"o", "oh"} for w in words):
            return digits
    bare = _ORDER_BARE.search(text)
    if bare:
        return bare.group(1)
    if expecting:
        loose = re.search(r"(?<![\d+])(\d{3,10})(?!\d)", text)
        if loose:
            return loose.group(1)
    return None


def _merge(patterns: list[tuple[re.Pattern[str], float]]) -> list[tuple[re.Pattern[str], float]]:
    """One alternation per (score, flags), strongest first: a message costs a
    few regex scans per intent instead of one per pattern, same result."""
    groups: dict[tuple[float, int], list[str]] = {}
    for pattern, score in patterns:
        groups.setdefault((score, pattern.flags), []).append(f"(?:{pattern.pattern})")
    merged = [(re.compile("|".join(srcs), flags), score) for (score, flags), srcs in groups.items()]
    return sorted(merged, key=lambda item: -item[1])


_BY_STRENGTH = {intent: _merge(patterns) for intent, patterns in _PATTERNS.items()}


def _score(intent: Intent, text: str) -> float:
    # Strongest first, so the first match is the intent's score.
    return next((s for p, s in _BY_STRENGTH[intent] if p.search(text)), 0.0)


def parse(text: str, *, expecting_order: bool = False, match: Match | None = None) -> Parsed:
    """Classify one message. `expecting_order`: the agent just asked for an order number;
    `match`: the nearest exemplar family (agent/understand.py), when a matcher is loaded."""
    parsed = _parse_patterns(text, expecting_order=expecting_order)
    if match is None:
        return parsed
    return _with_match(parsed, match, text)


def _parse_patterns(text: str, *, expecting_order: bool) -> Parsed:
    scores = {intent: _score(intent, text) for intent in _PATTERNS}
    order_id = extract_order_id(text, expecting=expecting_order)
    # "What is my last invoice?" asks about the customer's own things, not policy.
    info = bool(_INFO_QUESTION.search(text)) and not _PERSONAL.search(text)
    dispute = bool(_DISPUTE.search(text) or _STRONG_DISPUTE.search(text))
    if dispute and scores[Intent.BILLING]:
        # "a payment on my card I never made": contested money, as sure as "charged twice"
        scores[Intent.BILLING] = max(scores[Intent.BILLING], 0.9)
    # max() keeps the first of equal scores, and BUSINESS is in priority order.
    best = max(BUSINESS, key=lambda i: scores[i])
    # A bare number names no topic of its own: it answers whatever was asked.
    topic = best if scores[best] > 0.0 else None
    common = {"order_id": order_id, "info_question": info, "dispute": dispute, "topic": topic}
    for person in (Intent.HUMAN, Intent.SECURITY, Intent.COMPLAINT):
        if scores[person]:
            if person is Intent.SECURITY:  # routes to the security/technical team
                common["topic"] = Intent.SECURITY
            return Parsed(intent=person, confidence=scores[person], **common)
    if topic is not None:
        confidence = scores[topic]
        if topic is Intent.ORDER_STATUS and order_id:
            confidence = max(confidence, 0.8)
        return Parsed(intent=topic, confidence=confidence, **common)
    if order_id:  # "1001" on its own is most likely an order to look up
        return Parsed(intent=Intent.ORDER_STATUS, confidence=0.8, **common)
    for intent in (*_REPLIES, *_SMALL_TALK):
        if scores[intent]:
            return Parsed(intent=intent, confidence=scores[intent], **common)
    return Parsed(intent=Intent.UNKNOWN, confidence=0.0, **common)


# What a matched family means. A dispute is billing with `dispute` set.
_FAMILY = {
    "order_status": Intent.ORDER_STATUS,
    "order_cancel": Intent.ORDER_CANCEL,
    "account_billing": Intent.BILLING,
    "billing_dispute": Intent.BILLING,
    "needs_person": Intent.COMPLAINT,
    "security": Intent.SECURITY,
    "help_centre": Intent.HELP,
    "password": Intent.PASSWORD_RESET,
    "subscription_cancel": Intent.CANCEL_SUBSCRIPTION,
    "small_talk": Intent.THANKS,
    "out_of_scope": Intent.OUT_OF_SCOPE,
}
_PERSON = (Intent.HUMAN, Intent.SECURITY, Intent.COMPLAINT)
_SHORT_REPLY = 4  # words: "yes please do" is a reply; "yeah, hi, I need to ..." is not
_SHORT_SMALL_TALK = 5  # words: "good morning, thanks!" is only small talk
MATCH_MIN = 0.5  # below this the nearest exemplar is too far to mean anything
STRONG_PATTERN = 0.9  # a pattern this sure is kept unless the match needs a person
ESCALATE_MIN = 0.7  # how close a match must be to override a sure pattern with a person


def _with_match(parsed: Parsed, match: Match, text: str) -> Parsed:
    """Combine the patterns' reading with the nearest exemplars'. Patterns keep what
    they are good at (order numbers, explicit requests for a person, replies to a
    question); the match decides when the patterns are unsure or only saw small talk."""
    intent = _FAMILY.get(match.family)
    if intent is None or match.score < MATCH_MIN or parsed.intent in _PERSON:
        return parsed
    if parsed.intent in _REPLIES and len(text.split()) <= _SHORT_REPLY:
        return parsed  # "yes", "no", "I don't know": answers to the agent's question
    if parsed.intent in _SMALL_TALK and (
        intent is Intent.THANKS
        or (intent is Intent.OUT_OF_SCOPE and len(text.split()) <= _SHORT_SMALL_TALK)
    ):
        return parsed  # "bye", "good morning, thanks!": small talk the patterns already name
    dispute = match.family == "billing_dispute"
    person = intent in _PERSON or dispute
    sure = parsed.intent in BUSINESS and parsed.confidence >= STRONG_PATTERN
    if parsed.order_id and intent not in (Intent.ORDER_STATUS, Intent.ORDER_CANCEL) and not person:
        return parsed  # a number with a vague sentence is an order question
    if person and parsed.intent in BUSINESS and match.score < ESCALATE_MIN:
        return parsed  # "what are my recent charges?" is near a dispute, not one
    if sure and not (person and match.score >= ESCALATE_MIN):
        return parsed
    if intent is Intent.ORDER_STATUS and parsed.info_question and not parsed.order_id:
        intent = Intent.HELP  # "how long does shipping take?": no order of theirs named
    topic = parsed.topic if intent in _PERSON else intent if intent in BUSINESS else parsed.topic
    if intent is Intent.SECURITY:
        topic = Intent.SECURITY
    return parsed.model_copy(
        update={
            "intent": intent,
            "confidence": max(match.score, 0.5),
            "topic": topic,
            "dispute": parsed.dispute or dispute,
        }
    )


def has(intent: Intent, text: str) -> bool:
    """Whether any pattern of `intent` matches (e.g. a 'yes' inside a longer reply)."""
    return _score(intent, text) > 0.0


__all__ = ["BUSINESS", "Intent", "Parsed", "extract_order_id", "has", "parse"]
