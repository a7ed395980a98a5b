"""uWSGI's internal routing, before the app (`route*`) and on the response
head (`response-route*`): rules read once from the config (`rules`),
conditions and actions registered by name (`conditions`, `actions`),
`$N`/`${VAR}` text (`template`), and the tables that run them (`engine`).
Pure: values in, values out.
"""

# The actions over the caches, metrics and RPC (`backed`) register with
# the others whichever module is imported first.
from ugu.routing import backed

__all__ = ["backed"]
