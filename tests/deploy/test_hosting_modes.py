"""./build_and_push.sh beyond one real-time endpoint: transform (Batch Transform), deploy --async-output and
invoke --async (Asynchronous Inference), deploy --serverless (Serverless Inference), against moto's servers.

moto records the jobs and configs exactly as the script creates them, and answers InvokeEndpointAsync by
writing an answer to S3, but runs no container: a transform job's outputs are put in S3 by the test (shaped
as the server writes them, one with a record's error document), so the script's summary has something to
read. The container's side of each mode is tested against the real server (tests/test_batch.py)."""
import json

import requests

from deploy_helpers import ACCOUNT, REGION, ROLE_NAME, run_fails, run_script
# fixtures (no conftest.py here: it would shadow tests/conftest.py, which the other modules import)
from deploy_helpers import aws, moto_url  # noqa: F401

IMAGE_URI = "%s.dkr.ecr.%s.amazonaws.com/sagemaker-ssd-gluoncv:cpu-test" % (ACCOUNT, REGION)
MODEL = "sagemaker-ssd-gluoncv-cpu-test"
BUCKET = "ssd-jobs"
ANSWER = {"model": {"name": "ssd_512_resnet50_v1_voc", "demo": False, "device": "cpu"}, "image_size": [512, 600],
          "detections": [{"class_id": 14, "label": "person", "score": 0.9871, "box": [57.3, 23.9, 467.0, 596.2]}]}


def cpu(*extra):
    return ["--target", "cpu", "--image-uri", IMAGE_URI, "--tag", "cpu-test", "--role", ROLE_NAME] + list(extra)


def bucket(aws, objects):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return s3


def test_help_shows_every_new_flag(aws):
    transform = run_script(["transform", "--help"], aws.env).stdout
    for flag in ("--input", "--output", "--instance-count", "--instance-type", "--content-type", "--strategy",
                 "--max-payload", "--split-type", "--wait", "SSD_TRANSFORM_OUTPUT"):
        assert flag in transform, flag
    deploy = run_script(["deploy", "--help"], aws.env).stdout
    for flag in ("--async-output", "--async-max-concurrency", "--sns-success", "--sns-error", "--serverless"):
        assert flag in deploy, flag
    assert "--async" in run_script(["invoke", "--help"], aws.env).stdout
    assert "transform" in run_script(["--help"], aws.env).stdout


def test_transform_creates_the_job_follows_it_and_sums_it_up(aws):
    s3 = bucket(aws, {"photos/a.jpg": b"a", "photos/b.jpg": b"b", "photos/c.jpg": b"c"})
    # what the job would write (moto runs no container): one answer per input object, one of them a record error
    for name, document in (("a", ANSWER), ("b", ANSWER), ("c", {"error": "the body is not a decodable image",
                                                               "status": 400})):
        s3.put_object(Bucket=BUCKET, Key="detections/%s.jpg.out" % name, Body=json.dumps(document).encode())
    run_fails(["transform"] + cpu("--input", "s3://%s/photos/" % BUCKET, "--output", "s3://%s/detections/" % BUCKET),
              aws.env, ["no SageMaker model %s" % MODEL, "register it first"])
    run_script(["register"] + cpu(), aws.env)
    run = run_script(["transform"] + cpu("--input", "s3://%s/photos/" % BUCKET, "--output",
                                         "s3://%s/detections/" % BUCKET, "--instance-count", "2", "--strategy",
                                         "SingleRecord", "--max-payload", "20", "--job-name", "ssd-photos",
                                         "--wait"), aws.env)
    assert run.last_line == "ssd-photos"
    job = aws.client("sagemaker").describe_transform_job(TransformJobName="ssd-photos")
    assert job["ModelName"] == MODEL and job["BatchStrategy"] == "SingleRecord" and job["MaxPayloadInMB"] == 20
    assert job["TransformInput"]["ContentType"] == "application/x-image"
    assert job["TransformInput"]["SplitType"] == "None"
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://%s/photos/" % BUCKET
    assert job["TransformOutput"] == {"S3OutputPath": "s3://%s/detections/" % BUCKET, "Accept": "application/json",
                                      "AssembleWith": "None"}
    assert job["TransformResources"] == {"InstanceType": "ml.c6i.xlarge", "InstanceCount": 2}
    for line in ("transform job ssd-photos: Completed", "input objects: 3", "outputs written: 3",
                 "records with errors: 1 of 3 read"):
        assert line in run.stderr, (line, run.stderr)
    again = run_script(["transform"] + cpu("--input", "s3://%s/photos/" % BUCKET, "--output",
                                           "s3://%s/detections/" % BUCKET, "--job-name", "ssd-photos", "--wait"),
                       aws.env)
    assert "transform job ssd-photos exists (Completed): following it" in again.stderr


def test_json_lines_are_split_by_line_multirecord_and_the_choice_printed(aws):
    bucket(aws, {"lines/part-1.jsonl": b'"aGVsbG8="\n'})
    run_script(["register"] + cpu(), aws.env)
    run = run_script(["transform"] + cpu("--input", "s3://%s/lines/" % BUCKET, "--output", "s3://%s/out/" % BUCKET,
                                         "--content-type", "application/jsonlines"), aws.env)
    job = aws.client("sagemaker").describe_transform_job(TransformJobName=run.last_line)
    assert job["TransformInput"]["SplitType"] == "Line" and job["TransformInput"]["ContentType"] == \
        "application/jsonlines"
    assert job["BatchStrategy"] == "MultiRecord"
    assert job["TransformOutput"]["Accept"] == "application/jsonlines"
    assert job["TransformOutput"]["AssembleWith"] == "Line"
    assert "MaxPayloadInMB" not in job  # GET /execution-parameters decides
    assert "chose split type Line and strategy MultiRecord for application/jsonlines" in run.stderr, run.stderr
    assert "--wait" in run.stderr and "records with errors" not in run.stderr


def test_image_files_are_one_object_a_request_singlerecord_and_the_choice_printed(aws):
    bucket(aws, {"photos/a.jpg": b"a"})
    run_script(["register"] + cpu(), aws.env)
    run = run_script(["transform"] + cpu("--input", "s3://%s/photos/" % BUCKET, "--output", "s3://%s/out/" % BUCKET),
                     aws.env)
    job = aws.client("sagemaker").describe_transform_job(TransformJobName=run.last_line)
    assert job["TransformInput"]["ContentType"] == "application/x-image"
    assert job["TransformInput"]["SplitType"] == "None" and job["BatchStrategy"] == "SingleRecord"
    assert job["TransformOutput"]["AssembleWith"] == "None"
    assert "chose split type None and strategy SingleRecord for application/x-image" in run.stderr, run.stderr
    # what is given wins, and only what was not is chosen
    run = run_script(["transform"] + cpu("--input", "s3://%s/photos/" % BUCKET, "--output", "s3://%s/out2/" % BUCKET,
                                         "--content-type", "image/jpeg", "--strategy", "MultiRecord", "--job-name",
                                         "ssd-given-strategy"), aws.env)
    job = aws.client("sagemaker").describe_transform_job(TransformJobName=run.last_line)
    assert job["BatchStrategy"] == "MultiRecord" and job["TransformInput"]["SplitType"] == "None"
    assert "chose split type None for image/jpeg" in run.stderr and "chose split type None and" not in run.stderr
    run = run_script(["transform"] + cpu("--input", "s3://%s/photos/" % BUCKET, "--output", "s3://%s/out3/" % BUCKET,
                                         "--split-type", "None", "--strategy", "SingleRecord", "--job-name",
                                         "ssd-both-given"), aws.env)
    assert "chose" not in run.stderr


def test_transform_refuses_what_it_cannot_run(aws):
    run_script(["register"] + cpu(), aws.env)
    run_fails(["transform"] + cpu("--input", "s3://%s/photos/" % BUCKET), aws.env, ["needs --input", "--output"])
    run_fails(["transform"] + cpu("--input", "photos/", "--output", "s3://b/out/"), aws.env,
              ["--input 'photos/' is not an s3://BUCKET/PREFIX URI"])
    run_fails(["transform"] + cpu("--input", "s3://b/in/", "--output", "s3://b/out/", "--max-payload", "500"),
              aws.env, ["--max-payload 500 is not 1 to 100"])


def test_an_asynchronous_endpoint_and_an_asynchronous_invocation(aws):
    topics = ["arn:aws:sns:%s:%s:ssd-%s" % (REGION, ACCOUNT, kind) for kind in ("done", "failed")]
    run = run_script(["deploy"] + cpu("--async-output", "s3://%s/async/" % BUCKET, "--async-max-concurrency", "4",
                                      "--sns-success", topics[0], "--sns-error", topics[1]), aws.env, check=False)
    assert "register it first" in run.stderr  # deploy uses what register made
    run_script(["register"] + cpu("--async-output", "s3://%s/async/" % BUCKET, "--async-max-concurrency", "4",
                                  "--sns-success", topics[0], "--sns-error", topics[1]), aws.env)
    deployed = run_script(["deploy"] + cpu("--async-output", "s3://%s/async/" % BUCKET, "--async-max-concurrency",
                                           "4", "--sns-success", topics[0], "--sns-error", topics[1]), aws.env)
    sagemaker = aws.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=deployed.last_line)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["AsyncInferenceConfig"] == {
        "OutputConfig": {"S3OutputPath": "s3://%s/async/" % BUCKET,
                         "NotificationConfig": {"SuccessTopic": topics[0], "ErrorTopic": topics[1]}},
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4}}
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    # the container takes an asynchronous endpoint's large, long requests
    assert model["PrimaryContainer"]["Environment"] == {"SSD_MAX_REQUEST_BYTES": str(200 << 20),
                                                        "SSD_RESPONSE_TIMEOUT": "3600"}

    bucket(aws, {"big/photo.jpg": b"\xff\xd8 a large photo"})
    requests.post(aws.moto_url + "/moto-api/static/sagemaker/async-endpoint-results", proxies={"http": None},
                  json={"results": [{"data": json.dumps(ANSWER)},
                                    {"is_failure": True, "data": "the worker timed out"}]}).raise_for_status()
    run = run_script(["invoke", "--target", "cpu", "--async", "--input", "s3://%s/big/photo.jpg" % BUCKET],
                     aws.env)
    assert run.last_line.startswith("s3://") and "person" in run.stderr and "1 detection(s)" in run.stderr
    run_fails(["invoke", "--target", "cpu", "--async", "--input", "s3://%s/big/other.jpg" % BUCKET], aws.env,
              ["could not answer s3://%s/big/other.jpg: the worker timed out" % BUCKET])
    run_fails(["invoke", "--target", "cpu", "--async"], aws.env, ["already in S3", "--input"])


def test_a_serverless_endpoint(aws):
    run_script(["register"] + cpu("--serverless", "3072:5"), aws.env)
    deployed = run_script(["deploy"] + cpu("--serverless", "3072:5"), aws.env)
    sagemaker = aws.client("sagemaker")
    config_name = sagemaker.describe_endpoint(EndpointName=deployed.last_line)["EndpointConfigName"]
    variant, = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 5}
    assert "InstanceType" not in variant and "AcceleratorType" not in variant
    for command, extra, expected in (("register", ("--serverless", "1000:5"), "is not MEMORY_MB:MAX_CONCURRENCY"),
                                     ("deploy", ("--serverless", "3072:5", "--autoscale", "1:3"), "scales itself"),
                                     ("register", ("--serverless", "3072:5", "--async-output", "s3://b/p/"),
                                      "not both")):
        run_fails([command] + cpu(*extra), aws.env, [expected])
    run_fails(["register", "--target", "ei", "--image-uri", IMAGE_URI, "--tag", "ei-test", "--role", ROLE_NAME,
               "--serverless", "3072:5"], aws.env, ["run on CPU without accelerators", "--target cpu"])
