"""declare-option and declare-option2: options declared by the config, as
uWSGI applies them (core/config.c's uwsgi_opt_custom), with the lines
uWSGI gets wrong refused by file and line."""

import json
import textwrap

import pytest

from tests import support
from tests.support import free_port
from ugu.options.errors import ConfigError
from ugu.options.resolve import resolve

DECLARE = "declare-option = myopt=socket=$1;processes=$2\n"
DECLARE2 = "declare-option2 = myopt=socket=$1;processes=$2\n"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def config(text, *argv, env=None):
    with open("app.ini", "w") as f:
        f.write("[uwsgi]\n" + text)
    return resolve(["--ini", "app.ini", *argv], env or {})


def error(text, *argv, env=None):
    with pytest.raises(ConfigError) as info:
        config(text, *argv, env=env)
    return str(info.value)


def applied(text, env=None):
    c = config(text, env=env)
    return c["socket"], c["processes"]


def test_the_words_of_the_value_fill_the_template():
    assert applied(DECLARE + "myopt = :3031 4\n") == ([":3031"], 4)


@pytest.mark.parametrize("text, processes", [
    # declare-option's lines act as read, before every other option: the
    # file's processes wins wherever it is.
    (DECLARE + "myopt = :3031 4\nprocesses = 2\n", 2),
    ("processes = 2\n" + DECLARE + "myopt = :3031 4\n", 2),
    # declare-option2's act in their place, once the files are read.
    (DECLARE2 + "processes = 3\nmyopt = :3031 4\n", 4),
    (DECLARE2 + "processes = 3\nmyopt = :3031 4\nprocesses = 2\n", 2),
    # A declare-option's line before the declaration acts in its place.
    ("processes = 3\nmyopt = :3031 4\n" + DECLARE, 4),
])
def test_when_the_lines_act_decides_which_value_wins(text, processes):
    assert applied(text) == ([":3031"], processes)


def test_declare_option_reads_the_line_as_written():
    env = {"PORT": ":3031"}
    c = config(DECLARE + "myopt = $(PORT) 2\n", env=env)
    assert c["socket"] == ["$(PORT)"]
    assert c.warnings == (
        "app.ini:3: option 'myopt': declare-option's options act on the "
        "line as written, as in uWSGI: its $(...), @(...) and %(...) stay "
        "literal (declare it with declare-option2 to have them replaced)",)
    assert applied(DECLARE2 + "myopt = $(PORT) 2\n", env) == ([":3031"], 2)


def test_what_a_template_sets_is_applied_not_listed():
    c = config(DECLARE + "myopt = :3031 4\nsocket-copy = %(socket)\n")
    assert c.dump()[1:-1] == ["ini = app.ini", DECLARE.strip(),
                              "myopt = :3031 4",
                              "socket-copy = %(socket)"]
    assert c.placeholders == {}


def test_a_template_may_use_another_declared_option_and_read_a_file():
    with open("more.ini", "w") as f:
        f.write("[uwsgi]\nharakiri = 7\n")
    c = config("declare-option = base=socket=$1;ini=$2\n"
               "declare-option = app=base=$1 $2;processes=$3\n"
               "app = :3031 more.ini 5\n")
    assert (c["socket"], c["harakiri"], c["processes"]) == ([":3031"], 7, 5)


def test_an_option_without_dollars_takes_no_value():
    text = "declare-option = prod=processes=4;master=true\n"
    assert config(text + "prod = true\n")["processes"] == 4
    assert error(text + "prod = false\n") == (
        "app.ini:3: option 'prod': prod (declared at app.ini:2) takes no "
        "value, and uWSGI applies it whatever the value, `false` too: "
        "remove the line to leave it out")


@pytest.mark.parametrize("value, got", [
    (":3031", "1: ':3031'"), (":3031 4 9", "3: ':3031 4 9'"), ("", "none")])
def test_a_wrong_number_of_words_is_refused(value, got):
    """uWSGI leaves `$2` as it is (processes = 0: no worker) or drops the
    extra words."""
    assert error(DECLARE + f"myopt = {value}\n") == (
        f"app.ini:3: option 'myopt': myopt (declared at app.ini:2) takes 2 "
        f"space-separated values for $1 to $2, got {got} (uWSGI would "
        "leave the missing $N as written, or drop the extra words): "
        "write `myopt = VALUE1 VALUE2`")


@pytest.mark.parametrize("declaration, message", [
    ("myopt", "invalid myopt syntax, must be newoption=template (as in "
              "`myopt=socket=$1;processes=$2`)"),
    ("myopt=socket=$1;bogus", "'bogus' in the template of myopt is not "
     "KEY=VALUE (uWSGI drops it and the parts after it): write each part "
     "as KEY=VALUE, joined by ';'"),
    ("processes=socket=$1", "processes is already a uWSGI option, which "
     "uWSGI would run instead: give the new one another name"),
    ("myopt = socket=$1", "the name 'myopt ' has a space at its end or "
     "start, so no line can use it (uWSGI declares it all the same): "
     "write `declare-option = myopt=socket=$1`, no spaces around the "
     "first '='"),
    ("myopt=for=$1", "the template of myopt opens a logic block (for), "
     "which would take in the lines after its use: write the block in "
     "the file"),
    ("myopt=ifenv=$1", "the template of myopt opens a logic block "
     "(ifenv), which would take in the lines after its use: write the "
     "block in the file"),
])
def test_a_bad_declaration_is_refused(declaration, message):
    assert error(f"declare-option = {declaration}\n") == (
        f"app.ini:2: option 'declare-option': {message}")


@pytest.mark.parametrize("second", ["declare-option", "declare-option2"])
def test_a_name_declared_twice_is_refused(second):
    assert error(DECLARE + f"{second} = myopt=processes=$1\n") == (
        f"app.ini:3: option '{second}': myopt is declared at app.ini:2 "
        "already, and uWSGI would keep that one: give this one another "
        "name, or remove it")


def test_a_template_key_that_is_no_option_is_refused():
    assert error("declare-option = myopt=sockt=$1\nmyopt = :3031\n") == (
        "app.ini:3: option 'myopt': the template of myopt (declared at "
        "app.ini:2) sets 'sockt', which is not an option: fix the template")


def test_an_unimplemented_option_a_template_sets_is_named_as_such():
    """The line names the declared option: the error says the template
    set the option it refuses."""
    assert error("declare-option = say=legion=$1\nsay = hi\n") == (
        "app.ini:3: option 'legion': this uWSGI option is not implemented "
        "by ugu yet; remove the option to run without it (set by the "
        "template of the declared option used here)")


def test_templates_that_set_each_other_are_refused():
    assert error("declare-option = a=b=$1\ndeclare-option = b=a=$1\n"
                 "a = 1\n").endswith(
        "option 'a': declared options set each other without end: fix "
        "their templates")


def test_a_line_before_its_declare_option2_is_refused():
    """uWSGI keeps it as a placeholder: its template is never used."""
    assert error("myopt = :3031 4\n" + DECLARE2) == (
        "app.ini:2: option 'myopt': myopt is declared by declare-option2 at "
        "app.ini:3, after this line: uWSGI keeps the line as a "
        "placeholder, its template unused; move it after the declaration")


def test_strict_knows_declare_option_but_not_declare_option2():
    assert applied("strict = true\n" + DECLARE + "myopt = :3031 3\n") == (
        [":3031"], 3)
    assert error("strict = true\n" + DECLARE2 + "myopt = :3031 3\n") == (
        "app.ini:4: option 'myopt': [strict-mode] unknown config directive: "
        "myopt (declare-option2 declares it once the files are read, so "
        "strict refuses it in uWSGI too: declare it with declare-option)")


def test_the_command_line_takes_a_value_as_getopt_does():
    declare = ["--declare-option", "x=socket=$1;processes=$2"]
    c = resolve([*declare, "--x", ":3031 3"], {})
    assert (c["socket"], c["processes"]) == ([":3031"], 3)
    with pytest.raises(ConfigError, match="option '--x' requires an "
                                          "argument"):
        resolve([*declare, "--x"], {})
    flag = ["--declare-option", "y=processes=4"]
    assert resolve([*flag, "--y"], {})["processes"] == 4
    with pytest.raises(ConfigError, match="option '--y' doesn't allow an "
                                          "argument"):
        resolve([*flag, "--y=1"], {})


def test_the_command_line_takes_a_declared_option_by_its_prefix():
    """getopt, as uWSGI rebuilds its options, knows the declared ones:
    `--web-on` is `--web-only` where no other option begins so."""
    declare = ["--declare-option", "web-only=socket=$1;processes=$2"]
    c = resolve([*declare, "--web-on", ":3031 3"], {})
    assert (c["socket"], c["processes"]) == ([":3031"], 3)
    with pytest.raises(ConfigError, match="'--web' is ambiguous; "
                                          "possibilities: .*'--web-only'"):
        resolve([*declare, "--web", ":3031 3"], {})


APP = textwrap.dedent('''
    import json
    import uwsgi

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        opt = {k: v.decode() if isinstance(v, bytes) else v
               for k, v in uwsgi.opt.items()}
        return [json.dumps([uwsgi.numproc, opt]).encode()]
''')


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_as_uwsgi_runs_it(start_server, tmp_path, server):
    """The workers each line gives, and uwsgi.opt listing the lines
    written, not what they set."""
    port = free_port()
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "app.ini").write_text(
        "[uwsgi]\nmaster = true\nprocesses = 2\n"
        "declare-option = web=http-socket=$1;processes=$2\n"
        "declare-option2 = files=wsgi-file=$1\n"
        f"web = 127.0.0.1:{port} 4\nfiles = app.py\n")
    p = start_server(server, ["--ini", "app.ini"], cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 2 ")
    support.wait_for_port(port)
    numproc, opt = json.loads(support.get_body(port, "/"))
    assert numproc == 2
    assert {k: opt.get(k) for k in ("web", "files", "http-socket",
                                    "wsgi-file", "declare-option2")} == {
        "web": f"127.0.0.1:{port} 4", "files": "app.py",
        "http-socket": None, "wsgi-file": None,
        "declare-option2": "files=wsgi-file=$1"}
    assert "spawned uWSGI worker 3 " not in p.output()
