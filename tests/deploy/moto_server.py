"""`python -m moto.server` for the deploy tests, with moto's list of endpoint instance types brought up to date.

moto 5.2 validates CreateEndpointConfig's InstanceType against a list that predates the c6i and g5
families (both offered for SageMaker hosting: ml.c6i.xlarge is the cpu target's default, ml.g5.xlarge the
documented gpu choice), so it refused them with a ValidationException real SageMaker does not give. This
launcher accepts those families as well and leaves every other check of moto's as it is.

    python tests/deploy/moto_server.py -H 127.0.0.1 -p PORT
"""
import sys

from moto.sagemaker import models
from moto.server import main

SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge",
         "48xlarge")
NEWER_HOSTING_INSTANCE_TYPES = frozenset(["ml.c6i.%s" % size for size in SIZES] +
                                         ["ml.g5.%s" % size for size in SIZES if size != "large"])
_moto_validate = models.FakeEndpointConfig.validate_instance_type


def validate_instance_type(self, instance_type):
    if instance_type in NEWER_HOSTING_INSTANCE_TYPES:
        return None
    return _moto_validate(self, instance_type)


models.FakeEndpointConfig.validate_instance_type = validate_instance_type

if __name__ == "__main__":
    main(sys.argv[1:])
