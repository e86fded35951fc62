"""The built image driven by the SageMaker Python SDK's local mode, as a user tries it before paying for AWS: deploy and
predict (the baked model, and a model.tar.gz packed under a subfolder), and a Batch Transform over real photos plus a
corrupt file, with SingleRecord, with the SDK's defaults (no strategy, no split type: the container announces
SingleRecord), and JSON Lines split by line with MultiRecord asked for.

Runs in its own venv with the SDK and without the suite's conftest (`make test-sdk-local`: sagemaker 2.x, the last with local mode, pinned in
requirements/sdk-local.txt), against the image `docker/build.sh cpu` makes (SSD_SDK_IMAGE) and the photos
the MXNet venv copies out of matplotlib's and scikit-image's wheels (SSD_SDK_PHOTOS). Local mode runs the
container with docker-compose on port 8080 and answers to the SDK as SageMaker would; it leaves its exited
containers and its network behind, which the test removes (only those it made).
Known SDK quirks worked around: model_data=None raises KeyError (an empty file:// folder is passed),
transform(logs=True) tails CloudWatch (wait(logs=False) instead). MultiRecord with split type None fails
inside the SDK: the container announces SingleRecord, so the SDK's defaults work (tested), and MultiRecord is
asked for with split type Line, as JSON Lines need anyway. Local mode unpacks a model.tar.gz beside itself and
mounts that folder as /opt/ml/model, archive included: the server passes the archive over (tested).
"""
import base64
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

IMAGE = os.environ.get("SSD_SDK_IMAGE", "ssd-serving-test:cpu")
PHOTOS = os.environ.get("SSD_SDK_PHOTOS")
ROLE = "arn:aws:iam::111111111111:role/ssd-local-mode"  # local mode never calls IAM

if "SSD_SDK_IMAGE" not in os.environ:  # the MXNet venvs' suite (make test-mx19) collects this file too
    pytest.skip("the SDK's local mode runs in its own venv: make test-sdk-local, which sets SSD_SDK_IMAGE",
                allow_module_level=True)
import sagemaker  # noqa: E402 (pinned in requirements/sdk-local.txt: missing there is a broken venv, not a skip)


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


# the committed demo model, which the image also bakes; packed again below under other names and classes
DEMO_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "container", "models", "demo")
OWN_CLASSES = ["ring", "tile", "wedge", "spark"]  # the demo model's four classes, renamed


def _packed_under_a_subfolder(folder):
    """model.tar.gz holding mymodel/<the three files>: the demo model's graph and weights under a new name and
    classes, readable by the image's non-root server user (as the docs say to pack it)."""
    with open(os.path.join(DEMO_MODEL, "model-meta.json")) as stream:
        meta = json.load(stream)
    meta.update(model_name="my_packed_shapes", classes=OWN_CLASSES, demo=False)
    path = os.path.join(folder, "model.tar.gz")

    def add(name, data, mode=0o644, kind=tarfile.REGTYPE):
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.type = (len(data) if data is not None else 0), mode, kind
        tar.addfile(info, io.BytesIO(data) if data is not None else None)

    with tarfile.open(path, "w:gz") as tar:
        add("mymodel", None, 0o755, tarfile.DIRTYPE)
        for name in ("model-symbol.json", "model-0000.params"):
            with open(os.path.join(DEMO_MODEL, name), "rb") as stream:
                add("mymodel/" + name, stream.read())
        add("mymodel/model-meta.json", json.dumps(meta).encode("utf-8"))
    return path


def test_a_model_tar_gz_packed_under_a_subfolder_is_served_with_its_own_classes(local, tmp_path):
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import IdentitySerializer
    folder = tmp_path / "model-data"
    folder.mkdir()
    folder.chmod(0o755)  # mounted as /opt/ml/model: the server user must read it
    archive = _packed_under_a_subfolder(str(folder))
    packed = Model(image_uri=IMAGE, role=ROLE, model_data="file://%s" % archive, sagemaker_session=local,
                   predictor_cls=Predictor)
    predictor = packed.deploy(initial_instance_count=1, instance_type="local",
                              serializer=IdentitySerializer("image/jpeg"), deserializer=JSONDeserializer())
    try:
        # local mode unpacked the archive beside itself: /opt/ml/model holds model.tar.gz and mymodel/
        assert sorted(os.listdir(str(folder))) == ["model.tar.gz", "mymodel"]
        photo = next(p for p in photo_files() if p.endswith(".jpg"))
        with open(photo, "rb") as stream:
            answer = predictor.predict(stream.read(), initial_args={"CustomAttributes": "threshold=0.01"})
        assert answer["model"]["name"] == "my_packed_shapes" and answer["model"]["demo"] is False, answer["model"]
        assert answer["detections"], answer  # at a threshold of 0.01 the shapes model finds something anywhere
        assert set(d["label"] for d in answer["detections"]) <= set(OWN_CLASSES), answer["detections"]
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


def test_batch_transform_over_photos_with_the_sdks_defaults(model, tmp_path):
    """Neither strategy nor split type, as a new user first tries it: the SDK takes the container's SingleRecord."""
    inputs = tmp_path / "photos"
    inputs.mkdir()
    for path in photo_files():
        shutil.copy(path, str(inputs))
    (inputs / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not the rest of a picture")
    out = tmp_path / "out"
    transformer = model.transformer(instance_count=1, instance_type="local", output_path="file://%s" % out)
    transformer.transform("file://%s" % inputs, content_type="image/jpeg", wait=False)
    transformer.wait(logs=False)
    outputs = _outputs(str(out))
    assert set(outputs) == set(os.listdir(str(inputs))), sorted(outputs)  # one output per input
    corrupt = json.loads(outputs.pop("corrupt.png"))
    assert corrupt["status"] == 400 and "decod" in corrupt["error"], corrupt  # answered in its place
    for name, body in outputs.items():
        document = json.loads(body)
        assert "detections" in document and document["model"]["name"], (name, document)


def test_batch_transform_json_lines_with_multirecord(model, tmp_path):
    inputs = tmp_path / "lines"
    inputs.mkdir()
    lines = []
    for path in photo_files():
        with open(path, "rb") as stream:
            lines.append(json.dumps({"image": base64.b64encode(stream.read()).decode(), "top_k": 3}))
    lines.insert(1, "{not json")
    (inputs / "photos.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    # MultiRecord asked for (the container announces SingleRecord): several lines a request, a mini-batch
    transformer = model.transformer(instance_count=1, instance_type="local", strategy="MultiRecord",
                                    output_path="file://%s" % out, accept="application/jsonlines",
                                    assemble_with="Line")
    transformer.transform("file://%s" % inputs, content_type="application/jsonlines", split_type="Line", wait=False)
    transformer.wait(logs=False)
    answers = [json.loads(line) for line in _outputs(str(out))["photos.jsonl"].decode().splitlines() if line.strip()]
    assert len(answers) == len(lines)
    assert answers[1]["status"] == 400 and "not valid JSON" in answers[1]["error"]
    for document in answers[:1] + answers[2:]:
        assert len(document["detections"]) <= 3 and document["image_size"]
