"""Install Python packages at pinned versions only, with --no-deps, and check what was installed.

Usage: python pip_install_pinned.py LIST [-c CONSTRAINTS]...

LIST names one package per line: `name` (its version comes from a constraints file, e.g.
requirements/common.txt, so the image and the test environments share one pin) or
`name==version` (a pin only this list needs), optionally with a `; marker`. A name without a pin
anywhere is an error, and so is an installed version that differs from its pin. Runs on Python 3.6+
(the AWS EI image's Python) and reads the CA bundle from PIP_CERT like pip does.
"""
from __future__ import print_function

import json
import os
import re
import subprocess
import sys
import tempfile


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lines(path):
    with open(path) as stream:
        for raw in stream:
            line = raw.split("#", 1)[0].strip()
            if line:
                yield line


def split_marker(line):
    requirement, _, marker = line.partition(";")
    return requirement.strip(), marker.strip()


def marker_applies(marker):
    if not marker:
        return True
    # the few markers the lists use: python_version comparisons
    match = re.match(r"""python_version\s*(<=|>=|<|>|==|!=)\s*["']([0-9.]+)["']$""", marker)
    if not match:
        raise SystemExit("unsupported marker %r (only python_version comparisons)" % marker)
    have = tuple(sys.version_info[:2])
    want = tuple(int(p) for p in match.group(2).split("."))
    return {"<": have < want, "<=": have <= want, ">": have > want, ">=": have >= want,
            "==": have == want, "!=": have != want}[match.group(1)]


def main(argv):
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    wanted_file, rest = argv[0], argv[1:]
    constraint_files = []
    while rest:
        if rest[0] != "-c" or len(rest) < 2:
            raise SystemExit(__doc__)
        constraint_files.append(rest[1])
        rest = rest[2:]
    pins = {}
    for path in constraint_files:
        for line in read_lines(path):
            requirement, marker = split_marker(line)
            if "==" in requirement and marker_applies(marker):
                name, version = [p.strip() for p in requirement.split("==", 1)]
                pins[canonical(name)] = (name, version, path)
    install, problems = [], []
    for line in read_lines(wanted_file):
        requirement, marker = split_marker(line)
        if not marker_applies(marker):
            continue
        if "==" in requirement:
            name, version = [p.strip() for p in requirement.split("==", 1)]
        elif re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", requirement):
            if canonical(requirement) not in pins:
                problems.append("%s has no pin: add `%s==VERSION` to %s or to one of %s"
                                % (requirement, requirement, wanted_file, ", ".join(constraint_files)))
                continue
            name, version = requirement, pins[canonical(requirement)][1]
        else:
            problems.append("%r: write `name` or `name==version`" % line)
            continue
        install.append((name, version))
    if problems:
        raise SystemExit("ERROR: unpinned packages in %s:\n  %s" % (wanted_file, "\n  ".join(problems)))
    specs = ["%s==%s" % pair for pair in install]
    print("pip install --no-deps %s" % " ".join(specs))
    sys.stdout.flush()
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps",
                           "--disable-pip-version-check"] + specs)
    listed = json.loads(subprocess.check_output([sys.executable, "-m", "pip", "list", "--format=json",
                                                 "--disable-pip-version-check"]).decode("utf-8"))
    installed = dict((canonical(p["name"]), p["version"]) for p in listed)
    wrong = ["%s: wanted %s, found %s" % (name, version, installed.get(canonical(name)))
             for name, version in install if installed.get(canonical(name)) != version]
    if wrong:
        raise SystemExit("ERROR: installed versions differ from the pins:\n  " + "\n  ".join(wrong))
    print("installed %d pinned packages" % len(install))


if __name__ == "__main__":
    main(sys.argv[1:])
