"""Threads or processes? Measure Python concurrency models instead of trusting folklore.

This module stays import-light (standard library only): the worker side lives in the same
package and must run under any interpreter a spec names.
"""

__version__ = "0.1.0"
