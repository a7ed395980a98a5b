"""The tutorial's app: one HTML page that links the static stylesheet."""

PAGE = b"""<!DOCTYPE html>
<html>
<head><title>ugu</title><link rel="stylesheet" href="base.css"></head>
<body><h1>Hello from ugu</h1></body>
</html>
"""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [PAGE]
