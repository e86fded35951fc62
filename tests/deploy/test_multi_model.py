"""./build_and_push.sh register --multi-model and invoke --target-model, against moto's servers.

moto records the model exactly as the script creates it (its container's Mode, the S3 prefix as ModelDataUrl,
the environment) and its runtime receives InvokeEndpoint with TargetModel as SageMaker's header; it runs no
container: the container's side of a multi-model endpoint is tested against the real server
(tests/test_multimodel.py)."""
import json

from deploy_helpers import ACCOUNT, REGION, ROLE_NAME, grace_hopper, run_fails, run_script
# fixtures (no conftest.py here: it would shadow tests/conftest.py, which the other modules import)
from deploy_helpers import aws, moto_url, sagemaker_proxy  # noqa: F401
from test_register_deploy import grace_hopper_answer, seed_runtime

IMAGE_URI = "%s.dkr.ecr.%s.amazonaws.com/sagemaker-ssd-gluoncv:cpu-test" % (ACCOUNT, REGION)
MODEL = "sagemaker-ssd-gluoncv-cpu-test"
PREFIX = "s3://ssd-models/detectors/"


def cpu(*extra):
    return ["--target", "cpu", "--image-uri", IMAGE_URI, "--tag", "cpu-test", "--role", ROLE_NAME] + list(extra)


def test_register_multi_model_creates_a_multimodel_container_on_the_prefix(aws):
    run = run_script(["register"] + cpu("--multi-model", PREFIX), aws.env)
    assert "multi-model: every model.tar.gz under %s" % PREFIX in run.stderr
    sagemaker = aws.client("sagemaker")
    container = sagemaker.describe_model(ModelName=MODEL)["PrimaryContainer"]
    assert container["Mode"] == "MultiModel" and container["ModelDataUrl"] == PREFIX
    assert container["Environment"] == {"SAGEMAKER_MULTI_MODEL": "true"}
    assert "reusing it" in run_script(["register"] + cpu("--multi-model", PREFIX), aws.env).stderr
    # the same image as one model is another SageMaker model, not the multi-model one reused
    single = run_script(["register"] + cpu(), aws.env)
    assert "creating SageMaker model %s-v2" % MODEL in single.stderr
    assert sagemaker.describe_model(ModelName=MODEL + "-v2")["PrimaryContainer"]["Mode"] == "SingleModel"


def test_register_multi_model_refuses_what_it_cannot_be(aws):
    for extra, expected in ((("--multi-model", "s3://ssd-models/detectors"), "ending in /"),
                            (("--multi-model", "ssd-models/detectors/"), "is not an s3://"),
                            (("--multi-model", PREFIX, "--model-data", "s3://b/m.tar.gz"), "drop one of the two"),
                            (("--multi-model", PREFIX, "--serverless", "3072:5"), "not serverless")):
        run_fails(["register"] + cpu(*extra), aws.env, [expected])
    run_fails(["register", "--target", "gpu", "--image-uri", IMAGE_URI, "--tag", "cpu-test", "--role", ROLE_NAME,
               "--multi-model", PREFIX], aws.env, ["CPU only", "--target cpu"])
    assert aws.client("sagemaker").list_models()["Models"] == []


def test_invoke_target_model_sends_target_model(aws, sagemaker_proxy, tmp_path):
    proxy = sagemaker_proxy()
    seed_runtime(aws, json.dumps(grace_hopper_answer()), "application/json")
    run = run_script(["invoke", "--target", "cpu", "--photo", grace_hopper(), "--target-model", "kitchen.tar.gz",
                      "--output", str(tmp_path / "drawn.jpg")], aws.env)
    assert "model kitchen.tar.gz" in run.stderr and "person" in run.stderr
    sent, = proxy.invocations
    headers = dict((k.lower(), v) for k, v in sent["headers"].items())
    assert headers["x-amzn-sagemaker-target-model"] == "kitchen.tar.gz"
