"""The ./build_and_push.sh command line: subcommands, their options and environment variables, the whole flow."""
from __future__ import absolute_import

import argparse
import sys
from collections import OrderedDict

from . import build, docker, ecr, endpoint, invoke, register, smoke, targets, transform
from .identity import Aws
from .report import DeployError, fail, step
from .settings import OPTIONS, Settings

PROG = "./build_and_push.sh"
FLOW = ("build", "test", "push", "register", "deploy")
COMMANDS = OrderedDict([
    ("build", ("build the serving image for --target, tagged REPOSITORY:TARGET-COMMIT: FROM AWS's MXNet image "
               "(docker build --build-arg BASE_IMAGE=...), or with --local-base through docker/build.sh",
               ("common", "aws", "build"))),
    ("test", ("smoke-test the local image: `docker run IMAGE serve`, wait for GET /ping, POST a real photo, check "
              "and show the detections, stop the container; fails loudly if anything is off",
              ("common", "local", "photo", "test"))),
    ("push", ("create the ECR repository if missing, log docker in with `aws ecr get-login-password | docker login "
              "--password-stdin`, tag and push; prints the image URI", ("common", "aws", "local", "push"))),
    ("register", ("create the SageMaker model (the pushed image, optional --model-data) and the endpoint config "
                  "(instance type, EI accelerator for the ei target); identical ones are reused, different ones "
                  "get a -vN name; --async-output makes the endpoint asynchronous, --serverless serverless",
                  ("common", "aws", "push", "register", "config"))),
    ("deploy", ("create the endpoint, or update it to the registered config; wait for InService showing progress; "
                "optional target-tracking autoscaling; an asynchronous (--async-output) or serverless (--serverless) "
                "endpoint", ("common", "aws", "push", "register", "config", "endpoint", "deploy"))),
    ("invoke", ("send a photo to the deployed endpoint through SageMaker Runtime, print the detections and save "
                "the photo with them drawn; with --async, send an S3 object to an asynchronous endpoint and wait for "
                "its answer in S3", ("common", "aws", "endpoint", "photo", "input", "invoke"))),
    ("transform", ("run a Batch Transform job with the registered model over every object under --input, writing "
                   "the answers under --output; with --wait, follow it and sum it up (inputs, outputs, records with "
                   "errors)", ("common", "aws", "register", "input", "transform"))),
])
EPILOG = """Every option can also be set by its environment variable (shown in brackets); a flag wins.
With no subcommand, runs %s in that order (everything checked up front: docker, credentials, role, region).
Re-running is safe: the ECR repository, identical models and endpoint configs are reused, changed ones get
new names (NAME-v2, ...), an existing endpoint is updated, and nothing is ever deleted.
Elastic Inference stopped onboarding new customers in April 2023: if AWS refuses the accelerator, use
--target cpu or --target gpu.""" % " -> ".join(FLOW)


def _add_options(parser, groups, suppress):
    for option in OPTIONS:
        if option.groups not in groups:
            continue
        default = argparse.SUPPRESS if suppress else None
        text = option.help
        if option.default is not None and "default" not in text:
            text += " (default %s)" % (option.default,)
        text = "%s [%s]" % (text, option.env)
        if option.boolean:
            parser.add_argument(option.flag, dest=option.dest, action="store_const", const=True, default=default,
                                help=text)
        else:
            parser.add_argument(option.flag, dest=option.dest, type=option.type, choices=option.choices,
                                metavar=option.metavar or option.dest.upper(), default=default, help=text)


def make_parser():
    # the whole flow takes its steps' options; invoke and transform have theirs (both have an --output)
    flow_groups = set(group for command in FLOW for group in COMMANDS[command][1])
    # no abbreviations: invoke's --async would be taken for an ambiguous prefix of --async-output
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Build, smoke-test, push to ECR, register on SageMaker and deploy the SSD serving image.")
    _add_options(parser, flow_groups, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND",
                                     title="subcommands (each usable alone; `%s SUBCOMMAND --help`)" % PROG)
    for name, (text, groups) in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text, epilog=EPILOG, allow_abbrev=False,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_options(sub, groups, suppress=True)
    return parser


def preflight(settings, aws):
    """Everything the whole flow needs, checked before the (long) build."""
    step("checking docker, AWS credentials, role and region before building")
    docker.check_engine()
    _ = aws.account, aws.role_arn
    register.check_model_data(settings.model_data)
    _ = settings.model_source  # --multi-model: its prefix and what it cannot be combined with
    if settings.accelerator:
        targets.check_ei_region(aws.region, "the %s target asks for an %s accelerator" % (settings.target,
                                                                                        settings.accelerator))
    if settings.target == "ei" and not settings.local_base and not settings.base_image:
        targets.base_image("ei", aws.region)


def run(command, settings, aws, state):
    if "aws" in COMMANDS[command][1] and (command != "build" or not settings.local_base):
        _ = aws.account  # who and where, printed once; checks --account
    if command == "build":
        build.build(settings, aws)
    elif command == "test":
        smoke.run(settings)
    elif command == "push":
        state["image_uri"] = ecr.push(settings, aws)
    elif command == "register":
        uri = state.get("image_uri") or ecr.image_uri(settings, aws)
        if "image_uri" not in state:
            ecr.check_pushed(settings, aws, uri)
        state["model"], state["config"] = register.find(settings, aws, uri, create=True)
    elif command == "deploy":
        if "config" not in state:
            uri = ecr.image_uri(settings, aws)
            state["model"], state["config"] = register.find(settings, aws, uri, create=False)
        endpoint.deploy(aws, settings, state["config"], settings.accelerator)
    elif command == "invoke":
        if settings.async_invoke:
            invoke.invoke_async(aws, settings)
        else:
            invoke.invoke(aws, settings)
    elif command == "transform":
        transform.transform(aws, settings, settings.model)


def main(argv=None):
    args = make_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = Settings(vars(args))
        aws = Aws(settings)
        state = {}
        if args.command:
            run(args.command, settings, aws, state)
            return 0
        preflight(settings, aws)
        for command in FLOW:
            step("---- %s ----" % command)
            run(command, settings, aws, state)
        step("done: image %s, model %s, endpoint config %s, endpoint %s" % (
            state["image_uri"], state["model"], state["config"], settings.endpoint))
        return 0
    except DeployError as err:
        fail(err)
        return 1
    except KeyboardInterrupt:
        fail(DeployError("interrupted", "rerun the step; what was created so far is reused"))
        return 130
