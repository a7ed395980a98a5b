"""uWSGI's HTTP router (`http = ADDR`): the "uWSGI http N" process.

`process.run` is the entry point the master calls after fork; `server`
accepts, `connection` reads client requests, each answered by a `cycle`
(plain, or h11 for anything unusual), `exchange` sends each to a backend
node picked by `backends` and relays the response.
"""
