"""AWS API failures turned into messages that say what to do; credentials never appear in them."""
from __future__ import absolute_import

import contextlib

from botocore import exceptions

from .report import DeployError

CREDENTIALS_TODO = ("configure credentials for the target account: `aws configure` (or AWS_PROFILE), "
                    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary ones), "
                    "or run where an instance/SSO role is available")
REJECTED_CODES = ("InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                  "InvalidSignatureException", "ExpiredToken", "ExpiredTokenException", "AuthFailure")
DENIED_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")
EI_CLOSED = ("Amazon Elastic Inference stopped onboarding new customers on 2023-04-15 and is no longer "
             "available to most accounts")
EI_TODO = ("deploy without an accelerator: `./build_and_push.sh --target cpu` (ml.c5/ml.m5 instances) or "
           "`--target gpu` (ml.g4dn instances); only accounts that used EI before April 2023 can attach one")
_EI_WORDS = ("eia", "elastic inference", "accelerator")


def mentions_accelerator(text):
    text = (text or "").lower()
    return any(word in text for word in _EI_WORDS)


def accelerator_refused(accelerator, detail):
    return DeployError("AWS refused the %s Elastic Inference accelerator (%s). %s." % (accelerator, detail, EI_CLOSED),
                       EI_TODO)


def translate(err, action, accelerator=None):
    """A DeployError for a botocore exception raised while doing `action`."""
    if isinstance(err, (exceptions.NoCredentialsError, exceptions.PartialCredentialsError)):
        return DeployError("no AWS credentials found (needed to %s)" % action, CREDENTIALS_TODO)
    if isinstance(err, exceptions.NoRegionError):
        return DeployError("no AWS region is set", "pass --region (or set AWS_REGION), e.g. --region us-east-1")
    if isinstance(err, (exceptions.EndpointConnectionError, exceptions.ConnectTimeoutError)):
        return DeployError("cannot reach AWS to %s: %s" % (action, err),
                           "check the network and proxy settings (and AWS_ENDPOINT_URL if you set it)")
    if isinstance(err, exceptions.ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message", "")
        if code in REJECTED_CODES:
            return DeployError("AWS rejected the credentials while trying to %s (%s)" % (action, code),
                               "refresh or fix them: " + CREDENTIALS_TODO)
        if accelerator and (mentions_accelerator(message) or code == "ResourceLimitExceeded"):
            return accelerator_refused(accelerator, "%s: %s" % (code, message))
        if code in DENIED_CODES:
            return DeployError("this identity may not %s (%s: %s)" % (action, code, message),
                               "grant it that permission (an administrator can attach the IAM policy), "
                               "or use credentials that have it")
        return DeployError("AWS could not %s (%s: %s)" % (action, code, message),
                           "fix what the message says, then rerun this step")
    return DeployError("could not %s: %s" % (action, err), "check the AWS settings and rerun this step")


@contextlib.contextmanager
def calling(action, accelerator=None):
    """Turn botocore failures inside the block into DeployErrors about `action`."""
    try:
        yield
    except (exceptions.BotoCoreError, exceptions.ClientError) as err:
        raise translate(err, action, accelerator)


def error_code(err):
    return err.response.get("Error", {}).get("Code", "") if isinstance(err, exceptions.ClientError) else ""


def lookup(call, what, **kwargs):
    """call(**kwargs), or None when SageMaker answers that the thing does not exist ("Could not find ...")."""
    with calling("look up the SageMaker %s" % what):
        try:
            return call(**kwargs)
        except exceptions.ClientError as err:
            if error_code(err) == "ValidationException" and "could not find" in str(err).lower():
                return None
            raise
