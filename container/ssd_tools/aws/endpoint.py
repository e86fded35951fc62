"""Endpoints: create or update to a config, wait for InService with progress, target-tracking autoscaling."""
from __future__ import absolute_import

import time

from .awserrors import accelerator_refused, calling, lookup, mentions_accelerator
from .report import DeployError, note, result, step
from .settings import VARIANT_NAME

BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed")
NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"


def _resource_id(endpoint_name, variant=VARIANT_NAME):
    return "endpoint/%s/variant/%s" % (endpoint_name, variant)


def describe(aws, endpoint_name):
    return lookup(aws.client("sagemaker").describe_endpoint, "endpoint %s" % endpoint_name,
                     EndpointName=endpoint_name)


def wait(aws, settings, endpoint_name, config_name, accelerator, what):
    """Poll until the endpoint is InService on `config_name` (None: on any config), printing each status change."""
    started = time.time()
    deadline = started + settings.wait_timeout
    last_status, last_print = None, 0.0
    while True:
        found = describe(aws, endpoint_name)
        if found is None:
            raise DeployError("endpoint %s disappeared while %s" % (endpoint_name, what),
                              "someone deleted it; rerun `deploy` to create it again")
        status = found["EndpointStatus"]
        elapsed = time.time() - started
        if status != last_status or time.time() - last_print >= 60:
            note("endpoint %s: %s (%dm%02ds)" % (endpoint_name, status, elapsed // 60, elapsed % 60))
            last_status, last_print = status, time.time()
        reason = found.get("FailureReason") or ""
        if status == "InService" and (config_name is None or found.get("EndpointConfigName") == config_name):
            return found
        if status == "Failed" or (status == "InService" and reason):
            if accelerator and mentions_accelerator(reason):
                raise accelerator_refused(accelerator, reason)
            rolled_back = ""
            if status == "InService":
                rolled_back = " and was rolled back to %s" % found.get("EndpointConfigName")
            raise DeployError("endpoint %s failed while %s%s: %s" % (endpoint_name, what, rolled_back,
                                                                     reason or "no reason given"),
                              "read the container's CloudWatch log (/aws/sagemaker/Endpoints/%s); "
                              "test the image locally with `./build_and_push.sh test`" % endpoint_name)
        if status not in BUSY and status != "InService":
            raise DeployError("endpoint %s is %s while %s" % (endpoint_name, status, what),
                              "wait until it is InService or delete it yourself, then rerun `deploy`")
        if time.time() > deadline:
            raise DeployError("endpoint %s is still %s after %ds" % (endpoint_name, status, settings.wait_timeout),
                              "SageMaker keeps going: rerun `deploy` to keep waiting, or raise --wait-timeout")
        time.sleep(settings.poll_seconds)


def _scaling_state(aws, endpoint_name):
    """(min, max, policies) of the variant's registered autoscaling, or None."""
    client = aws.client("application-autoscaling")
    with calling("look up the autoscaling of endpoint %s" % endpoint_name):
        targets = client.describe_scalable_targets(ServiceNamespace=NAMESPACE, ScalableDimension=DIMENSION,
                                                   ResourceIds=[_resource_id(endpoint_name)])["ScalableTargets"]
        if not targets:
            return None
        policies = client.describe_scaling_policies(ServiceNamespace=NAMESPACE, ResourceId=_resource_id(endpoint_name),
                                                    ScalableDimension=DIMENSION)["ScalingPolicies"]
    return targets[0]["MinCapacity"], targets[0]["MaxCapacity"], policies


def autoscale(aws, settings, endpoint_name, limits=None, policies=None):
    """Register the variant as a scalable target and put a target-tracking policy on invocations per instance."""
    client = aws.client("application-autoscaling")
    low, high = limits or settings.autoscaling
    step("autoscaling %s between %d and %d instances" % (_resource_id(endpoint_name), low, high))
    with calling("register endpoint %s with Application Auto Scaling" % endpoint_name):
        client.register_scalable_target(ServiceNamespace=NAMESPACE, ResourceId=_resource_id(endpoint_name),
                                        ScalableDimension=DIMENSION, MinCapacity=low, MaxCapacity=high)
    if policies is None:
        policies = [{"PolicyName": "%s-invocations-per-instance" % endpoint_name,
                     "PolicyType": "TargetTrackingScaling",
                     "TargetTrackingScalingPolicyConfiguration": {
                         "TargetValue": float(settings.invocations_per_instance),
                         "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
                         "ScaleInCooldown": 300, "ScaleOutCooldown": 60}}]
    for policy in policies:
        keys = ("PolicyName", "PolicyType", "TargetTrackingScalingPolicyConfiguration",
                "StepScalingPolicyConfiguration")
        with calling("put the scaling policy %s" % policy["PolicyName"]):
            client.put_scaling_policy(ServiceNamespace=NAMESPACE, ResourceId=_resource_id(endpoint_name),
                                      ScalableDimension=DIMENSION, **dict((k, policy[k]) for k in keys if k in policy))
        target = (policy.get("TargetTrackingScalingPolicyConfiguration") or {}).get("TargetValue")
        note("policy %s%s" % (policy["PolicyName"], ": target %s invocations per instance" % target if target else ""))


def _instance_type(aws, config_name):
    found = lookup(aws.client("sagemaker").describe_endpoint_config, "endpoint config %s" % config_name,
                   EndpointConfigName=config_name)
    variants = (found or {}).get("ProductionVariants") or [{}]
    return variants[0].get("InstanceType")


def _update(aws, settings, name, previous, config_name, accelerator):
    """UpdateEndpoint to config_name; autoscaling is lifted for an instance-type change and always put back."""
    step("updating endpoint %s from config %s to %s (SageMaker keeps %s serving until the new one is "
         "InService; the old config is kept)" % (name, previous, config_name, previous))
    scaling = _scaling_state(aws, name)
    if scaling and _instance_type(aws, previous) == _instance_type(aws, config_name):
        scaling = None  # same instance type: AWS updates an autoscaled endpoint as it is
    if scaling:
        note("deregistering its autoscaling (%d..%d instances) for the update: AWS refuses to change the instance "
             "type of an autoscaled variant; it is put back afterwards" % scaling[:2])
        with calling("deregister the autoscaling of endpoint %s" % name):
            aws.client("application-autoscaling").deregister_scalable_target(
                ServiceNamespace=NAMESPACE, ResourceId=_resource_id(name), ScalableDimension=DIMENSION)
    updated = False
    try:
        with calling("update the endpoint %s" % name, accelerator):
            aws.client("sagemaker").update_endpoint(EndpointName=name, EndpointConfigName=config_name)
        wait(aws, settings, name, config_name, accelerator, "being updated")
        updated = True
    finally:
        if scaling and not (updated and settings.autoscaling):
            note("putting back the autoscaling it had")
            autoscale(aws, settings, name, scaling[:2], scaling[2])


def deploy(aws, settings, config_name, accelerator):
    """Create the endpoint, or update it to `config_name`; wait for InService; optional autoscaling."""
    name = settings.endpoint
    found = describe(aws, name)
    if found is not None and found["EndpointStatus"] in BUSY:
        step("endpoint %s is %s: waiting for that to finish first" % (name, found["EndpointStatus"]))
        found = wait(aws, settings, name, None, None, "finishing its previous change")
    if found is None:
        step("creating endpoint %s with config %s" % (name, config_name))
        with calling("create the endpoint %s" % name, accelerator):
            aws.client("sagemaker").create_endpoint(EndpointName=name, EndpointConfigName=config_name)
        wait(aws, settings, name, config_name, accelerator, "being created")
    elif found["EndpointStatus"] == "Failed":
        raise DeployError("endpoint %s exists and is Failed (%s); it is not deleted automatically" %
                          (name, found.get("FailureReason") or "no reason given"),
                          "inspect it, then delete it yourself (`aws sagemaker delete-endpoint --endpoint-name %s`) "
                          "and rerun `deploy`, or pass another --endpoint-name" % name)
    elif found.get("EndpointConfigName") == config_name:
        step("endpoint %s already serves config %s: nothing to change" % (name, config_name))
    else:
        _update(aws, settings, name, found.get("EndpointConfigName"), config_name, accelerator)
    if settings.autoscaling:
        autoscale(aws, settings, name)
    step("endpoint %s is InService with config %s" % (name, config_name))
    result(name)
    return name
