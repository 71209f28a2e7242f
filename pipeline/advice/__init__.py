"""``pipeline advise``: a study of the user's own function, planned from a first look at
it, run as an ordinary stored run, and decided by the verdicts' rule (study.py)."""
