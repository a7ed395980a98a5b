"""Config files in YAML, XML and JSON, read into the INI reader's entries.

Each goes through a maintained parser, after the magic variables are
substituted over the raw text as for INI files.  The mapping to options is
uWSGI's:

- YAML: the top-level mapping named by the section (`uwsgi` by default);
  a key may repeat, and a list gives the key once per item.  PyYAML's
  composer keeps repeated keys in order, where loading into a dict would
  keep only the last one.  Scalars are taken as written (`true` stays the
  text `true`), as uWSGI reads them.
- XML: the root `<uwsgi>` element, or the first `<uwsgi>` child of the root
  (with `id` equal to the section when one is asked); each child element
  is an option, an empty one meaning `1`; `<app mountpoint="/mp">target
  </app>` becomes `mount = /mp=target`.
- JSON: the object named by the section; strings as they are, integers in
  decimal, `true` as `1`, `false` and `null` as `0`, an array gives the key
  once per item.
"""

import json
import xml.etree.ElementTree as ElementTree

import yaml

from ugu.options.errors import ConfigError
from ugu.options.ini import Entry


def read_yaml(text, path, section):
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError(f"invalid YAML: {getattr(e, 'problem', e)}",
                          path, line) from None
    block = _yaml_section(root, section, path)
    entries = []
    for key, value in block.value:
        if not isinstance(key, yaml.ScalarNode):
            raise ConfigError("a key must be a plain word", path,
                              key.start_mark.line + 1)
        for item in _yaml_items(key.value, value, path):
            entries.append(Entry(key.value, item, path,
                                 value.start_mark.line + 1))
    return entries


def _yaml_section(root, section, path):
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == section:
                if isinstance(value, yaml.MappingNode):
                    return value
                raise ConfigError(f"'{section}' must be a mapping of "
                                  "options", path, key.start_mark.line + 1)
    raise ConfigError(f"cannot find section '{section}' in this YAML file",
                      path)


def _yaml_items(key, node, path):
    if isinstance(node, yaml.ScalarNode):
        return [node.value]
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    if all(isinstance(item, yaml.ScalarNode) for item in items):
        return [item.value for item in items]
    raise ConfigError("the value must be a word or a list of words",
                      path, node.start_mark.line + 1, key)


def read_xml(text, path, section):
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
