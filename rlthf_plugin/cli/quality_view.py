"""The quality part of ``rlthf status``: what the curated set is worth (issue 21)."""

from __future__ import annotations

from typing import Any

import click

from ..loop.quality import flips_statement


def echo_quality(q: dict[str, Any]) -> None:
    """Curated accuracy with its interval, errors left, trusted region, flips, the verdict."""
    if not q.get("available"):
        click.echo(f"\nquality: {q.get('reason', 'not available')}")
        return
    a, e = q["curated_accuracy"], q["remaining_errors"]
    click.echo(f"\nquality of the curated set (iteration {q['iteration']}, {q['human']} human answers, "
               f"{q['batches']} batch(es) with a random part)")
    click.echo(f"  curated accuracy   {a['estimate']:.3f}  [{a['low']:.3f}, {a['high']:.3f}] "
               f"at {a['confidence']:.0%}")
    click.echo(f"  errors left        {e['estimate']:.1f}  [{e['low']:.1f}, {e['high']:.1f}] of {q['pairs']} pairs")
    t, f = q["trusted_region"], q["flips"]
    click.echo(f"  trusted region     {t['pairs']} AI labels (disagreement <= {t['alpha']:g} with probability "
               f">= {1 - t['delta']:g}){'; ' + t['reason'] if t.get('reason') else ''}")
    click.echo(f"  flips              {f['pairs']}: {flips_statement(f)}")
    s = q["split"]
    click.echo(f"  split              human {s['human']}, asked (open) {s['asked_open']}, flipped {s['flipped']}, "
               f"trusted AI {s['trusted_ai']}, untrusted AI {s['untrusted_ai']}")
    v = q["stop"]
    per_100 = v["errors_fixed_per_100_labels"]
    click.echo(f"  next batch         {'?' if per_100 is None else f'{per_100:.1f}'} AI errors fixed per 100 labels; "
               f"{'STOP: ' if v['stop'] else 'continue: '}{v['reason']}")
