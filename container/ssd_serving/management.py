"""The one client of Multi Model Server's management API on its loopback port: the launcher's and the
multi-model endpoint's requests to register, describe and unregister models."""
from __future__ import absolute_import

import http.client
import json
from urllib.parse import urlencode


def registration_path(name, settings, layout, synchronous):
    """MMS's `POST /models` path that registers the store's folder `name` with the layout's workers and the
    server-side batching (batch_size, max_batch_delay) the settings ask for; MMS answers once loaded only if
    `synchronous`."""
    return "/models?" + urlencode({
        "url": name, "model_name": name, "synchronous": "true" if synchronous else "false",
        "initial_workers": layout.workers, "batch_size": settings.server_batch_size,
        "max_batch_delay": settings.server_batch_delay_ms})


class Management(object):
    """MMS's management API listening on 127.0.0.1:`port`."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, timeout):
        """(status, body text) of one request; raises OSError or http.client.HTTPException when MMS does not
        answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path)
            reply = connection.getresponse()
            return reply.status, reply.read().decode("utf-8", "replace")
        finally:
            connection.close()

    def answers(self, timeout=2.0):
        """Whether the API answers (a multi-model endpoint is ready to load models then)."""
        try:
            return self.request("GET", "/models", timeout)[0] == 200
        except Exception:
            return False

    def worker_statuses(self, name, timeout=2.0):
        """MMS's view of model `name`'s workers, e.g. ['READY'], or None if it does not answer."""
        try:
            status, body = self.request("GET", "/models/" + name, timeout)
            if status != 200:
                return None
            described = json.loads(body)
        except Exception:
            return None
        if isinstance(described, list):  # multi-model-server 1.1 answers a list
            described = described[0] if described else {}
        return [worker.get("status") for worker in described.get("workers", [])]

    def register(self, name, settings, layout, synchronous, timeout):
        """(status, body text) of registering the store's folder `name` (registration_path)."""
        return self.request("POST", registration_path(name, settings, layout, synchronous), timeout)

    def unregister(self, name, timeout):
        """(status, body text) of unregistering model `name`: its workers stop."""
        return self.request("DELETE", "/models/" + name, timeout)
