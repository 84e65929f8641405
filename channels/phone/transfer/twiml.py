"""The TwiML of a warm transfer, built with `twilio.twiml.voice_response`.

- The caller is moved (REST update of their call) into a conference they
  cannot start: they hear the wait music until the rep joins. The conference
  posts its start/end/join/leave events to us.
- The rep's call plays the spoken brief inside a one-digit `<Gather>`: 1 (at
  any point of the brief) accepts and joins the conference; nothing or another
  key declines. Answering alone is not accepting, so a voicemail box that picks
  up never gets the caller.
- With no rep left, the caller is moved out of the conference to a callback
  offer (again a one-digit `<Gather>`).
"""

from __future__ import annotations

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

ACCEPT_DIGIT = "1"


def _xml(response: VoiceResponse) -> str:
    return str(response.to_xml())


def hold_in_conference(name: str, *, status_callback: str, wait_url: str = "") -> str:
    """The caller's side: wait (music) in conference `name`; it ends when they leave."""
    dial = Dial()
    options = {"wait_url": wait_url, "wait_method": "GET"} if wait_url else {}
    dial.conference(
        name,
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        beep=False,
        status_callback=status_callback,
        status_callback_method="POST",
        status_callback_event="start end join leave",
        **options,
    )
    response = VoiceResponse()
    response.append(dial)
    return _xml(response)


def rep_brief(brief_url: str, *, answer_url: str, timeout_s: int) -> str:
    """The rep's call: the spoken brief, during and after which 1 accepts."""
    gather = Gather(
        num_digits=1,
        timeout=timeout_s,
        action=answer_url,
        method="POST",
        action_on_empty_result=True,
    )
    gather.play(brief_url)
    response = VoiceResponse()
    response.append(gather)
    return _xml(response)


def rep_join(name: str) -> str:
    """The rep accepted: join the caller; the conference ends when the rep leaves."""
    dial = Dial()
    dial.conference(name, start_conference_on_enter=True, end_conference_on_exit=True, beep=False)
    response = VoiceResponse()
    response.append(dial)
    return _xml(response)


def offer(audio_url: str, *, action_url: str, timeout_s: int) -> str:
    """Play an offer the caller answers with one key (or not: the action gets no digit)."""
    return rep_brief(audio_url, answer_url=action_url, timeout_s=timeout_s)


def play_and_hang_up(audio_url: str) -> str:
    response = VoiceResponse()
    response.play(audio_url)
    response.hangup()
    return _xml(response)


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return _xml(response)


__all__ = ["ACCEPT_DIGIT", "hang_up", "hold_in_conference", "offer", "play_and_hang_up",
           "rep_brief", "rep_join"]  # fmt: skip
