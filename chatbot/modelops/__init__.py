"""One model-version lifecycle for every model kind: request, claim, train, evaluate,
activate under the regression guard, roll back, recover stale runs, audit each step."""
