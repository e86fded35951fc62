"""The built image driven by the SageMaker Python SDK's local mode, as a user tries it before paying for AWS: deploy and
predict, and a Batch Transform over real photos plus a corrupt file, with SingleRecord and with the strategy the
container announces (JSON Lines split by line).

Runs in its own venv with the SDK and without the suite's conftest (`make test-sdk-local`: sagemaker 2.x, the last with local mode, pinned in
requirements/sdk-local.txt), against the image `docker/build.sh cpu` makes (SSD_SDK_IMAGE) and the photos
the MXNet venv copies out of matplotlib's and scikit-image's wheels (SSD_SDK_PHOTOS). Local mode runs the
container with docker-compose on port 8080 and answers to the SDK as SageMaker would; it leaves its exited
containers and its network behind, which the test removes (only those it made).
Known SDK quirks worked around: model_data=None raises KeyError (an empty file:// folder is passed),
transform(logs=True) tails CloudWatch (wait(logs=False) instead), MultiRecord with split type None fails
inside the SDK (MultiRecord is used with split type Line, as JSON Lines need anyway).
"""
import base64
import json
import os
import shutil
import subprocess

import pytest

IMAGE = os.environ.get("SSD_SDK_IMAGE", "ssd-serving-test:cpu")
PHOTOS = os.environ.get("SSD_SDK_PHOTOS")
ROLE = "arn:aws:iam::111111111111:role/ssd-local-mode"  # local mode never calls IAM

sagemaker = pytest.importorskip("sagemaker", reason="the SDK's local mode runs in its venv: make test-sdk-local")


def _need(reason):
    if os.environ.get("SSD_REQUIRE_DOCKER") == "1":
        pytest.fail("%s, and SSD_REQUIRE_DOCKER=1" % reason, pytrace=False)
    pytest.skip(reason)


def _docker(*args):
    return subprocess.run(["docker"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)


def _ids(kind):
    listing = _docker("ps", "-aq", "--no-trunc") if kind == "containers" else _docker("network", "ls", "-q",
                                                                                     "--no-trunc")
    return set(listing.stdout.split())


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A LocalSession with fake credentials, and afterwards the removal of what compose left behind."""
    if shutil.which("docker-compose") is None:
        _need("the SDK's local mode needs docker-compose (docker/ensure-engine.sh installs Debian's)")
    if _docker("image", "inspect", IMAGE).returncode != 0:
        _need("no image %s: docker/build.sh cpu with IMAGE=%s (make test-sdk-local does)" % (IMAGE, IMAGE))
    if not PHOTOS or not os.path.isdir(PHOTOS):
        _need("SSD_SDK_PHOTOS names no folder of photos (make test-sdk-local prepares one)")
    # no telemetry calls to AWS (nothing outside can be reached from the test machines), no v3 nagging
    config = tmp_path_factory.mktemp("sdk-config") / "config.yaml"
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    for key, value in (("AWS_ACCESS_KEY_ID", "local-mode"), ("AWS_SECRET_ACCESS_KEY", "local-mode"),
                       ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true"),
                       ("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config)), ("SAGEMAKER_SUPPRESS_V2_WARNING", "1")):
        os.environ.setdefault(key, value)
    containers, networks = _ids("containers"), _ids("networks")
    from sagemaker.local import LocalSession
    session = LocalSession()
    session.config = {"local": {"local_code": True, "container_root": str(tmp_path_factory.mktemp("sdk-root"))}}
    try:
        yield session
    finally:
        for container in _ids("containers") - containers:
            _docker("rm", "-f", container)
        for network in _ids("networks") - networks:
            _docker("network", "rm", network)


@pytest.fixture(scope="module")
def model(local, tmp_path_factory):
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    empty = tmp_path_factory.mktemp("no-model-data")  # /opt/ml/model empty: the image's baked model is served
    empty.chmod(0o755)  # pytest makes it 0700, which the image's server user may not read (and refuses to start)
    # predictor_cls: without one, Model.deploy returns None
    return Model(image_uri=IMAGE, role=ROLE, model_data="file://%s" % empty, sagemaker_session=local,
                 predictor_cls=Predictor)


def photo_files():
    names = sorted(n for n in os.listdir(PHOTOS) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    assert len(names) >= 3, names
    return [os.path.join(PHOTOS, name) for name in names]


def test_deploy_and_predict(model):
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import IdentitySerializer
    predictor = model.deploy(initial_instance_count=1, instance_type="local",
                             serializer=IdentitySerializer("image/jpeg"), deserializer=JSONDeserializer())
    try:
        photo = next(p for p in photo_files() if p.endswith(".jpg"))
        with open(photo, "rb") as stream:
            answer = predictor.predict(stream.read())
        assert answer["model"]["name"] and isinstance(answer["detections"], list) and len(answer["image_size"]) == 2
    finally:
        predictor.delete_endpoint()


def _outputs(folder):
    return dict((name[:-len(".out")], open(os.path.join(folder, name), "rb").read())
                for name in os.listdir(folder) if name.endswith(".out"))


def test_batch_transform_single_record_over_photos_and_a_corrupt_file(model, tmp_path):
    inputs = tmp_path / "photos"
    inputs.mkdir()
    for path in photo_files():
        shutil.copy(path, str(inputs))
    with open(next(p for p in photo_files() if p.endswith(".jpg")), "rb") as stream:
        (inputs / "corrupt.jpg").write_bytes(stream.read(3000))  # a photo cut short, as an interrupted upload is
    out = tmp_path / "out"
    transformer = model.transformer(instance_count=1, instance_type="local", strategy="SingleRecord",
                                    output_path="file://%s" % out, accept="application/json")
    transformer.transform("file://%s" % inputs, content_type="application/x-image", split_type=None, wait=False)
    transformer.wait(logs=False)
    outputs = _outputs(str(out))
    assert set(outputs) == set(os.listdir(str(inputs))), sorted(outputs)
    corrupt = json.loads(outputs.pop("corrupt.jpg"))
    assert corrupt["status"] == 400 and "decod" in corrupt["error"], corrupt  # and the job went on
    for name, body in outputs.items():
        document = json.loads(body)
        assert "detections" in document and document["model"]["name"], (name, document)


def test_batch_transform_json_lines_with_the_strategy_the_container_announces(model, tmp_path):
    inputs = tmp_path / "lines"
    inputs.mkdir()
    lines = []
    for path in photo_files():
        with open(path, "rb") as stream:
            lines.append(json.dumps({"image": base64.b64encode(stream.read()).decode(), "top_k": 3}))
    lines.insert(1, "{not json")
    (inputs / "photos.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    # no strategy: the SDK asks GET /execution-parameters, and the container says MultiRecord
    transformer = model.transformer(instance_count=1, instance_type="local", output_path="file://%s" % out,
                                    accept="application/jsonlines", assemble_with="Line")
    transformer.transform("file://%s" % inputs, content_type="application/jsonlines", split_type="Line", wait=False)
    transformer.wait(logs=False)
    answers = [json.loads(line) for line in _outputs(str(out))["photos.jsonl"].decode().splitlines() if line.strip()]
    assert len(answers) == len(lines)
    assert answers[1]["status"] == 400 and "not valid JSON" in answers[1]["error"]
    for document in answers[:1] + answers[2:]:
        assert len(document["detections"]) <= 3 and document["image_size"]
