import pytest

from rlthf_plugin.service.metrics import Metrics


def test_render_prometheus_text():
    m = Metrics()
    m.inc("rlthf_webhooks_received_total", platform="argilla")
    m.inc("rlthf_webhooks_received_total", platform="argilla")
    m.set("rlthf_iteration", 3)
    text = m.render()
    assert 'rlthf_webhooks_received_total{platform="argilla"} 2' in text
    assert "rlthf_iteration 3" in text
    assert "# TYPE rlthf_labels_stored_total counter" in text
    with pytest.raises(KeyError, match="known"):
        m.inc("nope")
