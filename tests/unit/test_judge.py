"""The judge's prompt, parsing, order combination, caching and retry policy (no network)."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from rlthf_plugin.store import ledger as L
from rlthf_plugin.cli import main
from rlthf_plugin.config import JudgeConfig, Secret
from rlthf_plugin.errors import ConfigError, JudgeError
from rlthf_plugin.loop.judging import label_pairs
from rlthf_plugin.models.judge import Reply, estimate_cost, open_judge
from rlthf_plugin.models.judge.openai import OpenAIJudge, reply_from_completion, verdict_confidence
from rlthf_plugin.models.judge.prompt import (
    DEFAULT_TEMPLATE, Answer, combine_orders, load_template, parse_answer, prompt_version, to_stored_order)
from rlthf_plugin.pairs import PARSE_ERROR, TIE, TIE_INCONSISTENT, PreferencePair


@pytest.mark.parametrize("text, label", [
    ('rationale: A is clearer.\npreference: "Response A"', "A"),
    ("rationale: B wins\npreference: Response B", "B"),
    ("**Rationale:** fine\n**Preference:** **Response B**", "B"),
    ("rationale: x\npreference:\n\"Response A\"", "A"),
    ("preference: B", "B"),
    ("rationale: my preference: Response A is shorter\npreference: Response B", "B"),
    ("rationale: both are equal\npreference: tie", TIE),
    ('preference: "Response A" or "Response B"', PARSE_ERROR),
    ("rationale: Response A is better because", PARSE_ERROR),
    ("preference: a response with more detail", PARSE_ERROR),
    ("", PARSE_ERROR),
    (None, PARSE_ERROR),
])
def test_parse_answer(text, label):
    assert parse_answer(text) == label


def test_orders_map_back_and_combine():
    assert to_stored_order("A", "ba") == "B" and to_stored_order("A", "ab") == "A"
    assert to_stored_order(PARSE_ERROR, "ba") == PARSE_ERROR
    assert combine_orders(Answer("A", 0.8), Answer("A", 0.6)) == Answer("A", pytest.approx(0.7))
    assert combine_orders(Answer("B"), Answer("B", 0.9)) == Answer("B", 0.9)
    assert combine_orders(Answer("A"), Answer("B")).label == TIE_INCONSISTENT
    assert combine_orders(Answer(TIE), Answer("B")).label == TIE_INCONSISTENT
    assert combine_orders(Answer(PARSE_ERROR), Answer("B")).label == PARSE_ERROR


def test_template_renders_the_paper_prompt_in_both_orders():
    t = load_template()
    assert t.version == prompt_version(DEFAULT_TEMPLATE.read_bytes())
    pair = PreferencePair.create("Is the sky blue?", "Yes.", "No, it is green.")
    ab = t.messages(pair, "ab", "dialogue")[1]["content"]
    ba = t.messages(pair, "ba", "dialogue")[1]["content"]
    for heading in ("[TASK]", "[CRITERIA]", "[INPUT]", "[Response A]", "[Response B]", "[INSTRUCTIONS]"):
        assert heading in ab
    assert "Harmlessness" in ab and "preference:" in ab
    assert ab.index("Yes.") < ab.index("No, it is green.")
    assert ba.index("No, it is green.") < ba.index("Yes.")
    summary = t.messages(pair, "ab", "summarization")[1]["content"]
    assert "Coverage" in summary and "Harmlessness" not in summary
    cut = t.messages(PreferencePair.create("p" * 50, "a" * 50, "b"), "ab", "dialogue", max_chars=10)[1]["content"]
    assert "p" * 10 + " [...]" in cut and "p" * 11 not in cut
    with pytest.raises(ConfigError, match="known tasks"):
        t.messages(pair, "ab", "poetry")


def test_edited_template_has_a_new_version_and_bad_ones_are_refused(tmp_path: Path):
    text = DEFAULT_TEMPLATE.read_text(encoding="utf-8")
    edited = tmp_path / "t.toml"
    edited.write_text(text.replace("impartial", "fair"), encoding="utf-8")
    assert load_template(edited).version != load_template().version
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("{criteria}", "{criterion}"), encoding="utf-8")
    with pytest.raises(ConfigError, match="criterion"):
        load_template(bad)
    bad.write_text(text.replace("{response_b}", "(second)"), encoding="utf-8")
    with pytest.raises(ConfigError, match="response_b"):
        load_template(bad)
    with pytest.raises(ConfigError, match="missing.toml"):
        load_template(tmp_path / "missing.toml")


def _logprobs(tokens: list[tuple[str, float, dict[str, float]]]) -> list[dict]:
    return [{"token": t, "logprob": lp, "top_logprobs": [{"token": k, "logprob": v} for k, v in top.items()]}
            for t, lp, top in tokens]


def test_confidence_from_logprobs():
    content = _logprobs([("rationale", 0, {}), (": A", -0.1, {}), (" is fine.\n", 0, {}), ("preference", 0, {}),
                         (":", 0, {}), (' "', 0, {}), ("Response", 0, {}),
                         (" B", math.log(0.6), {" B": math.log(0.6), " A": math.log(0.3), "C": math.log(0.1)}),
                         ('"', 0, {})])
    assert verdict_confidence(content, "B") == pytest.approx(0.6 / 0.9)
    body = {"choices": [{"message": {"content": 'rationale: A is fine.\npreference: "Response B"'},
                         "logprobs": {"content": content}}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
    reply = reply_from_completion(body)
    assert reply.label == "B" and reply.confidence == pytest.approx(0.6 / 0.9)
    assert (reply.prompt_tokens, reply.completion_tokens) == (10, 5)
    assert reply_from_completion({"choices": []}).label == PARSE_ERROR
    assert reply_from_completion({"choices": [{"message": {"content": "no idea"}}]}) == Reply(PARSE_ERROR, "no idea")


def test_key_and_prices_from_config_never_shown():
    judge = OpenAIJudge.from_config("gpt-4o-mini", JudgeConfig(api_key=Secret("sk-secret")), env={})
    assert judge.api_key == "sk-secret" and "sk-secret" not in repr(judge)
    assert OpenAIJudge.from_config("m", JudgeConfig(), env={"OPENAI_API_KEY": "k2"}).api_key == "k2"
    assert OpenAIJudge.from_config("m", JudgeConfig(), env={}).prices is None
    assert judge.prices == (0.15, 0.60)
    assert estimate_cost((1.0, 2.0), 1_000_000, 500_000) == pytest.approx(2.0)
    assert estimate_cost(None, 10, 10) is None
    with pytest.raises(ConfigError, match="openai:MODEL"):
        open_judge("gpt-4o")


class ScriptedJudge:
    """A judge answering from a rule (it prefers the longer response shown first or not), for the cache logic."""

    prices = None

    def __init__(self, rule, fail_after: int | None = None):
        self.name = "scripted:v1"
        self.rule = rule
        self.fail_after = fail_after
        self.asked: list[tuple[str, str]] = []

    def run(self, calls, on_reply):
        for call in calls:
            if self.fail_after is not None and len(self.asked) >= self.fail_after:
                raise JudgeError("endpoint gone")
            self.asked.append((call.pair.id, call.order))
            on_reply(call, Reply(self.rule(call), "raw", None, 3, 2))


def _ledger_with_pairs(workspace, n: int = 4) -> list[PreferencePair]:
    pairs = [PreferencePair.create(f"prompt {i}", "short", "a much longer answer " * (i + 1)) for i in range(n)]
    with workspace.ledger.engine.begin() as conn:
        L.insert_ignore(conn, L.pairs, [
            {"id": p.id, "prompt_id": p.id, "prompt": p.prompt, "response_a": p.response_a,
             "response_b": p.response_b, "source": "t", "metadata": {}, "origin": "import", "created_at": L.now()}
            for p in pairs])
    return pairs


def _shown_first(call) -> str:
    return "A"  # pure position bias


def _longer(call) -> str:
    text = call.messages[1]["content"]
    a = text.split("[Response A]")[1].split("[Response B]")[0]
    b = text.split("[Response B]")[1].split("[INSTRUCTIONS]")[0]
    return "A" if len(a) > len(b) else "B"


def _labels(ledger, order="both") -> dict[str, str]:
    with ledger.engine.connect() as conn:
        q = sa.select(L.ai_labels.c.pair_id, L.ai_labels.c.label).where(L.ai_labels.c.order == order)
        return dict(conn.execute(q).all())


def test_label_pairs_both_orders_flip_is_tie_and_rerun_asks_nothing(workspace):
    pairs = _ledger_with_pairs(workspace)
    t = load_template()
    report = label_pairs(workspace.ledger, ScriptedJudge(_shown_first), t, progress=False)
    assert report.asked == 8 and report.verdicts == {TIE_INCONSISTENT: 4}
    assert _labels(workspace.ledger, "ba") == {p.id: "B" for p in pairs}  # "A" shown first = stored B
    judge = ScriptedJudge(_shown_first)
    assert label_pairs(workspace.ledger, judge, t, progress=False).asked == 0 and judge.asked == []
    assert workspace.ledger.ai_majority()[pairs[0].id].label == TIE

    consistent = ScriptedJudge(_longer)
    consistent.name = "scripted:v2"
    report = label_pairs(workspace.ledger, consistent, t, progress=False, relabel=True)
    assert report.verdicts == {"B": 4}


def test_killed_run_resumes_without_asking_twice(workspace):
    pairs = _ledger_with_pairs(workspace, 5)
    t = load_template()
    first = ScriptedJudge(_longer, fail_after=3)
    with pytest.raises(JudgeError):
        label_pairs(workspace.ledger, first, t, progress=False)
    second = ScriptedJudge(_longer)
    report = label_pairs(workspace.ledger, second, t, progress=False)
    # The first pair got its verdict; the second has one order cached.
    assert report.pairs == 4 and report.cached == 1 and report.asked == 7
    assert not set(first.asked) & set(second.asked)
    assert _labels(workspace.ledger) == {p.id: "B" for p in pairs}


def test_single_order_limit_and_parse_error_retry(workspace):
    pairs = _ledger_with_pairs(workspace, 3)
    t = load_template()
    report = label_pairs(workspace.ledger, ScriptedJudge(lambda c: PARSE_ERROR), t, orders=("ab",), limit=2,
                         progress=False)
    assert report.judge == "scripted:v1[ab]" and report.pairs == 2 and report.verdicts == {PARSE_ERROR: 2}
    judge = ScriptedJudge(_longer)
    report = label_pairs(workspace.ledger, judge, t, orders=("ab",), retry_parse_errors=True, progress=False)
    assert report.asked == 3 and report.verdicts == {"B": 3}
    assert set(_labels(workspace.ledger).values()) == {"B"} and len(_labels(workspace.ledger)) == len(pairs)


def _completion(text: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3}}


def test_openai_retries_429_and_5xx_then_stops_on_4xx(workspace):
    _ledger_with_pairs(workspace, 1)
    script = iter([httpx.Response(429, headers={"retry-after": "0"}), httpx.Response(503),
                   httpx.Response(200, json=_completion("preference: Response A")),
                   httpx.Response(200, json=_completion("preference: Response A"))])
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return next(script)

    judge = OpenAIJudge("m", base_url="http://judge.test/v1", api_key="k", backoff=0.0,
                        transport=httpx.MockTransport(handler), concurrency=1)
    report = label_pairs(workspace.ledger, judge, load_template(), progress=False)
    assert judge.requests_sent == 4 and report.asked == 2 and report.verdicts == {TIE_INCONSISTENT: 1}
    assert report.prompt_tokens == 14 and seen[0] == "Bearer k"

    _ledger_with_pairs(workspace, 2)
    refuse = OpenAIJudge("m", base_url="http://judge.test/v1", backoff=0.0,
                         transport=httpx.MockTransport(lambda r: httpx.Response(401, text="bad key")))
    with pytest.raises(JudgeError, match="refused the API key"):
        label_pairs(workspace.ledger, refuse, load_template(), progress=False)
    flaky = OpenAIJudge("m", base_url="http://judge.test/v1", backoff=0.0, max_retries=2, concurrency=1,
                        transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(JudgeError, match="failed 3 times"):
        label_pairs(workspace.ledger, flaky, load_template(), progress=False)
    assert flaky.requests_sent == 3


def test_label_ai_cli_needs_a_judge(runner, workspace):
    result = runner.invoke(main, ["-w", str(workspace.root), "label-ai"])
    assert result.exit_code == 2 and "--judge" in result.output
    result = runner.invoke(main, ["-w", str(workspace.root), "label-ai", "--judge", "nope"])
    assert result.exit_code == 1 and "openai:MODEL" in result.output


def test_rules_first_protocol_is_another_judge_and_escalation_asks_only_suspects(workspace):
    from rlthf_plugin.store.votes import read_votes, top_suspects

    pairs = _ledger_with_pairs(workspace, 6)
    label_pairs(workspace.ledger, ScriptedJudge(_longer), load_template(), progress=False)
    rules = load_template("rules-first")
    assert Path(rules.path).name == "rules_first.toml" and "reference" in rules.instructions
    assert "rules:" in rules.messages(pairs[0], "ab", "dialogue")[1]["content"]
    # A finished iteration whose decisions rank two pairs as the most suspect.
    with workspace.ledger.engine.begin() as conn:
        conn.execute(L.iterations.insert().values(id=0, state="selected", params={}, stats={}, started_at=L.now()))
        L.insert_ignore(conn, L.decisions, [
            {"iteration": 0, "pair_id": p.id, "action": "drop", "region": "none", "margin": 0.0, "rank": k,
             "priority": 0.0, "reason": {"p_wrong": 1.0 - k / 10}} for k, p in enumerate(pairs)])
    suspects = top_suspects(workspace.ledger, 2)
    assert suspects == [pairs[0].id, pairs[1].id]
    second = ScriptedJudge(_shown_first)
    report = label_pairs(workspace.ledger, second, rules, progress=False, pair_ids=suspects)
    assert report.judge == "scripted:v1/rules_first" and report.pairs == 2
    assert {pid for pid, _ in second.asked} == set(suspects) and len(second.asked) == 4
    votes = read_votes(workspace.ledger)
    assert votes.judges == ["scripted:v1", "scripted:v1/rules_first"]
    assert votes.labeled == {"scripted:v1": 6, "scripted:v1/rules_first": 2}
