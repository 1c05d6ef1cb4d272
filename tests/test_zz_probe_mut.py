import pytest
import gridmap.workflow as wf
from test_properties import test_no_sequence_of_actions_reaches_an_invalid_state, fixed_issues  # noqa

@pytest.fixture(autouse=True, params=["rework", "reopen-ext", "resume", "close"])
def broken(request, monkeypatch):
    if request.param == "rework":
        monkeypatch.setitem(wf._HANDLERS, "rework", lambda s, i, at, r, p: ({"handled_at": None}, {}))
    elif request.param == "reopen-ext":
        orig = wf._reopen
        def reopen(s, i, at, r, p):
            c, d = orig(s, i, at, r, p); c.pop("extension_count"); return c, d
        monkeypatch.setitem(wf._HANDLERS, "reopen", reopen)
    elif request.param == "resume":
        orig = wf._resume
        def resume(s, i, at, r, p):
            c, d = orig(s, i, at, r, p); c.pop("suspended_at"); return c, d
        monkeypatch.setitem(wf._HANDLERS, "resume", resume)
    else:
        monkeypatch.setitem(wf._HANDLERS, "close", lambda s, i, at, r, p: ({}, {}))
