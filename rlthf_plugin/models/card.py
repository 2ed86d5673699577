"""The model card (README.md) written beside a trained reward model or policy."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

LOAD_SNIPPETS = {
    "reward": ("from rlthf_plugin.models.reward_trl import TransformerRewardModel\n"
               "rm = TransformerRewardModel.load('{out}')\n"
               "margins = rm.margins(prompts, responses_a, responses_b)"),
    "policy": ("from transformers import AutoModelForCausalLM, AutoTokenizer\n"
               "model = AutoModelForCausalLM.from_pretrained('{out}')  # LoRA: peft.AutoPeftModelForCausalLM\n"
               "tokenizer = AutoTokenizer.from_pretrained('{out}')"),
}
SHOWN_METRICS = ("eval_accuracy", "eval_loss", "eval_loss_before", "best_metric", "best_checkpoint", "train_loss",
                 "first_logged_loss", "last_logged_loss", "eval_rewards/accuracies", "eval_rewards/margins",
                 "steps", "train_runtime", "num_tokens", "train_pairs", "distinct_pairs", "eval_pairs",
                 "truncated", "eval_truncated", "prompts_truncated", "dropped", "relabeled", "exclude_split")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def model_card(*, kind: str, base_model: str, out: str | Path, train: dict, evals: dict | None, metrics: dict,
               config, command: str) -> str:
    """Markdown: data counts per label_source, human share, metrics, config, how to load."""
    lines = [f"# rlthf {kind} model", "",
             f"Trained {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC from `{base_model}` with TRL "
             f"({'RewardTrainer' if kind == 'reward' else 'DPOTrainer'}) on the RLTHF curated set.", "",
             f"Command: `{command}`", "", "## Data", "",
             "| split | label_source | pairs | rows trained (after amplification) |", "|---|---|---|---|"]
    for name, summary in (("train", train), ("eval", evals)):
        if not summary or not summary.get("pairs"):
            continue
        rows = summary["rows_by_source"] if name == "train" else {}  # eval pairs are never amplified
        for source, pairs in summary["pairs_by_source"].items():
            lines.append(f"| {name} | {source} | {pairs} | {rows.get(source, '-')} |")
        lines.append(f"| {name} | **all** | {summary['pairs']} | {summary['rows_amplified'] if rows else '-'} |")
    lines += ["", f"Human share of the training pairs: {train['human_share_pairs']:.1%}; of the amplified "
                  f"training rows: {train['human_share_rows']:.1%}. Iterations: {train['iterations']}.", "",
              "## Metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(metrics[k])} |" for k in SHOWN_METRICS if k in metrics and metrics[k] is not None]
    lines += ["", "Pairs longer than `max_length` are truncated (prompt from the left), never dropped.", "",
              "## Configuration", "", "| option | value |", "|---|---|"]
    lines += [f"| {f.name} | {_fmt(getattr(config, f.name))} |" for f in dataclasses.fields(config)]
    lines += ["", "## Load", "", "```python", LOAD_SNIPPETS[kind].format(out=out), "```", ""]
    return "\n".join(lines)


def write_model_card(directory: str | Path, **kwargs) -> Path:
    path = Path(directory) / "README.md"
    path.write_text(model_card(out=directory, **kwargs), encoding="utf-8")
    return path


EVAL_BEGIN = "<!-- BEGIN rlthf evaluate -->"
EVAL_END = "<!-- END rlthf evaluate -->"


def add_evaluation(directory: str | Path, section: str) -> Path:
    """Put ``section`` (markdown) into the model card in ``directory``, replacing the one a
    previous ``rlthf evaluate`` wrote; the rest of the card is kept."""
    import re

    path = Path(directory) / "README.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{EVAL_BEGIN}\n{section.strip()}\n{EVAL_END}"
    pattern = re.compile(rf"{re.escape(EVAL_BEGIN)}.*?{re.escape(EVAL_END)}", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
