"""The photo that `test` and `invoke` send: its bytes, content type and size as the server will see it."""
from __future__ import absolute_import

import os

from .report import DeployError

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}


def default_photo():
    """matplotlib's sample photo of Grace Hopper (a person), the same real photo the test suite uses."""
    try:
        import matplotlib
    except ImportError:
        raise DeployError("no photo given, and matplotlib (whose wheel ships grace_hopper.jpg) is not installed",
                          "pass --photo PATH (a JPEG or PNG)")
    return os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


class Photo(object):
    """A photo file read and decoded the way the server decodes it (EXIF orientation applied)."""

    def __init__(self, path=None):
        from ssd_serving.decoder import decode_image
        from ssd_serving.errors import InferenceError
        self.path = path or default_photo()
        try:
            with open(self.path, "rb") as stream:
                self.data = stream.read()
        except (IOError, OSError) as err:
            raise DeployError("cannot read the photo %s: %s" % (self.path, err), "pass --photo PATH (a JPEG or PNG)")
        try:
            self.decoded = decode_image(self.data)
        except InferenceError as err:
            raise DeployError("%s is not a photo the server can read: %s" % (self.path, err),
                              "pass --photo PATH (a JPEG or PNG)")
        self.content_type = CONTENT_TYPES.get(self.decoded.format, "application/x-image")

    @property
    def size(self):
        return self.decoded.original_size

    def describe(self):
        return "%s (%s, %dx%d, %d bytes)" % (self.path, self.content_type, self.size[0], self.size[1], len(self.data))
