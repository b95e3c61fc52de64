"""Clear-text credentials in a flow: what looks like a password, a token or a private key
written into the YAML rather than read from Kestra's secrets.

Pure functions over ``yaml.compose`` nodes; ``gates.checks`` turns what they find into
violations of a ``no_clear_credentials`` check. A finding never carries the value itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection, Iterator

import yaml

from kestra_promote import yamlnodes

# A key is a credential's when its name, lower-cased and without '_' and '-', is or ends with one
# of these (``dbPassword``, ``DB_PASSWORD``, ``X-Api-Key``, ``clientSecret``...).
CREDENTIAL_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "accesskey",
                       "privatekey", "clientsecret", "authorization")
# Expressions that read a value from somewhere other than the flow's text
SAFE_SOURCES = ("secret(", "kv(", "envs.", "inputs.", "vars.")
SUGGESTION = "read it with {{ secret('NAME') }} instead"

_PEM = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_EXPRESSION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_SAFE = re.compile(r"\bsecret\s*\(|\bkv\s*\(|\benvs\s*\.|\binputs\s*\.|\bvars\s*\.")
_QUOTED_ONLY = re.compile(r"""\{\{\s*(?:'[^'\\]*'|"[^"\\]*")\s*\}\}""")
_STRING_TAG = "tag:yaml.org,2002:str"
_NOT_TEXT = ("tag:yaml.org,2002:null", "tag:yaml.org,2002:bool")


@dataclass(frozen=True)
class Finding:
    """One clear-text credential: the node holding it, its 1-based line, and what it is."""

    node: yaml.Node
    line: int
    message: str


def is_credential_key(name: str) -> bool:
    """Whether a key named ``name`` holds a credential, by its name alone."""
    return re.sub(r"[-_]", "", name.lower()).endswith(CREDENTIAL_SUFFIXES)


def is_clear_text(text: str) -> bool:
    """Whether ``text``, a credential's value, is written out rather than read from somewhere.

    A value made only of Pebble expressions (``{{ outputs.login.token }}``) is not clear text,
    unless they only quote a literal (``{{ 'hunter2' }}``); nor is a value with an expression
    reading a secret, a KV pair, an environment variable, an input or a variable
    (``Bearer {{ secret('API_TOKEN') }}``). Anything else that is not blank is."""
    if not text.strip():
        return False
    expressions = _EXPRESSION.findall(text)
    if any(_SAFE.search(expression) for expression in expressions):
        return False
    if _EXPRESSION.sub("", text).strip():
        return True
    return all(_QUOTED_ONLY.fullmatch(expression) for expression in expressions)


def _literal(node: yaml.Node) -> str | None:
    """The text of a scalar that can hold a credential (not null, not true/false), or None."""
    if not isinstance(node, yaml.ScalarNode) or node.tag in _NOT_TEXT:
        return None
    return str(node.value)


def _pem_line(node: yaml.ScalarNode, text: str, starts: list[int]) -> int | None:
    """The line of the private-key block in ``node``'s value, or None when there is none."""
    if node.tag != _STRING_TAG or not _PEM.search(str(node.value)):
        return None
    begin = yamlnodes.offset(text, node.start_mark)
    found = _PEM.search(text, begin, max(begin, yamlnodes.offset(text, node.end_mark)))
    if found is None:  # written with escapes ("-----BEGIN\x20..."): the node's own line
        return yamlnodes.position(node)[0]
    return yamlnodes.line_of(starts, found.start()) + 1


def _is_webhook(mapping: yaml.Node) -> bool:
    kind = yamlnodes.scalar_text(yamlnodes.mapping_get(mapping, "type")) or ""
    return kind.rpartition(".")[2] == "Webhook"


def _is_secret_input(mapping: yaml.Node) -> bool:
    kind = yamlnodes.scalar_text(yamlnodes.mapping_get(mapping, "type")) or ""
    return kind.upper() == "SECRET" and yamlnodes.mapping_get(mapping, "id") is not None


def find(root: yaml.Node, text: str, ignore_keys: Collection[str] = ()) -> Iterator[Finding]:
    """Every clear-text credential in the flow ``root`` composed from ``text``, in document
    order: a literal value under a credential's key (``is_credential_key``), a webhook trigger's
    literal ``key``, a literal ``defaults``/``prefill`` of a ``SECRET`` input, and any text
    holding a PEM private-key block. Keys in ``ignore_keys`` (compared without case) are left
    alone."""
    ignored = {key.lower() for key in ignore_keys}
    starts = yamlnodes.line_starts(text)
    seen: set[int] = set()
    found: list[Finding] = []

    def visit(node: yaml.Node, key: str | None, credential: str | None) -> None:
        if id(node) in seen:  # an alias names a collection or a flagged text already seen
            return
        if not isinstance(node, yaml.ScalarNode):
            seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            webhook, secret_input = _is_webhook(node), _is_secret_input(node)
            for key_node, value_node in node.value:
                name = yamlnodes.scalar_text(key_node)
                why = None
                if name is not None and name.lower() not in ignored:
                    if is_credential_key(name):
                        why = f"{name!r} holds a clear-text value"
                    elif webhook and name == "key":
                        why = "the webhook trigger's 'key' is a clear-text value"
                    elif secret_input and name in ("defaults", "prefill"):
                        why = f"the SECRET input's {name!r} is a clear-text value"
                visit(value_node, name, why)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                visit(item, key, None)
        elif isinstance(node, yaml.ScalarNode):
            line = _pem_line(node, text, starts) if key is None or key.lower() not in ignored \
                else None
            if line is not None:
                found.append(Finding(node, line, "holds a clear-text private key (PEM block)"
                                     + (f" under {key!r}" if key else "")))
                seen.add(id(node))
            elif credential and (value := _literal(node)) is not None and is_clear_text(value):
                found.append(Finding(node, yamlnodes.position(node)[0], credential))
                seen.add(id(node))

    visit(root, None, None)
    found.sort(key=lambda finding: (finding.line, finding.node.start_mark.column))
    return iter(found)

