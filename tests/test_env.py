"""env and unenv beside the real uWSGI: applied in the order they are
written, before the asap hooks, inherited by the app; a name unsetenv()
refuses said in uWSGI's line.
"""

import textwrap

import pytest

from tests import support
from tests.support import free_port, write_ini

APP = textwrap.dedent('''
    import os

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        names = ("INHERITED", "SET_THEN_UNSET", "UNSET_THEN_SET")
        return [repr([os.environ.get(n) for n in names]).encode()]
''')


_get = support.http10_get


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_unenv_in_its_place_among_env(start_server, tmp_path, server):
    port = free_port()
    (tmp_path / "app.py").write_text(APP)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("master", "true"), ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", tmp_path / "app.py"),
        ("unenv", "INHERITED"),
        ("env", "SET_THEN_UNSET=1"), ("unenv", "SET_THEN_UNSET"),
        ("unenv", "UNSET_THEN_SET"), ("env", "UNSET_THEN_SET=2"),
        ("unenv", "NOT=VALID"),
        ("hook-asap", "exec:echo ASAP ${INHERITED:-none} "
                      "${SET_THEN_UNSET:-none} ${UNSET_THEN_SET:-none}")])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path,
                     env={"INHERITED": "0", "UNSET_THEN_SET": "0"})
    p.wait_for_log(r"unsetenv\(\): Invalid argument "
                   r"\[core/uwsgi\.c line 4409\]\n(?:.*\n)*?"
                   r"ASAP none none 2\n")
    support.wait_for_port(port)
    assert _get(port).endswith(b"[None, None, '2']")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_the_emperors_env_reaches_its_vassals(start_server, tmp_path,
                                              server):
    court = tmp_path / "court"
    court.mkdir()
    write_ini(court / "v.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"),
        ("wsgi-file", tmp_path / "app.py"),
        ("hook-asap", "exec:echo VASSAL ${FROM_EMPEROR:-none} "
                      "${GONE:-none}")])
    (tmp_path / "app.py").write_text(APP)
    ini = write_ini(tmp_path / "emperor.ini", uwsgi=[
        ("emperor", court / "*.ini"), ("env", "FROM_EMPEROR=1"),
        ("unenv", "GONE")])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path,
                     env={"GONE": "0"})
    p.wait_for_log(r"VASSAL 1 none\n")
