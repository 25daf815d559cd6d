"The plan layer: what fits and what to change (`fit`) and whether to train at all (`advisor`), both on the estimators."
