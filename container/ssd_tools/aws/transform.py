"""Batch Transform jobs: created on the registered model, split and batched by content type, followed, summed up."""
from __future__ import absolute_import

import json
import time

from .awserrors import calling, lookup
from .report import DeployError, note, result, step
from .settings import NAME_LIMIT, sagemaker_name

JSON_LINES = ("application/jsonlines", "application/x-jsonlines")
DONE = ("Completed", "Failed", "Stopped")
# outputs read back for the summary: enough to count errors in a typical job without downloading a huge one
SUMMARY_MAX_OBJECTS = 200
SUMMARY_MAX_BYTES = 64 * 1024 * 1024


def split_s3(uri, what):
    """(bucket, key prefix) of an s3:// URI; a DeployError naming the flag otherwise."""
    if not uri or not uri.startswith("s3://") or len(uri) <= len("s3://") or uri[5:].startswith("/"):
        raise DeployError("%s %r is not an s3://BUCKET/PREFIX URI" % (what, uri),
                          "pass it as s3://my-bucket/some/prefix/")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    return bucket, prefix


def _objects(aws, uri, what):
    """[(key, size)] under an S3 prefix (all pages)."""
    bucket, prefix = split_s3(uri, what)
    found = []
    with calling("list %s" % uri):
        for page in aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend((item["Key"], item["Size"]) for item in page.get("Contents", []))
    return bucket, found


def choose_records(settings):
    """(content type, split type, strategy, why): what is not given follows from the content type. JSON Lines: split
    by line, MultiRecord (several lines per request, so the worker reads them as one mini-batch); anything else
    (image files): one object per request, SingleRecord (MultiRecord with no split sends one object a request
    anyway). `why` says what was chosen, or None when both were given."""
    content_type = settings.content_type or "application/x-image"
    split = settings.split_type or ("Line" if content_type in JSON_LINES else "None")
    strategy = settings.strategy or ("MultiRecord" if split == "Line" else "SingleRecord")
    chosen = [text for given, text in ((settings.split_type, "split type %s" % split),
                                       (settings.strategy, "strategy %s" % strategy)) if not given]
    why = None
    if chosen:
        why = "%s for %s (%s)" % (" and ".join(chosen), content_type, "one record per line, several lines a request"
                                  if split == "Line" else "one record per object, one object a request")
    return content_type, split, strategy, why


def job_spec(settings, model_name, name):
    """CreateTransformJob's arguments; the payload, when not given, is the container's to announce
    (/execution-parameters), and the split type and strategy follow from the content type (choose_records)."""
    content_type, split, strategy, _ = choose_records(settings)
    accept = settings.accept or ("application/jsonlines" if split == "Line" else "application/json")
    spec = {
        "TransformJobName": name, "ModelName": model_name,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": settings.input}},
                           "ContentType": content_type, "SplitType": split, "CompressionType": "None"},
        "TransformOutput": {"S3OutputPath": settings.transform_output, "Accept": accept,
                            "AssembleWith": "Line" if split == "Line" else "None"},
        "TransformResources": {"InstanceType": settings.instance, "InstanceCount": settings.instance_count},
        "BatchStrategy": strategy,
    }
    if settings.max_payload is not None:
        if not 1 <= settings.max_payload <= 100:
            raise DeployError("--max-payload %d is not 1 to 100 (MB)" % settings.max_payload, "pass e.g. 20")
        spec["MaxPayloadInMB"] = settings.max_payload
    return spec


def _check(settings):
    if not settings.input or not settings.transform_output:
        raise DeployError("a transform job needs --input s3://... (the images) and --output s3://... (the answers)",
                          "pass both, e.g. --input s3://my-bucket/photos/ --output s3://my-bucket/detections/")
    split_s3(settings.input, "--input")
    split_s3(settings.transform_output, "--output")
    if settings.accelerator_type and settings.accelerator_type.strip().lower() != "none":
        raise DeployError("transform jobs take no Elastic Inference accelerator",
                          "drop --accelerator-type; use --target cpu or gpu for the model")


def follow(aws, settings, name):
    """Poll the job until it is done, printing its status and elapsed time; the final description."""
    sagemaker = aws.client("sagemaker")
    started = time.time()
    deadline = started + settings.wait_timeout
    last_status, last_print = None, 0.0
    while True:
        with calling("describe the transform job %s" % name):
            job = sagemaker.describe_transform_job(TransformJobName=name)
        status = job["TransformJobStatus"]
        elapsed = time.time() - started
        if status != last_status or time.time() - last_print >= 60:
            note("transform job %s: %s (%dm%02ds)" % (name, status, elapsed // 60, elapsed % 60))
            last_status, last_print = status, time.time()
        if status in DONE:
            return job
        if time.time() > deadline:
            raise DeployError("transform job %s is still %s after %ds" % (name, status, settings.wait_timeout),
                              "it keeps running: rerun with --job-name %s --wait to keep following it" % name)
        time.sleep(settings.poll_seconds)


def _error_records(aws, bucket, outputs):
    """(records with an {"error", "status"} document, records read, objects read) in the job's outputs."""
    s3 = aws.client("s3")
    errors = records = objects = read = 0
    for key, size in outputs:
        if objects >= SUMMARY_MAX_OBJECTS or read + size > SUMMARY_MAX_BYTES:
            break
        with calling("read s3://%s/%s" % (bucket, key)):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        objects, read = objects + 1, read + size
        for line in body.decode("utf-8", "replace").splitlines() or [""]:
            try:
                document = json.loads(line)
            except ValueError:
                continue
            for entry in document if isinstance(document, list) else [document]:
                records += 1
                if isinstance(entry, dict) and "error" in entry and "status" in entry:
                    errors += 1
    return errors, records, objects


def summary(aws, settings, job):
    """Lines summing up a finished job: input objects, outputs written, records with errors."""
    _, inputs = _objects(aws, settings.input, "--input")
    bucket, outputs = _objects(aws, settings.transform_output, "--output")
    outputs = [(key, size) for key, size in outputs if key.endswith(".out")]
    lines = ["input objects: %d under %s" % (len(inputs), settings.input),
             "outputs written: %d under %s" % (len(outputs), settings.transform_output)]
    errors, records, read = _error_records(aws, bucket, outputs)
    partial = "" if read == len(outputs) else " (in the first %d outputs)" % read
    lines.append("records with errors: %d of %d read%s" % (errors, records, partial))
    if job["TransformJobStatus"] != "Completed":
        lines.append("the job ended %s: %s" % (job["TransformJobStatus"], job.get("FailureReason") or "no reason given"))
    return lines


def transform(aws, settings, model_name):
    """Create the transform job (or find the one named --job-name), and with --wait follow it and sum it up."""
    _check(settings)
    sagemaker = aws.client("sagemaker")
    name = settings.job_name or sagemaker_name("%s-%s" % (model_name[:NAME_LIMIT - 16], time.strftime("%Y%m%d-%H%M%S")),
                                               NAME_LIMIT)
    found = lookup(sagemaker.describe_transform_job, "transform job %s" % name, TransformJobName=name)
    if found is not None:
        step("transform job %s exists (%s): following it" % (name, found["TransformJobStatus"]))
    else:
        if lookup(sagemaker.describe_model, "model %s" % model_name, ModelName=model_name) is None:
            raise DeployError("no SageMaker model %s to run the transform job on" % model_name,
                              "register it first: `./build_and_push.sh register` (same settings), or pass "
                              "--model-name")
        spec = job_spec(settings, model_name, name)
        why = choose_records(settings)[3]
        if why:
            note("chose %s; pass --split-type and --strategy to choose otherwise" % why)
        step("creating transform job %s: model %s, %d x %s, %s (%s, %s) from %s to %s" % (
            name, model_name, settings.instance_count, settings.instance, spec["TransformInput"]["ContentType"],
            "split by line" if spec["TransformInput"]["SplitType"] == "Line" else "one record per object",
            spec["BatchStrategy"], settings.input, settings.transform_output))
        with calling("create the transform job %s" % name):
            sagemaker.create_transform_job(**spec)
    if not settings.wait:
        note("follow it with: ./build_and_push.sh transform --job-name %s --wait (same --input/--output)" % name)
        result(name)
        return name
    job = follow(aws, settings, name)
    for line in summary(aws, settings, job):
        note(line)
    if job["TransformJobStatus"] != "Completed":
        raise DeployError("transform job %s ended %s: %s" % (name, job["TransformJobStatus"],
                                                             job.get("FailureReason") or "no reason given"),
                          "read its log in CloudWatch (/aws/sagemaker/TransformJobs, stream %s/...)" % name)
    step("transform job %s completed" % name)
    result(name)
    return name
