"""SageMaker models and endpoint configs: created once, reused when identical, versioned (NAME-vN) when not."""
from __future__ import absolute_import

from . import targets
from .awserrors import calling, lookup
from .report import DeployError, note, step
from .settings import NAME_LIMIT, VARIANT_NAME

MAX_VERSIONS = 99


def _versions(base):
    yield base
    for number in range(2, MAX_VERSIONS + 1):
        yield "%s-v%d" % (base[:NAME_LIMIT - len("-v%d" % number)], number)


def _find(base, describe, same):
    """(name, exists): the first of BASE, BASE-v2, ... that matches `same`, else the first free one."""
    different = []
    for name in _versions(base):
        found = describe(name)
        if found is None:
            if different:
                note("%s: other settings, kept as they are; this one is %s" % (", ".join(different), name))
            return name, False
        if same(found):
            return name, True
        different.append(name)
    raise DeployError("%s and %d versions of it all exist with other settings" % (base, MAX_VERSIONS),
                      "pass another name (--model-name / --endpoint-config-name)")


def container_spec(image_uri, model_data, environment=None, mode="SingleModel"):
    """The model's container: MultiModel mode takes an S3 prefix as its model data (a multi-model endpoint)."""
    container = {"Image": image_uri, "Mode": mode}
    if model_data:
        container["ModelDataUrl"] = model_data
    if environment:
        container["Environment"] = dict(environment)
    return container


def _same_model(image_uri, role_arn, model_data, environment, mode="SingleModel"):
    def same(found):
        container = found.get("PrimaryContainer") or {}
        return (container.get("Image") == image_uri and container.get("ModelDataUrl") == (model_data or None)
                and (container.get("Mode") or "SingleModel") == mode
                and (container.get("Environment") or {}) == (environment or {})
                and found.get("ExecutionRoleArn") == role_arn)
    return same


def variant_spec(model_name, instance_type, instance_count, accelerator, serverless=None):
    """One production variant: instances (with an EI accelerator for ei), or serverless memory and concurrency."""
    variant = {"VariantName": VARIANT_NAME, "ModelName": model_name, "InitialVariantWeight": 1.0}
    if serverless:
        variant["ServerlessConfig"] = dict(serverless)
        return variant
    variant.update(InstanceType=instance_type, InitialInstanceCount=instance_count)
    if accelerator:
        variant["AcceleratorType"] = accelerator
    return variant


def _same_config(variant, async_config):
    keys = ("VariantName", "ModelName", "InstanceType", "InitialInstanceCount", "AcceleratorType", "ServerlessConfig")

    def same(found):
        variants = found.get("ProductionVariants") or []
        return (len(variants) == 1 and all(variants[0].get(k) == variant.get(k) for k in keys)
                and found.get("AsyncInferenceConfig") == async_config)
    return same


def describe_variant(settings, accelerator):
    """The endpoint config's kind in words, for the log."""
    serverless, async_config = settings.serverless_config, settings.async_config
    if serverless:
        return "serverless, %d MB, at most %d requests at a time" % (serverless["MemorySizeInMB"],
                                                                    serverless["MaxConcurrency"])
    described = "%d x %s, %s" % (settings.instance_count, settings.instance,
                                 "accelerator %s" % accelerator if accelerator else "no accelerator")
    if async_config:
        described += ", asynchronous, answers under %s" % async_config["OutputConfig"]["S3OutputPath"]
    return described


def check_model_data(model_data):
    if model_data and not (model_data.startswith("s3://") and model_data.endswith(".tar.gz")):
        raise DeployError("--model-data %r is not an s3://BUCKET/KEY.tar.gz URI" % model_data,
                          "upload the model.tar.gz (see README: a fine-tuned model) and pass its s3:// URI")


def find(settings, aws, image_uri, create):
    """(model name, endpoint config name) for these settings: found, or created when `create`."""
    sagemaker = aws.client("sagemaker")
    accelerator = settings.accelerator
    check_model_data(settings.model_data)
    if accelerator:
        targets.check_ei_region(aws.region, "the endpoint config asks for an %s accelerator" % accelerator)
    model_data, mode = settings.model_source
    role = aws.role_arn
    serverless, async_config, environment = settings.serverless_config, settings.async_config, \
        settings.model_environment
    model_name, model_exists = _find(
        settings.model, lambda name: lookup(sagemaker.describe_model, "model %s" % name, ModelName=name),
        _same_model(image_uri, role, model_data, environment, mode))
    if model_exists:
        step("SageMaker model %s exists with this image, role and model data: reusing it" % model_name)
    elif not create:
        raise DeployError("no SageMaker model %s for %s" % (settings.model, image_uri),
                          "register it first: `./build_and_push.sh register` (same settings)")
    else:
        step("creating SageMaker model %s (image %s%s)" % (
            model_name, image_uri, ", multi-model: every model.tar.gz under %s" % model_data if mode == "MultiModel"
            else ", model data %s" % model_data if model_data else ""))
        with calling("create the SageMaker model %s" % model_name):
            sagemaker.create_model(ModelName=model_name, ExecutionRoleArn=role,
                                   PrimaryContainer=container_spec(image_uri, model_data, environment, mode),
                                   Tags=[{"Key": "ssd:image", "Value": image_uri[-256:]}])

    variant = variant_spec(model_name, settings.instance, settings.instance_count, accelerator, serverless)
    config_name, config_exists = _find(
        settings.endpoint_config if settings.endpoint_config_name else model_name,
        lambda name: lookup(sagemaker.describe_endpoint_config, "endpoint config %s" % name,
                            EndpointConfigName=name),
        _same_config(variant, async_config))
    described = describe_variant(settings, accelerator)
    if config_exists:
        step("endpoint config %s exists with the same variant (%s): reusing it" % (config_name, described))
    elif not create:
        raise DeployError("no endpoint config for model %s with %s" % (model_name, described),
                          "register it first: `./build_and_push.sh register` (same settings), "
                          "or pass --endpoint-config-name")
    else:
        step("creating endpoint config %s (%s)" % (config_name, described))
        with calling("create the endpoint config %s" % config_name, accelerator):
            extra = {"AsyncInferenceConfig": async_config} if async_config else {}
            sagemaker.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=[variant], **extra)
    return model_name, config_name
