"""Calling a deployed endpoint through SageMaker Runtime: print the detections and save them drawn on the photo."""
from __future__ import absolute_import

import os

from botocore import exceptions

from . import answers
from .awserrors import calling, error_code
from .photos import Photo
from .report import DeployError, note, result, step


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
    step("invoking endpoint %s with %s" % (name, photo.describe()))
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
