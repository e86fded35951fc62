"""Two commits' serving code side by side on one model: the same requests alternated between them, and the ratio of
their p50s from one run, so that what a change did to a request is not mixed up with the machine's state between two
runs (on the virtual machines here that state moves a small model's figures by up to 2x; docs/performance.md).

    make bench-compare BASE=ba41509                     # the demo model, BASE against this working tree
    make bench-compare BASE=ba41509 COMPARE_ARGS="--model-dir build/bench/models/ssd_512_resnet50_v1_voc-trained-like"

The base commit's container/ and code/ come out of git (`git archive`) into a scratch folder that is removed at the
end; the other side is this working tree as it is. Both run on this Python's venv (this checkout's pins), each with
its own code first on PYTHONPATH and each with its default worker layout, and each side's import of ssd_serving is
checked to come from its own tree. A lean client (bench/measure.py LeanClient) sends a 640x480 JPEG to each in turn,
after an idle wait before each request. A measurement of one run on this machine: no target is judged from it.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from common import ROOT, host_info, log, summary, write_results
from measure import LeanClient, interleave, prepare_photos, request_body
from servers import our_server, start_servers
from ssd_tools.server_process import python_env

SERVED_TREES = ("container", "code")  # what a side serves from: the packages and the entry point


def git(*args):
    done = subprocess.run(["git", "-C", ROOT] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if done.returncode != 0:
        raise SystemExit("git %s failed: %s" % (" ".join(args), done.stderr.strip()))
    return done.stdout.strip()


def resolve_commit(name):
    """The full hash of `name`, or an exit saying what to give instead."""
    done = subprocess.run(["git", "-C", ROOT, "rev-parse", "--verify", "--quiet", name + "^{commit}"],
                          stdout=subprocess.PIPE, universal_newlines=True)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit("%r is no commit of this repository: give BASE=<a commit, tag or branch> "
                         "(git log --oneline lists them)" % name)
    return done.stdout.strip()


def export_tree(commit, into):
    """`commit`'s served trees (SERVED_TREES) written under `into` (made if missing); returns `into`."""
    os.makedirs(into, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", ROOT, "archive", "--format=tar", commit] + list(SERVED_TREES),
                               stdout=subprocess.PIPE)
    extracted = subprocess.run(["tar", "-x", "-C", into], stdin=archive.stdout)
    archive.stdout.close()
    if archive.wait() != 0 or extracted.returncode != 0:
        raise SystemExit("could not export %s's %s from git" % (commit, " and ".join(SERVED_TREES)))
    return into


def side_env(tree):
    """The environment that makes this Python serve from `tree`: its container/ first on the import path."""
    return {"PYTHONPATH": os.path.join(tree, "container")}


def imported_from(tree):
    """Where `import ssd_serving` resolves with side_env(tree), run as the server runs (this Python, this folder)."""
    env = python_env()
    env.update(side_env(tree))
    return subprocess.run([sys.executable, "-c", "import ssd_serving; print(ssd_serving.__file__)"], env=env,
                          stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.strip()


def check_imports(sides):
    """Each side's ssd_serving comes from its own tree, or an exit that says which does not."""
    for name, tree in sides:
        path = os.path.realpath(imported_from(tree))
        if not path.startswith(os.path.realpath(tree) + os.sep):
            raise SystemExit("the %s side would import ssd_serving from %s, not from %s" % (name, path, tree))
        yield name, path


def alternated(clients, gap_ms, requests):
    """{side: [seconds, ...]}: one request to each side per round after a `gap_ms` wait, the order reversed every
    round (interleave's one uncounted pass first)."""
    def probe(client):
        def one():
            time.sleep(gap_ms / 1000.0)
            return [client.timed()[0]]
        return one
    forward = [(name, probe(client), 1) for name, client in clients]
    half = (requests + 1) // 2
    samples = interleave(forward, half)
    for name, values in interleave(forward[::-1], requests - half).items():
        samples[name].extend(values)
    return samples


def ratio_line(results):
    base, other = results["sides"]
    ratio = results["latency"][other]["p50"] / results["latency"][base]["p50"]
    return "%s / %s p50: %.3f" % (other, base, ratio)


def table(results):
    lines = ["| side | code | p50 ms | p90 ms | requests |", "| --- | --- | --- | --- | --- |"]
    for name in results["sides"]:
        latency = results["latency"][name]
        lines.append("| %s | %s | %.2f | %.2f | %d |" % (name, results["code"][name], latency["p50"], latency["p90"],
                                                       latency["n"]))
    return "\n".join(lines + ["", ratio_line(results)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare this working tree against")
    parser.add_argument("--model-dir", default=os.path.join(ROOT, "container", "models", "demo"))
    parser.add_argument("--requests", type=int, default=600, help="measured requests per side")
    parser.add_argument("--warm-up", type=int, default=100, help="unmeasured requests per side first")
    parser.add_argument("--gap-ms", type=float, default=13.0, help="idle wait before each request")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "compare.json"))
    args = parser.parse_args(argv)
    commit = resolve_commit(args.base)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    body, content_type = request_body(prepare_photos(os.path.join(out_dir, "photos")), "jpeg_640x480")
    dirty = git("status", "--porcelain", "--", *SERVED_TREES)
    here = git("rev-parse", "--short", "HEAD") + (" with uncommitted changes" if dirty else "")
    results = {"host": host_info(), "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "model_dir": args.model_dir,
               "gap_ms": args.gap_ms, "warm_up": args.warm_up, "sides": ["base", "working tree"],
               "code": {"base": commit[:12], "working tree": here}}
    with tempfile.TemporaryDirectory(prefix="ssd-compare-") as scratch:
        log("exporting %s's %s" % (commit[:12], " and ".join(SERVED_TREES)))
        trees = [("base", export_tree(commit, scratch)), ("working tree", ROOT)]
        results["imports"] = dict(check_imports(trees))
        log("starting both servers on %s" % args.model_dir)
        specs = [(name, lambda name=name, tree=tree: our_server(
            "compare-" + name.replace(" ", "-"), args.model_dir, out_dir, extra_env=side_env(tree)))
            for name, tree in trees]
        servers = start_servers(specs, out_dir)
        try:
            clients = [(name, LeanClient(servers[name].url + "/invocations", body, content_type))
                       for name, _ in trees]
            log("%d unmeasured requests per side, then %d measured, alternated, %.0f ms apart"
                % (args.warm_up, args.requests, args.gap_ms))
            for _, client in clients:
                for _ in range(args.warm_up):
                    client.timed()
            samples = alternated(clients, args.gap_ms, args.requests)
            for _, client in clients:
                client.close()
        finally:
            for server in servers.values():
                server.stop()
    results["latency"] = dict((name, summary(values)) for name, values in samples.items())
    write_results(args.out, results, table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
