"""A real argilla-server: `--map label=notes` on a TextQuestion names the unsupported type and
lists the dataset's own fields and questions."""

from __future__ import annotations

import uuid

import pytest

from rlthf_plugin.backends import open_backend
from rlthf_plugin.config import load_config, update_config_file
from rlthf_plugin.errors import IncompatibleProjectError
from rlthf_plugin.loop import sync
from rlthf_plugin.loop.tasks import asked_tasks

from .conftest import add_asked_iteration

pytestmark = pytest.mark.integration


def test_a_text_question_is_named_as_unsupported_with_the_dataset_names(argilla_env, argilla_server,
                                                                       real_workspace):
    import argilla as rg

    server, ws = argilla_server, real_workspace
    add_asked_iteration(ws.ledger, 3)
    name = f"team-{uuid.uuid4().hex[:6]}"
    client = rg.Argilla(api_url=server.url, api_key="rlthf.owner.apikey")
    settings = rg.Settings(fields=[rg.TextField(name="instruction"), rg.TextField(name="response1"),
                                   rg.TextField(name="response2")],
                           questions=[rg.TextQuestion(name="notes", client=client),
                                      rg.RatingQuestion(name="quality", values=[1, 2, 3, 4, 5], client=client)])
    rg.Dataset(name=name, workspace="argilla", settings=settings, client=client).create()
    argilla_env.configure(ws, name=name)
    update_config_file(ws.root, "argilla", map="prompt=instruction,response_a=response1,response_b=response2,"
                                              "label=notes")
    with pytest.raises(IncompatibleProjectError) as err:
        sync.push(ws.ledger, open_backend("argilla", load_config(ws.root), workspace=ws), asked_tasks(ws.ledger))
    message = err.value.message
    assert "'notes' is a text question, a type the answer cannot be read from" in message, message
    assert "there is no question" not in message
    assert "fields 'instruction' (text), 'response1' (text), 'response2' (text)" in message, message
    assert "questions 'notes' (text), 'quality' (rating)" in message, message
