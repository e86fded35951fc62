"""./build_and_push.sh register, deploy, invoke and their error cases, against moto's servers (no Docker needed)."""
import json

import numpy as np
import requests
from PIL import Image

from deploy_helpers import ACCOUNT, REGION, ROLE_NAME, grace_hopper, run_fails, run_script
# fixtures (no conftest.py here: it would shadow tests/conftest.py, which the other modules import)
from deploy_helpers import aws, moto_url, sagemaker_proxy  # noqa: F401

IMAGE_URI = "%s.dkr.ecr.%s.amazonaws.com/sagemaker-ssd-gluoncv:ei-test" % (ACCOUNT, REGION)


def register(aws, *extra):
    return run_script(["register", "--image-uri", IMAGE_URI, "--tag", "ei-test", "--role", ROLE_NAME] + list(extra),
                      aws.env)


def only_variant(aws, config_name):
    variants = aws.client("sagemaker").describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    assert len(variants) == 1
    return variants[0]


def test_help_covers_every_subcommand_and_setting(aws):
    top = run_script(["--help"], aws.env)
    for text in ("build", "test", "push", "register", "deploy", "invoke", "SSD_REGISTRY", "AWS_REGION",
                 "SSD_ROLE", "SSD_ACCELERATOR_TYPE", "--local-base", "--target cpu"):
        assert text in top.stdout, text
    for command, texts in (("build", ("--local-base", "SSD_BASE_IMAGE")), ("test", ("--photo", "--test-timeout")),
                           ("push", ("--registry", "get-login-password")),
                           ("register", ("--role", "--model-data", "--accelerator-type", "ml.eia2.medium")),
                           ("deploy", ("--autoscale", "--endpoint-name", "InService")),
                           ("invoke", ("--photo", "--output", "SageMaker Runtime"))):
        run = run_script([command, "--help"], aws.env)
        for text in texts:
            assert text in run.stdout, (command, text)


def test_register_ei_gives_the_variant_an_eia2_medium_accelerator(aws):
    run = register(aws)
    sagemaker = aws.client("sagemaker")
    model = sagemaker.describe_model(ModelName="sagemaker-ssd-gluoncv-ei-test")
    assert model["PrimaryContainer"]["Image"] == IMAGE_URI
    assert "ModelDataUrl" not in model["PrimaryContainer"]
    assert model["ExecutionRoleArn"] == aws.role_arn, "the role name was resolved to its ARN through IAM"
    variant = only_variant(aws, "sagemaker-ssd-gluoncv-ei-test")
    assert variant["AcceleratorType"] == "ml.eia2.medium"
    assert variant["InstanceType"] == "ml.m5.large"
    assert variant["ModelName"] == "sagemaker-ssd-gluoncv-ei-test"
    assert "account %s, region %s" % (ACCOUNT, REGION) in run.stderr

    again = register(aws)
    assert "reusing it" in again.stderr
    assert len(sagemaker.list_models()["Models"]) == 1
    assert len(sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_register_cpu_has_no_accelerator_and_takes_a_role_arn_and_model_data(aws):
    register(aws, "--target", "cpu", "--role", aws.role_arn, "--model-data", "s3://bucket/ppe/model.tar.gz")
    name = "sagemaker-ssd-gluoncv-ei-test"
    variant = only_variant(aws, name)
    assert "AcceleratorType" not in variant
    assert variant["InstanceType"] == "ml.c6i.xlarge"  # VNNI: the image serves int8 there
    container = aws.client("sagemaker").describe_model(ModelName=name)["PrimaryContainer"]
    assert container["ModelDataUrl"] == "s3://bucket/ppe/model.tar.gz"


def test_the_default_target_is_cpu_on_c6i_without_an_accelerator(aws):
    env = dict(aws.env)
    del env["SSD_TARGET"]  # the fixture picks ei for the tests of its paths
    run_script(["register", "--image-uri", IMAGE_URI, "--tag", "default-test", "--role", ROLE_NAME], env)
    variant = only_variant(aws, "sagemaker-ssd-gluoncv-default-test")
    assert "AcceleratorType" not in variant and variant["InstanceType"] == "ml.c6i.xlarge"


def test_changed_settings_get_new_versions_and_the_old_ones_stay(aws):
    register(aws)
    changed = register(aws, "--instance-type", "ml.c5.2xlarge")
    assert "creating endpoint config sagemaker-ssd-gluoncv-ei-test-v2" in changed.stderr
    assert only_variant(aws, "sagemaker-ssd-gluoncv-ei-test-v2")["InstanceType"] == "ml.c5.2xlarge"
    assert only_variant(aws, "sagemaker-ssd-gluoncv-ei-test")["InstanceType"] == "ml.m5.large"
    other_data = register(aws, "--model-data", "s3://bucket/other/model.tar.gz")
    assert "creating SageMaker model sagemaker-ssd-gluoncv-ei-test-v2" in other_data.stderr
    names = sorted(m["ModelName"] for m in aws.client("sagemaker").list_models()["Models"])
    assert names == ["sagemaker-ssd-gluoncv-ei-test", "sagemaker-ssd-gluoncv-ei-test-v2"]


def test_deploy_creates_waits_autoscales_then_updates(aws, sagemaker_proxy):
    proxy = sagemaker_proxy(busy_polls=3)
    failed = run_fails(["deploy", "--image-uri", IMAGE_URI, "--tag", "ei-test", "--role", ROLE_NAME], aws.env,
                       ["no SageMaker model", "register it first"])
    assert "CreateEndpoint" not in proxy.calls, failed

    register(aws)
    run = run_script(["deploy", "--image-uri", IMAGE_URI, "--tag", "ei-test", "--role", ROLE_NAME,
                      "--autoscale", "1:4", "--invocations-per-instance", "70"], aws.env)
    assert run.last_line == "sagemaker-ssd-gluoncv-ei"
    assert "sagemaker-ssd-gluoncv-ei: Creating" in run.stderr and "sagemaker-ssd-gluoncv-ei: InService" in run.stderr
    endpoint = aws.client("sagemaker").describe_endpoint(EndpointName="sagemaker-ssd-gluoncv-ei")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == "sagemaker-ssd-gluoncv-ei-test"
    scaling = aws.client("application-autoscaling")
    resource = "endpoint/sagemaker-ssd-gluoncv-ei/variant/AllTraffic"
    target, = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    policy, = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)["ScalingPolicies"]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 70.0
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"

    same = run_script(["deploy", "--image-uri", IMAGE_URI, "--tag", "ei-test", "--role", ROLE_NAME], aws.env)
    assert "nothing to change" in same.stderr

    # a new instance type: a new config, the endpoint updated to it, its autoscaling lifted and put back
    register(aws, "--instance-type", "ml.c5.2xlarge")
    updated = run_script(["deploy", "--image-uri", IMAGE_URI, "--tag", "ei-test", "--role", ROLE_NAME,
                          "--instance-type", "ml.c5.2xlarge"], aws.env)
    assert "UpdateEndpoint" in proxy.calls
    assert "sagemaker-ssd-gluoncv-ei: Updating" in updated.stderr
    assert "deregistering its autoscaling (1..4 instances)" in updated.stderr
    endpoint = aws.client("sagemaker").describe_endpoint(EndpointName="sagemaker-ssd-gluoncv-ei")
    assert endpoint["EndpointConfigName"] == "sagemaker-ssd-gluoncv-ei-test-v2"
    target, = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)["ScalingPolicies"]
    assert len(policies) == 1
    assert aws.client("sagemaker").describe_endpoint_config(EndpointConfigName="sagemaker-ssd-gluoncv-ei-test")


def grace_hopper_answer():
    """What this project's server answers for grace_hopper.jpg (shape as documented in README.md)."""
    return {"model": {"name": "ssd_512_resnet50_v1_voc", "demo": False, "device": "cpu"},
            "image_size": [512, 600],
            "detections": [{"class_id": 14, "label": "person", "score": 0.9871, "box": [57.3, 23.9, 467.0, 596.2]},
                           {"class_id": 8, "label": "chair", "score": 0.6, "box": [0.0, 400.0, 100.0, 600.0]}]}


def seed_runtime(aws, body, content_type):
    results = {"account_id": ACCOUNT, "region": REGION,
               "results": [{"Body": body, "ContentType": content_type, "InvokedProductionVariant": "AllTraffic"}]}
    requests.post(aws.moto_url + "/moto-api/static/sagemaker/endpoint-results", json=results,
                  proxies={"http": None}).raise_for_status()


def test_invoke_prints_the_detections_and_draws_them(aws, sagemaker_proxy, tmp_path):
    """What runs: the script's SageMaker Runtime request (checked as received: the photo's exact bytes, its
    content type, Accept: application/json, the threshold custom attribute), moto's runtime server answering
    it, the check of the answer's shape against the photo's size, the printed table and the drawing with the
    server's own code. What does not: a container behind the endpoint (moto runs none), so the answer is the
    JSON this test queues in moto, shaped as the server documents it for this photo (README.md)."""
    proxy = sagemaker_proxy()
    photo = grace_hopper()
    seed_runtime(aws, json.dumps(grace_hopper_answer()), "application/json")
    output = str(tmp_path / "drawn.jpg")
    run = run_script(["invoke", "--photo", photo, "--output", output, "--threshold", "0.5"], aws.env)
    assert run.last_line == output
    sent, = proxy.invocations
    assert sent["path"] == "/endpoints/sagemaker-ssd-gluoncv-ei/invocations"
    with open(photo, "rb") as stream:
        assert sent["body"] == stream.read()
    headers = dict((k.lower(), v) for k, v in sent["headers"].items())
    assert headers["content-type"] == "image/jpeg" and headers["accept"] == "application/json"
    assert headers["x-amzn-sagemaker-custom-attributes"] == "threshold=0.5"
    assert "person" in run.stderr and "0.987" in run.stderr and "2 detection(s)" in run.stderr
    drawn = np.asarray(Image.open(output).convert("RGB"), dtype=np.int32)
    original = np.asarray(Image.open(photo).convert("RGB"), dtype=np.int32)
    assert drawn.shape == original.shape
    changed = np.abs(drawn - original).sum(axis=2) > 60
    assert changed[30:590, 55:60].mean() > 0.5, "the person's box edge is drawn at x=57"
    assert changed[200:300, 200:300].mean() < 0.05, "inside the box the photo is untouched"


def test_invoke_refuses_an_answer_that_is_not_the_servers(aws, sagemaker_proxy):
    """moto's runtime answers the static body "body" when nothing is queued: not this server's JSON."""
    sagemaker_proxy()
    run_fails(["invoke", "--photo", grace_hopper()], aws.env, ["answered 'content_type', not JSON"])
    seed_runtime(aws, json.dumps({"predictions": []}), "application/json")
    # moto answers a repeated request as before: the threshold makes this one new
    run_fails(["invoke", "--photo", grace_hopper(), "--threshold", "0.3"], aws.env,
              ["not as documented", "no 'detections'"])


def test_invoke_reports_the_containers_error(aws, sagemaker_proxy):
    """The proxy answers as AWS does when the container answers 4xx (moto cannot: it runs no container)."""
    sagemaker_proxy(model_error=(415, '{"error": "unsupported Content-Type", "status": 415}'))
    run_fails(["invoke", "--photo", grace_hopper()], aws.env,
              ["the container behind endpoint sagemaker-ssd-gluoncv-ei answered an error", "415",
               "/aws/sagemaker/Endpoints/sagemaker-ssd-gluoncv-ei"])


def test_no_credentials(aws):
    env = dict(aws.env)
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    run_fails(["register", "--image-uri", IMAGE_URI, "--role", ROLE_NAME], env,
              ["no AWS credentials found", "aws configure"])


def test_rejected_credentials(aws):
    """moto accepts any key, so --account stands in for credentials of the wrong account."""
    run_fails(["register", "--image-uri", IMAGE_URI, "--role", ROLE_NAME, "--account", "999999999999"], aws.env,
              ["the credentials are for account %s, not 999999999999" % ACCOUNT])


def test_no_role(aws):
    run_fails(["register", "--image-uri", IMAGE_URI], aws.env, ["no SageMaker execution role given", "--role"])
    run_fails(["register", "--image-uri", IMAGE_URI, "--role", "missing-role"], aws.env,
              ["there is no IAM role named missing-role in account %s" % ACCOUNT, "trust policy"])
    run_fails(["register", "--image-uri", IMAGE_URI, "--role", "arn:aws:iam::1:role"], aws.env,
              ["is not an IAM role ARN"])


def test_region_without_ei(aws):
    env = dict(aws.env, AWS_REGION="eu-central-1")
    run_fails(["register", "--image-uri", IMAGE_URI], dict(env, SSD_ROLE=ROLE_NAME),
              ["region eu-central-1 has no Elastic Inference", "--target cpu"])
    run_fails(["build"], env, ["region eu-central-1 has no Elastic Inference"])
    # the cpu target needs no EI and registers there
    run_script(["register", "--image-uri", IMAGE_URI, "--tag", "cpu-test", "--role", ROLE_NAME, "--target", "cpu"],
               env)
    assert aws.client("sagemaker", region="eu-central-1").describe_model(ModelName="sagemaker-ssd-gluoncv-cpu-test")


def test_accelerator_refused_by_aws_points_to_cpu_and_gpu(aws, sagemaker_proxy):
    sagemaker_proxy(refuse_accelerators=True)
    register(aws)
    run = run_fails(["deploy", "--image-uri", IMAGE_URI, "--tag", "ei-test", "--role", ROLE_NAME], aws.env,
                    ["AWS refused the ml.eia2.medium Elastic Inference accelerator", "ResourceLimitExceeded",
                     "stopped onboarding new customers", "--target cpu", "--target gpu"])
    assert "Traceback" not in run.stderr
    # the suggested way out works: the cpu target has no accelerator
    run_script(["register", "--image-uri", IMAGE_URI, "--tag", "cpu-test", "--role", ROLE_NAME, "--target", "cpu"],
               aws.env)
    run_script(["deploy", "--image-uri", IMAGE_URI, "--tag", "cpu-test", "--role", ROLE_NAME, "--target", "cpu"],
               aws.env)


def test_accelerator_with_a_non_ei_target_is_refused_before_aws(aws):
    run_fails(["register", "--image-uri", IMAGE_URI, "--role", ROLE_NAME, "--target", "gpu",
               "--accelerator-type", "ml.eia2.medium"], aws.env, ["the gpu target"])


def test_no_docker_engine(aws):
    env = dict(aws.env, DOCKER_HOST="unix:///nonexistent/docker.sock")
    for command in (["build", "--local-base"], ["test"], ["push"], ["--local-base", "--role", ROLE_NAME]):
        run_fails(command + ["--tag", "ei-test"], env, ["no Docker engine answers", "docker/ensure-engine.sh"])
