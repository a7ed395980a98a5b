"""uWSGI's internal routing, response phase: rules read once from the
config (`rules`), conditions and actions registered by name
(`conditions`, `actions`), `$N`/`${VAR}` text (`template`), and the chain
that runs them on a response head (`engine`).  Pure: values in, values out.
"""
