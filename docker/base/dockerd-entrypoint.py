"""Entry point of the stand-in bases, behaving like /usr/local/bin/dockerd-entrypoint.py in AWS's
MXNet inference images (ENTRYPOINT ["python", "/usr/local/bin/dockerd-entrypoint.py"]):

- `serve`: start the stock SageMaker MXNet serving toolkit (it starts the model server in the
  background and returns);
- anything else: run it as a command; like AWS's script, the arguments are joined with spaces and
  split again shell-style, so quote a command that has spaces in one argument;
- then keep the container running (AWS's script ends with `tail -f /dev/null`), so a container
  started from the base image does not exit when its command does.

Images built on top (this project's Dockerfile) replace this entry point with their own.
"""
import shlex
import subprocess
import sys


def main(args):
    if args and args[0] == "serve":
        from sagemaker_mxnet_serving_container import serving
        serving.main()
    else:
        subprocess.check_call(shlex.split(" ".join(args)))
    subprocess.call(["tail", "-f", "/dev/null"])


if __name__ == "__main__":
    main(sys.argv[1:])
