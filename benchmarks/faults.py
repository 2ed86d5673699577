"""Fault injection against both real servers: kills, replays, out-of-order events, bad bodies.

Starts the test harness's Label Studio 1.23.2 and argilla-server 2.8.0 (see
tests/integration/README.md) and, for each platform, on a workspace of real PandaLM pairs:

1. **K kills of the owner mid-step**: ``rlthf push`` of the iteration's batch (it holds the
   iteration lease) is started as a subprocess and SIGKILLed after a random delay, K
   times; a rerun then finishes the push (waiting for the killed owner's lease to expire).
2. Two annotators answer every task through the platform's API; a third of the answers are
   then edited and a sixth deleted. The platform's own webhooks reach the `rlthf serve`
   receiver, which records every delivery it got.
3. **N out-of-order and replayed events**: every recorded delivery is sent again in a
   shuffled order (older states after newer ones), Argilla's both as the same message (a
   replay) and re-signed as a new message (a late retry), while a full pull races them.
4. **M malformed bodies**: seeded random JSON, some shaped like the platform's events,
   correctly authenticated.
5. The ledger is compared with the platform's own listing, before and after a reconcile:
   *lost* = an annotation on the platform whose label the ledger lacks or holds stale;
   *duplicated* = a label alive in the ledger that the platform no longer has, or a task
   beyond the planned ones; *HTTP 500* = answers >= 500 the receiver gave.

Run: ``PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/faults.py [--pairs 40] [--kills 3]
[--malformed 200]``. Writes the ``faults`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks._report import write_section
from rlthf_plugin.config import load_config, update_config_file
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop import sync
from rlthf_plugin.store import ledger as L
from rlthf_plugin.workspace import Workspace
from tests.integration.argilla_env import signed_headers as argilla_headers


@dataclass
class Counts:
    platform: str
    pairs: int = 0
    kills: int = 0
    lease_waits: int = 0
    labels: int = 0
    edited: int = 0
    deleted: int = 0
    replayed: int = 0
    replay_refused: int = 0
    malformed: int = 0
    malformed_400: int = 0
    http_500: int = 0
    lost_before: int = 0
    duplicated_before: int = 0
    lost: int = 0
    duplicated: int = 0
    extra_tasks: int = 0
    stale_after_delete: int = 0  # replayed creations/edits of labels deleted on the platform
    revived: int = 0  # deleted on the platform, alive in the ledger after the replays and the reconcile
    forged: int = 0  # Label Studio: deliveries made with the secret a project member can read
    forged_stored: int = 0
    forged_deletions: int = 0
    forged_deleted: int = 0
    statuses: dict = field(default_factory=dict)


class Recorder:
    """ASGI wrapper that keeps every webhook delivery (path, headers, body) and its status."""

    def __init__(self, app):
        self.app, self.calls, self.lock = app, [], threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/webhooks/"):
            return await self.app(scope, receive, send)
        messages, body, more = [], b"", True
        while more:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            more = message.get("more_body", False)
        pending = iter(messages)
        status = {}

        async def replay():
            return next(pending, None) or await receive()

        async def capture(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, replay, capture)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        with self.lock:
            self.calls.append((scope["path"], headers, body, status.get("code")))


class Receiver:
    def __init__(self, root: Path, port: int):
        import uvicorn

        from rlthf_plugin.service.app import create_app

        self.recorder = Recorder(create_app(root, ml_backend=False))
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.recorder, host="127.0.0.1", port=port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "Receiver":
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def statuses(self) -> list[int]:
        with self.recorder.lock:
            return [c[3] for c in self.recorder.calls]


def random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 10 ** 12, 3.5, ""])
    if kind == 2:
        return rng.choice(["x", "ANNOTATION_CREATED", "response.created", "2026-13-45", "é" * 5, "{"])
    if kind == 3:
        return rng.randrange(-5, 10 ** 6)
    if kind in (4, 5):
        keys = ["action", "task", "annotation", "annotations", "data", "type", "id", "record", "user", "dataset",
                "values", "status", "updated_at", "pair_id", "result", "completed_by", "external_id"]
        return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]


def malformed_bodies(platform: str, n: int, rng: random.Random, dataset_id: str | None) -> list[bytes]:
    out = []
    for i in range(n):
        body = random_json(rng)
        if i % 3 == 0 and platform == "label-studio":
            body = {"action": rng.choice(["ANNOTATION_CREATED", "ANNOTATIONS_DELETED"]), "task": random_json(rng, 1),
                    "annotation": random_json(rng, 1), "annotations": random_json(rng, 1)}
        elif i % 3 == 0:
            data = random_json(rng, 1)
            if isinstance(data, dict) and rng.random() < 0.5:
                data["record"] = {"dataset": {"id": dataset_id}, "external_id": random_json(rng, 2)}
            body = {"type": rng.choice(["response.created", "response.deleted", "record.completed"]), "data": data}
        text = json.dumps(body)
        if i % 17 == 0:
            text = text[: max(1, len(text) // 2)]  # cut: not JSON
        out.append(text.encode())
    return out


def kill_pushes(ws: Workspace, platform: str, options: list[str], kills: int, rng: random.Random,
                counts: Counts) -> None:
    """Kill `rlthf push` K times while it owns the iteration (lease held), then finish it."""
    from rlthf_plugin.store import lock

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "rlthf_plugin", "-w", str(ws.root), "push", "--backend", platform, *options]
    for _ in range(kills):
        while lock.holder_of(ws.ledger, "iteration") is not None:  # the previous victim's lease expires
            counts.lease_waits += 1
            time.sleep(0.5)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and lock.holder_of(ws.ledger, "iteration") is None:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))  # somewhere in the step: listing, creating, recording
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            counts.kills += 1
        proc.wait()
    deadline = time.time() + 300
    while True:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode == 0:
            return
        if "lease is held" not in done.stderr + done.stdout or time.time() > deadline:
            raise RuntimeError(f"push failed after the kills: {done.stdout[-500:]} {done.stderr[-500:]}")
        counts.lease_waits += 1
        time.sleep(1.0)


def platform_truth(platform: str, backend) -> dict[str, str]:
    """external id -> label of every live annotation/response, as the platform lists them."""
    result = backend.pull(cursor=None)
    return {lab.external_id: lab.label for lab in result.labels if not lab.deleted}


def ledger_live(ws: Workspace, platform: str) -> dict[str, str]:
    import sqlalchemy as sa

    t = L.human_labels
    with ws.ledger.engine.connect() as conn:
        return dict(conn.execute(sa.select(t.c.external_id, t.c.label).where(t.c.platform == platform,
                                                                             t.c.deleted.is_(False))).all())


def compare(truth: dict[str, str], live: dict[str, str]) -> tuple[int, int]:
    lost = sum(1 for ext, label in truth.items() if live.get(ext) != label)
    duplicated = sum(1 for ext in live if ext not in truth)
    return lost, duplicated


def run_platform(platform: str, env, server, workdir: Path, args, rng: random.Random) -> Counts:
    from tests.integration.conftest import add_asked_iteration, free_port, wait_for, write_pandalm_sample

    counts = Counts(platform, pairs=args.pairs)
    ws = Workspace.init(workdir / f"ws-{platform}")
    import_files(ws.ledger, [str(write_pandalm_sample(workdir / f"{platform}.jsonl", args.pairs + 10))])
    ids = add_asked_iteration(ws.ledger, args.pairs)
    update_config_file(ws.root, "serve", lease_seconds=5.0)
    port = free_port()
    options = env.configure(ws, name=f"faults-{uuid.uuid4().hex[:8]}",
                            webhook_url=f"http://127.0.0.1:{port}/webhooks/{platform}")
    ws.config = load_config(ws.root)
    receiver = Receiver(ws.root, port).start()  # after configure: it reads the config once
    try:
        kill_pushes(ws, platform, options, args.kills, rng, counts)
        backend = env.backend(ws)
        mapping = ws.ledger.pushed(platform, backend.target)
        counts.extra_tasks = env.remote_count(backend) - args.pairs
        # Two annotators; then edits and deletions, all through the platform (real webhooks).
        made = []
        for i, pid in enumerate(ids):
            for who in (1, 2) if i % 2 == 0 else (1,):
                made.append((pid, who, env.annotate(backend, mapping[pid], rng.choice(["A", "B", "tie"]),
                                                    annotator=who)))
        counts.labels = len(made)
        edits = made[::3]
        deletions = made[1::6]
        for pid, who, answer in edits:
            edit(platform, env, server, backend, mapping[pid], who, answer)
        counts.edited = len(edits)
        deleted_ids = {delete(platform, env, server, backend, mapping[pid], who, answer)
                       for pid, who, answer in deletions}
        counts.deleted = len(deletions)
        wait_for(lambda: compare(platform_truth(platform, backend), ledger_live(ws, platform)) == (0, 0),
                 timeout=120, every=2.0, what="the webhooks to settle")
        # Every delivery again, shuffled, while a full pull races them.
        deliveries = list(receiver.recorder.calls)
        rng.shuffle(deliveries)
        secret = str(load_config(ws.root).argilla.webhook_secret or "")
        racer = threading.Thread(target=lambda: sync.pull(ws.ledger, env.backend(ws), full=True))
        racer.start()
        with httpx.Client(timeout=30) as client:
            for path, headers, body, _ in deliveries:
                counts.stale_after_delete += bool(deleted_ids & set(delivery_ids(platform, body)))
                sends = [headers]
                if platform == "argilla":
                    sends.append(argilla_headers(secret, body))  # a late retry: a new message id
                for h in sends:
                    r = client.post(f"{receiver.url}{path}", content=body, headers=h)
                    counts.replayed += 1
                    counts.replay_refused += r.status_code == 401
            racer.join()
            if platform == "label-studio":
                forge(client, receiver.url, ws, ids, mapping, platform_truth(platform, backend), counts)
            counts.lost_before, counts.duplicated_before = compare(platform_truth(platform, backend),
                                                                   ledger_live(ws, platform))
            dataset_id = str(backend.dataset().id) if platform == "argilla" else None
            ls_secret = str(load_config(ws.root).label_studio.webhook_secret or "")
            for body in malformed_bodies(platform, args.malformed, rng, dataset_id):
                h = argilla_headers(secret, body) if platform == "argilla" else {"X-Rlthf-Secret": ls_secret}
                r = client.post(f"{receiver.url}/webhooks/{platform}", content=body, headers=h)
                counts.malformed += 1
                counts.malformed_400 += r.status_code == 400
        sync.pull(ws.ledger, backend, full=True)  # the reconcile
        counts.lost, counts.duplicated = compare(platform_truth(platform, backend), ledger_live(ws, platform))
        counts.revived = len(deleted_ids & set(ledger_live(ws, platform)))
        statuses = receiver.statuses()
        counts.http_500 = sum(1 for s in statuses if s is None or s >= 500)
        counts.statuses = {str(s): statuses.count(s) for s in sorted(set(statuses), key=str)}
        backend.close()
    finally:
        receiver.stop()
        ws.close()
    return counts


FORGED_BASE = 10 ** 7


def delivery_ids(platform: str, body: bytes) -> list[str]:
    """The annotation / response ids a creation or edit delivery names."""
    try:
        event = json.loads(body)
    except ValueError:
        return []
    if platform == "label-studio":
        return [str(event.get("annotation", {}).get("id"))] if event.get("action", "").startswith("ANNOTATION_") else []
    data = event.get("data") or {}
    return [str(data.get("id"))] if event.get("type") in ("response.created", "response.updated") else []


def forge(client: httpx.Client, url: str, ws: Workspace, ids: list[str], mapping: dict[str, str],
          truth: dict[str, str], counts: Counts) -> None:
    """Label Studio shows the webhook's secret header to project members: deliveries made with
    it for annotations that do not exist, and deletions of annotations that do."""
    secret = {"X-Rlthf-Secret": str(load_config(ws.root).label_studio.webhook_secret or ""),
              "content-type": "application/json"}
    for k, pid in enumerate(ids):
        body = {"action": "ANNOTATION_CREATED", "task": {"id": int(mapping[pid]), "data": {"pair_id": pid}},
                "annotation": {"id": FORGED_BASE + k, "completed_by": 1, "updated_at": "2030-01-01T00:00:00Z",
                               "result": [{"from_name": "preference", "to_name": "prompt", "type": "choices",
                                           "value": {"choices": ["A"]}}]}}
        client.post(f"{url}/webhooks/label-studio", content=json.dumps(body), headers=secret)
        counts.forged += 1
    live = sorted(truth)[: max(1, len(truth) // 4)]
    body = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": int(ext)} for ext in live]}
    client.post(f"{url}/webhooks/label-studio", content=json.dumps(body), headers=secret)
    counts.forged_deletions = len(live)
    stored = ledger_live(ws, "label-studio")
    counts.forged_stored = sum(1 for ext in stored if int(ext) >= FORGED_BASE)
    counts.forged_deleted = sum(1 for ext in live if ext not in stored)


def edit(platform, env, server, backend, external_id, who, answer) -> None:
    if platform == "label-studio":
        r = httpx.patch(f"{server.url}/api/annotations/{answer['id']}/", headers=env.headers(server.annotator_tokens[who]),
                        json={"result": [{"from_name": "preference", "to_name": "prompt", "type": "choices",
                                          "value": {"choices": ["B"]}}]}, timeout=30)
    else:
        with server.annotator(who) as client:
            response_id = own_response(client, external_id)
            r = client.put(f"/api/v1/responses/{response_id}", json={"values": {"label": {"value": "b"}},
                                                                      "status": "submitted"})
    r.raise_for_status()


def delete(platform, env, server, backend, external_id, who, answer) -> str:
    """Delete an annotator's answer on the platform; returns its id (the ledger's external id)."""
    if platform == "label-studio":
        ext = str(answer["id"])
        r = httpx.delete(f"{server.url}/api/annotations/{ext}/",
                         headers=env.headers(server.annotator_tokens[who]), timeout=30)
    else:
        with server.annotator(who) as client:
            ext = str(own_response(client, external_id))
            r = client.delete(f"/api/v1/responses/{ext}")
    r.raise_for_status()
    return ext


def own_response(client, record_id: str) -> str:
    r = client.get(f"/api/v1/records/{record_id}", params={"include": ["responses"]})
    r.raise_for_status()
    me = client.get("/api/v1/me").json()["id"]
    return next(x["id"] for x in r.json()["responses"] if x["user_id"] == me)


def table(rows: list[Counts], args) -> str:
    head = ("| platform | pairs | owner kills (K) | labels / edited / deleted | out-of-order + replayed events (N) "
            "| replays refused (401) | malformed bodies (M) | 400 | lost | duplicated | HTTP 500 |")
    lines = [head, "|" + "---|" * 11]
    for c in rows:
        lines.append(f"| {c.platform} | {c.pairs} | {c.kills} | {c.labels} / {c.edited} / {c.deleted} | {c.replayed} "
                     f"| {c.replay_refused} | {c.malformed} | {c.malformed_400} | {c.lost} (before the reconcile: "
                     f"{c.lost_before}) | {c.duplicated + max(c.extra_tasks, 0)} (before: {c.duplicated_before}) "
                     f"| {c.http_500} |")
    deletions = ["| platform | deleted on the platform | stale deliveries of deleted labels replayed | revived "
                 "| forged creations (member-readable secret) | stored | forged deletions | deleted |",
                 "|" + "---|" * 8]
    for c in rows:
        forged = (f"{c.forged} | {c.forged_stored} | {c.forged_deletions} | {c.forged_deleted}"
                  if c.platform == "label-studio" else "n/a (signed) | - | n/a | -")
        deletions.append(f"| {c.platform} | {c.deleted} | {c.stale_after_delete} | {c.revived} | {forged} |")
    import platform as platform_mod

    return "\n".join([
        "## Fault injection: kills, replays, out-of-order events, malformed bodies, deletions (issues 13, 23)",
        "",
        f"Command: `PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/faults.py --pairs {args.pairs} "
        f"--kills {args.kills} --malformed {args.malformed} --seed {args.seed}`; Label Studio 1.23.2 and "
        f"argilla-server 2.8.0 started by the test harness on 127.0.0.1; {platform_mod.processor() or 'CPU'}, "
        f"{os.cpu_count()} cores.",
        "",
        *lines,
        "",
        "Deletion cases (issue 23): every delivery of a label later deleted on the platform is replayed after the "
        "deletion (stale: its original time); *revived* counts deleted labels alive in the ledger after the replays "
        "and the reconcile. On Label Studio, whose webhook headers (the secret included) any project member can read, "
        "one forged creation per task names a made-up annotation id and a forged deletion names a quarter of the live "
        "annotations; the receiver reads each back from Label Studio before storing.",
        "",
        *deletions,
        "",
        "Lost = an annotation/response on the platform whose current label the ledger lacks or holds stale; "
        "duplicated = a label alive in the ledger that the platform no longer has, plus tasks beyond the planned "
        "ones; HTTP 500 = receiver answers >= 500 over every delivery (real, replayed, malformed). 'Before the "
        "reconcile' is the state after the webhooks, the shuffled replays and the racing pull; the count after it "
        "follows one more full pull. Receiver statuses: "
        + "; ".join(f"{c.platform} {c.statuses}" for c in rows) + ". Each kill lands while the push holds the "
        "iteration lease (between taking it and finishing); before the next victim starts, the script waits for the "
        f"dead owner's lease to go ({sum(c.lease_waits for c in rows)} half-second waits, [serve] lease_seconds = 5), "
        "while the final rerun takes a dead local owner's lease over at once.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--malformed", type=int, default=200)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--platforms", default="label-studio,argilla")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        from tests.integration.conftest import free_port

        if "label-studio" in args.platforms:
            from tests.integration.label_studio_env import LabelStudioEnv, LabelStudioServer, ensure_installed

            server = LabelStudioServer(ensure_installed(), workdir / "label-studio", free_port()).start()
            try:
                rows.append(run_platform("label-studio", LabelStudioEnv(server), server, workdir, args, rng))
                print(rows[-1], flush=True)
            finally:
                server.stop()
        if "argilla" in args.platforms:
            from tests.integration.argilla_env import ArgillaEnv, ArgillaServer

            (workdir / "argilla").mkdir()
            server = ArgillaServer(workdir / "argilla").start()
            try:
                rows.append(run_platform("argilla", ArgillaEnv(server), server, workdir, args, rng))
                print(rows[-1], flush=True)
            finally:
                server.stop()
    markdown = table(rows, args)
    print(markdown)
    write_section("faults", markdown)


if __name__ == "__main__":
    main()
