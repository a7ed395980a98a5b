"""A benchmark that runs ugu beside uWSGI, nginx and gunicorn.

`python -m bench` starts every setup on free loopback ports, warms each up,
then runs `wrk` against them round by round (A B C A B C ...), so that a
slow moment of this shared machine hits every setup alike.  Results are
ratios measured in one run; the steadiest figure is the server's CPU time
per request, read from /proc for the server's whole process tree.
"""
