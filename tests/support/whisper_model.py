"""A random-weight Whisper model of the real architecture, built offline.

Whisper weights cannot be downloaded in the tests, so this module builds a
CTranslate2 model with ctranslate2's own `WhisperSpec` (the layout the official
converter produces), fills every variable with seeded random numbers of the
right shape, and writes next to it a `tokenizer.json` built with the `tokenizers`
library whose special tokens sit at the ids Whisper uses. The real
`faster_whisper.WhisperModel` loads the directory and runs its real feature
extraction, encoder and decoding code; only the words it produces are nonsense.

    path = build_random_whisper(tmp_dir / "tiny.en", shape="tiny.en")
    WhisperModel(str(path), device="cpu", compute_type="int8")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SHAPES", "WhisperShape", "build_random_whisper", "whisper_vocabulary"]

# Whisper's language tokens, in the order of their ids (openai/whisper tokenizer.py).
LANGUAGES: tuple[str, ...] = (
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
    "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
    "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
    "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
    "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
    "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
    "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su",
)  # fmt: skip

N_MELS = 80
N_AUDIO_CTX = 1500  # encoder positions: 30 s of 10 ms frames, halved by the second conv
N_TEXT_CTX = 448  # decoder positions
N_TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|>
WEIGHT_SCALE = 0.02


@dataclass(frozen=True)
class WhisperShape:
    """The dimensions of one published Whisper size."""

    d_model: int
    heads: int
    encoder_layers: int
    decoder_layers: int
    multilingual: bool

    @property
    def text_tokens(self) -> int:
        """Ordinary (byte-level BPE) tokens before `<|endoftext|>`."""
        return 50257 if self.multilingual else 50256

    @property
    def vocab_size(self) -> int:
        """51865 for multilingual models, 51864 for the `.en` ones."""
        return self.text_tokens + len(_specials(self.multilingual)) + N_TIMESTAMPS


SHAPES: dict[str, WhisperShape] = {
    "tiny": WhisperShape(384, 6, 4, 4, multilingual=True),
    "tiny.en": WhisperShape(384, 6, 4, 4, multilingual=False),
    "base": WhisperShape(512, 8, 6, 6, multilingual=True),
    "base.en": WhisperShape(512, 8, 6, 6, multilingual=False),
}


def _specials(multilingual: bool) -> list[str]:
    del multilingual  # the same special tokens in both; only their ids move by one
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in LANGUAGES),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
    ]


def _byte_alphabet() -> list[str]:
    """GPT-2's byte-to-unicode table in id order: token id b (b < 256) is byte b."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for _, code in sorted(zip(printable, codes, strict=True))]


def whisper_vocabulary(shape: WhisperShape) -> list[str]:
    """Every token string, index = token id, as CTranslate2's vocabulary.json wants."""
    alphabet = _byte_alphabet()
    space = alphabet[ord(" ")]  # "Ġ", id 220 as in GPT-2
    # The multilingual vocabulary has an empty token as its last text token; CTranslate2
    # (4.x) tells a multilingual model from an English-only one by its presence.
    last = [""] if shape.multilingual else []
    fillers = [f"{space}w{i}" for i in range(shape.text_tokens - len(alphabet) - len(last))]
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMPS)]
    tokens = alphabet + fillers + last + _specials(shape.multilingual) + stamps
    assert len(tokens) == shape.vocab_size
    return tokens


def _tokenizer_json(shape: WhisperShape, tokens: list[str]) -> str:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    text = {token: i for i, token in enumerate(tokens[: shape.text_tokens])}
    tokenizer = Tokenizer(models.BPE(vocab=text, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    added = [AddedToken(token, special=True) for token in tokens[shape.text_tokens :]]
    tokenizer.add_special_tokens(added)
    for i, token in enumerate(tokens[shape.text_tokens :], start=shape.text_tokens):
        got = tokenizer.token_to_id(token)
        assert got == i, f"{token} landed at {got}, Whisper has it at {i}"
    return str(tokenizer.to_str())


def _spec(shape: WhisperShape, rng: np.random.Generator, vocab: int) -> Any:
    from ctranslate2.specs import common_spec, whisper_spec

    d = shape.d_model

    def weight(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims, dtype=np.float32) * WEIGHT_SCALE).astype(np.float32)

    def linear(spec: Any, out: int, inp: int, bias: bool = True) -> None:
        spec.weight = weight(out, inp)
        if bias:
            spec.bias = np.zeros(out, dtype=np.float32)

    def norm(spec: Any) -> None:
        spec.gamma = np.ones(d, dtype=np.float32)
        spec.beta = np.zeros(d, dtype=np.float32)

    def ffn(spec: Any) -> None:
        norm(spec.layer_norm)
        linear(spec.linear_0, 4 * d, d)
        linear(spec.linear_1, d, 4 * d)

    spec = whisper_spec.WhisperSpec(
        shape.encoder_layers, shape.heads, shape.decoder_layers, shape.heads
    )
    enc = spec.encoder
    enc.conv1.weight = weight(d, N_MELS, 3)
    enc.conv1.bias = np.zeros(d, dtype=np.float32)
    enc.conv2.weight = weight(d, d, 3)
    enc.conv2.bias = np.zeros(d, dtype=np.float32)
    enc.position_encodings.encodings = _sinusoids(N_AUDIO_CTX, d)
    norm(enc.layer_norm)
    for layer in enc.layer:
        norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], 3 * d, d)  # fused q, k, v
        linear(layer.self_attention.linear[1], d, d)
        ffn(layer.ffn)

    dec = spec.decoder
    dec.embeddings.weight = weight(vocab, d)
    dec.position_encodings.encodings = weight(N_TEXT_CTX, d)
    norm(dec.layer_norm)
    dec.projection.weight = dec.embeddings.weight  # tied, as in Whisper
    for layer in dec.layer:
        norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], 3 * d, d)
        linear(layer.self_attention.linear[1], d, d)
        norm(layer.attention.layer_norm)
        linear(layer.attention.linear[0], d, d)  # queries
        linear(layer.attention.linear[1], 2 * d, d)  # fused keys, values
        linear(layer.attention.linear[2], d, d)
        ffn(layer.ffn)
    assert isinstance(dec.layer[0].ffn.layer_norm, common_spec.LayerNormSpec)
    return spec


def _sinusoids(length: int, channels: int) -> np.ndarray:
    """Whisper's fixed encoder position embedding."""
    increment = np.log(10000) / (channels // 2 - 1)
    inv = np.exp(-increment * np.arange(channels // 2, dtype=np.float32))
    scaled = np.arange(length, dtype=np.float32)[:, None] * inv[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


def build_random_whisper(
    dest: Path, shape: str = "tiny", *, seed: int = 1234, quantization: str = "int8"
) -> Path:
    """Write a random-weight Whisper model of the published `shape` into `dest`.

    `shape` is one of "tiny", "tiny.en", "base", "base.en". The result holds
    model.bin, config.json, vocabulary.json, tokenizer.json and
    preprocessor_config.json, like a converted model from the Hub. Deterministic
    for a given seed; returns `dest`. A directory that already holds a complete
    model is reused as is.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown Whisper shape {shape!r}; one of {sorted(SHAPES)}")
    dims = SHAPES[shape]
    dest = Path(dest)
    done = dest / ".complete"
    if done.is_file() and done.read_text() == f"{shape} {seed} {quantization}":
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    for stale in ("model.bin", "config.json", "vocabulary.json"):
        (dest / stale).unlink(missing_ok=True)

    tokens = whisper_vocabulary(dims)
    spec = _spec(dims, np.random.default_rng(seed), len(tokens))
    spec.register_vocabulary(tokens)
    eot = dims.text_tokens
    config = spec.config
    translate = eot + 2 + len(LANGUAGES)  # then transcribe, startoflm, startofprev, nocaptions
    config.suppress_ids = [eot + 1, *range(translate, translate + 5)]
    config.suppress_ids_begin = [220, eot]
    config.lang_ids = list(range(eot + 2, eot + 2 + len(LANGUAGES))) if dims.multilingual else []
    half = dims.decoder_layers // 2
    config.alignment_heads = [
        (layer, head) for layer in range(half, dims.decoder_layers) for head in range(dims.heads)
    ]
    for key in ("bos_token", "eos_token", "unk_token"):
        config.add_attribute(key, "<|endoftext|>")
    config.add_attribute("layer_norm_epsilon", None)
    spec.validate()
    spec.optimize(quantization=quantization)
    spec.save(str(dest))

    (dest / "tokenizer.json").write_text(_tokenizer_json(dims, tokens), encoding="utf-8")
    preprocessor = {
        "feature_size": N_MELS,
        "sampling_rate": 16000,
        "hop_length": 160,
        "chunk_length": 30,
        "n_fft": 400,
    }
    (dest / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    done.write_text(f"{shape} {seed} {quantization}")
    return dest
