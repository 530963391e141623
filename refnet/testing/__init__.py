"""refnet.testing: check refnet, and your own optimizer, activation or dropout, against the lecture's conventions.

* :mod:`refnet.testing.strategies`: Hypothesis strategies for float arrays
  (needs the ``testing`` extra);
* :mod:`refnet.testing.tolerances`: exact, ulp and relative comparisons with a
  report of the worst element.
"""
