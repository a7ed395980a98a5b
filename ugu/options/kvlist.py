"""uWSGI's key=value lists (`attach-daemon2`, `cron2`, a `file:` logger's
argument): items split at a separator, a backslash keeping the next
character as it is (`\\,` is a comma inside a value)."""


def split_escaped(text, separator):
    """Items between unescaped separators, each backslash dropped and the
    character after it kept."""
    items, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if current:
        items.append("".join(current))
    return items
