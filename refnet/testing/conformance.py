"""What the conformance checks share: their error, and the pytest helper that runs them.

Each ``check_*`` function of :mod:`refnet.testing` drives a user's code with
generated cases, compares it with a textbook transcription of the formula in
the chosen convention and, where they differ, raises :class:`ConformanceError`
saying where they first differ and which known variant the code follows instead.
"""

__all__ = ["ConformanceError", "parametrize_with_checks", "join_phrases"]


class ConformanceError(AssertionError):
    """A user's implementation differs from the convention it was checked against.

    ``matches`` names the known variant it does follow (``None`` if none of those
    tried), ``step`` and ``index`` where it first differs, for programs to read;
    the message says the same for people.
    """

    def __init__(self, message, *, matches=None, step=None, index=None):
        super().__init__(message)
        self.matches = matches
        self.step = step
        self.index = index


def join_phrases(phrases):
    """``["a", "b", "c"]`` -> ``"a, b and c"``.

    Parameters
    ----------
    phrases : iterable of str
        At least one phrase.

    Returns
    -------
    str
        The phrases joined by ``", "``, the last two by ``" and "``; a single phrase as it is.
    """
    phrases = list(phrases)
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def parametrize_with_checks(checks):
    """A ``pytest.mark.parametrize`` over named checks, as scikit-learn's helper of that name.

    Parameters
    ----------
    checks : dict of str -> callable
        Maps a test id to a function of no arguments that runs one check (so that each run
        builds a fresh optimizer).

    Returns
    -------
    pytest.MarkDecorator
        ``pytest.mark.parametrize("check", ...)``: one test per id, whose argument ``check``
        is that id's function.

    Examples
    --------
    ::

        from refnet.testing import check_optimizer, check_activation, parametrize_with_checks

        @parametrize_with_checks({
            "rmsprop": lambda: check_optimizer(MyRMSProp(lr=0.01), "rmsprop", convention="torch", lr=0.01),
            "sigmoid": lambda: check_activation(my_sigmoid, "sigmoid"),
        })
        def test_conformance(check):
            check()
    """
    import pytest

    if not isinstance(checks, dict) or not all(callable(check) for check in checks.values()):
        raise TypeError("checks must be a dict {test id: function of no arguments running one check}")
    return pytest.mark.parametrize("check", list(checks.values()), ids=list(checks))
