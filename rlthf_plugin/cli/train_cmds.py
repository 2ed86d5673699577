"""``rlthf train reward`` and ``rlthf train policy``: TRL on the curated set.

Both run unchanged under ``accelerate launch`` (one process per GPU); see docs/training.md.
Options left out keep the defaults of :class:`RewardTrainingConfig` /
:class:`DPOTrainingConfig`; ``--config FILE`` (JSON or TOML, the same field names) sets
any field, and options given on the command line override it.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import click

from ..errors import RlthfError


def _read_config(path: Path | None) -> dict:
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except ValueError as e:
        raise RlthfError(f"{path}: cannot read the config: {e}") from e


def _make_config(cls, path: Path | None, **given):
    values = _read_config(path)
    values.update({k: v for k, v in given.items() if v is not None})
    try:
        return cls.from_dict(values)
    except (TypeError, ValueError) as e:
        raise RlthfError(f"{'--config ' + str(path) + ': ' if path else ''}{e}") from e


def _load_data(ctx: click.Context, data: Path | None, only: str | None, exclude_split: float = 0.0):
    from ..io.curated import read_curated
    from ..io.export import curated_from_workspace

    sources = [s.strip() for s in only.split(",") if s.strip()] if only else None
    if data is not None:
        dataset = read_curated(data).only(sources)
    else:
        from ._common import open_workspace

        ws = open_workspace(ctx)
        dataset = curated_from_workspace(ws.ledger, config=ws.config, only=sources)
    if not exclude_split:
        return dataset
    from ..models.evaluation import split_mask

    try:
        held = split_mask(dataset.pair_id, exclude_split)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--exclude-split") from e
    kept = dataset.subset([i for i, h in enumerate(held) if not h])
    click.echo(f"--exclude-split {exclude_split:g}: {len(dataset) - len(kept)} of {len(dataset)} pairs held out "
               "for `rlthf evaluate --split`", err=True)
    if not len(kept):
        raise RlthfError("--exclude-split leaves no pair to train on")
    return kept


def _split(dataset, eval_data: Path | None, eval_fraction: float, seed: int):
    from ..io.curated import read_curated

    if eval_data is not None:
        return dataset, read_curated(eval_data)
    try:
        return dataset.split(eval_fraction, seed=seed)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--eval-fraction") from e


def _triples(data):
    return data.prompt, data.chosen, data.rejected


def training_options(f):
    """Options shared by both commands."""
    options = [
        click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Curated JSONL (rlthf export). Default: the workspace ledger's curated set."),
        click.option("--only", default=None, help="Train only on these label sources, e.g. human,flipped."),
        click.option("--eval-fraction", type=float, default=0.1, show_default=True,
                     help="Pairs held out for evaluation (split by pair before amplification)."),
        click.option("--eval-data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="A separate curated JSONL to evaluate on (instead of --eval-fraction)."),
        click.option("--exclude-split", type=float, default=0.0, show_default=True,
                     help="Leave out the pairs `rlthf evaluate --split F` holds out (by pair id), so they "
                          "are never trained on."),
        click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     default=None, help="JSON or TOML file with training config fields."),
        click.option("--epochs", "num_train_epochs", type=float, default=None, help="Training epochs."),
        click.option("--max-steps", type=int, default=None, help="Stop after this many optimizer steps."),
        click.option("--lr", "learning_rate", type=float, default=None, help="Learning rate."),
        click.option("--batch-size", "per_device_train_batch_size", type=int, default=None,
                     help="Pairs per device per step."),
        click.option("--grad-accum", "gradient_accumulation_steps", type=int, default=None,
                     help="Gradient accumulation steps."),
        click.option("--max-length", type=int, default=None, help="Tokens per sequence (longer: truncated)."),
        click.option("--lora/--no-lora", default=None, help="Train LoRA adapters (peft) instead of all weights."),
        click.option("--bf16/--no-bf16", default=None, help="bf16 mixed precision (default: when a GPU has it)."),
        click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None,
                     help="Recompute activations to save memory (default: on with a GPU)."),
        click.option("--report-to", default=None, help="none (default), tensorboard, wandb."),
        click.option("--seed", type=int, default=None, help="Seed of the split and the training."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group()
def train() -> None:
    """Train a reward model or a DPO policy on the curated set (TRL)."""


@train.command()
@click.option("--model", default=None, help="Backbone: HF name or path (default: the packaged all-MiniLM-L6-v2).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--metric", "metric_for_best_model", type=click.Choice(["accuracy", "loss"]), default=None,
              help="Keep the checkpoint with the best eval accuracy (default) or loss.")
@click.option("--keep-checkpoints", is_flag=True, help="Keep TRL's checkpoints under OUT/checkpoints.")
@training_options
@click.pass_context
def reward(ctx: click.Context, out: Path, data: Path | None, only: str | None, eval_fraction: float,
           eval_data: Path | None, config_file: Path | None, keep_checkpoints: bool, exclude_split: float,
           **options) -> None:
    """Fine-tune a reward model (TRL RewardTrainer) and keep its best checkpoint in OUT."""
    from ..models.card import write_model_card
    from ..models.reward_trl import RewardTrainingConfig, TransformerRewardModel

    config = _make_config(RewardTrainingConfig, config_file, **options)
    dataset = _load_data(ctx, data, only, exclude_split)
    train_set, eval_set = _split(dataset, eval_data, eval_fraction, config.seed)
    click.echo(f"reward model {config.model}: {len(train_set)} train pairs, {len(eval_set)} eval pairs", err=True)
    rm = TransformerRewardModel(config)
    rm.fit(*_triples(train_set), weights=train_set.amplification,
           eval_data=_triples(eval_set) if len(eval_set) else None, output_dir=out / "checkpoints")
    rm.metrics["exclude_split"] = exclude_split  # `rlthf evaluate --split` checks it
    rm.save(out)
    if _is_main():
        if not keep_checkpoints:
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
        write_model_card(out, kind="reward", base_model=config.model, train=train_set.summary(),
                         evals=eval_set.summary() if len(eval_set) else None, metrics=rm.metrics, config=config,
                         command=_command(ctx))
        _echo_metrics(rm.metrics, ("eval_accuracy", "eval_loss", "train_loss", "truncated", "steps"), out)


@train.command()
@click.option("--model", required=True, help="Policy: a causal LM, HF name or path.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--beta", type=float, default=None, help="DPO beta (default 0.1).")
@click.option("--max-prompt-length", type=int, default=None, help="Prompt tokens kept (its end).")
@click.option("--chat-template/--no-chat-template", "use_chat_template", default=None,
              help="Use the tokenizer's chat template (default: when it has one).")
@click.option("--relabel-with-rm", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A trained reward model (rlthf train reward) that relabels the pairs first.")
@click.option("--relabel-keep", default="human", show_default=True,
              help="Label sources the RM does not relabel (comma list; '' = relabel every pair).")
@training_options
@click.pass_context
def policy(ctx: click.Context, model: str, out: Path, data: Path | None, only: str | None, eval_fraction: float,
           eval_data: Path | None, config_file: Path | None, relabel_with_rm: Path | None, relabel_keep: str,
           exclude_split: float, **options) -> None:
    """Train a policy with DPO (TRL DPOTrainer) on the curated set and save it to OUT.

    Paper defaults: lr 1e-6, beta 0.1, warmup 0.1.
    """
    from ..models.card import write_model_card
    from ..models.policy import DPOTrainingConfig, train_policy

    config = _make_config(DPOTrainingConfig, config_file, **options)
    dataset = _load_data(ctx, data, only, exclude_split)
    relabeled = 0
    if relabel_with_rm is not None:
        dataset, relabeled = relabel(dataset, relabel_with_rm, keep=[s.strip() for s in relabel_keep.split(",")
                                                                      if s.strip()])
        click.echo(f"relabeled {relabeled} of {len(dataset)} pairs with {relabel_with_rm}", err=True)
    train_set, eval_set = _split(dataset, eval_data, eval_fraction, config.seed)
    click.echo(f"DPO {model}: {len(train_set)} train pairs, {len(eval_set)} eval pairs", err=True)
    metrics = train_policy(model, *_triples(train_set), out=out, weights=train_set.amplification,
                           eval_data=_triples(eval_set) if len(eval_set) else None, config=config)
    metrics["relabeled"] = relabeled
    if _is_main():
        write_model_card(out, kind="policy", base_model=model, train=train_set.summary(),
                         evals=eval_set.summary() if len(eval_set) else None, metrics=metrics, config=config,
                         command=_command(ctx))
        _echo_metrics(metrics, ("eval_loss_before", "eval_loss", "train_loss", "prompts_truncated", "steps"), out)


def relabel(dataset, rm_dir: Path, *, keep: list[str]):
    """The pairs with chosen/rejected as the reward model orders them (source ``rm`` where it flips).

    Pairs whose label_source is in ``keep`` (default: human) are left as they are.
    """
    import numpy as np

    from ..models.reward_trl import TransformerRewardModel

    rm = TransformerRewardModel.load(rm_dir)
    margins = rm.margins(dataset.prompt, dataset.chosen, dataset.rejected)
    flip = (margins < 0) & ~np.isin(np.asarray(dataset.label_source), keep)
    return dataset.swap(flip.tolist()), int(flip.sum())


def _is_main() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def _command(ctx: click.Context) -> str:
    """The command line as given (the options that were set), for the model card."""
    parts = ["rlthf", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or (param.default is not None and value == param.default):
            continue
        if isinstance(value, bool):
            if value or getattr(param, "secondary_opts", None):
                parts.append(param.opts[0] if value else param.secondary_opts[0])
            continue
        parts += [param.opts[0], shlex.quote(str(value))]
    return " ".join(parts)


def _echo_metrics(metrics: dict, keys, out: Path) -> None:
    shown = ", ".join(f"{k}={metrics[k]:.4f}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
                      for k in keys if metrics.get(k) is not None)
    click.echo(f"saved to {out} ({shown})")
