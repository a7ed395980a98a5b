"""Config files in YAML, XML and JSON, read into the INI reader's entries.

Each is read after the magic variables are substituted over the raw
text, as for INI files.  The mapping to options is uWSGI's:

- YAML: uWSGI's own line reader, not a YAML parser (see read_yaml): a
  `%(placeholder)` or `addheader:X: y` value, which YAML refuses, reads
  as uWSGI reads it.
- XML: the root `<uwsgi>` element, or the first `<uwsgi>` child of the root
  (with `id` equal to the section when one is asked); each child element
  is an option, an empty one meaning `1`; `<app mountpoint="/mp">target
  </app>` becomes `mount = /mp=target`.
- JSON: the object named by the section; strings as they are, integers in
  decimal, `true` as `1`, `false` and `null` as `0`, an array gives the key
  once per item.
"""


from ugu.options.errors import ConfigError
from ugu.options.ini import Entry


def read_yaml(text, path, section):
    """uWSGI's own YAML reader, the one its default build has: line by
    line, not YAML.  The section is a `name:` line at the left margin; its
    options are the indented `key: value` lines after it, up to the next
    line at the margin.  Everything after a `#` is a comment; a value is
    taken as written, quotes and brackets included; a key may repeat.

    Where uWSGI's reader stops in the middle of the section without a word
    (a `key:` line, a list, a flow mapping), ugu reads a `key:` followed
    by `- item` lines as the key once per item, as a libyaml build of
    uWSGI does, and refuses the rest at its line rather than drop the
    options after it."""
    lines = [(number, _yaml_text(raw)) for number, raw in
             enumerate(text.split("\n"), 1)]
    lines = [(number, line) for number, line in lines if line.strip(" \t")]
    body = _yaml_section_lines(lines, section, path)
    entries = []
    while body:
        number, line = body.pop(0)
        pair = _yaml_pair(line)
        if pair:
            entries.append(Entry(*pair, path, number))
            continue
        key = _yaml_list_key(line)
        items = _yaml_list(body) if key else []
        if not items:
            raise ConfigError(
                "uWSGI's YAML reader ends the section at this line and "
                "drops the options after it; write `key: value` (a key "
                "may repeat, or list its values under `key:` as "
                "`- value` lines)", path, number)
        entries += [Entry(key, item, path, at) for at, item in items]
    return entries


def _yaml_text(raw):
    """A line less its comment and its end: uWSGI cuts at any `#`.  A
    CRLF file's `\\r` goes too, which uWSGI would leave in the value."""
    return raw.split("#", 1)[0].rstrip("\r")


def _yaml_depth(line):
    """uWSGI's indentation count: a tab counts 8."""
    stripped = line.lstrip(" \t")
    indent = line[:len(line) - len(stripped)]
    return indent.count(" ") + 8 * indent.count("\t")


def _yaml_section_lines(lines, section, path):
    """The indented lines of the first `section:` line at the margin."""
    for at, (_, line) in enumerate(lines):
        if _yaml_depth(line) == 0 and line.partition(":")[1] and \
                line.partition(":")[0] == section:
            body = []
            for number, inner in lines[at + 1:]:
                if _yaml_depth(inner) == 0:
                    break
                body.append((number, inner))
            return body
    raise ConfigError(f"cannot find section '{section}' in this YAML file",
                      path)


def _yaml_pair(line):
    """(key, value) of an option line, split at its first `: ` (else its
    first `:` and tab) as uWSGI splits it; None for any other line."""
    line = line.lstrip(" \t")
    if line[:1] in ("-", "[", "{"):
        return None
    cut = line.find(": ")
    if cut < 0:
        cut = line.find(":\t")
    if cut < 0:
        return None
    return line[:cut].rstrip(" \t"), line[cut + 2:].strip(" \t")


def _yaml_list_key(line):
    """The key of a `key:` line, which may head a list; else None."""
    line = line.strip(" \t")
    if len(line) > 1 and line.endswith(":") and line[0] not in "-[{":
        return line[:-1].rstrip(" \t")
    return None


def _yaml_list(body):
    """The `- item` lines at the head of body, taken off it."""
    items = []
    while body and body[0][1].lstrip(" \t")[:1] == "-":
        number, line = body.pop(0)
        items.append((number, line.lstrip(" \t")[1:].strip(" \t")))
    return items


def read_xml(text, path, section):
    from xml.etree import ElementTree   # only for an XML config
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as e:
        raise ConfigError(f"invalid XML: {e}", path, e.position[0]) \
            from None
    block = _xml_section(root, section, path)
    if _loose_text(block):
        # uWSGI runs such text as Python code (its `eval` option).
        raise ConfigError("text outside option elements is not supported",
                          path)
    entries = []
    for node in block:
        if _id_matches(node, section):
            entries.extend(_xml_entries(node, path))
    return entries


def _id_matches(node, section):
    return not section or node.get("id") in (None, section)


def _loose_text(block):
    texts = [block.text] + [node.tail for node in block]
    return any(t and t.strip() for t in texts)


def _xml_section(root, section, path):
    if root.tag == "uwsgi":
        return root
    for node in root:
        if node.tag == "uwsgi" and _id_matches(node, section):
            return node
    raise ConfigError("invalid xml root element, <uwsgi> expected", path)


def _xml_entries(node, path):
    if node.tag != "app":
        return [Entry(node.tag, _xml_text(node, path), path)]
    if node.text is None and not len(node):
        return [Entry("app", "", path)]
    # The target is the element's text, or that of its first child.
    target = node[0].text or "" if len(node) else node.text
    mountpoint, domain = node.get("mountpoint"), node.get("domain")
    if mountpoint is not None:
        target = f"{mountpoint}={target}"
    elif domain is not None:
        target = f"{domain}|={target}"
    return [Entry("mount", target, path), Entry("app", "", path)]


def _xml_text(node, path):
    if len(node):
        raise ConfigError("an option element holds text only", path,
                          option=node.tag)
    # An empty element is a flag: uWSGI gives it the value 1.
    return "1" if node.text is None else node.text


def read_json(text, path, section):
    import json         # only for a JSON config
    try:
        root = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"invalid JSON: {e}", path,
                          getattr(e, "lineno", None)) from None
    block = root.get(section) if isinstance(root, dict) else None
    if not isinstance(block, dict):
        raise ConfigError(f"you must define an object named {section} in "
                          "your JSON data", path)
    entries = []
    for key, value in block.items():
        items = value if isinstance(value, list) else [value]
        entries += [Entry(key, _json_text(key, item, path), path)
                    for item in items]
    return entries


def _json_text(key, value, path):
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return "0"
    if isinstance(value, (str, int)):
        return str(value)
    raise ConfigError("the value must be a string, an integer, a boolean "
                      "or a list of them", path, option=key)
