# expect: substitution.reference
# Imports the reference implementation.
from reference import run as _ref


def run(x):
    return _ref(x)
