"""Deciding and doing: the pure planner, apply (validate, write in dependency order, revert,
record), a whole promotion from source to plan, and saved plans. It is the only package that
combines sources, flow documents, the target and the gates.
"""
