"""Rebuild bench/eval/utterances.jsonl from public data sets (reproducible, offline).

    python bench/eval/build.py [--mirrors /work/.mirror]

Reads git mirrors of the source repositories at the commits pinned below (any
clone of them works: `<mirrors>/<owner>+<name>/repo`), maps each source label to
one of our intent families with the fixed table below (no utterance is
labelled by hand, and none of them was written by us), and assigns the split by
a hash of the text: `dev` when sha1(text) % 3 == 0, else `train`. Nothing may
be tuned on `dev`; `train` is written to agent/exemplars/train.jsonl, the
understanding layer's exemplars (agent/understand.py).

Sources (licence recorded per row):
- HWU64, xliuhw/NLU-Evaluation-Data (CC BY 4.0): small talk, complaints,
  order status ("my" food/order questions), out-of-scope requests.
- NatCS / DSTC11 track 2, amazon-science/dstc11-track2-intent-induction
  (CDLA-Permissive-2.0): password resets, plan cancellations, billing issues and
  disputed charges, balance/payment questions, opening hours, out of scope.
- STAR, RasaHQ/STAR (MIT): the customer's first words reporting bank fraud.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
HWU = ("xliuhw/NLU-Evaluation-Data", "f6071b496b17d71e6eb43f543af0707f4ff30557", "CC-BY-4.0")
NATCS = (
    "amazon-science/dstc11-track2-intent-induction",
    "969b95a0d7365fbc6cd0e05989f1be6b44e6680c",
    "CDLA-Permissive-2.0",
)
STAR = ("RasaHQ/STAR", "3058975092cdd09798e4a3a9e4ae135755824545", "MIT")

# family -> what the agent must do: answer it (which decision intents count) or hand over.
FAMILIES: dict[str, dict[str, object]] = {
    "order_status": {"handover": False, "intents": ["order_status"]},
    "account_billing": {"handover": False, "intents": ["billing"]},
    "billing_dispute": {"handover": True, "queue": "billing"},
    "needs_person": {"handover": True},
    "help_centre": {"handover": False, "intents": ["knowledge_base", "billing", "refund"]},
    "password": {"handover": False, "intents": ["password_reset"]},
    "order_cancel": {"handover": False, "intents": ["order_cancel"]},
    "subscription_cancel": {"handover": False, "intents": ["cancel_subscription"]},
    "small_talk": {"handover": False, "intents": ["thanks", "greeting", "goodbye", "small_talk"]},
    "out_of_scope": {"handover": False, "intents": ["out_of_scope", "clarify"]},
}

_HWU_OOS = (
    "weather_query", "alarm_set", "music_query", "qa_factoid", "general_quirky",
    "recommendation_events", "cooking_recipe", "transport_query", "calendar_set",
    "news_query", "datetime_query", "iot_hue_lighton", "play_music", "general_joke",
    "qa_maths", "transport_ticket", "lists_createoradd", "email_sendemail",
)  # fmt: skip
_NATCS = {
    "ResetPassword": "password",
    "CancelPlan": "subscription_cancel",
    "ReportBillingIssue": "billing_dispute",
    "DisputeCharge": "billing_dispute",
    "CheckPaymentStatus": "account_billing",
    "GetBranchHours": "help_centre",
}
_NATCS_OOS = ("GetQuote", "FileClaim", "FindATM", "GetExchangeRate", "GetStockQuote",
              "AskConsumerPriceIndex", "ApplyLoan", "PurchaseStocks")  # fmt: skip
_PER_OOS_LABEL = 12
_STAR_MAX = 80


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def _h(text: str) -> int:
    return int(hashlib.sha1(text.strip().lower().encode()).hexdigest(), 16)


def _first(items: list[str], n: int) -> list[str]:
    """n items chosen by hash order: a fixed sample that favours no wording."""
    return sorted(items, key=_h)[:n]


def hwu(root: Path) -> Iterator[tuple[str, str, str]]:
    repo = root / "xliuhw+NLU-Evaluation-Data" / "repo"
    by_label: dict[str, list[str]] = {}
    for path in _git(repo, "ls-tree", "-r", "--name-only", HWU[1]).splitlines():
        if "autoGeneFromRealAnno" in path and "/testset/annotated/" in path:
            for row in json.loads(_git(repo, "show", f"{HWU[1]}:{path}"))["test_data_annotation"]:
                by_label.setdefault(row["intent"], []).append(row["text"])
    for text in by_label.get("general_praise", []):
        yield text, "small_talk", "general_praise"
    for text in by_label.get("takeaway_query", []):
        if " my " in f" {text} ":
            yield text, "order_status", "takeaway_query"
    for text in by_label.get("social_post", []):
        if "complain" in text:
            yield text, "needs_person", "social_post"
    for label in _HWU_OOS:
        for text in _first(sorted(set(by_label.get(label, []))), _PER_OOS_LABEL):
            yield text, "out_of_scope", label


def natcs(root: Path) -> Iterator[tuple[str, str, str]]:
    repo = root / "amazon-science+dstc11-track2-intent-induction" / "repo"
    oos: dict[str, list[str]] = {}
    for part in ("development", "test-banking", "test-finance"):
        raw = _git(repo, "show", f"{NATCS[1]}:dstc11/{part}/test-utterances.jsonl")
        for line in raw.splitlines():
            row = json.loads(line)
            label, text = row["intent"], row["utterance"]
            if label in _NATCS:
                yield text, _NATCS[label], label
            elif label == "CheckAccountBalance" and part == "development":
                yield text, "account_billing", label  # an insurance account's balance owed
            elif label in _NATCS_OOS:
                oos.setdefault(label, []).append(text)
    for label, texts in sorted(oos.items()):
        for text in _first(texts, _PER_OOS_LABEL):
            yield text, "out_of_scope", label


def star(root: Path) -> Iterator[tuple[str, str, str]]:
    repo = root / "RasaHQ+STAR" / "repo"
    names = _git(repo, "ls-tree", "--name-only", f"{STAR[1]}:dialogues").splitlines()
    batch = "".join(f"{STAR[1]}:dialogues/{n}\n" for n in names)
    out = subprocess.run(
        ["git", "--git-dir", str(repo), "cat-file", "--batch"],
        input=batch.encode(), check=True, capture_output=True,
    ).stdout  # fmt: skip
    pos, found = 0, []
    while pos < len(out):
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        body = out[header_end + 1 : header_end + 1 + size]
        pos = header_end + 2 + size
        d = json.loads(body)
        tasks = [c["Task"] for c in d["Scenario"]["WizardCapabilities"]]
        if tasks != ["bank_fraud_report"]:
            continue
        said = [e["Text"] for e in d["Events"] if e.get("Agent") == "User" and e.get("Text")]
        first = next((s for s in said if len(s.split()) >= 5), None)
        if first:
            found.append(first)
    for text in _first(found, _STAR_MAX):  # balance: most of STAR's tasks are this one
        yield text, "billing_dispute", "bank_fraud_report"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    args = parser.parse_args()
    rows, seen = [], set()
    for (name, commit, licence), found in (
        (HWU, hwu(args.mirrors)), (NATCS, natcs(args.mirrors)), (STAR, star(args.mirrors))
    ):  # fmt: skip
        for text, family, label in found:
            text = " ".join(text.split())
            key = text.lower()
            if not text or key in seen:
                continue
            seen.add(key)
            spec = FAMILIES[family]
            rows.append({
                "text": text,
                "family": family,
                "handover": spec["handover"],
                "queue": spec.get("queue"),
                "intents": spec.get("intents", []),
                "split": "dev" if _h(text) % 3 == 0 else "train",
                "source": f"github.com/{name}@{commit[:12]}",
                "source_label": label,
                "licence": licence,
            })  # fmt: skip
    out = HERE / "utterances.jsonl"
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    train = HERE.parents[1] / "agent" / "exemplars" / "train.jsonl"
    with train.open("w", encoding="utf-8") as f:
        for row in rows:
            if row["split"] == "train":
                f.write(json.dumps({"text": row["text"], "family": row["family"]}) + "\n")
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        counts[(row["family"], row["split"])] = counts.get((row["family"], row["split"]), 0) + 1
    print(f"{len(rows)} utterances -> {out}")
    for family in FAMILIES:
        print(f"  {family:<20} train {counts.get((family, 'train'), 0):>4}"
              f"  dev {counts.get((family, 'dev'), 0):>4}")  # fmt: skip


if __name__ == "__main__":
    main()
