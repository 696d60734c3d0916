"""The root key ceremony tool (plan, rehearse, run, verify).

Implemented by the keys-and-ceremony issue; the package exists so that the
layout and the dependency rules (``ceremony`` may import ``toolkit``, never the
reverse) hold from the start.
"""
