"""The online services: transparency log (and later CA, CT log, TSA, OIDC dev).

Thin HTTP edges over pure cores. Nothing below ``toolkit.services`` imports
it.
"""
