"""The pure judgement engine: a plan, tracker evidence and ``as_of`` in, a report out.

No I/O and no clock reads live here, so every rule is a fast unit test and judging at a
past moment reproduces the plan as it stood then.
"""

from stratmap.judgement.engine import judge

__all__ = ["judge"]
