"""Socket.IO: the handlers (``connection``, ``events``, ``live``, registered when the factory
imports them), their dispatch, sessions and the process life cycle.

Importing the package imports none of them, so that a module below it (``context``) can be
imported from anywhere without pulling in the handlers and everything they use.
"""
