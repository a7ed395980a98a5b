"""The HTML pages of `error-page-403`, `error-page-404` and
`error-page-500`: the server's own answers with these codes carry the
first of the code's files that can be read, as text/html with its
length, instead of their one-line text.

uWSGI's Python server answers one such error itself, the 500 of a request
no app is loaded for; its 403s, 404s and 405s (which take the 403 page)
come from plugins ugu has none of (cgi, php, webdav...).  ugu's own
answers where uWSGI sends nothing, the 500 of an app that failed and the
404 of a `static:` route without its file, carry them too.
"""

HTML = ("Content-Type", "text/html")
CODES = (403, 404, 500)


class ErrorPages:
    def __init__(self, config):
        self.paths = {code: tuple(config[f"error-page-{code}"])
                      for code in CODES}

    def page(self, code):
        """(headers, body) of the code's first file that can be read, or
        None (the default answer).  Read at each error, as uWSGI reads
        it: a page changed goes out as it is now."""
        for path in self.paths[code]:
            try:
                with open(path, "rb") as f:
                    body = f.read()
            except OSError:
                # Missing or unreadable, as uWSGI skips it: the next one.
                continue
            return [HTML, ("Content-Length", str(len(body)))], body
        return None
