"""The flow document and its edits: references between flows (the reference table), format-preserving
rewrites of namespaces and labels, the desired state built from a source, and dependency order.
Pure text and data in, text and data out: no network, no Git.
"""
