"""Who and where: the AWS session and region, the account from STS, the execution role from IAM."""
from __future__ import absolute_import

import re

import boto3
from botocore import exceptions

from .awserrors import calling, error_code
from .report import DeployError, note, step

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
ROLE_TODO = ("create a role that SageMaker can assume (trust policy for sagemaker.amazonaws.com, e.g. with the "
             "AmazonSageMakerFullAccess policy, or ECR read and S3 read of your model), then pass --role NAME|ARN "
             "or set SSD_ROLE")


class Aws(object):
    """A boto3 session for the settings' region, with the account and role looked up once."""

    def __init__(self, settings):
        self.settings = settings
        self._session = None
        self._account = None
        self._role = None

    @property
    def session(self):
        if self._session is None:
            with calling("open an AWS session"):
                self._session = boto3.session.Session(region_name=self.settings.region or None)
            if not self._session.region_name:
                raise DeployError("no AWS region is set",
                                  "pass --region (or set AWS_REGION), e.g. --region us-east-1")
        return self._session

    @property
    def region(self):
        return self.session.region_name

    def client(self, name):
        return self.session.client(name)

    @property
    def account(self):
        if self._account is None:
            with calling("find out which AWS account the credentials belong to (sts get-caller-identity)"):
                identity = self.client("sts").get_caller_identity()
            account = identity["Account"]
            if self.settings.account and self.settings.account != account:
                raise DeployError("the credentials are for account %s, not %s (--account/SSD_ACCOUNT)" %
                                  (account, self.settings.account),
                                  "use credentials (or an AWS_PROFILE) for account %s, or change --account" %
                                  self.settings.account)
            step("AWS account %s, region %s, as %s" % (account, self.region, identity.get("Arn", "?")))
            self._account = account
        return self._account

    @property
    def role_arn(self):
        """The execution role's ARN: the setting itself when it is an ARN, else looked up by name in IAM."""
        if self._role is None:
            role = (self.settings.role or "").strip()
            if not role:
                raise DeployError("no SageMaker execution role given: SageMaker assumes it to pull the image "
                                  "and read the model data", ROLE_TODO)
            if role.startswith("arn:"):
                if not ROLE_ARN.match(role):
                    raise DeployError("%r is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)" % role, ROLE_TODO)
                self._role = role
            else:
                name = role.split("/")[-1]
                try:
                    with calling("look up the IAM role %s" % name):
                        try:
                            self._role = self.client("iam").get_role(RoleName=name)["Role"]["Arn"]
                        except exceptions.ClientError as err:
                            if error_code(err) == "NoSuchEntity":
                                raise DeployError("there is no IAM role named %s in account %s" %
                                                  (name, self.account), ROLE_TODO)
                            raise
                except DeployError as err:
                    if "may not look up" in err.what:
                        err.todo = "pass the role's ARN instead of its name (--role arn:aws:iam::...:role/%s)" % name
                    raise
                note("execution role %s -> %s" % (name, self._role))
        return self._role
