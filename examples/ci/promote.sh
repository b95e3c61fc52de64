#!/bin/sh
# Any CI system, or a terminal: promote the checkout in the current folder (apply plans and
# validates on the target first; nothing is written if anything is wrong).
# Needs KESTRA_URL and KESTRA_USERNAME/KESTRA_PASSWORD (or KESTRA_API_TOKEN) in the environment.
#
# In CI, run it only from a job that only the protected main branch runs, and give the
# credential only to that job (a protected, deployment-only or environment secret): a job that
# pull requests run executes what the request says and can print any credential it is given.
# Install kestra-promote pinned to a release (pip install "kestra-promote==X.Y.Z", or a Git URL
# at a full commit), never from the checkout (pip install ., -e .), which a request may change.
# The output shows every diff, production's side included: keep it where only those who may
# read production read it (no public log, no artifact for everyone).
# To plan a pull request on a CI system that `plan --post` does not support, use a read-only
# credential and `kestra-promote plan . --public` (never --out): its output shows a diff only
# where production's copy came from this repository, as a posted plan does.
set -eu

# A guard against wiring this into a pull-request pipeline by mistake (not a security boundary:
# a request that can change this script can remove it).
pull_request_run() {
  case "${GITHUB_EVENT_NAME:-}" in pull_request*) return 0 ;; esac        # GitHub, Gitea, Forgejo
  [ -n "${CI_MERGE_REQUEST_IID:-}" ] && return 0                          # GitLab
  case "${CI_PIPELINE_SOURCE:-}" in *_request_event) return 0 ;; esac     # GitLab
  [ -n "${BITBUCKET_PR_ID:-}" ] && return 0                               # Bitbucket
  [ -n "${CHANGE_ID:-}" ] && return 0                                     # Jenkins
  [ -n "${CIRCLE_PULL_REQUEST:-}" ] && return 0                           # CircleCI
  [ "${BUILD_REASON:-}" = PullRequest ] && return 0                       # Azure Pipelines
  case "${BUILDKITE_PULL_REQUEST:-false}" in false | "") ;; *) return 0 ;; esac
  case "${TRAVIS_PULL_REQUEST:-false}" in false | "") ;; *) return 0 ;; esac
  [ "${CI_PIPELINE_EVENT:-}" = pull_request ] && return 0                 # Woodpecker
  [ "${DRONE_BUILD_EVENT:-}" = pull_request ] && return 0                 # Drone
  return 1
}

if pull_request_run; then
  echo "promote.sh: refusing to promote from a pull/merge request run; promote from main" >&2
  exit 1
fi
kestra-promote apply . --trigger shell
