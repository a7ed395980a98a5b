"""The configuration layer: INI reader, expansion, resolution and the CLI.

Expected values are uWSGI 2.0.31's, observed with `--show-config`; the
differential tests at the end compare against the real binary.
"""

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import support
from ugu import cli
from ugu.options import registry
from ugu.options.errors import ConfigError
from ugu.options.expand import djb33x
from ugu.options.ini import parse_ini, read_ini
from ugu.options.resolve import resolve


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """Each test runs in its own folder, with no UWSGI_* variable."""
    for name in list(os.environ):
        if name.startswith("UWSGI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(name, text):
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return name


def pairs(entries):
    return [(e.key, e.value) for e in entries]


def parsed(text, section="uwsgi"):
    return pairs(parse_ini(text, "app.ini", section))


def shown(*argv, env=None):
    """The entries of the resolved config, as uWSGI's show-config lists
    them."""
    return pairs(resolve(list(argv), env or {}).entries)


def values(text, key, *argv, env=None):
    """Every value of `key` once an INI of `text` is resolved."""
    write("app.ini", text)
    config = resolve(["--ini", "app.ini", *argv], env or {})
    return [e.value for e in config.entries if e.key == key]


def value_of(path, key):
    return dict(shown("--ini", path))[key]


def value(text, key, env=None):
    [found] = values(f"[uwsgi]\n{text}\n", key, env=env)
    return found


def error(*argv, env=None):
    with pytest.raises(ConfigError) as info:
        resolve(list(argv), env or {})
    return info.value


# -- INI syntax -------------------------------------------------------------

def test_tutorial_repeated_keys_are_all_kept_in_order():
    entries = read_ini(str(support.EXAMPLES / "uwsgi.ini"))
    routes = [e.value for e in entries if e.key == "response-route-if"]
    assert routes == [
        "equal:${RESPONSE_CONTENT_TYPE};application/json "
        "addheader:uWSGI-Encoding: gzip",
        "startswith:${RESPONSE_CONTENT_TYPE};text/html "
        "addheader:uWSGI-Encoding: gzip",
    ]


def test_only_lines_starting_with_a_comment_sign_are_comments():
    text = "[uwsgi]\n; one\n# two\n   ;three\nk = x ; y\nh = a # b\n"
    assert parsed(text) == [("k", "x ; y"), ("h", "a # b")]


def test_value_is_split_at_the_first_equals_sign():
    assert parsed("[uwsgi]\na = b=c\n") == [("a", "b=c")]


def test_quotes_are_kept():
    assert parsed('[uwsgi]\nk = "a b"\nq = \'c\'\n') == [
        ("k", '"a b"'), ("q", "'c'")]


def test_line_without_equals_is_a_key_with_empty_value():
    assert parsed("[uwsgi]\nnovaluekey\nmaster =\n") == [
        ("novaluekey", ""), ("master", "")]


def test_blanks_around_keys_and_values_are_trimmed():
    assert parsed("[uwsgi]\n \t spaced key  =  v \t\r\n") == [
        ("spaced key", "v")]


def test_empty_key_is_kept():
    assert parsed("[uwsgi]\n= value\n") == [("", "value")]


def test_section_names_are_not_trimmed():
    assert parsed("[uwsgi]\na = 1\n[ uwsgi ]\nb = 2\n[UWSGI]\nc = 3\n") == [
        ("a", "1")]


def test_all_blocks_of_a_section_are_used():
    text = "[uwsgi]\na = 1\n[other]\nb = 2\n[uwsgi]\nc = 3\n"
    assert parsed(text) == [("a", "1"), ("c", "3")]
    assert parsed(text, "other") == [("b", "2")]


def test_keys_before_any_section_are_ignored():
    assert parsed("a = 1\n[uwsgi]\nb = 2\n") == [("b", "2")]


def test_crlf_line_endings():
    assert parsed("[uwsgi]\r\na = 1\r\nb = 2\r\n") == [("a", "1"), ("b", "2")]


def test_entries_carry_file_and_line():
    [entry] = parse_ini("[uwsgi]\n\n; c\nk = v\n", "x.ini")
    assert (entry.file, entry.line) == ("x.ini", 4)


def test_missing_section_is_an_error_naming_the_file():
    with pytest.raises(ConfigError) as info:
        parse_ini("[other]\na = 1\n", "conf/app.ini")
    assert str(info.value).startswith("conf/app.ini: cannot find section "
                                      "[uwsgi] in this INI file")


def test_missing_file_is_an_error_naming_it():
    message = str(error("--ini", "nope.ini"))
    assert message == ("nope.ini: cannot read config file: No such file or "
                       "directory")


def test_missing_included_file_is_named_at_the_including_line():
    """A user who writes `include = x.ini` for the file beside this one
    learns that uWSGI reads it from the current folder, and how to write
    it; the error is at the line that names it."""
    write("conf/app.ini", "[uwsgi]\nmaster = true\ninclude = extra.ini\n")
    write("conf/extra.ini", "[uwsgi]\nprocesses = 2\n")
    assert str(error("--ini", "conf/app.ini")) == (
        "conf/app.ini:3: option 'include': cannot read config file "
        "extra.ini: No such file or directory (a relative path is read "
        f"from the current directory, {os.getcwd()}; for conf/extra.ini, "
        "beside conf/app.ini, write `include = %dextra.ini`)")
    write("conf/app.ini", "[uwsgi]\ninherit = base.ini\n")
    assert str(error("--ini", "conf/app.ini")) == (
        "conf/app.ini:2: option 'inherit': cannot read config file "
        "base.ini: No such file or directory (a relative path is read "
        f"from the current directory, {os.getcwd()})")
    write("conf/app.ini", "[uwsgi]\ninclude = %dextra.ini\n")
    assert ("processes", "2") in shown("--ini", "conf/app.ini")


def test_file_colon_section_selects_the_section():
    write("app.ini", "[uwsgi]\na = 1\n[dev]\na = 2\nx = %x\n")
    assert shown("--ini", "app.ini:dev") == [
        ("ini", "app.ini:dev"), ("a", "2"), ("x", "dev")]


def test_colon_section_alone_rereads_the_last_file():
    write("app.ini", "[uwsgi]\na = 1\n[dev]\nb = 2\n")
    assert shown("--ini", "app.ini", "--ini", ":dev") == [
        ("ini", "app.ini"), ("a", "1"), ("ini", ":dev"), ("b", "2")]


def test_a_file_may_be_read_twice_but_not_include_itself():
    write("app.ini", "[uwsgi]\na = 1\n")
    assert shown("--ini", "app.ini", "--ini", "app.ini")[1::2] == [
        ("a", "1"), ("a", "1")]
    write("loop.ini", "[uwsgi]\nini = loop.ini\n")
    assert str(error("--ini", "loop.ini")) == (
        "loop.ini:2: option 'ini': recursive include: loop.ini -> loop.ini")


def test_nested_ini_entries_stand_at_its_place():
    write("base.ini", "[uwsgi]\nprocesses = 2\n")
    write("app.ini", "[uwsgi]\nprocesses = 1\nini = base.ini\nthreads = 3\n")
    assert shown("--ini", "app.ini") == [
        ("ini", "app.ini"), ("processes", "1"), ("ini", "base.ini"),
        ("processes", "2"), ("threads", "3")]
    assert resolve(["--ini", "app.ini"], {})["processes"] == 2


# -- magic variables --------------------------------------------------------

def test_path_magic_of_a_file_in_a_subfolder():
    write("sub/app.ini", "[uwsgi]\nd = %d\np = %p\ns = %s\nn = %n\n"
          "e = %e\nc = %c\no = %o\nfile = %dapp.py\nslash = %d/app.py\n")
    cwd = os.path.realpath(os.getcwd())
    assert shown("--ini", "sub/app.ini")[1:] == [
        ("d", f"{cwd}/sub/"), ("p", f"{cwd}/sub/app.ini"), ("s", "app.ini"),
        ("n", "app"), ("e", "ini"), ("c", "sub"), ("o", "sub/app.ini"),
        ("file", f"{cwd}/sub/app.py"), ("slash", f"{cwd}/sub//app.py")]


def test_numbered_magic_splits_the_folder():
    write("a/b/app.ini", "[uwsgi]\nparts = %0 %1\n")
    parts = os.path.realpath("a/b").strip("/").split("/")
    assert value_of("a/b/app.ini", "parts") == f"{parts[0]} {parts[1]}"


def test_magic_hash_is_uwsgis_djb33x():
    # %j observed from uWSGI for the file /tmp/cfgx/sub/app.ini.
    digest = djb33x(b"/tmp/cfgx/sub/app.ini").to_bytes(4, "little")
    assert digest.hex().upper() == "73BEBEED"


def test_double_percent_is_a_percent():
    assert value("stamp = %%Y-%%m-%%d", "stamp") == "%Y-%m-%d"


def test_unknown_magic_letter_expands_to_nothing():
    assert value("a = x%Zy%qz", "a") == "xyz"


def test_percent_before_a_line_break_joins_the_lines():
    assert parsed("[uwsgi]\na = 50%\nb = 2\n") == [("a", "50b = 2")]


def test_percent_before_crlf_eats_only_the_cr():
    write("app.ini", "[uwsgi]\r\na = 1%\r\nb = 2\r\n")
    assert shown("--ini", "app.ini")[1:] == [("a", "1"), ("b", "2")]


def test_percent_ending_the_file_is_dropped():
    assert parsed("[uwsgi]\na = 50%") == [("a", "50")]


def test_magic_is_expanded_in_section_headers():
    write("dev.ini", "[%n]\na = 1\n")
    assert shown("--ini", "dev.ini:dev") == [("ini", "dev.ini:dev"),
                                             ("a", "1")]


def test_upper_case_magic_names_the_first_file():
    write("nest/inner.ini", "[uwsgi]\ninner = %n %N %c %C\n")
    write("outer.ini", "[uwsgi]\nini = nest/inner.ini\nouter = %n %N\n")
    config = dict(shown("--ini", "outer.ini"))
    here = os.path.basename(os.path.realpath("."))
    assert config["inner"] == f"inner outer nest {here}"
    assert config["outer"] == "outer outer"


def test_config_file_without_option_leaves_upper_case_magic_empty():
    write("app.ini", "[uwsgi]\nN = %N\nn = %n\n")
    assert shown("app.ini") == [("N", ""), ("n", "app")]


def test_magic_is_not_applied_to_command_line_values():
    assert shown("--set", "a=%n%%") == [("set", "a=%n%%"), ("a", "%n%%")]


# -- $(ENV), @(file), %(name) -----------------------------------------------

def test_env_references_are_resolved_from_the_environment():
    assert value("where = $(HOME)/x", "where", {"HOME": "/h"}) == "/h/x"


def test_unresolved_env_reference_stays_literal():
    assert value("a = $(NOPE_NOT_SET)", "a") == "$(NOPE_NOT_SET)"


def test_env_references_apply_to_command_line_values():
    assert shown("--set", "a=$(V)", env={"V": "x"})[1] == ("a", "x")


def test_at_file_reads_a_file_relative_to_the_cwd():
    write("content.txt", "secret\n\n")
    write("conf/app.ini", "[uwsgi]\nf = <@(content.txt)>\n")
    assert value_of("conf/app.ini", "f") == "<secret\n>"


def test_missing_at_file_is_fatal_with_its_place():
    message = str(error("--set", "a=@(nofile)"))
    assert message == ("command line: option 'a': @(nofile): No such file "
                       "or directory")


def test_placeholder_takes_the_first_value():
    assert values("[uwsgi]\ndup = one\ndup = two\nref = %(dup)\n",
                  "ref") == ["one"]


def test_placeholder_may_refer_forward():
    assert values("[uwsgi]\nref = %(later)\nlater = L\n", "ref") == ["L"]


def test_unresolved_placeholder_stays_literal():
    assert values("[uwsgi]\nref = %(undefined)\n", "ref") == ["%(undefined)"]


def test_placeholder_reads_options_and_unknown_keys_alike():
    assert values("[uwsgi]\nprocesses = 4\nmy = x\nref = %(processes)%(my)\n",
                  "ref") == ["4x"]


def test_placeholder_of_a_valueless_key_is_empty():
    assert values("[uwsgi]\nc = %(master)\nmaster\n", "c") == [""]


def test_expanded_values_are_expanded_again_except_at_the_start():
    # uWSGI rescans a value from its second character after each
    # substitution.
    assert shown("--set", "b=1", "--set", "a=%(b)", "--set", "x=%(a)",
                 "--set", "y=%(c)", "--set", "c=%(b)",
                 "--set", "z=v%(c)")[1::2] == [
        ("b", "1"), ("a", "1"), ("x", "1"), ("y", "%(b)"), ("c", "1"),
        ("z", "v1")]


def test_a_value_that_refers_to_itself_is_an_error():
    message = str(error("--set", "a=x%(a)"))
    assert message.startswith("command line: option 'a': the expansion of "
                              "this value never ends")


@pytest.mark.parametrize("expression, result", [
    ("k + 1", "3"), ("k k 3", "223"), ("k ++", "3"), ("k --", "1"),
    ("7 / 0", "0"), ("7 / 2", "3"), ("10 - k", "8"), ("k * k", "4"),
    ("nope x", ""), ("1 + 2 3", "33"),
])
def test_placeholder_expressions(expression, result):
    assert shown("--set", "k=2", "--set", f"e=%({expression})")[3] == (
        "e", result)


# -- set, set-placeholder ---------------------------------------------------

def test_set_adds_an_option_after_itself():
    assert shown("--set", "processes=3", "-S", "foo=bar") == [
        ("set", "processes=3"), ("processes", "3"), ("set", "foo=bar"),
        ("foo", "bar")]
    assert resolve(["--set", "processes=3"], {})["processes"] == 3


def test_set_may_load_an_ini():
    write("app.ini", "[uwsgi]\na = 1\n")
    assert shown("--set", "ini=app.ini")[1:] == [("ini", "app.ini"),
                                                 ("a", "1")]


def test_set_without_equals_is_refused():
    assert str(error("--set", "foo")) == ("command line: option 'set': "
                                          "expected KEY=VALUE")


def test_set_placeholder_keeps_its_text_unexpanded_and_untrimmed():
    assert shown("--set-placeholder", "ph=$(HOME)", "--set-ph", "sp = v ",
                 env={"HOME": "/h"})[1::2] == [
        ("ph", "$(HOME)"), ("sp ", " v ")]


def test_resolve_sets_a_placeholder_to_the_names_address():
    config = resolve(["--resolve", "ip=localhost", "--http-socket",
                      "%(ip):9"], {})
    assert config["http-socket"] == ["127.0.0.1:9"]


def test_resolve_refuses_what_uwsgi_refuses():
    assert str(error("--resolve", "nothing")) == (
        "command line: option 'resolve': invalid resolve syntax, must be "
        "placeholder=domain")
    assert "unable to resolve name no-such-host.invalid (" in str(
        error("--resolve", "ip=no-such-host.invalid"))


def test_set_placeholder_cannot_shadow_an_option():
    message = str(error("--set-ph", "processes=2"))
    assert message.endswith("you cannot use processes as a placeholder, it "
                            "is already available as an option")


def test_first_of_placeholder_and_option_wins():
    assert shown("--set-ph", "k=ph", "--set", "k=opt",
                 "--set", "r=%(k)")[-1] == ("r", "ph")
    assert shown("--set", "k=opt", "--set-ph", "k=ph",
                 "--set", "r=%(k)")[-1] == ("r", "opt")


# -- strict and unknown keys ------------------------------------------------

def test_unknown_keys_are_kept_without_strict():
    write("app.ini", "[uwsgi]\nmy-var = 1\n")
    assert resolve(["--ini", "app.ini"], {}).unknown_keys == ["my-var"]


def test_strict_names_file_line_key_and_a_suggestion():
    write("app.ini", "[uwsgi]\nstrict = true\nmaster = true\nproceses = 2\n")
    assert str(error("--ini", "app.ini")) == (
        "app.ini:4: option 'proceses': [strict-mode] unknown config "
        "directive: proceses (did you mean 'processes'?)")


def test_strict_checks_keys_read_before_it():
    write("app.ini", "[uwsgi]\nfoo = 1\nstrict = true\n")
    assert error("--ini", "app.ini").line == 2


def test_strict_turned_off_later_spares_keys_read_before_it():
    write("before.ini", "[uwsgi]\nfoo = 1\nstrict = true\nstrict = false\n")
    assert resolve(["--ini", "before.ini"], {}).unknown_keys == ["foo"]
    write("during.ini", "[uwsgi]\nstrict = true\nfoo = 1\nstrict = false\n")
    assert error("--ini", "during.ini").line == 3


def test_strict_refuses_set_of_an_unknown_key_but_not_set_placeholder():
    assert error("--strict", "--set", "foo=1").option == "foo"
    assert shown("--strict", "--set-ph", "foo=1")[-1] == ("foo", "1")


def test_unimplemented_uwsgi_option_is_refused_by_name():
    write("app.ini", "[uwsgi]\nlegion = 1\n")
    assert str(error("--ini", "app.ini")) == (
        "app.ini:2: option 'legion': this uWSGI option is not implemented "
        "by ugu yet; remove the option to run without it")
    assert error("--cache-udp-node", "127.0.0.1:9").option == \
        "cache-udp-node"
    assert error("--legion-node", "x").option == "legion-node"
    assert error("-c").option == "cgi-mode"


@pytest.mark.parametrize("option, fix", [
    ("web3", "Web3 (the withdrawn PEP 444) never became a standard"),
    ("ksm", "ugu does not mark its memory mergeable"),
    ("master-as-root", "ugu's master jails itself and drops to uid")])
def test_a_refused_option_names_what_ugu_has_instead(option, fix):
    write("app.ini", f"[uwsgi]\n{option} = /x=y\n")
    assert fix in str(error("--ini", "app.ini"))
    assert fix in str(error(f"--{option}", "/x=y"))


def test_a_static_map_without_equals_is_refused_at_its_line():
    """uWSGI's words, and where the line is."""
    write("app.ini", "[uwsgi]\nstatic-map = /static=static\n"
                     "static-map2 = /media\n")
    assert str(error("--ini", "app.ini")) == (
        "app.ini:3: option 'static-map2': invalid document root in static "
        "map, syntax mountpoint=docroot")
    config = resolve(["--static-map", "/s=a=b", "--static-map", "=/srv",
                      "--static-check", "x", "--check-static", "y"], {})
    assert config["static-map"] == [("/s", "a=b"), ("", "/srv")]
    assert config.reading_lines() == [
        "[uwsgi-static] added mapping for /s => a=b",
        "[uwsgi-static] added mapping for  => /srv",
        "[uwsgi-static] added check for x",
        "[uwsgi-static] added check for y"]


def test_an_empty_socket_address_is_refused_at_its_line():
    """`socket =` would bind a unix socket without a name; uWSGI stops
    with these words, ugu says where too."""
    write("app.ini", "[uwsgi]\nsocket = :3031\nsocket =\n"
                     "http-socket = \t\nuwsgi-socket\n")
    lines = str(error("--ini", "app.ini")).splitlines()
    assert lines == [
        f"app.ini:{number}: option '{option}': invalid/empty uwsgi socket "
        f"name (write HOST:PORT, :PORT, a unix socket's path or @NAME)"
        for number, option in [(3, "socket"), (4, "http-socket"),
                               (5, "uwsgi-socket")]]
    assert error("--http11-socket=").option == "http11-socket"
    assert resolve(["--socket", "/run/app.sock"], {})["socket"] == \
        ["/run/app.sock"]


def test_plugins_ugu_has_built_in_are_accepted_others_refused():
    """Tutorials for packaged uWSGI load the Python plugin by name."""
    write("app.ini", "[uwsgi]\nstrict = true\nplugins = python3, http\n"
                     "plugin = python311 gevent\n")
    config = resolve(["--ini", "app.ini"], {})
    assert config["plugins"] == [["python3", "http"], ["python311", "gevent"]]
    write("app.ini", "[uwsgi]\nplugins = python3,cgi\n")
    assert str(error("--ini", "app.ini")) == (
        "app.ini:2: option 'plugins': plugin 'cgi' is not part of ugu: "
        "python, http, gevent and logfile are built in (remove the others "
        "from the line)")


# -- every problem in one run ----------------------------------------------

MULTI_INI = ("[uwsgi]\nstrict = true\nprocesses = lots\nharakiri = 5s\n"
             "modul = app\nhttp-socket = 127.0.0.1:0\nfoo = bar\n")


def test_every_problem_of_a_file_is_said_in_one_run_in_line_order(capsys):
    """uWSGI stops at the first unknown key (and reads the numbers as
    atoi does); ugu goes on and says each problem, one a line."""
    write("multi.ini", MULTI_INI)
    assert cli.main(["--ini", "multi.ini"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "[uWSGI] getting INI configuration from multi.ini",
        "ugu: multi.ini:3: option 'processes': 'lots' is not a number; "
        "uWSGI reads it as 0 (write a plain number)",
        "ugu: multi.ini:4: option 'harakiri': '5s' is not a number; uWSGI "
        "reads it as 5 (write a plain number)",
        "ugu: multi.ini:5: option 'modul': [strict-mode] unknown config "
        "directive: modul (did you mean 'module'?)",
        "ugu: multi.ini:7: option 'foo': [strict-mode] unknown config "
        "directive: foo"]
    # Without strict, the same file runs with uWSGI's readings, warned.
    write("multi.ini", MULTI_INI.replace("strict = true", "strict = false"))
    config = resolve(["--ini", "multi.ini"], {})
    assert (config["processes"], config["harakiri"]) == (0, 5)
    assert [w.split(": ")[0] for w in config.warnings] == [
        "multi.ini:3", "multi.ini:4", "multi.ini:5"]


def test_problems_without_strict_are_all_said_too():
    write("app.ini", "[uwsgi]\nlegion = 1\nprocesses = -2\n"
          "include = missing.ini\nstatic-map = /s\nlegion-node = x\n")
    assert [(e.line, e.option) for e in error("--ini", "app.ini").errors] \
        == [(2, "legion"), (3, "processes"), (4, "include"),
            (5, "static-map"), (6, "legion-node")]


def test_problems_follow_the_files_as_read_and_the_command_line_first():
    """Each file's problems in line order, the files in the order they
    were opened; the environment and command line before them, in the
    order written."""
    write("inc.ini", "[uwsgi]\nbar = 1\nthreads = x\n")
    write("app.ini", "[uwsgi]\nbaz = 1\ninclude = inc.ini\nqux = 1\n")
    found = error("--ini", "app.ini", "--processes", "many", "--set",
                  "foo=1", "--legion=1", "--strict",
                  env={"UWSGI_HARAKIRI": "5s"}).errors
    assert [(e.file, e.line, e.option) for e in found] == [
        ("environment (UWSGI_HARAKIRI)", None, "harakiri"),
        (None, None, "processes"), (None, None, "foo"),
        (None, None, "legion"),
        ("app.ini", 2, "baz"), ("app.ini", 4, "qux"),
        ("inc.ini", 2, "bar"), ("inc.ini", 3, "threads")]


@pytest.mark.parametrize("name, text", [
    ("app.json", '{"uwsgi": {"strict": true, "processes": "lots", '
                 '"modul": "app", "legion-node": "x", "foo": "1"}}'),
    ("app.yaml", "uwsgi:\n  strict: true\n  processes: lots\n"
                 "  modul: app\n  legion-node: x\n  foo: 1\n"),
    ("app.xml", "<uwsgi>\n<strict/>\n<processes>lots</processes>\n"
                "<modul>app</modul>\n<legion-node>x</legion-node>\n<foo>1</foo>\n"
                "</uwsgi>\n"),
])
def test_every_problem_of_each_format_in_the_order_written(name, text):
    write(name, text)
    assert [e.option for e in error(name).errors] == [
        "processes", "modul", "legion-node", "foo"]


def test_a_block_that_cannot_read_its_file_is_said_where_it_is_met():
    write("app.ini", "[uwsgi]\nfor-readline = missing.txt\nchdir = %(_)\n"
          "endfor =\nset = novalue\n")
    assert [str(e) for e in error("--ini", "app.ini").errors] == [
        "app.ini:3: option 'chdir': for-readline: cannot read missing.txt: "
        "No such file or directory",
        "app.ini:5: option 'set': expected KEY=VALUE"]


def test_a_word_the_command_line_cannot_read_ends_the_reading():
    """As getopt's error ends uWSGI's: the next word may be its value.
    What was read before it is said first."""
    write("app.ini", "[uwsgi]\nstrict = true\nfoo = 1\n")
    found = error("--strict", "--set", "a=1", "--nope", "x",
                  "app.ini").errors
    assert len(found) == 2
    assert str(found[0]) == ("command line: option 'a': [strict-mode] "
                             "unknown config directive: a")
    assert found[1].reason.startswith("unrecognized option '--nope'")


def test_one_run_says_what_uwsgi_says_over_several(uwsgi_binary, capsys):
    """uWSGI exits at the first unknown key under strict (those read
    before `strict` at the end); run again with that line removed, until
    strict passes, it names each in turn.  ugu names them all in one run,
    in line order, in uWSGI's words."""
    lines = ["[uwsgi]", "foo = 1", "strict = true", "modul = app",
             "master = true", "baz = 2"]
    write("app.ini", "\n".join(lines) + "\n")
    assert cli.main(["--ini", "app.ini"]) == 1
    ours = re.findall(r"^ugu: app\.ini:\d+: option '[^']*': "
                      r"(\[strict-mode\] unknown config directive: \S+)",
                      capsys.readouterr().err, re.M)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    theirs = []
    while len(theirs) < len(lines):
        write("app.ini", "\n".join(lines) + "\n")
        real = subprocess.run([uwsgi_binary, "--ini", "app.ini"], env=env,
                              capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)
        said = re.search(r"^\[strict-mode\] unknown config directive: "
                         r"(.*)$", real.stdout + real.stderr, re.M)
        if not said:
            break
        assert real.returncode == 1
        theirs.append(said.group(0))
        lines = [line for line in lines
                 if not line.startswith(f"{said.group(1)} = ")]
    unknown = "[strict-mode] unknown config directive: "
    assert theirs == [unknown + "modul", unknown + "baz", unknown + "foo"]
    assert ours == [unknown + "foo", unknown + "modul", unknown + "baz"]


def test_tutorial_files_pass_strict():
    for name in ("http.ini", "uwsgi.ini"):
        config = resolve(["--ini", str(support.EXAMPLES / name)], {})
        assert config["strict"] is True
        assert config.unknown_keys == []


# -- environment ------------------------------------------------------------

def test_uwsgi_variables_become_options():
    env = {"UWSGI_HTTP_TO": "127.0.0.1:1", "UWSGI_MY_VAR": "a_B",
           "HOME": "/h"}
    assert shown(env=env) == [("http-to", "127.0.0.1:1"),
                              ("my-var", "a_B")]


def test_uwsgi_internal_variables_are_not_options():
    env = {name: "3" for name in ("UWSGI_RELOADS", "UWSGI_EMPEROR_FD",
                                  "UWSGI_JAIL_PID", "UWSGI_VASSALS_DIR")}
    assert shown(env=env) == []


def test_command_line_overrides_environment():
    config = resolve(["--processes", "2"], {"UWSGI_PROCESSES": "7"})
    assert config["processes"] == 2


def test_uwsgi_ini_variable_loads_a_file():
    write("app.ini", "[uwsgi]\nthreads = 4\n")
    assert resolve([], {"UWSGI_INI": "app.ini"})["threads"] == 4


# -- command line -----------------------------------------------------------

def test_long_options_with_space_or_equals():
    assert shown("--processes", "2", "--threads=3", "--chdir=") == [
        ("processes", "2"), ("threads", "3"), ("chdir", "")]


def test_flags_refuse_a_value():
    assert str(error("--master=false")) == (
        "command line: option '--master' doesn't allow an argument")


def test_optional_values():
    assert shown("--need-app=false", "--need-app", "--http-keepalive") == [
        ("need-app", "false"), ("need-app", "true"),
        ("http-keepalive", "true")]


def test_a_value_uwsgi_requires_may_be_the_next_word_or_left_out():
    """uWSGI's getopt wants a value after these: `--http-quiet 1` reads
    as in uWSGI; bare, before an option or at the end, it reads true."""
    assert shown("--http-quiet", "1", "--log-sendfile", "--log-ioerror",
                 "0", "--http-server-name-as-http-host") == [
        ("http-quiet", "1"), ("log-sendfile", "true"), ("log-ioerror", "0"),
        ("http-server-name-as-http-host", "true")]


def test_a_bare_number_option_takes_uwsgis_default_unwarned():
    config = resolve(["--http", ":9", "--http-use-socket"], {})
    assert config["http-use-socket"] == 0 and config.warnings == ()


def test_missing_value_is_refused():
    assert str(error("--processes")) == (
        "command line: option '--processes' requires an argument")


def test_the_next_argument_is_a_value_even_if_it_looks_like_an_option():
    assert shown("--chdir", "--master") == [("chdir", "--master")]


def test_short_flags():
    assert shown("-M", "-p", "4", "-p4", "-Mp3", "-Sa=b") == [
        ("master", "true"), ("processes", "4"), ("processes", "4"),
        ("master", "true"), ("processes", "3"), ("set", "a=b"), ("a", "b")]


def test_unknown_short_flag():
    assert str(error("-q")) == "command line: invalid option -- 'q'"


def test_unique_prefix_of_a_long_option():
    assert shown("--emperor-fr", "5") == [("emperor-freq", "5")]


def test_ambiguous_prefix_is_refused():
    assert "is ambiguous; possibilities: '--processes'" in str(
        error("--proc", "2"))


def test_unknown_long_option_with_suggestion():
    assert str(error("--procsses", "2")) == (
        "command line: unrecognized option '--procsses' (did you mean "
        "'processes'?)")


def test_suggestions_are_options_not_logic_keywords():
    """`foo` is no misspelt `for`: a logic keyword is proposed only for a
    key that starts as one does."""
    assert str(error("--foo")) == (
        "command line: unrecognized option '--foo'")
    assert str(error("--if-envv", "X")).endswith("(did you mean 'if-env'?)")
    assert str(error("--endiff")).endswith("(did you mean 'endif'?)")
    write("logic.ini", "[uwsgi]\nstrict = true\nfo = 1\n")
    assert str(error("--ini", "logic.ini")) == (
        "logic.ini:3: option 'fo': [strict-mode] unknown config directive: "
        "fo")


def test_config_files_without_option_are_read_after_all_options():
    write("app.ini", "[uwsgi]\nprocesses = 5\n")
    config = resolve(["app.ini", "--processes", "9"], {})
    assert config["processes"] == 5
    assert config.files == ("app.ini",)


def test_double_dash_ends_options():
    write("--odd.ini", "[uwsgi]\nprocesses = 6\n")
    assert resolve(["--", "--odd.ini"], {})["processes"] == 6


def test_bracketed_arguments_are_skipped():
    assert shown("[x]") == []


def test_other_arguments_are_refused():
    assert str(error("app.py")).startswith(
        "command line: unable to load configuration from app.py")


# -- typed values -----------------------------------------------------------

def test_scalar_last_value_wins_and_lists_accumulate():
    write("app.ini", "[uwsgi]\nprocesses = 2\nprocesses = 3\n"
          "socket = :1\nsocket = :2\n")
    config = resolve(["--ini", "app.ini", "--socket", ":3"], {})
    assert config["processes"] == 3
    assert config["socket"] == [":1", ":2", ":3"]


def test_options_after_a_config_override_it():
    write("app.ini", "[uwsgi]\nprocesses = 2\n")
    config = resolve(["--ini", "app.ini", "--processes", "8"], {})
    assert config["processes"] == 8
    config = resolve(["--processes", "8", "--ini", "app.ini"], {})
    assert config["processes"] == 2


@pytest.mark.parametrize("text, expected", [
    ("true", True), ("false", False), ("yes", True), ("no", False),
    ("on", True), ("off", False), ("1", True), ("0", False), ("", True),
    ("FALSE", False), ("Off", False), ("2", True), ("00", True),
])
def test_booleans(text, expected):
    write("app.ini", f"[uwsgi]\nmaster = {text}\n")
    assert resolve(["--ini", "app.ini"], {})["master"] is expected


@pytest.mark.parametrize("text, expected", [
    ("4", 4), ("4 # four", 4), ("3x", 3), ("x3", 0), ("", 0), ("+2", 2),
    (" 7", 7),
])
def test_numbers_read_as_c_atoi(text, expected):
    assert resolve([f"--processes={text}"], {})["processes"] == expected


def test_negative_number_is_refused():
    assert str(error("-p", "-1")) == (
        "command line: option 'processes': must be >= 0")


def test_buffer_size_is_cut_to_64k():
    assert resolve(["-b", "99999"], {})["buffer-size"] == 65535


def test_httprouter_is_uwsgis_other_name_for_http():
    assert resolve(["--httprouter", ":9090"], {})["http"] == [":9090"]


def test_zero_threads_is_one_as_in_uwsgi():
    assert resolve(["--threads", "0"], {})["threads"] == 1


@pytest.mark.parametrize("text, expected", [
    ("true", 1), ("yes", 1), ("on", 1), ("false", 0), ("off", 0),
    ("5", 5), ("", 0),
])
def test_http_keepalive_reads_words_and_numbers(text, expected):
    assert resolve([f"--http-keepalive={text}"], {})[
        "http-keepalive"] == expected


def test_options_that_need_the_master_turn_it_on():
    assert resolve(["--cheaper", "0"], {})["master"] is True
    assert resolve(["--cheaper", "1", "--set", "master=false"],
                   {})["master"] is False


def test_config_api():
    write("app.ini", "[uwsgi]\nsocket = :1\n")
    config = resolve(["--ini", "app.ini"], {})
    assert config.source == "app.ini"
    assert config.is_set("socket") and not config.is_set("processes")
    assert config["processes"] == 1 and config["http-to"] == []
    assert config["uwsgi-socket"] == [":1"]
    with pytest.raises(KeyError):
        config["no-such-option"]


# -- the ugu command --------------------------------------------------------

def test_show_config_dumps_in_uwsgis_format_after_the_files():
    write("app.ini", "[uwsgi]\nprocesses = 2\n")
    config = resolve(["--ini", "app.ini", "--show-config"], {})
    assert config.announce_lines() == [
        "[uWSGI] getting INI configuration from app.ini"]
    assert config.dump() == [
        "\n;uWSGI instance configuration\n[uwsgi]", "ini = app.ini",
        "processes = 2", "show-config = true", ";end of configuration\n"]


def help_names(out):
    """Every name the help lists, each line's first column split at its
    `|` (a bare `in` would take `--for` from `--for-glob`)."""
    return {name for line in out.splitlines()[1:]
            for name in line.split(None, 1)[0].split("|")}


def test_help_lists_the_options(capsys):
    assert cli.main(["--help"]) == 0
    names = help_names(capsys.readouterr().out)
    for opt in registry.OPTIONS:
        assert f"--{opt.name}" in names


def test_config_error_is_one_line_after_uwsgis_reading_line_and_exit_1(
        capsys):
    """uWSGI says each file it opens, whatever follows; the error is
    one line after it."""
    write("app.ini", "[uwsgi]\nstrict = true\nprocesess = 2\n")
    assert cli.main(["--ini", "app.ini"]) == 1
    announce, error = capsys.readouterr().err.splitlines()
    assert announce == "[uWSGI] getting INI configuration from app.ini"
    assert error.startswith("ugu: app.ini:3: option 'procesess': ")


def test_python_m_ugu_exits_1_naming_file_and_line():
    write("bad.ini", "[uwsgi]\nstrict = true\n\nnot-an-option = 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    env["PYTHONPATH"] = str(support.REPO)
    result = subprocess.run([sys.executable, "-m", "ugu", "--ini", "bad.ini"],
                            capture_output=True, text=True, env=env,
                            stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 1
    assert "bad.ini:4: option 'not-an-option'" in result.stderr


# -- fuzzing: ConfigError or success, nothing else --------------------------

INI_TEXT = st.text(alphabet="[]=%;#\n\r \t()$@:uwsgiabcx01ZNdn", max_size=120)
OPTION_WORDS = sorted(registry.BY_NAME)[:40] + ["ini", "set", "set-ph",
                                                "strict", "spooler"]
ARG = st.one_of(
    st.text(alphabet="-=%()$@:.;abcinpMSs0123 ", max_size=16),
    st.sampled_from(OPTION_WORDS).map(lambda n: f"--{n}"),
    st.sampled_from(["a.ini", "a.ini:dev", ":dev", "-p", "--", "%(a)",
                     "a=$(X)", "a=%(a b + 1)", "a=x%(a)"]),
)
ENV_NAMES = st.sampled_from(["UWSGI_PROCESSES", "UWSGI_SET", "UWSGI_X", "X"])
ENV_TEXT = st.text(alphabet="=%()$ax1", max_size=8)


@pytest.fixture(scope="module")
def fuzz_dir():
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "a.ini").write_text("[uwsgi]\na = 1\n[dev]\nb = %n\n")
        yield folder


# The autouse fixture only cleans the environment: sharing it across
# examples is fine.
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.one_of(INI_TEXT, INI_TEXT.map(lambda t: "[uwsgi]\n" + t)))
def test_fuzz_parse_ini(text):
    try:
        entries = parse_ini(text, "fuzz.ini")
    except ConfigError:
        return
    assert all("\n" not in e.key for e in entries)


@FUZZ
@given(st.lists(ARG, max_size=8), st.dictionaries(ENV_NAMES, ENV_TEXT))
def test_fuzz_resolve(fuzz_dir, argv, env):
    with contextlib.chdir(fuzz_dir):
        try:
            resolve(argv, env)
        except ConfigError:
            pass


# -- differential: the same show-config as the real uWSGI -------------------

FIXTURES = {
    "sub/app.ini": "[uwsgi]\na = 50%\nb = 2\no = %o\nx = %x\nN = %N\n"
                   "j = %j\np = %p\nd = %d\nc = %c\nk = v ; no comment\n"
                   'q = "a b"\neq = b=c\nnovalue\ndup = one\ndup = two\n'
                   "ref = %(dup)\nfwd = %(later)\nlater = L\n"
                   "undef = %(nope)\nenv = $(HOME)\npct = 100%%\n"
                   "unk = %Z\n[other]\no2 = %o\n[uwsgi]\nagain = yes\n",
    "s.ini": "[uwsgi]\no = %o\nx = %x\nX = %X\n[foo]\no = %o\nx = %x\n"
             "O = %O\n",
    "outer.ini": "[uwsgi]\nini = nest/inner.ini\nouter = %n %N %o %O\n",
    "nest/inner.ini": "[uwsgi]\ninner = %n %N %o %O %d %D %c %C\n",
    "crlf.ini": "[uwsgi]\r\na = 1%\r\nb = %%d %(x) %0\r\n= empty key\r\n"
                "[ uwsgi ]\nhidden = 1\n[uwsgi]\n# c %n\nlast=%s\n",
    "content.txt": "file-content\n",
}


@pytest.mark.parametrize("argv", [
    "--ini sub/app.ini",
    "--ini s.ini:foo --ini outer.ini",
    "--ini s.ini --ini :foo",
    "s.ini --processes 9 outer.ini",
    "--ini crlf.ini",
    "--set foo=bar --set-ph ph=$(HOME) --set-ph sp=v -S x=1 -Mp3",
    "--set-ph k=ph --set k=opt --set r=%(k) --set s=@(content.txt)",
    "--set x=%(a) --set a=%(b) --set b=1 --set y=v%(a) --set z=%(a)",
    "--set k=2 --set e=%(k%20+%201) --set f=%(k%20k%203)",
    "--need-app=false --http-keepalive --wsgi x -- outer.ini",
    "--plugins python3,http --plugin python3",
])
def test_show_config_matches_uwsgi(uwsgi_binary, argv):
    for name, text in FIXTURES.items():
        write(name, text)
    args = ["--show-config", *(a.replace("%20", " ") for a in argv.split())]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    real = subprocess.run([uwsgi_binary, *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    lines = real.stdout.splitlines() + real.stderr.splitlines()
    start = lines.index(";uWSGI instance configuration") + 2
    expected = lines[start:lines.index(";end of configuration")]
    ours = [f"{k} = {v}" for k, v in shown(*args, env=env)]
    assert ours == expected


# -- include and inherit ----------------------------------------------------

def test_include_inserts_the_keys_at_its_place():
    write("inc.ini", "[uwsgi]\nin = %n $(V) %(a)\n")
    write("app.ini", "[uwsgi]\na = 1\ninclude = inc.ini\nafter = x\n")
    assert shown("--ini", "app.ini", env={"V": "v"})[1:] == [
        ("a", "1"), ("include", "inc.ini"), ("in", "inc v 1"),
        ("after", "x")]


def test_include_reads_other_formats_by_extension():
    write("inc.json", '{"uwsgi": {"threads": 3}}')
    write("app.ini", "[uwsgi]\ninclude = inc.json\n")
    assert resolve(["--ini", "app.ini"], {})["threads"] == 3


def test_include_of_an_unknown_extension_is_refused():
    write("inc.conf", "[uwsgi]\n")
    write("app.ini", "[uwsgi]\ninclude = inc.conf\n")
    assert str(error("--ini", "app.ini")).startswith(
        "app.ini:2: option 'include': unable to load configuration from "
        "inc.conf")


def test_inherit_appends_unexpanded_keys_that_override_scalars():
    write("base.ini", "[uwsgi]\nprocesses = 5\nbn = %n\nbe = $(V)\n"
          "bp = %(a)\n")
    write("app.ini", "[uwsgi]\na = 1\ninherit = base.ini\nprocesses = 2\n")
    config = resolve(["--ini", "app.ini"], {"V": "v"})
    assert pairs(config.entries)[-4:] == [
        ("processes", "5"), ("bn", "base"), ("be", "$(V)"),
        ("bp", "%(a)")]
    assert config["processes"] == 5


def test_inherited_files_may_inherit():
    write("c.ini", "[uwsgi]\nc = 1\n")
    write("b.ini", "[uwsgi]\ninherit = c.ini\nb = 1\n")
    write("a.ini", "[uwsgi]\ninherit = b.ini\n")
    assert [k for k, _ in shown("--ini", "a.ini")] == [
        "ini", "inherit", "inherit", "b", "c"]


def test_recursive_include_shows_the_chain():
    write("a.ini", "[uwsgi]\ninclude = b.ini\n")
    write("b.ini", "[uwsgi]\n\ninclude = a.ini\n")
    assert str(error("--ini", "a.ini")) == (
        "b.ini:3: option 'include': recursive include: a.ini -> b.ini -> "
        "a.ini")


def test_recursive_inherit_is_an_error():
    write("a.ini", "[uwsgi]\ninherit = b.ini\n")
    write("b.ini", "[uwsgi]\ninherit = a.ini\n")
    assert "recursive inherit" in str(error("--ini", "a.ini"))


# -- logic blocks -----------------------------------------------------------

def test_for_repeats_keys_with_the_current_item():
    assert values("[uwsgi]\nfor = a b  c\nk = x%(_)y\nendfor =\n"
                  "after = %(_)\n", "k") == ["xay", "xby", "xcy"]


def test_for_times_for_glob_and_for_readline():
    write("g/one.txt", "")
    write("g/two.txt", "")
    Path("g/sub").mkdir()
    write("lines.txt", "l1\nl2\r\n")
    text = ("[uwsgi]\nfor-times = 3\nt = %(_)\nendfor =\n"
            "for-glob = g/*\ng = %(_)\nend =\n"
            "for-glob = nomatch*\nn = %(_)\nendfor =\n"
            "for-readline = lines.txt\nr = %(_)\nendfor =\n")
    config = dict((k, []) for k in "tgnr")
    for k, v in shown_text(text):
        config.setdefault(k, []).append(v)
    assert config["t"] == ["1", "2", "3"]
    assert config["g"] == ["g/one.txt", "g/sub/", "g/two.txt"]
    assert config["n"] == ["nomatch*"]
    assert config["r"] == ["l1", "l2"]


def shown_text(text, env=None):
    write("app.ini", text)
    return shown("--ini", "app.ini", env=env)


@pytest.mark.parametrize("test, expected", [
    ("if-env = V", ["v"]), ("if-env = V=v", ["v"]), ("if-env = V=w", []),
    ("if-env = NOPE", []), ("if-not-env = NOPE", ["%(_)"]),
    ("if-not-env = V", []), ("if-not-env = V=w", ["v"]),
    ("if-opt = processes", ["3"]), ("if-opt = processes=3", ["3"]),
    ("if-opt = processes=4", []), ("if-not-opt = threads", ["%(_)"]),
    ("if-exists = here.txt", ["here.txt"]), ("if-exists = nope", []),
    ("if-not-exists = nope", ["nope"]), ("if-file = here.txt", ["here.txt"]),
    ("if-file = d", []), ("if-dir = d", ["d"]), ("if-directory = d", ["d"]),
    ("if-not-dir = here.txt", ["here.txt"]), ("if-not-file = d", ["d"]),
    ("if-not-reload =", ["%(_)"]), ("if-reload =", []),
])
def test_if_blocks_keep_their_keys_when_the_test_holds(test, expected):
    write("here.txt", "")
    Path("d").mkdir()
    text = f"[uwsgi]\nprocesses = 3\n{test}\nk = %(_)\nendif =\nz = 1\n"
    found = [v for k, v in shown_text(text, env={"V": "v"}) if k == "k"]
    assert found == expected


def test_any_end_key_closes_any_block():
    text = "[uwsgi]\nif-env = NOPE\nk = 1\nendfor =\nafter = 2\n"
    assert ("after", "2") in shown_text(text)
    assert not any(k == "k" for k, _ in shown_text(text))


def test_nested_blocks_are_refused_when_reached():
    assert str(error("--for", "a b", "--for", "1", "--endfor")) == (
        "command line: option 'for': recursive logic in options is not "
        "supported (a for block is open)")
    # A block whose test fails never reads the keys inside it.
    assert shown("--if-env", "NOPE", "--for", "1", "--endif")[-1] == (
        "endif", "true")


def test_ini_included_inside_a_for_block():
    write("a.ini", "[uwsgi]\nva = %n\n")
    write("b.ini", "[uwsgi]\nvb = %n\n")
    text = "[uwsgi]\nfor = a b\ninclude = %(_).ini\nendfor =\n"
    assert [p for p in shown_text(text) if p[0] in ("va", "vb")] == [
        ("va", "a"), ("vb", "b")]


# -- other sources: stdin, exec:// ------------------------------------------

def test_at_exec_reads_a_commands_output():
    assert shown("--set", "a=[@(exec://echo hi; echo there)]")[1] == (
        "a", "[hi\nthere]")


def test_ini_from_a_command_has_empty_path_magic():
    spec = 'exec://printf "[uwsgi]\\nz = %%n|%%o|%%N\\n"'
    assert shown("--ini", spec)[1] == ("z", f"|{spec}|")


def test_ini_from_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("[uwsgi]\nthreads = 7\n"))
    assert resolve(["--ini", "-"], {})["threads"] == 7


# -- YAML, XML, JSON --------------------------------------------------------

def test_yaml_is_read_line_by_line_as_uwsgi_reads_it():
    write("app.yml", "uwsgi:\n  socket: :1\n  socket: :2  # two\n"
          "  http-to: [a, b]\n  master: true\n  name: '%n'\n"
          "  rr: addheader:X-A: b\n  ph: %(x)/y\n\tt:\tv\n"
          "  env:\n    - A=1\n    - B=2\ndev:\n  threads: 9\n")
    assert shown("--yaml", "app.yml") == [
        ("yaml", "app.yml"), ("socket", ":1"), ("socket", ":2"),
        ("http-to", "[a, b]"), ("master", "true"), ("name", "'app'"),
        ("rr", "addheader:X-A: b"), ("ph", "%(x)/y"), ("t", "v"),
        ("env", "A=1"), ("env", "B=2")]
    assert shown("-y", "app.yml:dev")[1:] == [("threads", "9")]
    assert resolve(["app.yml"], {})["socket"] == [":1", ":2"]


@pytest.mark.parametrize("text, line", [
    ("uwsgi:\n  a: 1\n  emptyv:\n  after: 1\n", 3),
    ("uwsgi:\n  a:\n    b: 1\n", 2),
    ("uwsgi:\n  - x\n", 2),
    ("uwsgi:\n  {a: 1}\n", 2),
])
def test_yaml_lines_uwsgi_would_stop_at_are_refused_at_their_line(text, line):
    """uWSGI's reader drops the rest of the section there, unsaid."""
    write("bad.yml", text)
    assert str(error("--yaml", "bad.yml")).startswith(
        f"bad.yml:{line}: uWSGI's YAML reader ends the section at this line")


def test_yaml_without_its_section_is_refused():
    write("nosec.yml", "other:\n  a: 1\n")
    assert "cannot find section 'uwsgi'" in str(error("nosec.yml"))


def test_xml_elements_flags_ids_and_apps():
    write("app.xml", "<uwsgi><socket>:1</socket><master/><name>%n</name>"
          "<!-- c --><app mountpoint='/x'>x.py</app></uwsgi>")
    assert shown("--xml", "app.xml")[1:] == [
        ("socket", ":1"), ("master", "1"), ("name", "app"),
        ("mount", "/x=x.py"), ("app", "")]
    write("ids.xml", "<all><uwsgi id='one'><a>1</a></uwsgi><uwsgi id='two'>"
          "<a>2</a><k id='one'>no</k><k id='two'>yes</k></uwsgi></all>")
    assert shown("-x", "ids.xml:two")[1:] == [("a", "2"), ("k", "yes")]
    assert shown("ids.xml")[0:] == [("a", "1")]


def test_xml_errors():
    write("bad.xml", "<uwsgi><a>1</uwsgi>")
    assert str(error("bad.xml")).startswith("bad.xml:1: invalid XML")
    write("eval.xml", "<uwsgi><![CDATA[print(1)]]></uwsgi>")
    assert "text outside option elements" in str(error("eval.xml"))


def test_json_values_as_uwsgi_maps_them():
    write("app.json", '{"uwsgi": {"socket": [":1", ":2"], "master": true, '
          '"die-on-term": false, "x": null, "processes": 4, "n": "%n"}}')
    assert shown("--json", "app.json")[1:] == [
        ("socket", ":1"), ("socket", ":2"), ("master", "1"),
        ("die-on-term", "0"), ("x", "0"), ("processes", "4"), ("n", "app")]
    write("float.json", '{"uwsgi": {"processes": 1.5}}')
    assert error("-j", "float.json").option == "processes"
    write("none.json", '{"other": {}}')
    assert "you must define an object named uwsgi" in str(error("none.json"))


# -- likely mistakes: warnings, or errors under strict ----------------------

@pytest.mark.parametrize("line, message", [
    ("chdir = %(undefined)",
     "option 'chdir': %(undefined) stays literal: no such option or "
     "placeholder"),
    ("home = $(NOPE_NOT_SET)/x",
     "option 'home': $(NOPE_NOT_SET) stays literal: no such environment "
     "variable"),
    ("chdir = %Y", "option 'chdir': unknown magic variable %Y expands to "
     "nothing (write %% for a literal percent)"),
    ("chdir = 50%", "option 'chdir': a '%' ending a line joins it with the "
     "next one (write %% for a literal percent)"),
    ("processes = 4 # four", "option 'processes': '4 # four' is not a "
     "number; uWSGI reads it as 4 (write a plain number)"),
    ("buffer-size = 64k", "option 'buffer-size': '64k' is not a number; "
     "uWSGI reads it as 64 (write a plain number)"),
])
def test_likely_mistakes_warn_or_fail_under_strict(line, message):
    write("app.ini", f"[uwsgi]\n{line}\nthreads = 1\n")
    config = resolve(["--ini", "app.ini"], {})
    assert config.warnings == (f"app.ini:2: {message}",)
    assert str(error("--ini", "app.ini", "--strict")) == (
        f"app.ini:2: {message}")


def test_plain_values_give_no_warning():
    write("app.ini", "[uwsgi]\nprocesses = 4\nhttp-keepalive = true\n"
          "a = %(processes)\nb = $(HOME)\nc = %%d\n")
    config = resolve(["--ini", "app.ini"], {"HOME": "/h"})
    assert config.warnings == ()


def test_startup_warnings_name_unknown_keys_once(capsys):
    write("app.ini", "[uwsgi]\nmy-var = 1\nother = %(nope)\nmy-var = 2\n")
    lines = resolve(["--ini", "app.ini"], {}).startup_warnings()
    assert lines == [
        "ugu: warning: app.ini:3: option 'other': %(nope) stays literal: "
        "no such option or placeholder",
        "ugu: these keys are not options and serve as placeholders only "
        "(strict = true refuses them): my-var, other"]


def test_a_misspelt_key_or_a_line_without_equals_is_named_with_the_fix():
    """uWSGI keeps `modul = app` as a placeholder without a word, and the
    app is never loaded; ugu says which line and what was meant.  A key
    used as `%(key)`, or far from every option, is a placeholder on
    purpose and gets no warning."""
    write("app.ini", "[uwsgi]\nmodul = app\nhttp-socket 127.0.0.1:9090\n"
          "proceses = 2\nbase = /srv\nprocess = 1\npythonpath = %(process)\n"
          "modul = again\n")
    lines = resolve(["--ini", "app.ini"], {}).startup_warnings()
    assert lines == [
        "ugu: warning: app.ini:2: option 'modul': not an option, so kept "
        "as a placeholder only (did you mean 'module'?)",
        "ugu: warning: app.ini:3: option 'http-socket 127.0.0.1:9090': not "
        "an option, so kept as a placeholder only (the line has no '=': "
        "did you mean `http-socket = 127.0.0.1:9090`?)",
        "ugu: warning: app.ini:4: option 'proceses': not an option, so kept "
        "as a placeholder only (did you mean 'processes'?)",
        "ugu: these keys are not options and serve as placeholders only "
        "(strict = true refuses them): base, http-socket 127.0.0.1:9090, "
        "modul, proceses, process"]
    write("app.ini", "[uwsgi]\nstrict = true\nmodule: app\n")
    assert str(error("--ini", "app.ini")) == (
        "app.ini:3: option 'module: app': [strict-mode] unknown config "
        "directive: module: app (the line has no '=': did you mean "
        "`module = app`?)")
    # A value's own leading ':' (a port on every address) stays.
    for line in ("socket :3031", "socket: :3031", "socket : :3031"):
        write("app.ini", f"[uwsgi]\nstrict = true\n{line}\n")
        assert str(error("--ini", "app.ini")).endswith(
            "(the line has no '=': did you mean `socket = :3031`?)")


def test_warnings_of_different_kinds_come_in_line_order():
    """A line that is likely a mistake is named where it stands: the
    warnings of a file come in its line order whatever found them, as the
    errors of a file read under strict do."""
    write("app.ini", "[uwsgi]\nhttp-socket :8000\nmodul = app\n"
          "processes = 4x\nfoo = %(bar)\nthreads = 2y\n")
    lines = resolve(["--ini", "app.ini"], {}).startup_warnings()
    assert [line.split(":")[3] for line in lines[:-1]] == [
        "2", "3", "4", "5", "6"], lines


@pytest.mark.parametrize("name", ["gevent-monkey-patch",
                                  "gevent-early-monkey-patch"])
def test_gevent_patch_options_are_accepted_and_warn_without_gevent(name):
    """ugu's gevent workers always patch, which is what these ask for;
    uWSGI reads them in gevent mode only, so alone they do nothing."""
    write("app.ini", f"[uwsgi]\nstrict = true\n{name} = true\n")
    assert resolve(["--ini", "app.ini"], {}).startup_warnings() == [
        f"ugu: warning: app.ini:3: option '{name}': does nothing without "
        f"`gevent = N`, as in uWSGI: the standard library stays unpatched"]
    write("app.ini", f"[uwsgi]\nstrict = true\n{name} = true\n"
          f"gevent = 10\n")
    assert resolve(["--ini", "app.ini"], {}).startup_warnings() == []


def test_a_section_header_without_its_bracket_later_in_the_file_warns():
    """uWSGI reads `[uwsgi` as the section `uwsg` and drops, unsaid, the
    lines under it; ugu says so (and strict stops)."""
    write("app.ini", "[uwsgi]\nmaster = true\n[uwsgi\nprocesses = 3\n")
    config = resolve(["--ini", "app.ini"], {})
    assert config["processes"] == 1
    assert config.startup_warnings() == [
        "ugu: warning: app.ini:3: the section header [uwsgi has no "
        "closing ']': uWSGI reads it as [uwsg], so the lines under it are "
        "not read (write [uwsgi])"]
    write("app.ini", "[uwsgi]\nstrict = true\n[app\nprocesses = 3\n")
    assert str(error("--ini", "app.ini")).startswith(
        "app.ini:3: the section header [app has no closing ']'")
    write("app.ini", "[uwsgi]\nmaster = true\n[app]\nprocesses = 3\n")
    assert resolve(["--ini", "app.ini"], {}).startup_warnings() == []


def test_warnings_follow_the_file_they_are_about():
    write("app.ini", "[uwsgi]\nmy-var = 1\n")
    config = resolve(["--ini", "app.ini"], {})
    assert config.announce_lines() + config.reading_lines() == [
        "[uWSGI] getting INI configuration from app.ini",
        "ugu: these keys are not options and serve as placeholders only "
        "(strict = true refuses them): my-var"]


@pytest.mark.parametrize("text, where", [
    ("[uwsgi]\nstrict = true\nchdir = %(y)\n",
     "app.ini:3: option 'chdir'"),
    ("[uwsgi]\nstrict = true\nprocesses = many\n",
     "app.ini:3: option 'processes'"),
    ("[uwsgi]\ninclude = missing.ini\n",
     "app.ini:2: option 'include': cannot read config file missing.ini"),
    ("[other]\n", "app.ini: cannot find section [uwsgi]"),
    ("\ufeff[uwsgi]\nmaster = true\n",
     "app.ini:1: the file starts with a byte order mark (BOM)"),
    ("# app\n [uwsgi \nmaster = true\n",
     "app.ini:2: the section header [uwsgi has no closing ']'"),
    ("[uwsgi]\nprocesses = -2\n", "app.ini:2: option 'processes'"),
])
def test_bad_input_is_one_line_with_exit_1(capsys, text, where):
    write("app.ini", text)
    assert cli.main(["--ini", "app.ini"]) == 1
    announce, error = capsys.readouterr().err.splitlines()
    assert announce == "[uWSGI] getting INI configuration from app.ini"
    assert error.startswith(f"ugu: {where}")


def test_help_lists_every_alias_and_short_flag(capsys):
    cli.main(["--help"])
    names = help_names(capsys.readouterr().out)
    for opt in registry.OPTIONS:
        for name in (opt.name, *opt.aliases):
            assert f"--{name}" in names
        if opt.short:
            assert f"-{opt.short}" in names


# -- fuzzing the new readers ------------------------------------------------

YAML_TEXT = st.text(alphabet="uwsgi: -[]{}#'\"\n\tabc1%&*!|>", max_size=100)
XML_TEXT = st.text(alphabet="<>/uwsgi=' \"!-[]CDATA&;abc1%\n", max_size=100)


@FUZZ
@given(st.one_of(YAML_TEXT, YAML_TEXT.map(lambda t: "uwsgi:\n  " + t)),
       st.sampled_from(["yml", "xml", "json"]))
def test_fuzz_other_formats(fuzz_dir, text, ext):
    with contextlib.chdir(fuzz_dir):
        Path(f"f.{ext}").write_text(text)
        try:
            resolve([f"f.{ext}"], {})
        except ConfigError:
            pass


@FUZZ
@given(XML_TEXT)
def test_fuzz_xml(fuzz_dir, text):
    with contextlib.chdir(fuzz_dir):
        Path("f.xml").write_text(text)
        try:
            resolve(["f.xml"], {})
        except ConfigError:
            pass


LOGIC_LINES = st.lists(st.sampled_from([
    "for = a b", "for-times = 2", "if-env = X", "if-not-env = X",
    "if-opt = a", "endfor =", "endif =", "end", "k = %(_)", "a = 1",
    "include = a.ini", "inherit = a.ini", "for-glob = *.ini",
    "if-exists = a.ini", "strict = false"]), max_size=10)


@FUZZ
@given(LOGIC_LINES)
def test_fuzz_logic_blocks(fuzz_dir, lines):
    with contextlib.chdir(fuzz_dir):
        Path("l.ini").write_text("[uwsgi]\n" + "\n".join(lines) + "\n")
        try:
            resolve(["--ini", "l.ini"], {"X": "1"})
        except ConfigError:
            pass


# -- differential: a corpus of real-world and tricky files ------------------

# The Flask and Django deployment docs' uWSGI setups, in INI form, with
# the options ugu implements; the tutorial's files; the logic, include,
# inherit and format cases.  uWSGI exits at the `chdir` appended to every
# command line, after it has printed its configuration.
CORPUS = {
    "flask.ini": "[uwsgi]\nsocket = /tmp/yourapplication.sock\n"
                 "manage-script-name = true\n"
                 "mount = /yourapplication=myapp:app\nmaster = true\n"
                 "processes = 4\nthreads = 2\n",
    "django.ini": "[uwsgi]\nchdir = /path/to/your/project\n"
                  "module = mysite.wsgi:application\nhome = %d/venv\n"
                  "master = True\nenv = DJANGO_SETTINGS_MODULE=mysite."
                  "settings\nsocket = 127.0.0.1:49152\nprocesses = 5\n"
                  "die-on-term = true\n",
    "logic.ini": "[uwsgi]\nfor = 8001 8002\nhttp-socket = 127.0.0.1:%(_)\n"
                 "endfor =\nfor-times = 2\nt = n%(_)\nend-for =\n"
                 "if-env = HOME\nhome-dir = %(_)/x\nendif =\n"
                 "if-not-env = NOPE_NOT_SET\nnope = [%(_)]\nendif =\n"
                 "if-opt = t=n1\nfirst = %(_)\nend-if =\n"
                 "if-exists = base.ini\nbase = %(_)\nendif =\n"
                 "if-dir = sub\nsubdir = %(_)\nend =\n"
                 "for-glob = sub/*\ng = %(_)\nendfor =\n"
                 "for-readline = lines.txt\nline = %(_)\nendfor =\n",
    "base.ini": "[uwsgi]\nprocesses = 5\nbn = %n %o\nbe = $(HOME)\n"
                "bp = %(a)\n",
    "inc.ini": "[uwsgi]\nin = %n %N $(HOME) %(a)\n",
    "main.ini": "[uwsgi]\na = 1\ninherit = base.ini\nprocesses = 2\n"
                "include = inc.ini\ninclude = sub/x.yml\n"
                "include = sub/x.xml\nafter = x\n",
    "sub/x.yml": "uwsgi:\n  yk: %n\n  yk: second\n  ykey: a b c\n",
    "y.yml": "top: 1\n  deep: 2\nuwsgi: ignored\n  q: \"quoted\" 'too'\n"
             "  hash: a#b\n  flow: [a, b]\n  ph: %(a)/x\n"
             "  rr: addheader:X-A: b\n\ttab:\tv\n    deeper: d\n"
             "  k :  spaced  \n\n  # comment\nafter: 1\nuwsgi:\n  again: 1\n",
    "sub/x.xml": "<uwsgi><xk>%n</xk><flag/><ab>1</ab></uwsgi>",
    "lines.txt": "one\ntwo words\n",
}


@pytest.mark.parametrize("argv", [
    f"--ini {support.EXAMPLES}/uwsgi.ini",
    f"--ini {support.EXAMPLES}/http.ini",
    "--ini flask.ini", "--ini django.ini", "--ini logic.ini",
    "--ini main.ini", "main.ini sub/x.yml", "--yaml sub/x.yml",
    "--set a=1 y.yml",
    "-x sub/x.xml", "--set a=1 --inherit base.ini --set b=%(a)",
    "--for a --set k=%(_) --endfor --if-not-env HOME --set no=1",
])
def test_corpus_show_config_matches_uwsgi(uwsgi_binary, argv):
    for name, text in CORPUS.items():
        write(name, text)
    args = ["--show-config", *argv.split(), "--chdir", "/nonexistent/ugu"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    real = subprocess.run([uwsgi_binary, *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    lines = real.stdout.splitlines() + real.stderr.splitlines()
    start = lines.index(";uWSGI instance configuration") + 2
    expected = lines[start:lines.index(";end of configuration")]
    ours = [f"{k} = {v}" for k, v in shown(*args, env=env)]
    assert ours == expected


@pytest.mark.parametrize("name", ["py-programname", "py-program-name"])
def test_py_programname_is_refused_with_the_way_to_another_python(name):
    """uWSGI names the program before Python starts, and Python derives
    sys.prefix and the standard library's folders from it (the real
    uWSGI given /usr/bin/python3 imports from /usr/lib/python3.11);
    ugu's Python is running."""
    message = str(error(f"--{name}", "/venv/bin/python"))
    assert message.startswith(f"command line: option '{name}': this uWSGI "
                              "option is not implemented by ugu yet;")
    assert "`/venv/bin/python -m ugu`" in message
    assert "`home = /venv`" in message
    assert "sys.executable stays uWSGI's binary" in message
