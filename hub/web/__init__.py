"""The cohort builder page researchers use in a browser, served by the hub at `/`.

Static files only (HTML, CSS and plain ES modules, no build step); the page talks to
the hub through the public `/graphql` and `/export` endpoints like any other client.
"""

from hub.web.router import STATIC_DIR, mount_web

__all__ = ["STATIC_DIR", "mount_web"]
