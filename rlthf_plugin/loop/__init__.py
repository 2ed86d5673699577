"""The RLTHF loop over a workspace: one iteration (:mod:`.iteration`), the simulated
annotator and the evaluation (:mod:`.oracle`), AI labels from a judge (:mod:`.judging`),
REAL candidates (:mod:`.candidates`), the asked tasks (:mod:`.tasks`) and storing labels
from a pull or a webhook (:mod:`.sync`).
"""
