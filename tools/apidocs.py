"""Writes docs/api.md, the API reference, from the proto's own comments.

The comments in ``proto/`` are the reference's only source: this turns the
compiled contract (a buf image with source info, ``buf build -o -``, which
is a FileDescriptorSet on the wire) into Markdown, so the page cannot say
anything the contract's comments do not, and ``tools/check-gen`` fails when
the committed page is older than the proto.

    tools/buf/node_modules/.bin/buf build -o - | .venv/bin/python tools/apidocs.py docs/api.md
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2 as d

PROTO = "elloloop/notify/v1/notify.proto"
# Where each kind of element sits in SourceCodeInfo paths (descriptor.proto's field numbers).
MESSAGE, ENUM, SERVICE, SYNTAX = 4, 5, 6, 12
FIELD, NESTED, NESTED_ENUM, ONEOF = 2, 3, 4, 8
ENUM_VALUE, METHOD = 2, 2

_SCALARS = {
    number: name.removeprefix("TYPE_").lower()
    for name, number in d.FieldDescriptorProto.Type.items()
}


class Comments:
    """The comment attached to each element, by its SourceCodeInfo path."""

    def __init__(self, file: d.FileDescriptorProto) -> None:
        self._by_path: dict[tuple[int, ...], str] = {}
        for location in file.source_code_info.location:
            parts = [*location.leading_detached_comments, location.leading_comments]
            text = "\n\n".join(_clean(p) for p in parts if p.strip())
            if location.trailing_comments.strip():
                text = (text + "\n\n" if text else "") + _clean(location.trailing_comments)
            if text:
                self._by_path[tuple(location.path)] = text

    def __call__(self, *path: int) -> str:
        return self._by_path.get(path, "")


def _clean(comment: str) -> str:
    """A comment's lines without the one space after ``//``."""
    lines = [line.removeprefix(" ") for line in comment.rstrip().split("\n")]
    return "\n".join(lines).strip("\n")


def _cell(text: str) -> str:
    """A comment as one Markdown table cell: paragraphs joined, pipes escaped."""
    return " ".join(line.strip() for line in text.split("\n") if line.strip()).replace("|", "\\|")


def _anchor(name: str) -> str:
    return name.lower().replace(".", "")


def _short(type_name: str, package: str) -> str:
    """``.elloloop.notify.v1.Notification`` -> ``Notification``; others keep their package."""
    return type_name.removeprefix(f".{package}.").lstrip(".")


def _link(type_name: str, package: str) -> str:
    short = _short(type_name, package)
    if type_name.startswith(f".{package}."):
        return f"[`{short}`](#{_anchor(short)})"
    return f"`{short}`"


def _maps(message: d.DescriptorProto) -> dict[str, d.DescriptorProto]:
    return {n.name: n for n in message.nested_type if n.options.map_entry}


def _field_type(field: d.FieldDescriptorProto, message: d.DescriptorProto, package: str) -> str:
    if field.type in (field.TYPE_MESSAGE, field.TYPE_ENUM):
        entry = _maps(message).get(field.type_name.rsplit(".", 1)[-1])
        if entry is not None and field.type_name.endswith(f"{message.name}.{entry.name}"):
            key, value = entry.field
            return f"map<{_field_type(key, entry, package)}, {_field_type(value, entry, package)}>"
        shown = _link(field.type_name, package)
    else:
        shown = f"`{_SCALARS[field.type]}`"
    if field.label == field.LABEL_REPEATED:
        return f"repeated {shown}"
    if field.proto3_optional:
        return f"optional {shown}"
    return shown


def _services(file: d.FileDescriptorProto, comments: Comments) -> Iterator[str]:
    for s, service in enumerate(file.service):
        yield f"### {service.name}\n"
        yield comments(SERVICE, s) + "\n"
        yield "| RPC | request | response |"
        yield "|---|---|---|"
        for method in service.method:
            stream = "stream " if method.server_streaming else ""
            yield (
                f"| [`{method.name}`](#{_anchor(service.name + method.name)}) "
                f"| {_link(method.input_type, file.package)} "
                f"| {stream}{_link(method.output_type, file.package)} |"
            )
        yield ""
        for m, method in enumerate(service.method):
            yield f"#### {service.name}.{method.name}\n"
            stream = "stream " if method.server_streaming else ""
            yield (
                f"`POST /{file.package}.{service.name}/{method.name}`: "
                f"{_link(method.input_type, file.package)} -> "
                f"{stream}{_link(method.output_type, file.package)}\n"
            )
            yield (comments(SERVICE, s, METHOD, m) or "(undocumented)") + "\n"


def _message(
    message: d.DescriptorProto,
    path: tuple[int, ...],
    comments: Comments,
    package: str,
    prefix: str = "",
) -> Iterator[str]:
    name = prefix + message.name
    yield f"### {name}\n"
    if text := comments(*path):
        yield text + "\n"
    if message.field:
        yield "| field | number | type | meaning |"
        yield "|---|---|---|---|"
        for f, field in enumerate(message.field):
            where = ""
            if field.HasField("oneof_index") and not field.proto3_optional:
                where = f"one of `{message.oneof_decl[field.oneof_index].name}`: "
            meaning = where + _cell(comments(*path, FIELD, f))
            yield (
                f"| `{field.name}` (`{field.json_name}`) | {field.number} "
                f"| {_field_type(field, message, package)} | {meaning} |"
            )
        yield ""
        for o, oneof in enumerate(message.oneof_decl):
            if (text := comments(*path, ONEOF, o)) and not oneof.name.startswith("_"):
                yield f'`{oneof.name}` (the fields marked "one of `{oneof.name}`"): {text}\n'
    else:
        yield "No fields.\n"
    for n, nested in enumerate(message.nested_type):
        if not nested.options.map_entry:
            yield from _message(nested, (*path, NESTED, n), comments, package, f"{name}.")
    for e, enum in enumerate(message.enum_type):
        yield from _enum(enum, (*path, NESTED_ENUM, e), comments, f"{name}.")


def _enum(
    enum: d.EnumDescriptorProto, path: tuple[int, ...], comments: Comments, prefix: str = ""
) -> Iterator[str]:
    yield f"### {prefix}{enum.name}\n"
    if text := comments(*path):
        yield text + "\n"
    yield "| value | number | meaning |"
    yield "|---|---|---|"
    for v, value in enumerate(enum.value):
        yield f"| `{value.name}` | {value.number} | {_cell(comments(*path, ENUM_VALUE, v))} |"
    yield ""


def render(files: Sequence[d.FileDescriptorProto], proto: str = PROTO) -> str:
    """The reference page for ``proto`` (one file of the set)."""
    file = next(f for f in files if f.name == proto)
    comments = Comments(file)
    out = [
        "# API reference",
        "",
        "<!-- Generated by tools/apidocs.py from proto/"
        f"{proto} (make gen). Do not edit: change the proto's comments. -->",
        "",
        f"Package `{file.package}`, from [`proto/{proto}`](../proto/{proto}). "
        "Every name below is the proto name; Connect JSON uses the `camelCase` "
        "name in brackets, enum values by name, and 64-bit integers as strings. "
        "[contract.md](contract.md) summarises the rules; this page is generated "
        "from the comments in the proto, which are the source of truth.",
        "",
    ]
    if overview := comments(SYNTAX):
        out += ["## Overview", "", overview, ""]
    out += ["## Services", ""]
    out += _services(file, comments)
    out += ["## Messages", ""]
    for m, message in enumerate(file.message_type):
        out += _message(message, (MESSAGE, m), comments, file.package)
    out += ["## Enums", ""]
    for e, enum in enumerate(file.enum_type):
        out += _enum(enum, (ENUM, e), comments)
    text = "\n".join(out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip("\n") + "\n"


def main(argv: Sequence[str]) -> int:
    """Reads the image from stdin; writes the page to argv[0] (or stdout)."""
    image = d.FileDescriptorSet.FromString(sys.stdin.buffer.read())
    page = render(image.file)
    if argv:
        Path(argv[0]).write_text(page)
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
