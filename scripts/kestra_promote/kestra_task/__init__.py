"""What the Kestra flows run: the task runtime (settings from the environment in, Kestra
outputs and logs out, a webhook or schedule turned into a promotion) and the bootstrap of the
promotion system itself. It speaks Kestra's script-task protocol and nothing else does.
"""
