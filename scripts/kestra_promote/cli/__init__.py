"""The ``kestra-promote`` command: one module per command, argument parsing and dispatch in
``main``, output helpers shared by the commands in their own module. Nothing imports the CLI.
"""
