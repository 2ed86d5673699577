"""The Label Studio adapter's translation, without a server (the server tests are in
tests/integration/test_label_studio.py and the shared contract)."""

from __future__ import annotations

import json

import pytest

from rlthf_plugin.backends.base import MemoryState, Task
from rlthf_plugin.backends.mapping import parse_map
from rlthf_plugin.backends.label_studio import (
    SECRET_HEADER, TEMPLATE, LabelStudioBackend, check_label_config, from_config, reason_text,
)
from rlthf_plugin.config import Config, Secret
from rlthf_plugin.errors import BadWebhookError, ConfigError, IncompatibleProjectError, WebhookAuthError
from rlthf_plugin.pairs import PreferencePair

PAIR = PreferencePair("pair-1", "Which is right?", "answer one", "answer two", "test", {})


def backend(**options) -> LabelStudioBackend:
    return LabelStudioBackend("http://127.0.0.1:9", "key", title="unit", webhook_secret="s3cret", **options)


def event(action: str, **fields) -> bytes:
    return json.dumps({"action": action, **fields}).encode()


ANNOTATION = {"id": 7, "completed_by": 2, "created_username": " ann@x.org, 2", "was_cancelled": False,
              "updated_at": "2026-01-02T03:04:05.123456Z",
              "result": [{"from_name": "preference", "to_name": "prompt", "type": "choices",
                          "value": {"choices": ["B"]}},
                         {"from_name": "comment", "to_name": "prompt", "type": "textarea",
                          "value": {"text": ["close call"]}}]}


def test_template_passes_its_own_check():
    check_label_config(TEMPLATE.read_text(), where="template")


@pytest.mark.parametrize("broken, missing", [
    (lambda x: x.replace('value="$response_b"', 'value="$resp_b"'), "showing $response_b"),
    (lambda x: x.replace('<Choices name="preference"', '<Rating name="preference"').replace("</Choices>", "</Rating>"),
     'Choices name="preference"'),
    (lambda x: x.replace('<Choice value="tie" alias="tie" hotkey="3"/>', ""), "choice(s) tie"),
    (lambda x: x.replace('value="$prompt"', 'value="$question"'), "showing $prompt"),
    (lambda x: "<View><Text", "not valid XML"),
])
def test_incompatible_configs_are_named(broken, missing):
    with pytest.raises(IncompatibleProjectError, match="project 5") as err:
        check_label_config(broken(TEMPLATE.read_text()), where="Label Studio project 5")
    assert missing in err.value.message


#: Label Studio's own "Human Preference collection for RLHF" template (1.23.2), styles left out.
RLHF_PAIRWISE = """<View className="root"><View className="container">
  <View className="prompt"><Text name="prompt" value="$prompt" /></View>
  <View className="answers">
    <Pairwise name="comparison" toName="answer1,answer2" />
    <View className="answer-box"><Text name="answer1" value="$answer1" /></View>
    <View className="answer-box"><Text name="answer2" value="$answer2" /></View>
  </View></View></View>"""


def test_every_missing_name_is_listed_at_once():
    with pytest.raises(IncompatibleProjectError) as err:
        check_label_config(RLHF_PAIRWISE, where="Label Studio project 9")
    message = err.value.message
    assert "showing $response_a" in message and "showing $response_b" in message and "--map" in message
    fm = parse_map("response_a=answer2,response_b=answer1")  # the wrong way round: left is answer1
    with pytest.raises(IncompatibleProjectError, match="lists the tag showing .answer2 first"):
        check_label_config(RLHF_PAIRWISE, where="p", field_map=fm)


def test_pairwise_template_both_ways():
    fm = parse_map("prompt=prompt,response_a=answer1,response_b=answer2,label=comparison")
    control = check_label_config(RLHF_PAIRWISE, where="p", field_map=fm)
    assert (control.kind, control.name, control.to_name) == ("pairwise", "comparison", "answer1")
    b = backend(show_predictions=True, field_map=fm)
    b.control = control
    task = Task(PAIR, priority=2.0, reason={"region": "flip", "margin": -7.5}, ai_label="B", ai_score=0.8)
    payload = b.task_payload(task)
    assert {k: payload["data"][k] for k in ("prompt", "answer1", "answer2")} == {
        "prompt": PAIR.prompt, "answer1": PAIR.response_a, "answer2": PAIR.response_b}
    assert payload["meta"] == {"rlthf": {"pair_id": "pair-1", "iteration": None}}  # ids only: details stay in the ledger
    assert not any(ch.isdigit() for ch in payload["data"]["reason"]) and "flip" not in payload["data"]["reason"]
    [prediction] = payload["predictions"]
    assert prediction["result"] == [{"from_name": "comparison", "to_name": "answer1", "type": "pairwise",
                                     "value": {"selected": "right"}}] and prediction["score"] == 0.8
    assert "predictions" not in b.task_payload(Task(PAIR, ai_label="tie"))  # a tie has no Pairwise answer
    # What the labeling page saves: to_name is the Pairwise tag itself; left is response A.
    for selected, label in (("left", "A"), ("right", "B")):
        annotation = {"id": 3, "completed_by": {"email": "ann@x.org"}, "result": [
            {"from_name": "comparison", "to_name": "comparison", "type": "pairwise", "value": {"selected": selected}}]}
        assert b.to_label("pair-1", annotation).label == label


def test_webhook_needs_the_secret():
    b = backend()
    body = event("ANNOTATION_CREATED", annotation=ANNOTATION, task={"data": {"pair_id": "pair-1"}})
    for headers in ({}, {SECRET_HEADER: ""}, {SECRET_HEADER: "s3cre"}, {SECRET_HEADER: "s3cret "}):
        with pytest.raises(WebhookAuthError):
            b.parse_webhook(headers, body)
    with pytest.raises(WebhookAuthError, match="no webhook_secret"):
        LabelStudioBackend("http://127.0.0.1:9", "key", title="unit").parse_webhook({SECRET_HEADER: "x"}, body)


def test_webhook_created_updated_deleted():
    """The translation of a delivery (what parse_webhook then reads back from Label Studio:
    tests/integration/test_service_exposure.py)."""
    from rlthf_plugin.backends.label_studio_events import event_labels

    b = backend()
    b._check_secret({SECRET_HEADER.lower(): "s3cret"})
    [label] = event_labels(event("ANNOTATION_UPDATED", annotation=ANNOTATION,
                                 task={"data": {"pair_id": "pair-1"}}), b.to_label)
    assert (label.pair_id, label.label, label.annotator, label.external_id, label.comment) == (
        "pair-1", "B", "ann@x.org", "7", "close call")
    assert label.labeled_at.isoformat() == "2026-01-02T03:04:05.123456+00:00" and not label.deleted
    cancelled = {**ANNOTATION, "was_cancelled": True, "result": []}
    [skip] = event_labels(event("ANNOTATION_CREATED", annotation=cancelled,
                                task={"data": {"pair_id": "pair-1"}}), b.to_label)
    assert skip.label == "skip"
    gone = event_labels(event("ANNOTATIONS_DELETED", annotations=[{"id": 7}, {"id": 8}]), b.to_label)
    assert [(g.external_id, g.deleted, g.pair_id) for g in gone] == [("7", True, ""), ("8", True, "")]
    assert event_labels(event("PROJECT_UPDATED", project={"id": 1}), b.to_label) == []
    assert event_labels(event("ANNOTATION_CREATED", annotation=ANNOTATION, task={"data": {}}), b.to_label) == []
    with pytest.raises(BadWebhookError, match="not JSON"):
        event_labels(b"{nope", b.to_label)


def test_payload_hides_the_ai_label_unless_asked():
    task = Task(PAIR, priority=3.0, reason={"region": "ask", "margin": -0.0123}, iteration=2,
                ai_label="A", ai_score=0.9, margin=-0.0123, model_version="rlthf-iter2")
    hidden = backend().task_payload(task)
    assert "predictions" not in hidden
    assert hidden["data"] == {"pair_id": "pair-1", "prompt": PAIR.prompt, "response_a": PAIR.response_a,
                              "response_b": PAIR.response_b, "priority": 3.0,
                              "reason": "Asked because our reward model is unsure which answer is better"}
    assert hidden["meta"] == {"rlthf": {"pair_id": "pair-1", "iteration": 2}}  # no margin, p_wrong or signals
    [prediction] = backend(show_predictions=True).task_payload(task)["predictions"]
    assert prediction["model_version"] == "rlthf-iter2" and prediction["score"] == pytest.approx(0.9)
    assert prediction["result"][0]["value"] == {"choices": ["A"]}
    assert prediction["result"][0]["from_name"] == "preference" and prediction["result"][0]["to_name"] == "prompt"
    assert reason_text(Task(PAIR)) == "priority 0"


def test_from_config_names_what_is_missing(tmp_path):
    cfg = Config()
    with pytest.raises(ConfigError, match="URL"):
        from_config(cfg)
    cfg.label_studio.url = "http://127.0.0.1:9"
    with pytest.raises(ConfigError, match="API key"):
        from_config(cfg)
    cfg.label_studio.api_key = Secret("key")
    with pytest.raises(ConfigError, match="Argilla option"):
        from_config(cfg, dataset="x")
    with pytest.raises(ConfigError, match=r"\[label_studio\] project .*rlthf push --backend label-studio --project ID"):
        from_config(cfg).ensure_project()
    b = from_config(cfg, project=4, create_name=None, state=MemoryState())
    assert (b.project_id, b.title, b.show_predictions) == (4, None, False)
    assert from_config(cfg, create_name="new", show_ai=True).show_predictions is True


def test_show_ai_preselects_only_a_label_the_model_thinks_is_right():
    """--show-ai: the AI label is offered only when P(it is right) > 0.5; 0.3 is no prediction."""
    def task(score):
        return Task(PAIR, priority=1.0, reason={"region": "ask"}, iteration=1, ai_label="A", ai_score=score)
    b = backend(show_predictions=True)
    assert "predictions" not in b.task_payload(task(0.3)) and "predictions" not in b.task_payload(task(0.5))
    assert b.task_payload(task(0.51))["predictions"][0]["score"] == pytest.approx(0.51)
    [uncalibrated] = b.task_payload(task(None))["predictions"]  # no calibration yet: the label, no score
    assert "score" not in uncalibrated
@pytest.mark.parametrize("result", ["A", {"choices": ["A"]}, ["A"], [{"value": "A"}], [{"value": {"choices": "A"}}],
                                    [{"value": {"selected": 1}, "type": "pairwise"}]])
def test_a_malformed_result_is_a_bad_request(result):
    """Issue 23: a body whose annotation result is not Label Studio's shape is refused (400),
    not answered 200 with nothing stored."""
    from rlthf_plugin.backends.label_studio_events import event_labels

    body = event("ANNOTATION_CREATED", annotation={**ANNOTATION, "result": result}, task={"data": {"pair_id": "p"}})
    with pytest.raises(BadWebhookError, match="annotation.result") as e:
        event_labels(body, backend().to_label)
    assert "\n" not in e.value.message
