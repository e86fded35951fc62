"""Build-host tooling behind ./build_and_push.sh: build, smoke-test, push to ECR, register and deploy on SageMaker.

Runs on the build host (boto3, the AWS CLI, docker), never inside the serving image.
"""
