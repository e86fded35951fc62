"""Calling a deployed endpoint through SageMaker Runtime: print the detections and save them drawn on the photo."""
from __future__ import absolute_import

import mimetypes
import os
import time

from botocore import exceptions

from . import answers
from .awserrors import calling, error_code
from .photos import Photo
from .report import DeployError, note, result, step
from .transform import split_s3

ASYNC_POLL_SECONDS = 2.0


def output_path(settings, photo):
    if settings.output:
        return settings.output
    stem = os.path.splitext(os.path.basename(photo.path))[0]
    return os.path.abspath("%s-detections.jpg" % stem)


def invoke(aws, settings):
    """invoke_endpoint with the photo; returns (answer document, path of the drawn picture)."""
    from ssd_serving.drawing import draw_detections
    from ssd_serving.response import ImageResult
    photo = Photo(settings.photo)
    name = settings.endpoint
    kwargs = {"EndpointName": name, "ContentType": photo.content_type, "Accept": "application/json",
              "Body": photo.data}
    if settings.threshold is not None:
        kwargs["CustomAttributes"] = "threshold=%s" % settings.threshold
    if settings.target_model:
        kwargs["TargetModel"] = settings.target_model  # a multi-model endpoint loads it on first use
    step("invoking endpoint %s%s with %s" % (name, ", model %s" % settings.target_model if settings.target_model
                                             else "", photo.describe()))
    with calling("invoke the endpoint %s" % name):
        try:
            response = aws.client("sagemaker-runtime").invoke_endpoint(**kwargs)
        except exceptions.ClientError as err:
            code, message = error_code(err), err.response.get("Error", {}).get("Message", "")
            if code == "ModelError":
                raise DeployError("the container behind endpoint %s answered an error: %s" % (name, message),
                                  "read its log in CloudWatch (/aws/sagemaker/Endpoints/%s); the message above is "
                                  "the server's JSON error when it is a 4xx" % name)
            if code == "ValidationException" and "not found" in message.lower():
                raise DeployError("there is no endpoint %s in %s" % (name, aws.region),
                                  "deploy it first (`./build_and_push.sh deploy`), or pass --endpoint-name/--region")
            raise
    body = response["Body"].read()
    content_type = response.get("ContentType", "")
    note("answered by variant %s, %s, %d bytes" % (response.get("InvokedProductionVariant", "?"), content_type,
                                                   len(body)))
    if not content_type.startswith("application/json"):
        raise DeployError("endpoint %s answered %r, not JSON: %r" % (name, content_type, body[:200]),
                          "check that the endpoint runs this project's image (`register`/`deploy` with it)")
    document = answers.parse(body, "endpoint %s" % name, photo.size)
    for line in answers.table(document):
        note(line)
    path = output_path(settings, photo)
    picture = draw_detections(ImageResult(document["detections"], photo.decoded))
    picture.save(path, format="JPEG", quality=90)
    step("saved the photo with the detections drawn: %s" % path)
    result(path)
    return document, path


def _not_found(err):
    return isinstance(err, exceptions.ClientError) and err.response.get("Error", {}).get("Code") in (
        "404", "NoSuchKey", "NotFound")


def _read_if_there(s3, uri):
    """The object's bytes, or None while it does not exist."""
    bucket, key = split_s3(uri, "the answer's location")
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except exceptions.ClientError as err:
        if _not_found(err):
            return None
        raise


def invoke_async(aws, settings):
    """InvokeEndpointAsync with --input (an S3 object); wait for the answer or the failure to appear in S3."""
    name = settings.endpoint
    if not settings.input:
        raise DeployError("`invoke --async` sends an image that is already in S3", "pass --input s3://BUCKET/KEY")
    split_s3(settings.input, "--input")
    content_type = settings.content_type or mimetypes.guess_type(settings.input)[0] or "application/x-image"
    kwargs = {"EndpointName": name, "InputLocation": settings.input, "ContentType": content_type,
              "Accept": "application/json"}
    if settings.threshold is not None:
        kwargs["CustomAttributes"] = "threshold=%s" % settings.threshold
    step("invoking endpoint %s asynchronously with %s (%s)" % (name, settings.input, content_type))
    with calling("invoke the endpoint %s asynchronously" % name):
        try:
            response = aws.client("sagemaker-runtime").invoke_endpoint_async(**kwargs)
        except exceptions.ClientError as err:
            message = err.response.get("Error", {}).get("Message", "")
            if error_code(err) == "ValidationException" and "not found" in message.lower():
                raise DeployError("there is no endpoint %s in %s" % (name, aws.region),
                                  "deploy it with --async-output first, or pass --endpoint-name/--region")
            raise
    output, failure = response.get("OutputLocation"), response.get("FailureLocation")
    note("inference %s queued; the answer will be %s" % (response.get("InferenceId", "?"), output))
    s3 = aws.client("s3")
    started = time.time()
    last_print = started
    while True:
        with calling("look for the answer %s" % output):
            body = _read_if_there(s3, output)
            failed = None if body is not None or not failure else _read_if_there(s3, failure)
        if failed is not None:
            raise DeployError("endpoint %s could not answer %s: %s" % (name, settings.input,
                                                                      failed.decode("utf-8", "replace")[:500]),
                              "read the container's log in CloudWatch (/aws/sagemaker/Endpoints/%s)" % name)
        if body is not None:
            break
        if time.time() - started > settings.wait_timeout:
            raise DeployError("no answer at %s after %ds" % (output, settings.wait_timeout),
                              "the request may still be queued: look there later, or raise --wait-timeout")
        if time.time() - last_print >= 30:
            note("waiting for the answer (%ds)" % (time.time() - started))
            last_print = time.time()
        time.sleep(ASYNC_POLL_SECONDS)
    document = answers.parse(body, "endpoint %s" % name)
    for line in answers.table(document):
        note(line)
    result(output)
    return document, output
