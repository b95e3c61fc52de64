#!/bin/sh
# Any CI system, or a terminal: promote the checkout in the current folder (apply plans and
# validates on the target first; nothing is written if anything is wrong).
# Needs KESTRA_URL and KESTRA_USERNAME/KESTRA_PASSWORD (or KESTRA_API_TOKEN) in the environment.
set -e
kestra-promote apply . --trigger shell
