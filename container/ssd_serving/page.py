"""The try-it page that GET / serves when SSD_WEB_PAGE=1: one self-contained HTML file (page.html) beside this module."""
from __future__ import absolute_import

import os

PAGE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.html")


def html():
    """The page's bytes, read once at start (the front door keeps them)."""
    with open(PAGE_FILE, "rb") as stream:
        return stream.read()
