"""Reading sources: a checkout or a commit (``--ref``), its settings, ignore rules, the remote's
branches and tags, the repository's origin, and the annotated tags that mark a verified commit.
Everything that touches Git or the files of a source lives here; nothing here talks to Kestra or
decides what to change.
"""
