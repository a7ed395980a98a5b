"""uWSGI's HTTP router (`http = ADDR`): the "uWSGI http N" process.

`process.run` is the entry point the master calls after fork; `server`
accepts, `connection` reads client requests with h11, `exchange` sends
each to a backend node picked by `backends` and relays the response.
"""
