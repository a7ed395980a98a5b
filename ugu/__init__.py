"""ugu: a uWSGI-compatible application server written in Python."""

__version__ = "0.1.0"

# The version uWSGI-aware apps and tools see (environ["uwsgi.version"], the
# stats server): ugu follows uWSGI 2.0 semantics.
UWSGI_VERSION = "2.0.31"
