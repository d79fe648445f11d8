"""The flows: generate a clip, create the edit project, transcode, translate (with review and revision), the
whole production and its batches, and the successor of a crashed run. Each buys through the engine's
``PaidAction``/``JobPoll`` and checks everything it can before the first paid call (``preflight``).
"""
