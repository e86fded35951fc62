"""A user's own entry point (SAGEMAKER_PROGRAM in model.tar.gz's code/, SageMaker's layout) that knows nothing of this
server: the real server loads it, turns /ping healthy once its model_fn has returned, and answers with it."""
import json
import textwrap

import requests

from helpers import DEMO_MODEL, copy_model, ready_server

# nothing imported from ssd_serving: what a user who never read this project's code would write
OWN_ENTRY_POINT = textwrap.dedent('''
    import json


    def model_fn(model_dir):
        return {"model_dir": model_dir}


    def input_fn(request_body, content_type, context=None):
        return len(request_body)


    def predict_fn(data, model, context=None):
        return {"bytes": data, "model_dir": model["model_dir"]}


    def output_fn(prediction, accept, context=None):
        return json.dumps(prediction), "application/json"
''')


def test_a_users_own_entry_point_is_served_once_its_model_fn_returns(tmp_path):
    base = tmp_path / "opt-ml"
    copy_model(DEMO_MODEL, str(base / "model"))
    (base / "model" / "code").mkdir()
    (base / "model" / "code" / "own.py").write_text(OWN_ENTRY_POINT)
    env = {"SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_PROGRAM": "own.py"}
    with ready_server(DEMO_MODEL, env) as running:
        assert requests.get(running.url + "/ping", timeout=10).status_code == 200
        reply = running.post(b"x" * 1234, "application/octet-stream")
        assert reply.status_code == 200, reply.text
        # model_fn was given SageMaker's model folder, where model.tar.gz was unpacked (as AWS's toolkits give it)
        assert json.loads(reply.text) == {"bytes": 1234, "model_dir": str(base / "model")}
